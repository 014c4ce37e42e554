package eventstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/storetest"
	"github.com/introreg/nir/sealing"
)

// TestKeyStore_MasterWitnessDamaged: one damaged entry among the master key's witnesses (the
// bucket's master check and its oldest data keys) does not stop nird from opening the key
// store with the right master key, and a wrong master key is still refused.
//
//   - CheckFlipped: a byte of the master check flipped on disk. Before, the start failed on
//     a timeout (the load's stall spent the request timeout the check then needed).
//   - OldestUnopenable: the bucket's oldest data key does not open (as ImportKeys stores a
//     key a backup held damaged). Before, ErrMasterKey: "the data key of person ... (the
//     bucket's oldest) does not open", and nird refused to start.
func TestKeyStore_MasterWitnessDamaged(t *testing.T) {
	persons := []string{personKey("a"), personKey("b"), personKey("c")}
	for _, tc := range []struct {
		name     string
		persons  []string // given keys by Ensure
		damaged  string   // the entry flipped on disk
		prepare  func(t *testing.T, s *eventstore.Store)
		unopened int // the person whose key reads as damaged, -1 none
		logged   string
	}{
		{"CheckFlipped", persons, "_master", nil, -1, "master check is damaged on disk"},
		{"OldestUnopenable", persons[1:], "", func(t *testing.T, s *eventstore.Store) {
			if _, err := storetest.KeyBucket(t, s).Create(context.Background(), persons[0], []byte("not a wrapped key")); err != nil {
				t.Fatal(err)
			}
		}, 0, "does not open with the master key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			var prepare func(*eventstore.Store)
			if tc.prepare != nil {
				prepare = func(s *eventstore.Store) { tc.prepare(t, s) }
			}
			s, _, master, logs := damagedKeys(t, tc.persons, tc.damaged, prepare)
			if _, err := s.OpenKeyStore(ctx, storetest.NewMaster(t)); !errors.Is(err, eventstore.ErrMasterKey) {
				t.Errorf("OpenKeyStore with another master key: %v, want ErrMasterKey", err)
			}
			ks, err := s.OpenKeyStore(ctx, master)
			if err != nil {
				t.Fatalf("OpenKeyStore with the right master key: %v", err)
			}
			defer ks.Close()
			for i, p := range persons {
				_, err := ks.Key(ctx, p)
				if i == tc.unopened {
					if !errors.Is(err, sealing.ErrKeyUnreadable) {
						t.Errorf("Key of the damaged person: %v, want ErrKeyUnreadable", err)
					}
				} else if err != nil {
					t.Errorf("Key of person %d: %v", i, err)
				}
			}
			if !strings.Contains(logs.String(), tc.logged) {
				t.Errorf("log lacks %q:\n%s", tc.logged, logs.String())
			}
		})
	}
}
