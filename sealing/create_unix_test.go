//go:build unix

package sealing

import (
	"errors"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/introreg/nir/internal/swaptest"
)

// TestLoadMaster_CreateFails: a master key file LoadMaster could not write whole (a full
// disk) is not left behind: the next start makes the key again. Before, a file cut short
// stayed, and every start after refused it ("does not hold 64 hex digits") until an
// operator found and deleted it. The process's file size limit stands in for a full disk.
func TestLoadMaster_CreateFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	signal.Ignore(syscall.SIGXFSZ) // Go ignores it already; said here, for the write's EFBIG
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: 16, Max: old.Max}); err != nil {
		t.Skipf("cannot limit the file size: %v", err)
	}
	_, err := LoadMaster(path, true)
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	if err == nil {
		t.Fatal("LoadMaster made a key it could not write whole")
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the master key file cut short was left (%v)", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 0 {
		t.Errorf("the failed write left %s in the directory", entries[0].Name())
	}
	if _, err := LoadMaster(path, true); err != nil {
		t.Errorf("the next start: %v, want a new key", err)
	}
}

// TestLoadMaster_ConcurrentCreate: starts that make the master key at once each find no file
// (and make it), or a whole one, or are refused because another made it meanwhile; none
// reads a key cut short. WriteNew wrote the file at its name, which another start could read
// empty before the key was in it ("does not hold 64 hex digits").
func TestLoadMaster_ConcurrentCreate(t *testing.T) {
	swaptest.ConcurrentCreate(t, "master.key", func(path string) error {
		_, err := LoadMaster(path, true)
		return err
	})
}
