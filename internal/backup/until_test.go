package backup_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/introreg/nir/internal/backup"
)

// TestRestoreUntilOnARestoredRegister: --until TIME restores what the stream had received by
// then. A register restored once (onto a new machine) holds its whole earlier history with
// that restore's receive times, and its later backups carry them. Undoing a bad import made
// before the move with --until restored sequences 1 to 0 and reported success; a time after
// the move brought the bad import back. A time among the backdated sequences is now refused,
// naming --to-seq, with nothing written; a time after them still cuts by receive time.
func TestRestoreUntilOnARestoredRegister(t *testing.T) {
	ctx := context.Background()
	orig := openStore(t)
	for i := range 4 {
		appendN(t, orig, i, 5) // sequences 1-20: the register's good history
	}
	time.Sleep(20 * time.Millisecond)
	beforeBadImport := time.Now()
	time.Sleep(20 * time.Millisecond)
	appendN(t, orig, 7, 10) // sequences 21-30: the bad import
	b1 := filepath.Join(t.TempDir(), "b1")
	if _, err := backup.Write(ctx, orig, b1, backup.Options{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	moved := openStore(t) // the register moves to a new machine: restored whole
	if _, err := backup.Restore(ctx, moved, []*backup.Backup{openBackup(t, b1)}, backup.Until{}, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	afterMove := time.Now()
	time.Sleep(20 * time.Millisecond)
	appendN(t, moved, 8, 3) // the register goes on: 31-33
	b2 := filepath.Join(t.TempDir(), "b2")
	if _, err := backup.Write(ctx, moved, b2, backup.Options{}); err != nil {
		t.Fatal(err)
	}

	dst := openStore(t)
	last, err := backup.Restore(ctx, dst, []*backup.Backup{openBackup(t, b2)}, backup.Until{Time: beforeBadImport}, nil)
	if err == nil || !errors.Is(err, backup.ErrUntilBackdated) || !strings.Contains(err.Error(), "--to-seq") {
		t.Errorf("restore --until before the bad import, of a register restored since: stored 1 to %d, %v; want ErrUntilBackdated naming --to-seq", last, err)
	}
	if n, _ := dst.LastSeq(ctx); n != 0 {
		t.Errorf("the refused restore stored %d events", n)
	}
	// The way on it names: --to-seq.
	if last, err := backup.Restore(ctx, dst, []*backup.Backup{openBackup(t, b2)}, backup.Until{Seq: 20}, nil); err != nil || last != 20 {
		t.Errorf("restore --to-seq 20: %d, %v; want 20", last, err)
	}
	// A time after the backdated sequences cuts by receive time as before.
	dst2 := openStore(t)
	if last, err := backup.Restore(ctx, dst2, []*backup.Backup{openBackup(t, b2)}, backup.Until{Time: afterMove}, nil); err != nil || last != 30 {
		t.Errorf("restore --until after the move: %d, %v; want 30", last, err)
	}
}
