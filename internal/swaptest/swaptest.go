// Package swaptest plays, in tests, a local process that keeps replacing a file nird reads:
// for a check of a file's mode that must be the check of the file read, not of whatever its
// path names a moment later.
package swaptest

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
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

// ConcurrentCreate runs 200 rounds of 4 starts at once that each load, or make, the key file
// name in a new directory with load: each must find no file (and make it), or a whole one,
// or be refused because another made it meanwhile (os.ErrExist), never read a key cut short;
// and the directory must hold the key alone after.
func ConcurrentCreate(t *testing.T, name string, load func(path string) error) {
	t.Helper()
	for range 200 {
		dir := t.TempDir()
		path := filepath.Join(dir, name)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				if err := load(path); err != nil && !errors.Is(err, os.ErrExist) {
					t.Errorf("a concurrent start: %v", err)
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 1 {
			t.Fatalf("%s holds %d files, want the key only", dir, len(entries))
		}
	}
}
