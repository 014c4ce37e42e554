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

// TestWriteNew: a new file is written whole, mode 0600 whatever the umask; a file or a link
// already at the path is refused and left as it was, and nothing is made where a link points.
func TestWriteNew(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key")
	if err := WriteNew(path, []byte("abc\n")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if b, _ := os.ReadFile(path); err != nil || string(b) != "abc\n" || fi.Mode().Perm() != 0o600 {
		t.Fatalf("WriteNew made %q, %v; want abc, mode 0600", b, fi)
	}
	if err := WriteNew(path, []byte("other\n")); err == nil {
		t.Error("WriteNew over an existing file succeeded")
	}
	if b, _ := os.ReadFile(path); string(b) != "abc\n" {
		t.Errorf("the existing file now holds %q", b)
	}
	target, link := filepath.Join(dir, "target"), filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := WriteNew(link, []byte("x")); err == nil {
		t.Error("WriteNew through a dangling link succeeded")
	}
	if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("WriteNew made the link's target (%v)", err)
	}
}
