package datadir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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

// TestLock_NotARegularFile: a lock file that another local process replaced by a symbolic
// link, or by a FIFO, is refused, naming it: through a link, Lock created or opened for
// writing a file of the link's choosing outside the data directory (with nird's rights), and
// it opened a FIFO or a device node for writing.
func TestLock_NotARegularFile(t *testing.T) {
	for name, plant := range map[string]func(path, outside string) error{
		"DanglingLink": func(path, outside string) error { return os.Symlink(filepath.Join(outside, "made"), path) },
		"LinkToAFile": func(path, outside string) error {
			target := filepath.Join(outside, "theirs")
			if err := os.WriteFile(target, nil, 0o600); err != nil {
				return err
			}
			return os.Symlink(target, path)
		},
		"FIFO": func(path, _ string) error { return syscall.Mkfifo(path, 0o600) },
	} {
		t.Run(name, func(t *testing.T) {
			dir, outside := t.TempDir(), t.TempDir()
			path := filepath.Join(dir, LockFile)
			if err := plant(path, outside); err != nil {
				t.Fatal(err)
			}
			unlock, err := Lock(dir)
			if _, err := os.Lstat(filepath.Join(outside, "made")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("Lock made a file outside the data directory through the link (%v)", err)
			}
			if err == nil {
				unlock()
				t.Fatalf("Lock over a %s = nil, want refused", name)
			}
			if errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), path) {
				t.Errorf("Lock over a %s = %v, want an error naming %s, not ErrInUse", name, err, path)
			}
		})
	}
}
