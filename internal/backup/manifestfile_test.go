//go:build unix

package backup_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/introreg/nir/internal/backup"
	"github.com/introreg/nir/internal/storetest"
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

// TestWrite_ManifestOpenCannotRead: a backup whose manifest would be larger than Open reads
// (here a bound of 1 KiB against the manifest of a backup with checkpoints; 256 MiB in nird,
// which checkpoints made every second fill within days) is refused by Write, saying why and
// what to do, and no manifest is written, so it reads as a backup that did not finish.
// Found on 2026-12-07 (review of the manifest's bound): Write wrote it, and every restore
// of it was then refused.
func TestWrite_ManifestOpenCannotRead(t *testing.T) {
	defer backup.SetMaxManifestBytes(1 << 10)()
	s := openStore(t)
	for i := range 8 {
		appendN(t, s, i+1, 3)
		storetest.CheckpointThrough(t, s, uint64(3*(i+1)), nil)
	}
	dir := filepath.Join(t.TempDir(), "b")
	_, err := backup.Write(context.Background(), s, dir, backup.Options{})
	if err == nil || !strings.Contains(err.Error(), "more than a restore reads") || !strings.Contains(err.Error(), "--after") {
		t.Fatalf("Write of a manifest larger than Open reads: %v; want a refusal saying why", err)
	}
	if _, err := os.Stat(filepath.Join(dir, backup.ManifestFile)); !os.IsNotExist(err) {
		t.Errorf("the refused backup's manifest is there: %v", err)
	}
}
