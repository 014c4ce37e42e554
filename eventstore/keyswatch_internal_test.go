package eventstore

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/introreg/nir/sealing"
)

// TestKeyStore_WatchEndedBlinds: when the key bucket's watch ends while nird runs (nats.go
// gives up re-creating its ordered consumer on an error it does not retry), the key store
// tells its OnDestroyed subscribers it can tell no more, and one that subscribes later
// hears it at once. Found on 2026-12-07 (review of the erasure's cache drop): such a key
// store fell silent, and the append path's history cache kept an erased person's national
// ids in clear for good.
func TestKeyStore_WatchEndedBlinds(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Config{Dir: filepath.Join(t.TempDir(), "js")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	master, _, err := sealing.NewDataKey()
	if err != nil {
		t.Fatal(err)
	}
	k, err := s.OpenKeyStore(ctx, master)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	var (
		mu            sync.Mutex
		early, late   int
		destroyedSeen []string
	)
	k.OnDestroyed(func(id string) { mu.Lock(); destroyedSeen = append(destroyedSeen, id); mu.Unlock() }, func() { mu.Lock(); early++; mu.Unlock() })
	id, _, err := k.Take(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Destroy(ctx, id); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(destroyedSeen) != 1 || destroyedSeen[0] != id || early != 0 {
		t.Errorf("while watched: told of %v destroyed and blind %d times; want %s once and never blind", destroyedSeen, early, id)
	}
	mu.Unlock()
	// The watch ends as when its subscription closes: neither Close nor the store's.
	k.stopWatch()
	<-k.watchDone
	k.OnDestroyed(func(string) {}, func() { mu.Lock(); late++; mu.Unlock() })
	mu.Lock()
	defer mu.Unlock()
	if early != 1 || late != 1 {
		t.Errorf("after the watch ended: the subscriber before was told blind %d times, the one after %d; want once each", early, late)
	}
}
