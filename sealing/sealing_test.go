package sealing

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/introreg/nir/internal/swaptest"
)

func TestSealOpen(t *testing.T) {
	k, raw, err := NewDataKey()
	if err != nil {
		t.Fatal(err)
	}
	pt := []byte("01869001488")
	a, b := k.Seal("pk-a", pt), k.Seal("pk-a", pt)
	if bytes.Equal(a, b) || bytes.Contains(a, pt) {
		t.Fatal("sealing is deterministic or shows the plaintext")
	}
	got, err := k.Open("pk-a", a)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("open: %q, %v", got, err)
	}
	// Another person, another key, a flipped bit, a short value: ErrOpen, nothing else.
	other, _, _ := NewDataKey()
	flipped := bytes.Clone(a)
	flipped[len(flipped)-1] ^= 1
	for name, open := range map[string]func() ([]byte, error){
		"other person": func() ([]byte, error) { return k.Open("pk-b", a) },
		"other key":    func() ([]byte, error) { return other.Open("pk-a", a) },
		"damaged":      func() ([]byte, error) { return k.Open("pk-a", flipped) },
		"short":        func() ([]byte, error) { return k.Open("pk-a", a[:5]) },
	} {
		if got, err := open(); !errors.Is(err, ErrOpen) || got != nil {
			t.Errorf("%s: %q, %v; want ErrOpen", name, got, err)
		}
	}
	// Wrapped with the master key, the data key opens only for its person.
	master, _, _ := NewDataKey()
	w := master.Wrap("pk-a", raw)
	dk, err := master.Unwrap("pk-a", w)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := dk.Open("pk-a", a); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("open with the unwrapped key: %q, %v", got, err)
	}
	if _, err := master.Unwrap("pk-b", w); !errors.Is(err, ErrOpen) {
		t.Fatalf("a wrapped key copied to another person opened: %v", err)
	}
}

func TestLoadMaster(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "master.key")
	if _, err := LoadMaster(path, false); err == nil {
		t.Fatal("a missing file without create was accepted")
	}
	k1, err := LoadMaster(path, true)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("made %v, %v; want mode 0600", fi, err)
	}
	k2, err := LoadMaster(path, true)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := k2.Open("pk", k1.Seal("pk", []byte("x"))); err != nil || string(got) != "x" {
		t.Fatal("the file's key changed on the second load")
	}
	// A secret mounted for a group (0440, 0640) is read; one open to others is refused.
	if err := os.Chmod(path, 0o440); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadMaster(path, false); err != nil {
		t.Fatalf("a group-readable master key file: %v", err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadMaster(path, true); !errors.Is(err, ErrBadKey) || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a world-readable master key file: %v, want refused", err)
	}
	t.Setenv(MasterKeyEnv, "not hex")
	if _, err := LoadMaster(path, true); !errors.Is(err, ErrBadKey) || strings.Contains(err.Error(), "not hex") {
		t.Fatalf("a bad %s: %v, want ErrBadKey without the value", MasterKeyEnv, err)
	}
	t.Setenv(MasterKeyEnv, strings.Repeat("ab", KeySize))
	if _, err := LoadMaster(filepath.Join(dir, "none"), false); err != nil {
		t.Fatalf("the key from %s: %v", MasterKeyEnv, err)
	}
}

// TestLoadMaster_Swapped: the mode LoadMaster checks is that of the file it read. A local
// process swapping the key file between one open to others (holding a key it chose) and a
// private one never gets its key taken: LoadMaster read the one file and then looked up
// the mode of whatever the path named at that moment, and so took the others' key with the
// private file's mode.
func TestLoadMaster_Swapped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	theirs := bytes.Repeat([]byte{0x5a}, KeySize)
	planted, err := NewKey(theirs)
	if err != nil {
		t.Fatal(err)
	}
	probe := planted.Seal("pk", []byte("x"))
	swaptest.Swap(t, path,
		swaptest.Version{Data: []byte(hex.EncodeToString(bytes.Repeat([]byte{0xa5}, KeySize)) + "\n"), Mode: 0o600},
		swaptest.Version{Data: []byte(hex.EncodeToString(theirs) + "\n"), Mode: 0o666})
	deadline := time.Now().Add(2 * time.Second)
	for n := 0; time.Now().Before(deadline); n++ {
		k, err := LoadMaster(path, false)
		if err != nil {
			continue // refused, or the path between two renames
		}
		if _, err := k.Open("pk", probe); err == nil {
			t.Fatalf("load %d took the key of a file open to others", n)
		}
	}
}
