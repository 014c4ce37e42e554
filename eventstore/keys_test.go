package eventstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/storetest"
	"github.com/introreg/nir/sealing"
)

// openKeys opens a key store of s and closes it when the test ends.
func openKeys(tb testing.TB, s *eventstore.Store, master *sealing.Key) *eventstore.KeyStore {
	tb.Helper()
	k, err := s.OpenKeyStore(context.Background(), master)
	if err != nil {
		tb.Fatalf("OpenKeyStore: %v", err)
	}
	tb.Cleanup(func() { _ = k.Close() })
	return k
}

// sameKey fails the test unless what a seals for person b opens.
func sameKey(tb testing.TB, person string, a, b *sealing.Key) {
	tb.Helper()
	sealed := a.Seal(person, []byte("01017012345"))
	if got, err := b.Open(person, sealed); err != nil || string(got) != "01017012345" {
		tb.Fatalf("person %s: the two keys differ (open: %v)", person, err)
	}
}

// filesHolding returns the files under dir that contain b.
func filesHolding(tb testing.TB, dir string, b []byte) []string {
	tb.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // a temporary file renamed meanwhile
		}
		if err != nil {
			return err
		}
		if bytes.Contains(data, b) {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func TestKeyStore_EnsureThenKey(t *testing.T) {
	s, _ := openStore(t, nil)
	ks := openKeys(t, s, storetest.NewMaster(t))
	ctx := context.Background()
	p := personKey("ensure")

	made, err := ks.Ensure(ctx, p)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	again, err := ks.Ensure(ctx, p)
	if err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	sameKey(t, p, made, again)
	sameKey(t, p, again, made)
	got, err := ks.Key(ctx, p)
	if err != nil {
		t.Fatalf("Key: %v", err)
	}
	sameKey(t, p, made, got)
	if n := ks.Len(); n != 1 {
		t.Fatalf("Len = %d, want 1", n)
	}

	// Another person gets another key.
	q := personKey("other")
	other, err := ks.Ensure(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Open(p, made.Seal(p, []byte("x"))); err == nil {
		t.Fatal("another person's key opens the person's sealed value")
	}
	if n := ks.Len(); n != 2 {
		t.Fatalf("Len = %d, want 2", n)
	}
}

// TestKeyStore_KeyUnknown: Key is asked for keys stored events name, which are stored before
// the event; a destroyed one leaves its purge marker. So on a bucket of one replica an entry
// that is neither is lost (ErrKeyLost, a sealing.ErrKeyUnreadable), not an erasure: before, it
// was ErrNoKey, which the read models read as «slettet» without a word. Ensure, for a new
// person, still finds none.
func TestKeyStore_KeyUnknown(t *testing.T) {
	s, _ := openStore(t, nil)
	ks := openKeys(t, s, storetest.NewMaster(t))
	for range 2 { // the second answer comes from memory
		_, err := ks.Key(context.Background(), personKey("nobody"))
		if !errors.Is(err, eventstore.ErrKeyLost) || !errors.Is(err, sealing.ErrKeyUnreadable) || errors.Is(err, sealing.ErrNoKey) {
			t.Fatalf("Key of an entry neither stored nor destroyed = %v, want ErrKeyLost (unreadable), not ErrNoKey (erased)", err)
		}
	}
	if _, err := ks.Key(context.Background(), "not.a.key"); !errors.Is(err, eventstore.ErrInvalid) {
		t.Fatalf("Key of a malformed person key = %v, want ErrInvalid", err)
	}
	if ks.Len() != 0 {
		t.Fatalf("Len = %d after a miss, want 0", ks.Len())
	}
	if _, err := ks.Ensure(context.Background(), personKey("nobody")); err != nil {
		t.Fatalf("Ensure for a new person: %v", err)
	}
	if _, err := ks.Key(context.Background(), personKey("nobody")); err != nil {
		t.Fatalf("Key once the entry is stored: %v", err)
	}
}

func TestKeyStore_Destroy(t *testing.T) {
	s, _ := openStore(t, nil)
	master := storetest.NewMaster(t)
	ks := openKeys(t, s, master)
	ctx := context.Background()
	p, keep := personKey("erased"), personKey("kept")
	if _, err := ks.Ensure(ctx, p); err != nil {
		t.Fatal(err)
	}
	kept, err := ks.Ensure(ctx, keep)
	if err != nil {
		t.Fatal(err)
	}

	if err := ks.Destroy(ctx, p); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if _, err := ks.Key(ctx, p); !errors.Is(err, eventstore.ErrNoKey) || !errors.Is(err, eventstore.ErrKeyDestroyed) {
		t.Fatalf("Key after Destroy = %v, want ErrKeyDestroyed (an ErrNoKey)", err)
	}
	if _, err := ks.Ensure(ctx, p); !errors.Is(err, eventstore.ErrKeyDestroyed) {
		t.Fatalf("Ensure after Destroy = %v, want ErrKeyDestroyed", err)
	}
	if err := ks.Destroy(ctx, p); err != nil {
		t.Fatalf("second Destroy: %v", err)
	}
	if n := ks.Len(); n != 1 {
		t.Fatalf("Len = %d after Destroy, want 1", n)
	}
	// The other person's key is untouched.
	got, err := ks.Key(ctx, keep)
	if err != nil {
		t.Fatal(err)
	}
	sameKey(t, keep, kept, got)

	// A person who never had a key: Destroy leaves a tombstone, and no key is made later.
	never := personKey("never")
	if err := ks.Destroy(ctx, never); err != nil {
		t.Fatalf("Destroy of a person without a key: %v", err)
	}
	if _, err := ks.Ensure(ctx, never); !errors.Is(err, eventstore.ErrKeyDestroyed) {
		t.Fatalf("Ensure after Destroy of a person without a key = %v, want ErrKeyDestroyed", err)
	}

	// A key store opened later knows the tombstones from the bucket.
	ks2 := openKeys(t, s, master)
	if n := ks2.Len(); n != 1 {
		t.Fatalf("a later key store holds %d keys, want 1", n)
	}
	for _, person := range []string{p, never} {
		if _, err := ks2.Key(ctx, person); !errors.Is(err, eventstore.ErrKeyDestroyed) {
			t.Fatalf("later key store: Key of a destroyed person = %v, want ErrKeyDestroyed", err)
		}
		if _, err := ks2.Ensure(ctx, person); !errors.Is(err, eventstore.ErrKeyDestroyed) {
			t.Fatalf("later key store: Ensure of a destroyed person = %v, want ErrKeyDestroyed", err)
		}
	}
}

// Two nird (two key stores on one stream) making a key for the same persons at once agree on
// one key per person.
func TestKeyStore_EnsureConcurrent(t *testing.T) {
	s, _ := openStore(t, nil)
	master := storetest.NewMaster(t)
	a, b := openKeys(t, s, master), openKeys(t, s, master)
	ctx := context.Background()
	const persons = 30
	keys := [2][persons]*sealing.Key{}
	var wg sync.WaitGroup
	errs := make(chan error, 2*persons)
	for i := range persons {
		p := personKey(fmt.Sprint("race", i))
		for j, ks := range []*eventstore.KeyStore{a, b} {
			wg.Go(func() {
				k, err := ks.Ensure(ctx, p)
				if err != nil {
					errs <- err
					return
				}
				keys[j][i] = k
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Ensure: %v", err)
	}
	for i := range persons {
		p := personKey(fmt.Sprint("race", i))
		sameKey(t, p, keys[0][i], keys[1][i])
		sameKey(t, p, keys[1][i], keys[0][i])
	}
	for _, ks := range []*eventstore.KeyStore{a, b} {
		eventually(t, eventualTimeout, "both key stores hold every key", func() bool { return ks.Len() == persons })
	}
}

// A key store opened later loads the keys made before (the watch's initial values), learns
// of keys and destroys made by another after it opened, and fetches a key its watch has not
// brought yet.
func TestKeyStore_SecondStoreSeesFirst(t *testing.T) {
	s, _ := openStore(t, nil)
	master := storetest.NewMaster(t)
	first := openKeys(t, s, master)
	ctx := context.Background()
	const persons = 20
	made := map[string]*sealing.Key{}
	for i := range persons {
		p := personKey(fmt.Sprint("early", i))
		k, err := first.Ensure(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		made[p] = k
	}

	later := openKeys(t, s, master)
	if n := later.Len(); n != persons {
		t.Fatalf("the later key store loaded %d keys, want %d", n, persons)
	}
	for p, k := range made {
		got, err := later.Key(ctx, p)
		if err != nil {
			t.Fatalf("later Key: %v", err)
		}
		sameKey(t, p, k, got)
	}

	// A key made after: found at once (from the leader if the watch lags), then watched.
	fresh := personKey("fresh")
	k, err := first.Ensure(ctx, fresh)
	if err != nil {
		t.Fatal(err)
	}
	got, err := later.Key(ctx, fresh)
	if err != nil {
		t.Fatalf("Key of a key made by another key store: %v", err)
	}
	sameKey(t, fresh, k, got)
	eventually(t, eventualTimeout, "the later key store holds the fresh key", func() bool { return later.Len() == persons+1 })

	// A destroy by the first is seen by the later one.
	var gone string
	for p := range made {
		gone = p
		break
	}
	if err := first.Destroy(ctx, gone); err != nil {
		t.Fatal(err)
	}
	eventually(t, eventualTimeout, "the later key store drops the destroyed key", func() bool {
		_, err := later.Key(ctx, gone)
		return errors.Is(err, eventstore.ErrKeyDestroyed) && later.Len() == persons
	})
}

// Destroy overwrites the wrapped key in the stream's files: its bytes are in the JetStream
// store before and nowhere in it after (SecureDeleteMsg), while another person's stay.
func TestKeyStore_DestroyErasesBytesOnDisk(t *testing.T) {
	s, srv := openStore(t, nil)
	ks := openKeys(t, s, storetest.NewMaster(t))
	ctx := context.Background()
	p, keep := personKey("shredded"), personKey("kept")
	for _, person := range []string{p, keep} {
		if _, err := ks.Ensure(ctx, person); err != nil {
			t.Fatal(err)
		}
	}
	wrapped, kept := storetest.StoredKey(t, s, p), storetest.StoredKey(t, s, keep)
	if len(wrapped) < 40 || len(kept) < 40 {
		t.Fatalf("wrapped keys of %d and %d bytes; too short to search for", len(wrapped), len(kept))
	}
	dir := srv.StoreDir()
	if f := filesHolding(t, dir, wrapped); len(f) == 0 {
		t.Fatalf("the wrapped key is in no file under %s before Destroy: the test would prove nothing", dir)
	}

	if err := ks.Destroy(ctx, p); err != nil {
		t.Fatal(err)
	}
	if f := filesHolding(t, dir, wrapped); len(f) != 0 {
		t.Fatalf("the destroyed wrapped key is still on disk in %v", f)
	}
	if f := filesHolding(t, dir, kept); len(f) == 0 {
		t.Fatal("another person's wrapped key is gone from disk too")
	}
}

// A plain delete marker (someone ran nats kv del) already hides the key; Destroy makes it a
// purge marker, and the person gets no new key.
func TestKeyStore_DestroyOverDeleteMarker(t *testing.T) {
	s, _ := openStore(t, nil)
	ks := openKeys(t, s, storetest.NewMaster(t))
	ctx := context.Background()
	p := personKey("deleted")
	if _, err := ks.Ensure(ctx, p); err != nil {
		t.Fatal(err)
	}
	kv := storetest.KeyBucket(t, s)
	if err := kv.Delete(ctx, p); err != nil {
		t.Fatal(err)
	}
	eventually(t, eventualTimeout, "the watch drops the deleted key", func() bool { return ks.Len() == 0 })
	if err := ks.Destroy(ctx, p); err != nil {
		t.Fatalf("Destroy over a delete marker: %v", err)
	}
	if _, err := ks.Ensure(ctx, p); !errors.Is(err, eventstore.ErrKeyDestroyed) {
		t.Fatalf("Ensure = %v, want ErrKeyDestroyed", err)
	}
	e, err := kv.History(ctx, p)
	if err != nil || len(e) != 1 || e[0].Operation() != jetstream.KeyValuePurge {
		t.Fatalf("the entry is not one purge marker: %v, %v", e, err)
	}
}

// A Destroy on one nird while another makes the same person's first key: whichever wins, the
// person ends with a purge marker and no key, on the server and in both key stores.
func TestKeyStore_DestroyRacesEnsure(t *testing.T) {
	s, _ := openStore(t, nil)
	master := storetest.NewMaster(t)
	a, b := openKeys(t, s, master), openKeys(t, s, master)
	ctx := context.Background()
	kv := storetest.KeyBucket(t, s)
	const persons = 20
	var wg sync.WaitGroup
	for i := range persons {
		p := personKey(fmt.Sprint("contested", i))
		wg.Go(func() {
			if err := a.Destroy(ctx, p); err != nil {
				t.Errorf("Destroy: %v", err)
			}
		})
		wg.Go(func() {
			if _, err := b.Ensure(ctx, p); err != nil && !errors.Is(err, eventstore.ErrKeyDestroyed) {
				t.Errorf("Ensure: %v", err)
			}
		})
	}
	wg.Wait()
	for i := range persons {
		p := personKey(fmt.Sprint("contested", i))
		// An Ensure that won made a key, which the Destroy then erased: no key is left.
		e, err := kv.History(ctx, p)
		if err != nil || len(e) != 1 || e[0].Operation() != jetstream.KeyValuePurge {
			t.Fatalf("person %d: the entry is not one purge marker: %v, %v", i, e, err)
		}
		for _, ks := range []*eventstore.KeyStore{a, b} {
			eventually(t, eventualTimeout, "a destroyed key everywhere", func() bool {
				_, err := ks.Key(ctx, p)
				return errors.Is(err, eventstore.ErrKeyDestroyed)
			})
		}
	}
}

func TestKeyStore_WrongMaster(t *testing.T) {
	s, _ := openStore(t, nil)
	// An empty bucket opens with any master key.
	ks := openKeys(t, s, storetest.NewMaster(t))
	if _, err := ks.Ensure(context.Background(), personKey("a")); err != nil {
		t.Fatal(err)
	}
	k, err := s.OpenKeyStore(context.Background(), storetest.NewMaster(t))
	if !errors.Is(err, eventstore.ErrMasterKey) {
		if k != nil {
			_ = k.Close()
		}
		t.Fatalf("OpenKeyStore with another master key = %v, want ErrMasterKey", err)
	}
}

func TestKeyStore_BucketConfig(t *testing.T) {
	s, _ := openStore(t, nil)
	openKeys(t, s, storetest.NewMaster(t))
	js, err := jetstream.New(s.Conn())
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(context.Background(), "KV_"+eventstore.KeyBucket)
	if err != nil {
		t.Fatal(err)
	}
	c := st.CachedInfo().Config
	switch {
	case c.DenyDelete:
		t.Error("the key bucket denies message deletes: Destroy could not overwrite a key")
	case c.DenyPurge || !c.AllowRollup:
		t.Error("the key bucket refuses purge markers: a destroyed key would leave no tombstone")
	case c.Replicas != 1:
		t.Errorf("replicas %d, want the store's 1", c.Replicas)
	case c.MaxMsgsPerSubject != 1 || c.Storage != jetstream.FileStorage || !c.AllowDirect || c.Description == "":
		t.Errorf("not a key-value bucket of history 1 on file storage: %+v", c)
	}
	// The client library binds to it as a bucket.
	kv, err := js.KeyValue(context.Background(), eventstore.KeyBucket)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := kv.Status(context.Background()); err != nil || st.History() != 1 {
		t.Fatalf("bucket status = %v, %v", st, err)
	}
}

// A bucket made elsewhere with the client library's defaults denies message deletes, which
// the server will not undo: OpenKeyStore refuses it and says why.
func TestKeyStore_RefusesDenyDeleteBucket(t *testing.T) {
	s, _ := openStore(t, nil)
	js, err := jetstream.New(s.Conn())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: eventstore.KeyBucket}); err != nil {
		t.Fatal(err)
	}
	k, err := s.OpenKeyStore(context.Background(), storetest.NewMaster(t))
	if err == nil {
		_ = k.Close()
		t.Fatal("OpenKeyStore accepted a bucket that denies message deletes")
	}
	if msg := err.Error(); !strings.Contains(msg, eventstore.KeyBucket) || !strings.Contains(msg, "deny_delete") {
		t.Fatalf("error does not name the bucket and the setting: %v", err)
	}
}

// nird's own connection on the embedded server (StorePermissions) may make, read and
// destroy data keys.
func TestKeyStore_EmbeddedPermissions(t *testing.T) {
	s, err := eventstore.Open(context.Background(), eventstore.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	master := storetest.NewMaster(t)
	ks := openKeys(t, s, master)
	ctx := context.Background()
	p := personKey("embedded")
	if _, err := ks.Ensure(ctx, p); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	if err := ks.Destroy(ctx, p); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if _, err := ks.Ensure(ctx, p); !errors.Is(err, eventstore.ErrKeyDestroyed) {
		t.Fatalf("Ensure after Destroy = %v", err)
	}
	if ks2 := openKeys(t, s, master); ks2.Len() != 0 {
		t.Fatalf("Len = %d, want 0", ks2.Len())
	}
}

// nird's own connection on the embedded server may not purge the data keys' stream, whose
// configuration allows purges (KeyValuePurge): only StorePermissions' deny stops a purge
// that would destroy every person's data key at once, erasing the register. Found by
// mutation testing on 2026-12-07: the deny could be dropped without a test failing.
func TestKeyStore_EmbeddedMayNotPurge(t *testing.T) {
	s, err := eventstore.Open(context.Background(), eventstore.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	master := storetest.NewMaster(t)
	ks := openKeys(t, s, master)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := ks.Ensure(ctx, personKey("kept")); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	js, err := jetstream.New(s.Conn())
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, "KV_"+eventstore.KeyBucket)
	if err != nil {
		t.Fatal(err)
	}
	// Refused, the request is never answered: its wait is the test's.
	pctx, pcancel := context.WithTimeout(ctx, time.Second)
	defer pcancel()
	if err := st.Purge(pctx); err == nil {
		t.Error("the store's own connection purged the data keys' stream")
	}
	if n := openKeys(t, s, master).Len(); n != 1 {
		t.Fatalf("%d data keys after the refused purge, want 1", n)
	}
}

// Many readers at once while keys are made and destroyed (run with -race).
func TestKeyStore_ConcurrentUse(t *testing.T) {
	s, _ := openStore(t, nil)
	ks := openKeys(t, s, storetest.NewMaster(t))
	ctx := context.Background()
	const persons = 10
	for i := range persons {
		if _, err := ks.Ensure(ctx, personKey(fmt.Sprint("c", i))); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				p := personKey(fmt.Sprint("c", (g+i)%persons))
				if _, err := ks.Key(ctx, p); err != nil && !errors.Is(err, eventstore.ErrKeyDestroyed) {
					t.Errorf("Key: %v", err)
					return
				}
			}
		})
	}
	for i := range persons / 2 {
		if err := ks.Destroy(ctx, personKey(fmt.Sprint("c", i))); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if n := ks.Len(); n != persons-persons/2 {
		t.Fatalf("Len = %d, want %d", n, persons-persons/2)
	}
}

func TestKeyStore_Close(t *testing.T) {
	s, _ := openStore(t, nil)
	ks := openKeys(t, s, storetest.NewMaster(t))
	if err := ks.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ks.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := ks.Key(context.Background(), personKey("x")); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("Key after Close = %v, want ErrClosed", err)
	}
	if _, err := ks.Ensure(context.Background(), personKey("x")); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("Ensure after Close = %v, want ErrClosed", err)
	}
}

// TestKeyStore_TakeGiversUpLeaveNoBatches: Take with no key made ahead makes a batch of keys
// on the caller's context, an atomic batch whose publish sends its messages without looking
// at the context and then not the commit once the context has ended
// (TestStore_GroupCommit_LoneCallersLeaveNoBatches): every such Take left a batch open on
// the key stream until the server's batch timeout, and at most 50 are kept open on a
// stream, so callers ending their requests had every other caller's keys refused, and no
// new person could be registered. Found on 2026-12-07 in a review of 7cf0bd4.
func TestKeyStore_TakeGiversUpLeaveNoBatches(t *testing.T) {
	s, _ := openStore(t, nil)
	k := openKeys(t, s, storetest.NewMaster(t))
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	for i := range 60 {
		// A key, or the context's error: the caller stopped waiting.
		if _, _, err := k.Take(ended); err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("take %d with its context ended: %v", i, err)
		}
	}
	if _, _, err := k.Take(context.Background()); err != nil {
		t.Fatalf("a take after callers gave up: %v", err)
	}
}
