package backup_test

import (
	"context"
	"errors"
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// TestRestoreSetsTheBackdatedMarkOfAnEmptyTarget: a restore into an empty target stream ends
// with the backdated mark (eventstore.MetaBackdatedThrough) through exactly the sequences it
// restored, whatever mark the empty stream was created with: the mark describes the stream's
// messages, and an empty stream has none for it to describe. A stream pre-created with the
// metadata of another (nats stream add from a copied configuration, or a forged entry) kept
// a larger mark after a sound restore, because the mark only rises; every later --until
// restore of the register's backups was then refused as falling among backdated sequences.
//
// Found on 2026-12-07 (review of the backup fixes).
func TestRestoreSetsTheBackdatedMarkOfAnEmptyTarget(t *testing.T) {
	ctx := context.Background()
	orig := openStore(t)
	appendN(t, orig, 1, 10) // sequences 1-10
	b1 := filepath.Join(t.TempDir(), "b1")
	if _, err := backup.Write(ctx, orig, b1, backup.Options{}); err != nil {
		t.Fatal(err)
	}
	md := maps.Clone(openBackup(t, b1).Manifest.Metadata)
	md[eventstore.MetaBackdatedThrough] = "1000"
	dst, err := eventstore.Open(ctx, eventstore.Config{Dir: filepath.Join(t.TempDir(), "js"), Metadata: md})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if last, err := backup.Restore(ctx, dst, []*backup.Backup{openBackup(t, b1)}, backup.Until{}, nil); err != nil || last != 10 {
		t.Fatalf("restore into an empty target created with %s=1000: %d, %v; want 10", eventstore.MetaBackdatedThrough, last, err)
	}
	id, err := dst.CurrentIdentity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := id.Metadata[eventstore.MetaBackdatedThrough]; got != "10" {
		t.Errorf("after the restore the target's %s is %q, want \"10\" (the restored sequences)", eventstore.MetaBackdatedThrough, got)
	}

	// What the forged mark did to the register's later backups: an --until time after the
	// restore was refused as falling among backdated sequences.
	time.Sleep(20 * time.Millisecond)
	afterRestore := time.Now()
	time.Sleep(20 * time.Millisecond)
	appendN(t, dst, 2, 5) // sequences 11-15
	b2 := filepath.Join(t.TempDir(), "b2")
	if _, err := backup.Write(ctx, dst, b2, backup.Options{}); err != nil {
		t.Fatal(err)
	}
	again := openStore(t)
	if last, err := backup.Restore(ctx, again, []*backup.Backup{openBackup(t, b2)}, backup.Until{Time: afterRestore}, nil); err != nil || last != 10 {
		t.Errorf("restore --until after the first restore, of the restored register's backup: %d, %v; want 10", last, err)
	}
}
