// Package smallfile reads the small files nird reads at start (its keys, the token file, NATS
// seeds) so that whatever lies in their place cannot stop it unseen: opening a FIFO waits
// for a writer for ever, and reading a device such as /dev/zero never ends. Open and Read
// refuse anything but a regular file, without blocking, and Read refuses a file larger than
// it expects without reading it. WriteNew writes the keys nird makes, durably and whole or
// not at all.
package smallfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// ErrNotRegular is returned for a path that is not a regular file (after symbolic links).
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge is returned by Read for a file larger than its limit.
var ErrTooLarge = errors.New("file too large")

// Open opens the regular file at path for reading, without waiting for a writer when it is
// a FIFO, and returns it with its FileInfo. A path that does not exist is an error wrapping
// os.ErrNotExist; one that is not a regular file wraps ErrNotRegular and names the path.
func Open(path string) (*os.File, os.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w (%v)", path, ErrNotRegular, fi.Mode().Type())
	}
	return f, fi, nil
}

// Read returns the content of the regular file at path (Open), refusing one larger than
// limit bytes with ErrTooLarge, also when it grows while read.
func Read(path string, limit int64) ([]byte, error) {
	b, _, err := ReadStat(path, limit)
	return b, err
}

// ReadStat is Read, returning also the FileInfo of the file it read: a caller that checks
// the file's mode or owner must check this one, not look the path up again, which another
// process may have pointed at another file meanwhile.
func ReadStat(path string, limit int64) ([]byte, os.FileInfo, error) {
	f, fi, err := Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	if fi.Size() > limit {
		return nil, nil, fmt.Errorf("%s: %w (%d bytes, at most %d expected)", path, ErrTooLarge, fi.Size(), limit)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, nil, fmt.Errorf("%s: %w (more than %d bytes)", path, ErrTooLarge, limit)
	}
	return b, fi, nil
}

// WriteNew writes data to a new file at path, readable and writable by its owner only (mode
// 0600), for the keys nird makes: the file must not exist yet (nor a link in its place), and
// is synced, and its directory too (where the file system can), before WriteNew returns, so
// that a key that sealed or signed anything is not lost with a power cut. The name holds the
// whole file or nothing, also after a crash or a full disk: data goes to a temporary file in
// the same directory, synced, then linked to path (which fails if the name exists, whatever
// it is, and never replaces it). A partial key at path stopped every start after it. The
// temporary file is removed, also on error; a crash (kill -9, power cut) may leave one behind,
// named after path's base with a leading dot and ".tmp", never at path (RemoveLeftovers
// removes it). On a file system
// without hard links the file is written at path (O_EXCL), and removed if not written whole.
func WriteNew(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := writeSynced(tmp, data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if testHookBeforeLink != nil {
		testHookBeforeLink()
	}
	err = link(tmp.Name(), path)
	if errors.Is(err, syscall.EPERM) || errors.Is(err, errors.ErrUnsupported) {
		// A file system without hard links (vfat, some network and FUSE ones): the file is
		// written at its name, as before, whole unless a crash cuts it short.
		err = writeAt(path, data)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	os.Remove(tmp.Name()) // now, before the directory is synced, so that it stays removed
	// Best effort: a file system that cannot sync a directory has the file all the same.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// RemoveLeftovers removes the temporary files a WriteNew of path cut short by a crash left
// beside it (each may hold part of a key no one uses, mode 0600), and returns their names:
// only regular files named exactly as WriteNew names them (a leading dot, path's base,
// ".tmp" and CreateTemp's decimal digits) and owned by the process's user; never what a
// symbolic link points to (a link is not a regular file here). The caller must be the only
// writer of path (nird holds its data directory's lock): a WriteNew under way elsewhere
// would lose its temporary file.
func RemoveLeftovers(path string) ([]string, error) {
	dir, prefix := filepath.Dir(path), "."+filepath.Base(path)+".tmp"
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("remove leftovers of %s: %w", path, err)
	}
	var removed []string
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || !digits(rest) || !e.Type().IsRegular() {
			continue
		}
		name := filepath.Join(dir, e.Name())
		fi, err := os.Lstat(name)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if uid, _, ok := Owner(fi); ok && uid != os.Geteuid() {
			continue
		}
		if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			return removed, fmt.Errorf("remove leftovers of %s: %w", path, err)
		}
		removed = append(removed, name)
	}
	return removed, nil
}

// digits reports whether s is a non-empty string of decimal digits.
func digits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// link is os.Link; a test makes it fail as on a file system without hard links.
var link = os.Link

// writeAt writes data to a new file at path (O_EXCL, mode 0600), synced; a file it could not
// write whole is removed.
func writeAt(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := writeSynced(f, data); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// testHookBeforeLink, when set (by a test), is called once the temporary file is written and
// synced, before it is linked to its name: a crash there must leave nothing at the name.
var testHookBeforeLink func()

// writeSynced writes data to f, syncs and closes it.
func writeSynced(f *os.File, data []byte) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
