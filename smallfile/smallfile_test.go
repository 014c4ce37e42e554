//go:build unix

package smallfile

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
	path := writtenOnce(t, dir)
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
	toKey := filepath.Join(dir, "tokey")
	if err := os.Symlink(path, toKey); err != nil {
		t.Fatal(err)
	}
	if err := WriteNew(toKey, []byte("x")); err == nil {
		t.Error("WriteNew through a link to an existing file succeeded")
	}
	if b, _ := os.ReadFile(path); string(b) != "abc\n" {
		t.Errorf("the file a link points to now holds %q", b)
	}
	if err := WriteNew(filepath.Join(dir, "missing", "key"), []byte("x")); err == nil {
		t.Error("WriteNew into a missing directory succeeded")
	}
	// Nothing else: no temporary file is left, after a success or a refusal.
	assertDir(t, dir, "key", "link", "tokey")
}

// assertDir fails t unless dir holds exactly the names want.
func assertDir(t *testing.T, dir string, want ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("%s holds %q, want %q", dir, names, want)
	}
}

// childEnv, set in a child process of a test (the test binary run again), names the file the
// child writes with WriteNew.
const childEnv = "SMALLFILE_TEST_CHILD_PATH"

// startChild runs the test named test in a child process that writes path, with extra as its
// file descriptor 3 (when not nil).
func startChild(t *testing.T, test, path string, extra *os.File) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+path)
	if extra != nil {
		cmd.ExtraFiles = []*os.File{extra}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("child output:\n%s", out.Bytes())
		}
	})
	return cmd
}

// TestWriteNew_Killed: a process killed (kill -9) while it writes a key leaves nothing at
// the key's name, and a new start makes the key whole. WriteNew wrote straight to the name,
// and a crash left part of the key there, which every start after it refused.
func TestWriteNew_Killed(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	if path := os.Getenv(childEnv); path != "" {
		ready := os.NewFile(3, "ready")
		testHookBeforeLink = func() {
			ready.Write([]byte{1})
			time.Sleep(time.Hour) // until killed
		}
		err := WriteNew(path, data)
		t.Fatalf("WriteNew returned (%v) without pausing before the link", err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "key")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := startChild(t, "TestWriteNew_Killed", path, w)
	w.Close()
	paused := make(chan error, 1)
	go func() { _, err := r.Read(make([]byte, 1)); paused <- err }()
	select {
	case err = <-paused:
	case <-time.After(time.Minute):
		err = errors.New("no sign within a minute")
	}
	cmd.Process.Kill() // SIGKILL: no deferred function runs
	cmd.Wait()
	if err != nil {
		t.Fatalf("the child never paused before its link: %v", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		t.Fatalf("after a crash in WriteNew the name holds %d of %d bytes", fi.Size(), len(data))
	} else if !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	// The crash left the temporary file, the whole key in it; the next start removes it.
	if removed, err := RemoveLeftovers(path); err != nil || len(removed) != 1 {
		t.Fatalf("RemoveLeftovers after the crash = %q, %v; want the one temporary file", removed, err)
	}
	assertDir(t, dir)
	if err := WriteNew(path, data); err != nil {
		t.Fatalf("WriteNew after the crash: %v", err)
	}
	if b, err := os.ReadFile(path); err != nil || !bytes.Equal(b, data) {
		t.Errorf("WriteNew after the crash wrote %d bytes, %v; want %d", len(b), err, len(data))
	}
}

// TestWriteNew_WriteFails: a write that fails part way (the file size limit, as a full disk
// would) is an error and leaves nothing in the directory, neither at the name nor a
// temporary file; a later WriteNew succeeds.
func TestWriteNew_WriteFails(t *testing.T) {
	data := make([]byte, 1<<20)
	if path := os.Getenv(childEnv); path != "" {
		// Go ignores SIGXFSZ: a write past the limit fails with EFBIG.
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: 64 << 10, Max: 64 << 10}); err != nil {
			t.Fatal(err)
		}
		if err := WriteNew(path, data); !errors.Is(err, syscall.EFBIG) {
			t.Fatalf("WriteNew past the file size limit = %v, want EFBIG", err)
		}
		return
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "key")
	if err := startChild(t, "TestWriteNew_WriteFails", path, nil).Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	assertDir(t, dir)
	if err := WriteNew(path, data); err != nil {
		t.Fatalf("WriteNew after a failed one: %v", err)
	}
	assertDir(t, dir, "key")
}

// TestWriteNew_NoHardLinks: on a file system without hard links (link fails with EPERM, as
// on vfat, or is unsupported) WriteNew still writes the file, whole, mode 0600, leaving no
// temporary file, and still refuses an existing one. Linking alone would have stopped every
// first start of nird on such a file system.
func TestWriteNew_NoHardLinks(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EPERM, syscall.EOPNOTSUPP} {
		t.Run(errno.Error(), func(t *testing.T) {
			link = func(old, new string) error { return &os.LinkError{Op: "link", Old: old, New: new, Err: errno} }
			t.Cleanup(func() { link = os.Link })
			dir := t.TempDir()
			writtenOnce(t, dir)
			assertDir(t, dir, "key")
		})
	}
}

// writtenOnce writes "abc\n" with WriteNew to dir/key, checks it is there whole at mode 0600,
// and that a second WriteNew to it is refused and leaves it as it was; it returns its path.
func writtenOnce(t *testing.T, dir string) string {
	t.Helper()
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
	return path
}

// TestRemoveLeftovers: the temporary files of a WriteNew cut short (a partial, unused key
// each, left in the data directory by a crash) are removed, and nothing else: not a name
// that only resembles theirs, not another file's, not a symbolic link (nor what it points
// to), a directory or a FIFO in their place, not a file of another user's. Before, they
// stayed for ever.
func TestRemoveLeftovers(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	path := filepath.Join(dir, "key")
	target := filepath.Join(outside, "theirs")
	for _, name := range []string{target, path, filepath.Join(dir, ".key.tmp123"), filepath.Join(dir, ".key.tmp4"), filepath.Join(dir, ".key.tmp"), filepath.Join(dir, ".key.tmp12x"), filepath.Join(dir, "key.tmp5"), filepath.Join(dir, ".other.tmp6"), filepath.Join(dir, ".key.tmp7.bak")} {
		if err := os.WriteFile(name, []byte("part"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(target, filepath.Join(dir, ".key.tmp8")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, ".key.tmp9"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, ".key.tmp10"), 0o600); err != nil {
		t.Fatal(err)
	}
	kept := []string{"key", ".key.tmp", ".key.tmp12x", "key.tmp5", ".other.tmp6", ".key.tmp7.bak", ".key.tmp8", ".key.tmp9", ".key.tmp10"}
	if os.Geteuid() == 0 {
		other := filepath.Join(dir, ".key.tmp11")
		if err := os.WriteFile(other, []byte("part"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(other, 4242, 4242); err != nil {
			t.Fatal(err)
		}
		kept = append(kept, ".key.tmp11")
	}
	removed, err := RemoveLeftovers(path)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(removed)
	if want := []string{filepath.Join(dir, ".key.tmp123"), filepath.Join(dir, ".key.tmp4")}; !slices.Equal(removed, want) {
		t.Errorf("RemoveLeftovers removed %q, want %q", removed, want)
	}
	assertDir(t, dir, kept...)
	assertDir(t, outside, "theirs")
	if _, err := RemoveLeftovers(filepath.Join(dir, "missing", "key")); err == nil {
		t.Error("RemoveLeftovers in a missing directory = nil, want an error")
	}
}
