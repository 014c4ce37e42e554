package datadir

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestLock: a second lock on a locked data directory is refused with ErrInUse at once (the
// lock is per open file, so a second open in one process conflicts as a second nird
// would); the lock file is nird's user's only; once unlocked, the directory can be locked
// again. cmd/nird's TestNird_DataDirectoryLocked checks the same with two processes, in
// seconds rather than milliseconds.
func TestLock(t *testing.T) {
	dir := t.TempDir()
	unlock, err := Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := Lock(dir); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrInUse) {
			t.Errorf("second Lock = %v, want ErrInUse", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("second Lock waits for the first instead of refusing")
	}
	fi, err := os.Stat(filepath.Join(dir, LockFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("lock file mode %04o, want 0600", fi.Mode().Perm())
	}
	unlock()
	again, err := Lock(dir)
	if err != nil {
		t.Fatalf("Lock after unlock = %v", err)
	}
	again()
	if _, err := Lock(filepath.Join(dir, "missing")); err == nil || errors.Is(err, ErrInUse) {
		t.Errorf("Lock of a missing directory = %v, want an error other than ErrInUse", err)
	}
}
