package eventstore_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/natstest"
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
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string, s *eventstore.Store, persons []string)
		// unreadable is the person whose key reads as damaged, -1 none.
		unreadable int
		logged     string
	}{
		{"CheckFlipped", func(t *testing.T, dir string, s *eventstore.Store, _ []string) {
			wrapped := wrappedKey(t, s, "_master")
			s.Close()
			natstest.FlipInBlock(t, dir, "KV_"+eventstore.KeyBucket, wrapped)
		}, -1, "master check is damaged on disk"},
		{"OldestUnopenable", func(t *testing.T, dir string, s *eventstore.Store, _ []string) {
			s.Close()
		}, 0, "does not open with the master key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := filepath.Join(t.TempDir(), "js")
			cfg := eventstore.Config{Dir: dir, RequestTimeout: time.Second}
			s, err := eventstore.Open(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			master := newMaster(t)
			ks, err := s.OpenKeyStore(ctx, master)
			if err != nil {
				t.Fatal(err)
			}
			persons := []string{personKey("a"), personKey("b"), personKey("c")}
			if tc.name == "OldestUnopenable" {
				if _, err := keyBucket(t, s).Create(ctx, persons[0], []byte("not a wrapped key")); err != nil {
					t.Fatal(err)
				}
			}
			for _, p := range persons[1:] {
				if _, err := ks.Ensure(ctx, p); err != nil {
					t.Fatal(err)
				}
			}
			if tc.name == "CheckFlipped" {
				if _, err := ks.Ensure(ctx, persons[0]); err != nil {
					t.Fatal(err)
				}
			}
			_ = ks.Close()
			tc.damage(t, dir, s, persons)

			var logs lockedBuffer
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			s, err = eventstore.Open(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := s.OpenKeyStore(ctx, newMaster(t)); !errors.Is(err, eventstore.ErrMasterKey) {
				t.Errorf("OpenKeyStore with another master key: %v, want ErrMasterKey", err)
			}
			ks, err = s.OpenKeyStore(ctx, master)
			if err != nil {
				t.Fatalf("OpenKeyStore with the right master key: %v", err)
			}
			defer ks.Close()
			for i, p := range persons {
				_, err := ks.Key(ctx, p)
				if i == tc.unreadable {
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
