package eventstore_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/natstest"
	"github.com/introreg/nir/internal/storetest"
	"github.com/introreg/nir/sealing"
)

// TestKeyStore_DamagedEntry: a byte of one data key's entry flipped in the key bucket's block
// file while the store is closed (a failing disk), in the middle of the bucket and as its last
// message. The server answers the damaged record as no message, to the watch and to a get by
// subject alike, while its stream state still counts it (Msgs, and its subject's count): the
// watch's entries count it as pending (Delta), so the watch's marker of the initial values
// never comes. Before, OpenKeyStore failed after a request timeout ("no entry came"), and
// nird, which opens the key store at start, did not start with one damaged key entry
// anywhere in the bucket. Now the load ends at the stall with the entries that came, and says
// so in the error log; the other persons' keys are served; the damaged key is an error
// wrapping sealing.ErrKeyUnreadable (not ErrNoKey, which the read models read as an erasure,
// «slettet», with nothing logged, and the strict append path as a key not found yet), and is
// logged as damaged. The wait at start is up to two request timeouts.
//
// ExportKeys (nirctl backup) returns the other entries and names the damaged one in Damaged,
// within a request timeout or two. Before, with the damaged entry in the middle it returned
// the others and no error, the damaged key left out of the backup without a word; as the
// last entry, it failed with a timeout after 10 seconds (its read waited for a message it was
// never given).
func TestKeyStore_DamagedEntry(t *testing.T) {
	for _, tc := range []struct {
		name    string
		damaged int
	}{{"Middle", 1}, {"Last", 2}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			persons := []string{personKey("a"), personKey("b"), personKey("c")} // seqs 2-4, after the master check
			s, cfg, master, logs := damagedKeys(t, persons, persons[tc.damaged], nil)
			ks, err := s.OpenKeyStore(ctx, master)
			if err != nil {
				t.Fatalf("OpenKeyStore with one damaged entry: %v", err)
			}
			defer ks.Close()
			if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "fewer entries than its stream counts") {
				t.Errorf("the load that ended at the stall was not logged as an error:\n%s", logs.String())
			}
			if n := ks.Len(); n != 2 {
				t.Errorf("Len = %d, want 2 (the damaged entry is not held)", n)
			}
			for i, p := range persons {
				_, err := ks.Key(ctx, p)
				if i != tc.damaged {
					if err != nil {
						t.Errorf("Key of whole person %d: %v", i, err)
					}
					continue
				}
				if !errors.Is(err, sealing.ErrKeyUnreadable) || errors.Is(err, sealing.ErrNoKey) {
					t.Errorf("Key of the damaged entry: %v; want ErrKeyUnreadable, not ErrNoKey (read as erased)", err)
				}
				if _, err := ks.Ensure(ctx, p); !errors.Is(err, sealing.ErrKeyUnreadable) {
					t.Errorf("Ensure of the damaged entry: %v; want ErrKeyUnreadable", err)
				}
			}
			if !strings.Contains(logs.String(), "cannot be read back: the entry is damaged on disk") || !strings.Contains(logs.String(), "key_id="+persons[tc.damaged]) {
				t.Errorf("the damaged entry was not logged by its id:\n%s", logs.String())
			}

			start := time.Now()
			ex, err := s.ExportKeys(ctx)
			if took := time.Since(start); took > 3*cfg.RequestTimeout {
				t.Errorf("ExportKeys took %v; want at most about one request timeout (%v)", took, cfg.RequestTimeout)
			}
			if _, ok := ex.Wrapped[persons[tc.damaged]]; err != nil || ok || len(ex.Wrapped) != 3 {
				t.Errorf("ExportKeys: %d wrapped (damaged one held: %v), %v; want the master check and the 2 whole keys, and no error", len(ex.Wrapped), ok, err)
			}
			if !slices.Equal(ex.Damaged, []string{persons[tc.damaged]}) {
				t.Errorf("ExportKeys: damaged %v, want [%s]", ex.Damaged, persons[tc.damaged])
			}
		})
	}
}

// TestKeyStore_DestroyDamaged: erasing a person whose data key's entry is damaged on disk
// cannot overwrite it (the server refuses to delete the record, and a marker after it is not
// acknowledged). Destroy says so, wrapping sealing.ErrKeyUnreadable, at once. Before, it tried
// five times and said "the entry kept changing under 5 attempts; call Destroy again", and
// the erasure's caller was told to send it again, for ever.
func TestKeyStore_DestroyDamaged(t *testing.T) {
	ctx := context.Background()
	persons := []string{personKey("a"), personKey("b"), personKey("c")}
	s, _, master, _ := damagedKeys(t, persons, persons[1], nil)
	ks, err := s.OpenKeyStore(ctx, master)
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	err = ks.Destroy(ctx, persons[1])
	if !errors.Is(err, sealing.ErrKeyUnreadable) || !strings.Contains(err.Error(), "damaged on disk and cannot be overwritten") {
		t.Fatalf("Destroy of the damaged entry: %v; want ErrKeyUnreadable saying it cannot be overwritten", err)
	}
	if err := ks.Destroy(ctx, persons[2]); err != nil {
		t.Fatalf("Destroy of a whole entry: %v", err)
	}
}

// damagedKeys makes a store in a new directory (request timeout 1 s) and a key store with a
// data key for each of persons, after prepare (if not nil) has had the store; flips a byte
// of the bucket's entry damaged on disk (none if ""); and opens the store again, logging into logs. The
// store is closed when the test ends.
func damagedKeys(t *testing.T, persons []string, damaged string, prepare func(*eventstore.Store)) (s *eventstore.Store, cfg eventstore.Config, master *sealing.Key, logs *lockedBuffer) {
	t.Helper()
	ctx := setupCtx(t) // what is damaged is written whole: no short timeout for it
	dir := filepath.Join(t.TempDir(), "js")
	cfg = eventstore.Config{Dir: dir, RequestTimeout: time.Second}
	s, err := eventstore.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	master = storetest.NewMaster(t)
	ks, err := s.OpenKeyStore(ctx, master)
	if err != nil {
		t.Fatal(err)
	}
	if prepare != nil {
		prepare(s)
	}
	for _, p := range persons {
		if _, err := ks.Ensure(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	var wrapped []byte
	if damaged != "" {
		wrapped = storetest.StoredKey(t, s, damaged)
	}
	_ = ks.Close()
	s.Close()
	if damaged != "" {
		natstest.FlipInBlock(t, dir, "KV_"+eventstore.KeyBucket, wrapped)
	}
	s, logs = openLogged(t, cfg)
	return s, cfg, master, logs
}
