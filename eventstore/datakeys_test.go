package eventstore_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/storetest"
	"github.com/introreg/nir/sealing"
)

// TestKeyStore_ExportImport: the persons' data keys (DOMAIN.md Product decisions 15) on a real embedded
// JetStream server. A key is made once, also by two key stores at once; a second key store
// sees the first's keys and its destructions; a destroyed key is gone from the store's files
// (overwritten, not just unlinked), never made again, and its sealed values do not open; a
// wrong master key is refused; a backup's export and import carry keys and destructions.
func TestKeyStore_ExportImport(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	s, err := eventstore.Open(ctx, eventstore.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	master := storetest.NewMaster(t)
	a, b := openKeys(t, s, master), openKeys(t, s, master)
	pk := strings.Repeat("ab", 32)

	if _, err := a.Key(ctx, pk); !errors.Is(err, eventstore.ErrKeyLost) {
		t.Fatalf("Key of a person without one (one replica: lost): %v, want ErrKeyLost", err)
	}
	// Two key stores make the person's key at once: one key.
	var wg sync.WaitGroup
	keys := make([]*sealing.Key, 2)
	errs := make([]error, 2)
	for i, ks := range []*eventstore.KeyStore{a, b} {
		wg.Go(func() { keys[i], errs[i] = ks.Ensure(ctx, pk) })
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	sealed := keys[0].Seal(pk, []byte("01019012345"))
	if got, err := keys[1].Open(pk, sealed); err != nil || string(got) != "01019012345" {
		t.Fatalf("the two key stores hold different keys for the person: %q, %v", got, err)
	}
	again, err := a.Ensure(ctx, pk)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := again.Open(pk, sealed); err != nil {
		t.Fatal("Ensure made a second key")
	}

	// A key store opened later loads the keys.
	c, err := s.OpenKeyStore(ctx, master)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Len() != 1 {
		t.Fatalf("a new key store holds %d keys, want 1", c.Len())
	}
	// A wrong master key is refused at once; also by a bucket that holds no person's key
	// yet, where two nird with different master keys would each seal what the other cannot
	// open.
	empty, err := eventstore.Open(ctx, eventstore.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer empty.Close()
	first, err := empty.OpenKeyStore(ctx, master)
	if err != nil {
		t.Fatal(err)
	}
	first.Close()
	if _, err := empty.OpenKeyStore(ctx, storetest.NewMaster(t)); !errors.Is(err, eventstore.ErrMasterKey) {
		t.Fatalf("another master key on an empty bucket: %v, want ErrMasterKey", err)
	}
	if _, err := s.OpenKeyStore(ctx, storetest.NewMaster(t)); !errors.Is(err, eventstore.ErrMasterKey) {
		t.Fatalf("another master key: %v, want ErrMasterKey", err)
	}

	exp, err := s.ExportKeys(ctx)
	if err != nil || len(exp.Wrapped) != 2 || exp.Wrapped[pk] == nil || len(exp.Destroyed) != 0 {
		t.Fatalf("export: %+v, %v; want the person's key and the master check", exp, err)
	}
	wrapped := exp.Wrapped[pk]
	if len(filesHolding(t, dir, wrapped)) == 0 {
		t.Fatal("the scan does not find the wrapped key in the store's files")
	}

	if err := a.Destroy(ctx, pk); err != nil {
		t.Fatal(err)
	}
	if err := a.Destroy(ctx, pk); err != nil {
		t.Fatalf("Destroy again: %v", err)
	}
	if _, err := a.Key(ctx, pk); !errors.Is(err, eventstore.ErrNoKey) {
		t.Fatalf("Key after Destroy: %v, want ErrNoKey", err)
	}
	if _, err := a.Ensure(ctx, pk); !errors.Is(err, eventstore.ErrKeyDestroyed) {
		t.Fatalf("Ensure after Destroy: %v, want ErrKeyDestroyed", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for c.Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the other key store still holds the destroyed key")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := c.Key(ctx, pk); !errors.Is(err, eventstore.ErrNoKey) {
		t.Fatalf("Key on the other key store after Destroy: %v", err)
	}
	if len(filesHolding(t, dir, wrapped)) > 0 {
		t.Fatal("the destroyed key's bytes are still in the store's files")
	}

	// A backup's keys into another register: the destroyed one stays destroyed.
	exp, err = s.ExportKeys(ctx)
	if err != nil || exp.Wrapped[pk] != nil || len(exp.Destroyed) != 1 {
		t.Fatalf("export after Destroy: %+v, %v", exp, err)
	}
	other := strings.Repeat("cd", 32)
	if _, err := a.Ensure(ctx, other); err != nil {
		t.Fatal(err)
	}
	exp, err = s.ExportKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := eventstore.Open(ctx, eventstore.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if err := s2.ImportKeys(ctx, exp); err != nil {
		t.Fatal(err)
	}
	r, err := s2.OpenKeyStore(ctx, master)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Key(ctx, other); err != nil {
		t.Fatalf("the restored key: %v", err)
	}
	if _, err := r.Ensure(ctx, pk); !errors.Is(err, eventstore.ErrKeyDestroyed) {
		t.Fatalf("the restored register makes a key for an erased person: %v", err)
	}
}

// TestKeyStore_Take: keys are made ahead in batches and stored before they are given out, each
// id once; another key store opens them; a destroyed one is gone for both.
func TestKeyStore_Take(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, _ := openStore(t, nil)
	master := storetest.NewMaster(t)
	a, b := openKeys(t, s, master), openKeys(t, s, master)
	seen := map[string]bool{}
	const n = 600 // more than two batches: the refill runs
	for range n {
		id, k, err := a.Take(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if seen[id] {
			t.Fatalf("key %s taken twice", id)
		}
		seen[id] = true
		other, err := b.Key(ctx, id)
		if err != nil {
			t.Fatalf("the other key store: key %s: %v", id, err)
		}
		if got, err := other.Open("pk", k.Seal("pk", []byte("x"))); err != nil || string(got) != "x" {
			t.Fatalf("key %s opens differently in the other key store", id)
		}
	}
	var one string
	for id := range seen {
		one = id
		break
	}
	if err := a.Destroy(ctx, one); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Key(ctx, one); !errors.Is(err, eventstore.ErrNoKey) {
		t.Fatalf("a destroyed key: %v", err)
	}
	exp, err := s.ExportKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(exp.Wrapped) < n || exp.Wrapped[one] != nil {
		t.Fatalf("export holds %d keys (want at least %d), the destroyed one: %v", len(exp.Wrapped), n, exp.Wrapped[one] != nil)
	}
}

// TestKeyStore_CloseDeletesUnusedKeys: the keys Take made ahead and never handed out are
// deleted when the key store closes; the keys handed out stay. Before, every stop left up to
// a pool's worth (256) in the bucket, and every backup carried them.
func TestKeyStore_CloseDeletesUnusedKeys(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, _ := openStore(t, nil)
	a := openKeys(t, s, storetest.NewMaster(t))
	before, err := s.ExportKeys(ctx) // the master key's check entry
	if err != nil {
		t.Fatal(err)
	}
	taken := map[string]bool{}
	for range 5 {
		id, _, err := a.Take(ctx)
		if err != nil {
			t.Fatal(err)
		}
		taken[id] = true
	}
	ahead, err := s.ExportKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ahead.Wrapped) < len(before.Wrapped)+100 {
		t.Fatalf("%d keys in the bucket after 5 takes: the pool was not made ahead, the test proves nothing", len(ahead.Wrapped))
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	after, err := s.ExportKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for id := range taken {
		if after.Wrapped[id] == nil {
			t.Errorf("taken key %s deleted at close", id)
		}
	}
	if got, want := len(after.Wrapped), len(before.Wrapped)+len(taken); got != want {
		t.Errorf("%d keys in the bucket after close, want %d (those before, and the 5 taken)", got, want)
	}
	if _, _, err := a.Take(ctx); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("Take after Close = %v, want ErrClosed", err)
	}
}
