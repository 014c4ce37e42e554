//go:build unix

package backup_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/introreg/nir/internal/backup"
)

// TestOpen_ManifestNotARegularFile: a backup directory whose manifest.json is a FIFO (a
// hostile local process, or a mistake), a link to an endless device, or a file far larger
// than any manifest is refused at once, naming the file, by Open (nirctl restore, and backup
// --after). Found on 2026-12-07 (adversarial review of backup and restore): the events and
// key files were read through smallfile, the manifest with os.ReadFile, so a FIFO made
// restore wait for a writer for ever and /dev/zero read until the process ran out of memory.
func TestOpen_ManifestNotARegularFile(t *testing.T) {
	fifo := func(path string) error { return syscall.Mkfifo(path, 0o600) }
	zero := func(path string) error { return os.Symlink("/dev/zero", path) }
	huge := func(path string) error { // sparse: no disk used
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Truncate(64 << 30)
	}
	for name, plant := range map[string]func(string) error{"fifo": fifo, "/dev/zero": zero, "64 GiB": huge} {
		t.Run(name, func(t *testing.T) {
			dir := writeBackup(t, 2)
			path := filepath.Join(dir, backup.ManifestFile)
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if err := plant(path); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { _, err := backup.Open(dir); done <- err }()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), backup.ManifestFile) || !strings.Contains(err.Error(), dir) {
					t.Errorf("Open with a manifest that is a %s: %v; want an error naming %s in %s", name, err, backup.ManifestFile, dir)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("Open with a manifest that is a %s has not returned after 10s", name)
			}
		})
	}
}
