//go:build unix

package smallfile

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestRead: a regular file is read; a FIFO, a directory, a device behind a link and a file
// larger than the limit are refused at once, naming the path; a missing file is
// os.ErrNotExist.
func TestRead(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	if err := os.WriteFile(good, []byte("abc"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := Read(good, 3); err != nil || string(b) != "abc" {
		t.Fatalf("Read = %q, %v", b, err)
	}
	if _, err := Read(good, 2); !errors.Is(err, ErrTooLarge) {
		t.Errorf("a file over the limit: %v, want ErrTooLarge", err)
	}
	if _, err := Read(filepath.Join(dir, "missing"), 10); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: %v, want os.ErrNotExist", err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	zero := filepath.Join(dir, "zero")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{fifo, zero, dir} {
		done := make(chan error, 1)
		go func() { _, err := Read(path, 1<<20); done <- err }()
		select {
		case err := <-done:
			if !errors.Is(err, ErrNotRegular) {
				t.Errorf("Read(%s) = %v, want ErrNotRegular", path, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("Read(%s) blocks", path)
		}
	}
}

// TestRead_LargerThanItsSize: a file that holds more than its size says (a /proc file says
// 0 bytes; a file that grows after Stat) is refused past the limit, not read cut at it as if
// whole. A mutant reading at most limit bytes passed TestRead, whose files say their size.
func TestRead_LargerThanItsSize(t *testing.T) {
	const path = "/proc/self/status"
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != 0 {
		t.Skipf("no regular %s of size 0 here (%v)", path, err)
	}
	if b, err := Read(path, 16); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Read(%s, 16) = %d bytes, %v; want ErrTooLarge", path, len(b), err)
	}
	if b, err := Read(path, 1<<20); err != nil || len(b) <= 16 {
		t.Errorf("Read(%s, 1 MiB) = %d bytes, %v; want all of it", path, len(b), err)
	}
}
