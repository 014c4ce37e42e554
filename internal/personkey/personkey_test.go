package personkey

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/introreg/nir/internal/swaptest"
)

func TestKeyer_Key(t *testing.T) {
	a, err := New([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := New([]byte("another secret, another register"))
	id := "02013299997"
	if got := a.Key(id); got != a.Key(" "+id+"\n") {
		t.Errorf("key depends on surrounding space")
	}
	if a.Key(id) == b.Key(id) {
		t.Errorf("two secrets gave the same key")
	}
	if a.Key(id) == a.Key("30108299920") {
		t.Errorf("two ids gave the same key")
	}
	if !IsKey(a.Key(id)) {
		t.Errorf("IsKey(%q) = false", a.Key(id))
	}
	for _, bad := range []string{"", id, "ABCDEF", a.Key(id)[:63], a.Key(id) + "0", "g" + a.Key(id)[1:]} {
		if IsKey(bad) {
			t.Errorf("IsKey(%q) = true", bad)
		}
	}
	if _, err := New([]byte("short")); !errors.Is(err, ErrBadSecret) {
		t.Errorf("New(short) error = %v, want ErrBadSecret", err)
	}
}

func TestLoadOrCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", FileName)
	k1, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("secret file mode = %v, want 0600", fi.Mode().Perm())
	}
	k2, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	if k1.Key("x") != k2.Key("x") {
		t.Errorf("reloaded secret derives other keys")
	}
	if err := os.WriteFile(path, []byte("not hex"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(path); !errors.Is(err, ErrBadSecret) {
		t.Errorf("LoadOrCreate(garbage) error = %v, want ErrBadSecret", err)
	}
}

func TestNew_Degenerate(t *testing.T) {
	for name, secret := range map[string][]byte{
		"AllZero":   make([]byte, 32),
		"OneByte":   bytes.Repeat([]byte{0x41}, 32),
		"Pattern":   bytes.Repeat([]byte("abcd"), 8),
		"ShortHex7": bytes.Repeat([]byte("0123456"), 5),
	} {
		if _, err := New(secret); !errors.Is(err, ErrBadSecret) {
			t.Errorf("New(%s) error = %v, want ErrBadSecret", name, err)
		}
	}
	k, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	if len(k.secret) != SecretSize {
		t.Errorf("generated secret has %d bytes", len(k.secret))
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	if _, err := Load(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load(missing) error = %v, want ErrNotExist", err)
	}
	if _, err := os.Stat(path); err == nil {
		t.Fatalf("Load created the file")
	}
	k, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Write(path); err != nil {
		t.Fatal(err)
	}
	if err := k.Write(path); err == nil {
		t.Errorf("Write over an existing key file succeeded")
	}
	back, err := Load(path)
	if err != nil || back.Key("x") != k.Key("x") || back.Fingerprint() != k.Fingerprint() {
		t.Fatalf("Load after Write = %v, %v", back, err)
	}
	other, _ := Generate()
	if other.Fingerprint() == k.Fingerprint() || len(k.Fingerprint()) != 32 || strings.Contains(k.Fingerprint(), hex.EncodeToString(k.secret[:4])) {
		t.Errorf("fingerprints %s and %s: not distinct, not 32 hex characters, or showing the secret", k.Fingerprint(), other.Fingerprint())
	}
	// Writable by group or others: refused.
	for _, mode := range []os.FileMode{0o666, 0o620, 0o602} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		if !errors.Is(err, ErrInsecureFile) || !strings.Contains(err.Error(), "chmod 600 "+path) {
			t.Errorf("Load of a mode %04o file: %v, want ErrInsecureFile naming the fix", mode, err)
		}
	}
	// Readable by group or others, and nird's own: made private, and said so.
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o440} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		k, err := Load(path)
		if err != nil {
			t.Fatalf("Load of a mode %04o file of its own: %v", mode, err)
		}
		fi, _ := os.Stat(path)
		if got := fi.Mode().Perm(); got != mode&^0o077 || !strings.Contains(k.LoadNote(), fmt.Sprintf("mode %04o", mode)) {
			t.Errorf("Load of a mode %04o file: now %04o, note %q; want %04o and a note", mode, got, k.LoadNote(), mode&^0o077)
		}
	}
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err != nil {
		t.Errorf("Load of a mode 0400 file: %v", err)
	}
	zero := filepath.Join(dir, "zero")
	if err := os.WriteFile(zero, []byte(strings.Repeat("00", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(zero); !errors.Is(err, ErrBadSecret) || !strings.Contains(err.Error(), zero) {
		t.Errorf("Load of an all-zero key: %v, want ErrBadSecret naming the file", err)
	}
}

// TestNew_Short: a secret of fewer than 16 bytes is refused however varied its bytes; the
// test above's short secret was also degenerate, so the length check was never the one
// that refused it.
func TestNew_Short(t *testing.T) {
	if _, err := New([]byte("0123456789abcde")); !errors.Is(err, ErrBadSecret) || !strings.Contains(err.Error(), "15 bytes") {
		t.Errorf("New(15 distinct bytes) error = %v, want ErrBadSecret naming the length", err)
	}
	if _, err := New([]byte("0123456789abcdef")); err != nil {
		t.Errorf("New(16 distinct bytes) = %v", err)
	}
}

// TestLoad_OtherOwner: a secret file of another owner (provisioned, e.g. root:nird 0640)
// is read when only nird's group may read it, and refused when others may, or when its
// group is not nird's; nird never changes its mode. Needs root to give the file away.
func TestLoad_OtherOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown the secret file to another user")
	}
	path := filepath.Join(t.TempDir(), FileName)
	k, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Write(path); err != nil {
		t.Fatal(err)
	}
	const otherUID, otherGID = 4242, 4343
	for _, c := range []struct {
		name string
		gid  int
		mode os.FileMode
		ok   bool
	}{
		{"OurGroup0640", os.Getegid(), 0o640, true},
		{"OurGroup0440", os.Getegid(), 0o440, true},
		{"OthersMayRead", os.Getegid(), 0o644, false},
		{"OthersMayReadNoGroup", os.Getegid(), 0o604, false},
		{"AnotherGroup", otherGID, 0o640, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := os.Chown(path, otherUID, c.gid); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, c.mode); err != nil {
				t.Fatal(err)
			}
			got, err := Load(path)
			if c.ok {
				if err != nil {
					t.Errorf("Load = %v, want the key", err)
				} else if got.Key("x") != k.Key("x") || got.LoadNote() != "" {
					t.Errorf("Load gave another key, or the note %q; want the key, no note", got.LoadNote())
				}
			} else if !errors.Is(err, ErrInsecureFile) || !strings.Contains(err.Error(), "another owner") {
				t.Errorf("Load = %v, want ErrInsecureFile saying another owner", err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != c.mode {
				t.Errorf("mode now %04o, want %04o unchanged (not nird's file)", fi.Mode().Perm(), c.mode)
			}
		})
	}
}

// TestLoadOrCreate_Concurrent: starts that make the secret at once each find no file (and
// make it), or a whole one, or are refused because another made it meanwhile; none reads a
// secret cut short. The file was written at its name, which another start could read empty
// before the secret was in it.
func TestLoadOrCreate_Concurrent(t *testing.T) {
	swaptest.ConcurrentCreate(t, FileName, func(path string) error {
		_, err := LoadOrCreate(path)
		return err
	})
}
