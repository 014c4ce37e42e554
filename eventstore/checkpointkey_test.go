package eventstore_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
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
