package backup_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/backup"
	"github.com/introreg/nir/internal/storetest"
)

// TestRestoreRefusesAnOccupiedTargetBeforeWriting: restore promises to refuse a target that
// holds a register before it writes anything. It looked only at the event stream first: a
// target whose checkpoint stream held checkpoints got every event and data key stored, and
// then failed, and a second attempt was refused as not empty. A backup without checkpoints
// went further: the foreign checkpoints stayed and the restore succeeded. A data key left in
// the bucket was kept beside the restored ones. Each is now refused with nothing written.
func TestRestoreRefusesAnOccupiedTargetBeforeWriting(t *testing.T) {
	ctx := context.Background()
	orig := openStore(t)
	for i := range 3 {
		appendN(t, orig, i, 5)
	}
	withCP := filepath.Join(t.TempDir(), "with")
	noCP := filepath.Join(t.TempDir(), "without")
	if _, err := backup.Write(ctx, orig, noCP, backup.Options{}); err != nil {
		t.Fatal(err)
	}
	storetest.CheckpointThrough(t, orig, 15, nil)
	if _, err := backup.Write(ctx, orig, withCP, backup.Options{}); err != nil {
		t.Fatal(err)
	}
	if m := openBackup(t, noCP).Manifest; len(m.Checkpoints) != 0 {
		t.Fatalf("the backup made before the checkpoint carries %d checkpoints", len(m.Checkpoints))
	}
	for _, tc := range []struct {
		name, backup, held string
		occupy             func(*eventstore.Store) error
	}{
		{"checkpoints, backup with checkpoints", withCP, eventstore.CheckpointStreamName, func(s *eventstore.Store) error {
			_, err := s.ImportCheckpoints(ctx, [][]byte{[]byte("left over")})
			return err
		}},
		{"checkpoints, backup without", noCP, eventstore.CheckpointStreamName, func(s *eventstore.Store) error {
			_, err := s.ImportCheckpoints(ctx, [][]byte{[]byte("left over")})
			return err
		}},
		{"a data key", withCP, eventstore.KeyBucket, func(s *eventstore.Store) error {
			return s.ImportKeys(ctx, eventstore.KeyExport{Wrapped: map[string][]byte{personKey(99): []byte("foreign")}})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := openStore(t)
			if err := tc.occupy(dst); err != nil {
				t.Fatal(err)
			}
			_, err := backup.Restore(ctx, dst, []*backup.Backup{openBackup(t, tc.backup)}, backup.Until{}, nil)
			if !errors.Is(err, eventstore.ErrNotEmpty) || !strings.Contains(err.Error(), tc.held) {
				t.Errorf("restore into a target whose %s is not empty: %v; want ErrNotEmpty naming it", tc.held, err)
			}
			if n, _ := dst.LastSeq(ctx); n != 0 {
				t.Errorf("the refused restore stored %d events into the target: want nothing written", n)
			}
		})
	}
}
