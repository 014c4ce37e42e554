//go:build unix

package auth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/introreg/nir/smallfile"
)

// TestReadEntries_NotASmallFile: a token file that is a FIFO is refused at once, not
// waited on (nird would hang at start or on SIGHUP), and one larger than MaxTokenFileSize
// is refused before it is read; both errors name the path. Mutation testing: reading it
// with os.ReadFile passed every other test.
func TestReadEntries_NotASmallFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "tokens.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := ReadEntries(fifo); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, smallfile.ErrNotRegular) || !strings.Contains(err.Error(), fifo) {
			t.Errorf("ReadEntries(FIFO) = %v, want ErrNotRegular naming the path", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ReadEntries(FIFO) waits for a writer")
	}
	large := filepath.Join(dir, "tokens.json")
	f, err := os.Create(large)
	if err != nil {
		t.Fatal(err)
	}
	// Sparse: no disk is written.
	if err := f.Truncate(MaxTokenFileSize + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := ReadEntries(large); !errors.Is(err, smallfile.ErrTooLarge) || !strings.Contains(err.Error(), large) {
		t.Errorf("ReadEntries(%d bytes) = %v, want ErrTooLarge naming the path", MaxTokenFileSize+1, err)
	}
}
