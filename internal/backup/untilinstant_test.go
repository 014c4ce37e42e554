package backup_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/introreg/nir/internal/backup"
)

// TestRestore_UntilKeepsTheMessageReceivedAtThatInstant: --until restores what the stream had
// received by that time (README, nirctl restore), so a message received exactly at it is kept
// and one received a nanosecond after it is not. Found by mutation testing on 2026-12-07: a
// restore that left out the message received at the instant given passed every test (they
// give times between messages).
func TestRestore_UntilKeepsTheMessageReceivedAtThatInstant(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	appendN(t, s, 1, 5)
	dir := filepath.Join(t.TempDir(), "b")
	if _, err := backup.Write(ctx, s, dir, backup.Options{}); err != nil {
		t.Fatal(err)
	}
	msgs := all(t, s)
	at := msgs[2].Time // sequence 3
	if !msgs[1].Time.Before(at) || !at.Before(msgs[3].Time) {
		t.Fatalf("receive times not increasing: %v %v %v", msgs[1].Time, at, msgs[3].Time)
	}
	for _, tc := range []struct {
		until time.Time
		want  uint64
	}{
		{at, 3},
		{at.Add(-time.Nanosecond), 2},
	} {
		dst := openStore(t)
		last, err := backup.Restore(ctx, dst, []*backup.Backup{openBackup(t, dir)}, backup.Until{Time: tc.until}, nil)
		if err != nil || last != tc.want {
			t.Errorf("restore until %s (sequence 3 received at %s): through %d, %v; want through %d",
				tc.until.Format(time.RFC3339Nano), at.Format(time.RFC3339Nano), last, err, tc.want)
		}
	}
}
