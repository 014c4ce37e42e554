package personkey

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
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
