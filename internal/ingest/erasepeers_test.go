package ingest_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// TestService_ErasureDropsPeersCachedHistory: a nird that cached a person before another nird
// erased it keeps no history of the person, nor of a person merged into it, once its key
// store has seen the keys destroyed, and answers a re-send of either's registration as a nird
// that reads the stream does, not as a duplicate (DOMAIN.md Product decisions 15).
//
// Found on 2026-12-07 (review of the erasure): before, only the nird that stored the erasure
// dropped its cached histories; every other kept them, national ids in clear, until they were
// evicted, and answered the re-send as a duplicate. Now every nird drops a cached history as
// its key store's watch of the key bucket sees a data key the history names destroyed.
func TestService_ErasureDropsPeersCachedHistory(t *testing.T) {
	ctx := context.Background()
	_, newSvc := peerStores(t)
	a, b := newSvc(), newSvc()
	// The merge through B caches both persons there.
	p := cachedMergedPair(t, 72, a, b)
	survivor := p.survivor
	if _, err := a.Append(ctx, operatorScope, []*nirv1.Registration{erasureOf(survivor)}); err != nil {
		t.Fatal(err)
	}
	// B learns of the erasure by its key store's watch: wait until B reads the survivor's
	// registration «slettet» from the stream (History reads the stream, not the cache) and
	// its cache holds neither person. Both come from the key store, but not at one moment:
	// History may open the key from the store before the watch delivers its purge marker
	// (once in 8 runs under the race detector), so the cache is waited for as well.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, h, err := b.History(ctx, operatorScope, &nirv1.PersonRef{PersonKey: survivor})
		if err != nil {
			t.Fatal(err)
		}
		erased := h[0].Event.GetPersonRegistered().GetFodselsnummer() == rules.ErasedText
		_, cachedS := b.CachedHistoryForTest(p.survivor)
		_, cachedA := b.CachedHistoryForTest(p.absorbed)
		if erased && !cachedS && !cachedA {
			break
		}
		if time.Now().After(deadline) {
			if !erased {
				t.Fatal("B's key store never saw the erased person's key destroyed")
			}
			break // notCached says which person is still cached
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.notCached(t, b, "B")
	for name, reg := range map[string]*nirv1.Registration{"the erased person's": p.regS, "the merged person's": p.regA} {
		got, errB := b.Append(ctx, oslo, []*nirv1.Registration{proto.Clone(reg).(*nirv1.Registration)})
		_, errC := newSvc().Append(ctx, oslo, []*nirv1.Registration{proto.Clone(reg).(*nirv1.Registration)})
		if errB == nil || errC == nil || errB.Error() != errC.Error() {
			t.Errorf("a re-send of %s registration to B after the erasure: %v, %v; a nird that reads the stream: %v; want the same refusal", name, got, errB, errC)
		}
	}
}
