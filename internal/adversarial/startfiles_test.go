package adversarial

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/introreg/nir/rules"
)

// TestDamage_StartFiles: each file nird reads at start (the person key, the master key, the
// checkpoint key, the token file, the embedded NATS user's seed) damaged or replaced: nird
// refuses to start, at once, with an error naming the file, never a panic, never the file's
// content. Before the fix a FIFO in the place of any of them made nird wait for ever at start
// (it opened the FIFO for a writer that never came), and a link to /dev/zero made it read
// until its memory ran out. (A flipped hex digit of checkpoint.key is another valid key:
// nird starts and logs its public key; a rebuild then trusts no earlier checkpoint.)
func TestDamage_StartFiles(t *testing.T) {
	base := t.TempDir()
	tokens, _ := edgeTokenFile(t)
	tok, err := os.ReadFile(tokens)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "tokens.json"), tok, 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(base, "data")
	nd := startNird(t, data, "--tokens", filepath.Join(base, "tokens.json"))
	nd.Stop(t, syscall.SIGTERM)
	id := rules.SyntheticFodselsnummer(rules.Date{Y: 1990, M: 5, D: 17}, 3)
	files := []string{"data/personkey.secret", "data/master.key", "data/checkpoint.key", "tokens.json", "data/nats/reader.nk"}
	damages := []struct {
		name string
		do   func(path string) error
	}{
		{"empty", func(p string) error { return os.WriteFile(p, nil, 0o600) }},
		{"cut in half", func(p string) error {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(p, b[:len(b)/2], 0o600)
		}},
		{"binary with a national id", func(p string) error { return os.WriteFile(p, []byte("\x00\xff"+id+"\xfe"), 0o600) }},
		{"a directory", func(p string) error {
			if err := os.Remove(p); err != nil {
				return err
			}
			return os.Mkdir(p, 0o700)
		}},
		{"a FIFO", func(p string) error {
			if err := os.Remove(p); err != nil {
				return err
			}
			return syscall.Mkfifo(p, 0o600)
		}},
		{"a link to /dev/zero", func(p string) error {
			if err := os.Remove(p); err != nil {
				return err
			}
			return os.Symlink("/dev/zero", p)
		}},
	}
	for _, f := range files {
		for _, d := range damages {
			t.Run(f+" "+d.name, func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				copyDir(t, base, dir)
				path := filepath.Join(dir, f)
				if err := d.do(path); err != nil {
					t.Fatal(err)
				}
				out := startFails(t, "--data", filepath.Join(dir, "data"), "--tokens", filepath.Join(dir, "tokens.json"))
				switch {
				case !strings.Contains(out, path):
					t.Errorf("nird's refusal does not name %s:\n%s", path, out)
				case strings.Contains(out, "goroutine "):
					t.Errorf("nird panicked:\n%s", out)
				case strings.Contains(out, id):
					t.Errorf("nird's output holds the national id the file held:\n%s", out)
				}
			})
		}
	}
}
