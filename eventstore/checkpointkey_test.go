package eventstore_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/swaptest"
)

// TestLoadCheckpointKey_Swapped: the mode LoadCheckpointKey checks is that of the file it
// read. A local process swapping the key file between one others may read (holding a seed
// it chose) and a private one never gets its seed taken: LoadCheckpointKey read the one
// file and then looked up the mode of whatever the path named at that moment, and so signed
// checkpoints with a key the process knew, and could sign with too (a forged read-model
// file's events then pass as attested in a rebuild).
func TestLoadCheckpointKey_Swapped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "checkpoint.key")
	theirs := bytes.Repeat([]byte{0x5a}, ed25519.SeedSize)
	swaptest.Swap(t, path,
		swaptest.Version{Data: []byte(hex.EncodeToString(bytes.Repeat([]byte{0xa5}, ed25519.SeedSize)) + "\n"), Mode: 0o600},
		swaptest.Version{Data: []byte(hex.EncodeToString(theirs) + "\n"), Mode: 0o644})
	deadline := time.Now().Add(2 * time.Second)
	for n := 0; time.Now().Before(deadline); n++ {
		k, err := eventstore.LoadCheckpointKey(path, false)
		if err != nil {
			continue // refused, or the path between two renames
		}
		if bytes.Equal(k.Seed(), theirs) {
			t.Fatalf("load %d took the seed of a file others may read", n)
		}
	}
}

// TestLoadCheckpointKey_GroupReadable: a key file its group may read (a secret a container
// platform mounts for nird's group, 0440 or 0640, as the master key's) is read; one others may
// read, or its group write, is refused. Found on 2026-12-07 (review of the sealed backups): a
// group-readable file was refused, so the shipped clusters (deploy/kubernetes, deploy/compose)
// could not share one key: each nird signed with its own (in Kubernetes a new one in each
// pod's emptyDir), and nirctl backup --checkpoint-key refused every backup of them.
func TestLoadCheckpointKey_GroupReadable(t *testing.T) {
	seed := bytes.Repeat([]byte{0xa5}, ed25519.SeedSize)
	for mode, ok := range map[os.FileMode]bool{0o400: true, 0o440: true, 0o640: true, 0o600: true, 0o644: false, 0o604: false, 0o660: false, 0o620: false} {
		path := filepath.Join(t.TempDir(), "checkpoint.key")
		if err := os.WriteFile(path, []byte(hex.EncodeToString(seed)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		k, err := eventstore.LoadCheckpointKey(path, false)
		if got := err == nil && bytes.Equal(k.Seed(), seed); got != ok {
			t.Errorf("mode %04o: read %v (%v), want %v", mode, got, err, ok)
		}
	}
}

// TestLoadCheckpointKey_ConcurrentCreate: starts that make the checkpoint key at once each
// find no file (and make it), or a whole one, or are refused because another made it
// meanwhile; none reads a seed cut short. The file was written at its name, which another
// start could read empty before the seed was in it.
func TestLoadCheckpointKey_ConcurrentCreate(t *testing.T) {
	swaptest.ConcurrentCreate(t, "checkpoint.key", func(path string) error {
		_, err := eventstore.LoadCheckpointKey(path, true)
		return err
	})
}
