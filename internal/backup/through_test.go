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

// TestBackupThroughBeyondTheEnd: nirctl backup --through N with N beyond the stream's last
// sequence (a typo, another register's sequence) waited for sequences that never came until
// its deadline. It is now refused at once, naming the stream's last sequence; a bound at
// the last sequence still copies through it.
func TestBackupThroughBeyondTheEnd(t *testing.T) {
	src := openStore(t)
	appendN(t, src, 1, 5)
	// The deadline is only what the old code waited for: the refusal needs no time.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := backup.Write(ctx, src, filepath.Join(t.TempDir(), "b"), backup.Options{Through: 50})
	if err == nil || !errors.Is(err, backup.ErrThroughBeyondEnd) || !strings.Contains(err.Error(), "last sequence 5") || !strings.Contains(err.Error(), "--through 50") {
		t.Errorf("backup --through 50 of a stream of 5: %v; want ErrThroughBeyondEnd naming --through 50 and the last sequence 5", err)
	}
	if ctx.Err() != nil {
		t.Errorf("backup --through 50 of a stream of 5 waited until its deadline")
	}
	m, err := backup.Write(context.Background(), src, filepath.Join(t.TempDir(), "b"), backup.Options{Through: 5})
	if err != nil || m.LastSeq != 5 {
		t.Errorf("backup --through 5 of a stream of 5: last %d, %v; want 5", m.LastSeq, err)
	}
}

// TestBackupThroughBelowTheEnd: nirctl backup --through N copies the stream through N and no
// further, and its restore ends there: every message after N is the next backup's. Found by
// mutation testing on 2026-12-07: a backup that ignored --through and copied to the stream's
// end passed every test (TestBackupThroughBeyondTheEnd bounds it at the last sequence).
func TestBackupThroughBelowTheEnd(t *testing.T) {
	ctx := context.Background()
	src := openStore(t)
	appendN(t, src, 1, 9)
	dir := filepath.Join(t.TempDir(), "b")
	m, err := backup.Write(ctx, src, dir, backup.Options{Through: 6})
	if err != nil || m.FirstSeq != 1 || m.LastSeq != 6 || m.Count != 6 {
		t.Fatalf("backup --through 6 of a stream of 9: sequences %d to %d (%d), %v; want 1 to 6 (6)", m.FirstSeq, m.LastSeq, m.Count, err)
	}
	dst := openStore(t)
	if last, err := backup.Restore(ctx, dst, []*backup.Backup{openBackup(t, dir)}, backup.Until{}, nil); err != nil || last != 6 {
		t.Errorf("restore of the backup through 6: through %d, %v; want 6", last, err)
	}
	if got := all(t, dst); len(got) != 6 {
		t.Errorf("the restored stream holds %d messages, want 6", len(got))
	}
}
