// Package datadir guards nird's data directory: one process at a time may run the embedded
// JetStream server on it, be it nird or an offline tool (nirctl replay --store).
package datadir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// LockFile is the lock file nird keeps in its data directory.
const LockFile = "nird.lock"

// ErrInUse is returned by Lock when another process holds the data directory.
var ErrInUse = errors.New("datadir: in use by another process")

// Lock takes an exclusive lock on dir (creating its lock file), so that two processes never
// run the embedded JetStream server on the same store. The lock goes with the process, also
// when it is killed. unlock releases it.
func Lock(dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, LockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrInUse
		}
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	return func() { f.Close() }, nil
}
