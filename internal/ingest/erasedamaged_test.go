package ingest_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/ingest"
	"github.com/introreg/nir/internal/natstest"
	"github.com/introreg/nir/internal/personkey"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
	"github.com/introreg/nir/sealing"
)

// TestService_EraseSurvivorWithBrokenMergedSubject: a hole on the subject of a person merged
// into the erased one (ErrHistoryBroken, a byte flipped on disk) does not stop the erasure of
// the survivor, whose own subject is whole (DOMAIN.md Product decisions 15).
//
// Found on 2026-12-06 (review of the erasure's reads of the merged persons' subjects): the
// read's error failed the erasure, nothing was recorded and no key destroyed, and sending it
// again changed nothing; now the unreadable subject is logged and left.
func TestService_EraseSurvivorWithBrokenMergedSubject(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "js")
	master, _, err := sealing.NewDataKey()
	if err != nil {
		t.Fatal(err)
	}
	var closeKS func()
	var store *eventstore.Store
	var newSvc func() *ingest.Service
	reopen := func() (*eventstore.Store, func() *ingest.Service) {
		s, err := eventstore.Open(ctx, eventstore.Config{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		keys, err := personkey.New([]byte("test secret for the ingest tests"))
		if err != nil {
			t.Fatal(err)
		}
		ks, err := s.OpenKeyStore(ctx, master)
		if err != nil {
			t.Fatal(err)
		}
		closeKS = func() { ks.Close() }
		return s, func() *ingest.Service {
			return ingest.New(ingest.Config{Store: s, Keys: keys, Now: func() time.Time { return fixedNow },
				Sealer: sealing.Events{Keys: ks, Strict: true}})
		}
	}
	store, newSvc = reopen()
	svc := newSvc()
	i := 61
	_, _, _, pos := registeredTwice(t, svc, i)
	keyB := pos[1].PersonKey
	birth := rules.Date{Y: 1991, M: time.Month(1 + i%12), D: 1 + i%28}
	_, _, regA := dnrPerson(i)
	regA.GetEvent().GetPersonRegistered().DNummer = rules.SyntheticDNummer(birth, i+7)
	pa, err := svc.Append(ctx, oslo, []*nirv1.Registration{regA})
	if err != nil {
		t.Fatal(err)
	}
	keyA, seqA := pa[0].PersonKey, pa[0].Sequence
	r := mergeReg("", keyA)
	r.Person = &nirv1.PersonRef{PersonKey: keyB}
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{r}); err != nil {
		t.Fatalf("merge A into B: %v", err)
	}
	ha, _, err := store.Read(ctx, keyA)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("A's subject: %d events before the damage", len(ha))
	keyIDA := ha[0].Event.GetDataKeyId()
	if keyIDA == "" {
		t.Fatal("A's registration names no data key")
	}
	_, raw, err := store.MsgAt(ctx, seqA)
	if err != nil {
		t.Fatal(err)
	}
	store.Close()
	closeKS()
	natstest.FlipInBlock(t, dir, eventstore.StreamName, raw)
	store, newSvc = reopen()
	if _, _, err := store.Read(ctx, keyA); err == nil {
		t.Fatal("A's subject reads whole after the damage; the test needs a hole")
	} else {
		t.Logf("A's subject now: %v", err)
	}
	if _, err := newSvc().Append(ctx, operatorScope, []*nirv1.Registration{erasureOf(keyB)}); err != nil {
		t.Errorf("erasure of B (its own subject whole) refused for damage on A's subject: %v", err)
	}
	// A's key is still destroyed: the merge copied A's registration into B, naming the key
	// (erasedKeys), where A's own subject cannot be read. Found by mutation testing
	// (2026-12-07): leaving the copies' keys out failed no test of the package.
	hb, _, err := store.Read(ctx, keyB)
	if err != nil {
		t.Fatal(err)
	}
	if e := hb[len(hb)-1].Event.GetPersonErased(); e == nil || !slices.Contains(e.GetDestroyedKeys(), keyIDA) {
		t.Errorf("B's last event %v; want the erasure naming A's data key %s, which the merge's copy names", hb[len(hb)-1].Event, keyIDA)
	}
}
