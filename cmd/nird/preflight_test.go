package main

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPreflight_DamagedKeyFiles: nird --check-config (and the start, which runs the same
// checks first) refuses a damaged person key, master key or checkpoint key file, naming its
// flag and the file, before anything is opened. Found on 2026-12-07 by mutation testing: the
// master and checkpoint key checks of preflight could be skipped without a test failing (the
// real start read the files again later, so only --check-config said "configuration ok").
func TestPreflight_DamagedKeyFiles(t *testing.T) {
	t.Setenv("NIR_MASTER_KEY", "") // restored when the test ends
	os.Unsetenv("NIR_MASTER_KEY")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tt := range []struct {
		file, flag string
	}{
		{"personkey.secret", "--person-key-file"},
		{"master.key", "--master-key-file"},
		{"checkpoint.key", "--checkpoint-key"},
	} {
		t.Run(tt.file, func(t *testing.T) {
			data := t.TempDir()
			cfg, err := parseConfig([]string{"--data", data}, func(string) string { return "" }, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			// Without the file the check passes: the start makes it.
			if _, err := preflight(cfg, log); err != nil {
				t.Fatalf("preflight without %s: %v", tt.file, err)
			}
			path := filepath.Join(data, tt.file)
			if err := os.WriteFile(path, []byte("not a key\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err = preflight(cfg, log)
			if err == nil || !strings.Contains(err.Error(), tt.flag) || !strings.Contains(err.Error(), path) {
				t.Errorf("preflight with a damaged %s: %v; want an error naming %s and %s", tt.file, err, tt.flag, path)
			}
		})
	}
}

// TestPreflight_DataWritableByOthers: a data directory of nird's own that others may write
// to is made private to them, and nird says so: anyone could put a master key, person key,
// lock file or NATS seed of their own there before nird makes it, or replace one (every key
// file's mode check was moot then), a sticky bit notwithstanding. Before, any mode was taken
// without a word. One its group may write to (a Kubernetes volume with an fsGroup) is left
// as it is; one of another owner (a Kubernetes emptyDir, root's, mode 0777) is warned about.
// A shared one (sticky, as /tmp is) is refused: until 2026-12-07 nird made it o-w when it
// owned it, and run as root with --data /tmp it took /tmp from every user of the machine.
func TestPreflight_DataWritableByOthers(t *testing.T) {
	for _, c := range []struct {
		mode, want os.FileMode
		other      bool // owned by another user (needs root)
		refused    bool
	}{
		{mode: 0o777, want: 0o775},
		{mode: 0o777 | os.ModeSticky, want: 0o777 | os.ModeSticky, refused: true},
		{mode: 0o773 | os.ModeSticky, want: 0o773 | os.ModeSticky, refused: true},
		{mode: 0o703, want: 0o701},
		{mode: 0o770 | os.ModeSetgid, want: 0o770 | os.ModeSetgid},
		{mode: 0o700, want: 0o700},
		{mode: 0o777 | os.ModeSetgid, want: 0o777 | os.ModeSetgid, other: true},
	} {
		t.Run(c.mode.String(), func(t *testing.T) {
			data := t.TempDir()
			if c.other {
				if os.Geteuid() != 0 {
					t.Skip("needs root to give the data directory to another user")
				}
				if err := os.Chown(data, 4242, 4343); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chmod(data, c.mode); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			cfg, err := parseConfig([]string{"--data", data}, func(string) string { return "" }, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			_, err = preflight(cfg, log)
			if c.refused != (err != nil) || c.refused && !strings.Contains(fmt.Sprint(err), "shared directory") {
				t.Fatalf("preflight: %v; want refused %v", err, c.refused)
			}
			if c.refused {
				// The refusal names the fix (a Kubernetes emptyDir of medium Memory is mode
				// 1777), and the fix passes: nird makes the subdirectory its own, mode 0700.
				sub := filepath.Join(data, "nird")
				if !strings.Contains(err.Error(), "--data "+sub) || !strings.Contains(err.Error(), "0700") {
					t.Errorf("the refusal does not tell the operator to point --data at a subdirectory such as %s: %v", sub, err)
				}
				if cfg, err = parseConfig([]string{"--data", sub}, func(string) string { return "" }, io.Discard); err != nil {
					t.Fatal(err)
				}
				if _, err := preflight(cfg, log); err != nil {
					t.Errorf("preflight with the subdirectory the refusal names: %v", err)
				}
			}
			fi, err := os.Stat(data)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode() &^ os.ModeDir; got != c.want {
				t.Errorf("the data directory's mode is %v, want %v", got, c.want)
			}
			if warned := strings.Contains(logs.String(), "writ") && strings.Contains(logs.String(), data); warned != (c.mode.Perm()&0o002 != 0 && !c.refused) {
				t.Errorf("warned %v about a data directory of mode %v; logs:\n%s", warned, c.mode, logs.String())
			}
		})
	}
}

// TestPreflight_CheckChangesNothing: nird --check-config changes nothing: a data directory
// others may write to and a person key file others may read keep their modes, and the log
// says what the start will change. Before, the check made both private as the start does.
func TestPreflight_CheckChangesNothing(t *testing.T) {
	data := t.TempDir()
	if err := os.Chmod(data, 0o777); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(data, "personkey.secret")
	if err := os.WriteFile(keyFile, []byte("000102030405060708090a0b0c0d0e0f\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(keyFile, 0o644); err != nil { // not cut by the umask
		t.Fatal(err)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	cfg, err := parseConfig([]string{"--data", data, "--check-config"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := preflight(cfg, log); err != nil {
		t.Fatalf("preflight: %v", err)
	}
	for path, want := range map[string]os.FileMode{data: 0o777, keyFile: 0o644} {
		if fi, err := os.Stat(path); err != nil {
			t.Fatal(err)
		} else if fi.Mode().Perm() != want {
			t.Errorf("--check-config changed %s to mode %v, want %v", path, fi.Mode().Perm(), want)
		}
	}
	for _, want := range []string{"will make it private to them", "the start will make it 0600"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the check's log does not say %q:\n%s", want, logs.String())
		}
	}
}

// TestPreflight_KeyFileOfAnotherUser: a key file (person key, master key, checkpoint key)
// that belongs to another user than nird's and root is warned about, naming its flag and
// the owner: that user can read the key, and replace it or open it to others while nird
// runs. It is not refused: deploy/compose's secrets are the operator's own files, read
// through their group (a Kubernetes Secret's are root's, as nird's own key files are
// nird's). Before, only the mode was checked.
func TestPreflight_KeyFileOfAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a key file to another user")
	}
	t.Setenv("NIR_MASTER_KEY", "") // restored when the test ends
	os.Unsetenv("NIR_MASTER_KEY")
	const key = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"
	for _, tt := range []struct{ file, flag string }{
		{"personkey.secret", "--person-key-file"},
		{"master.key", "--master-key-file"},
		{"checkpoint.key", "--checkpoint-key"},
	} {
		t.Run(tt.file, func(t *testing.T) {
			data := t.TempDir()
			path := filepath.Join(data, tt.file)
			if err := os.WriteFile(path, []byte(key), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := parseConfig([]string{"--data", data}, func(string) string { return "" }, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			for _, owner := range []int{0, 4242} {
				if err := os.Chown(path, owner, owner); err != nil {
					t.Fatal(err)
				}
				var logs bytes.Buffer
				if _, err := preflight(cfg, slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
					t.Fatalf("preflight with %s of uid %d: %v", tt.file, owner, err)
				}
				warned := strings.Contains(logs.String(), "flag="+tt.flag) && strings.Contains(logs.String(), "belongs to uid 4242")
				if warned != (owner != 0) {
					t.Errorf("%s of uid %d: warned %v; logs:\n%s", tt.file, owner, warned, logs.String())
				}
			}
		})
	}
}

// TestPreflight_DataInSharedDirectory: a data directory in a shared directory (sticky and
// writable by others, as /tmp and a Kubernetes emptyDir of medium Memory are, where the
// refusal of the shared directory tells the operator to point --data) must be nird's user's:
// another user may have made it there first, with keys of their own in it. Before, one of
// mode 0777 was only warned about, and one of 0700 taken without a word.
func TestPreflight_DataInSharedDirectory(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the data directory to another user")
	}
	shared := t.TempDir()
	if err := os.Chmod(shared, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(shared, "nird")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg, err := parseConfig([]string{"--data", data}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, mode := range []os.FileMode{0o700, 0o777} {
		if err := os.Chmod(data, mode); err != nil {
			t.Fatal(err)
		}
		for _, owner := range []int{0, 4242} {
			if err := os.Chown(data, owner, owner); err != nil {
				t.Fatal(err)
			}
			_, err := preflight(cfg, log)
			if refused := err != nil && strings.Contains(err.Error(), "belongs to uid 4242"); refused != (owner != 0) {
				t.Errorf("a data directory of uid %d, mode %v, in a shared directory: %v", owner, mode, err)
			}
		}
	}
}
