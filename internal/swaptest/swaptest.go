// Package swaptest plays, in tests, a local process that keeps replacing a file nird reads:
// for a check of a file's mode that must be the check of the file read, not of whatever its
// path names a moment later.
package swaptest

import (
	"os"
	"path/filepath"
	"testing"
)

// Version is one content of the file at a path, with its mode.
type Version struct {
	Data []byte
	Mode os.FileMode
}

// Swap puts each version in turn at path, by rename, until the test ends, as fast as it can.
func Swap(t testing.TB, path string, versions ...Version) {
	t.Helper()
	put := func(i int, v Version) error {
		tmp := filepath.Join(filepath.Dir(path), ".swaptest-"+string(rune('a'+i)))
		err := os.WriteFile(tmp, v.Data, 0o600)
		if err == nil {
			err = os.Chmod(tmp, v.Mode) // not by WriteFile, which the umask cuts
		}
		if err == nil {
			err = os.Rename(tmp, path)
		}
		return err
	}
	if err := put(0, versions[0]); err != nil {
		t.Fatal(err)
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			for i, v := range versions {
				select {
				case <-stop:
					return
				default:
				}
				if err := put(i, v); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
}
