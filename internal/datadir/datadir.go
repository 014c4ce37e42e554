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
// when it is killed. unlock releases it. A lock file that is not a regular file is refused:
// a symbolic link put in its place would have nird create, or open for writing, a file of
// the link's choosing outside the data directory, with nird's rights; a FIFO or a device
// node would be opened for writing.
func Lock(dir string) (unlock func(), err error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0o600)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("lock data directory: %s is a symbolic link, not nird's lock file; remove it", path)
	}
	if err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		if err == nil {
			err = fmt.Errorf("%s is not a regular file (%v), not nird's lock file; remove it", path, fi.Mode().Type())
		}
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
