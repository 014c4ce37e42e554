package natsauth_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/introreg/nir/internal/natsauth"
	"github.com/introreg/nir/internal/natsingress"
	"github.com/introreg/nir/internal/swaptest"
)

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// TestLoadOrCreate: keys are made once, private to nird's user, and kept across starts;
// every user has its own key and its own permissions.
func TestLoadOrCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nats")
	users, err := natsauth.LoadOrCreate(dir, []string{"oslo", "visma-flyt"})
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 3 || users[0].Name != natsauth.Reader || users[1].Name != "oslo" || users[2].Name != "visma-flyt" {
		t.Fatalf("users %+v", users)
	}
	if m := mode(t, dir); m != 0o700 {
		t.Errorf("directory mode %04o, want 0700", m)
	}
	keys := map[string]bool{}
	for _, u := range users {
		if m := mode(t, u.Seed); m != 0o600 {
			t.Errorf("%s: seed mode %04o, want 0600", u.Name, m)
		}
		if keys[u.Server.Nkey] {
			t.Errorf("%s shares a key", u.Name)
		}
		keys[u.Server.Nkey] = true
		if _, tcp := u.Server.AllowedConnectionTypes["STANDARD"]; !tcp || len(u.Server.AllowedConnectionTypes) != 1 {
			t.Errorf("%s: connection types %v, want TCP only", u.Name, u.Server.AllowedConnectionTypes)
		}
	}
	if got := users[1].Server.Permissions.Subscribe.Allow; len(got) != 1 || got[0] != "_INBOX.oslo.>" {
		t.Errorf("oslo may subscribe to %q, want only its inbox", got)
	}
	// Each case system may send requests on its own subject only: the subject names the
	// sender to the ingress, which answers it in that sender's inbox alone.
	for _, u := range users[1:] {
		if got := u.Server.Permissions.Publish.Allow; len(got) != 1 || got[0] != "nir.cmd.append."+u.Name || u.Server.Permissions.Publish.Deny != nil {
			t.Errorf("%s may publish to %q, want only nir.cmd.append.%s", u.Name, got, u.Name)
		}
		if user, ok := natsingress.Sender(natsingress.RequestSubject(u.Name)); !ok || user != u.Name {
			t.Errorf("the ingress reads %s's request subject as from %q (%v)", u.Name, user, ok)
		}
	}
	again, err := natsauth.LoadOrCreate(dir, []string{"oslo"})
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 2 || again[0].Server.Nkey != users[0].Server.Nkey || again[1].Server.Nkey != users[1].Server.Nkey {
		t.Fatal("keys changed on the second start")
	}
}

// TestCheckCaseSystem_IngressAccepts: every name a case system may take is one the
// ingress reads from its request subject and answers in its inbox.
func TestCheckCaseSystem_IngressAccepts(t *testing.T) {
	for _, name := range []string{"a", "oslo", "visma-flyt", "0301-fag", strings.Repeat("z", 32)} {
		if err := natsauth.CheckCaseSystem(name); err != nil {
			t.Fatalf("CheckCaseSystem(%q) = %v", name, err)
		}
		if user, ok := natsingress.Sender(natsingress.RequestSubject(name)); !ok || user != name {
			t.Errorf("Sender(RequestSubject(%q)) = %q, %v", name, user, ok)
		}
		if !natsingress.ReplyAllowed(name, natsauth.InboxPrefix(name)+".x") {
			t.Errorf("the ingress would not answer %s in its inbox %s", name, natsauth.InboxPrefix(name))
		}
	}
	if natsauth.CheckCaseSystem(strings.Repeat("z", 33)) == nil {
		t.Error("a 33-byte name accepted")
	}
}

func TestLoadOrCreate_Refused(t *testing.T) {
	for _, tt := range []struct {
		name        string
		caseSystems []string
		prepare     func(t *testing.T, dir string)
		want        string
	}{
		{"BadName", []string{"Oslo"}, nil, "lower-case"},
		{"Dot", []string{"a.b"}, nil, "lower-case"},
		{"Wildcard", []string{">"}, nil, "lower-case"},
		{"Reserved", []string{"reader"}, nil, "taken"},
		{"ReservedNird", []string{"nird"}, nil, "taken"},
		{"Twice", []string{"oslo", "oslo"}, nil, "twice"},
		{"ReadableSeed", nil, func(t *testing.T, dir string) {
			if _, err := natsauth.LoadOrCreate(dir, nil); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(filepath.Join(dir, "reader.nk"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "0600"},
		{"NotASeed", nil, func(t *testing.T, dir string) {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "reader.nk"), []byte("SUAgarbage\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "not an nkey seed"},
		// An account's seed is a valid nkey seed but no user's: the server would take its
		// public key as no user, or as the account's.
		{"AccountSeed", nil, func(t *testing.T, dir string) {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			kp, err := nkeys.CreateAccount()
			if err != nil {
				t.Fatal(err)
			}
			seed, err := kp.Seed()
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "reader.nk"), append(seed, '\n'), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "not a user nkey seed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "nats")
			if tt.prepare != nil {
				tt.prepare(t, dir)
			}
			_, err := natsauth.LoadOrCreate(dir, tt.caseSystems)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("LoadOrCreate = %v, want an error saying %q", err, tt.want)
			}
		})
	}
}

// TestContexts: the context files are what the nats CLI reads (url, nkey file, inbox
// prefix), private, and ReadContext turns them back into connection options.
func TestContexts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nats")
	users, err := natsauth.LoadOrCreate(dir, []string{"oslo"})
	if err != nil {
		t.Fatal(err)
	}
	if err := natsauth.WriteContexts(users, "nats://127.0.0.1:4222"); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if m := mode(t, u.Context); m != 0o600 {
			t.Errorf("%s: context mode %04o, want 0600", u.Name, m)
		}
		b, err := os.ReadFile(u.Context)
		if err != nil {
			t.Fatal(err)
		}
		var c map[string]string
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatal(err)
		}
		if c["url"] != "nats://127.0.0.1:4222" || !filepath.IsAbs(c["nkey"]) || c["inbox_prefix"] != "_INBOX."+u.Name || c["password"] != "" {
			t.Errorf("%s: context %v", u.Name, c)
		}
		url, opts, err := natsauth.ReadContext(u.Context)
		if err != nil || url != "nats://127.0.0.1:4222" || len(opts) != 2 {
			t.Errorf("%s: ReadContext = %q, %d options, %v", u.Name, url, len(opts), err)
		}
	}
	if err := natsauth.RemoveContexts(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(users[0].Context); !os.IsNotExist(err) {
		t.Errorf("context still there after RemoveContexts: %v", err)
	}
	if _, err := os.Stat(users[0].Seed); err != nil {
		t.Errorf("RemoveContexts removed the seed: %v", err)
	}
}

// TestEmbeddedAccounts: each case system gets an account of its own, named as it, apart
// from the register's and the readers'.
func TestEmbeddedAccounts(t *testing.T) {
	global, reader, cases, err := natsauth.EmbeddedAccounts([]string{"oslo", "visma-flyt"})
	if err != nil {
		t.Fatal(err)
	}
	if global.Name != "$G" || reader.Name != natsauth.ReaderAccount {
		t.Errorf("accounts %s and %s, want $G and %s", global.Name, reader.Name, natsauth.ReaderAccount)
	}
	if len(cases) != 2 || cases["oslo"].Name != natsauth.CaseSystemAccount("oslo") || cases["visma-flyt"].Name != natsauth.CaseSystemAccount("visma-flyt") || cases["oslo"] == cases["visma-flyt"] {
		t.Errorf("case systems' accounts %v", cases)
	}
	if _, _, none, err := natsauth.EmbeddedAccounts(nil); err != nil || len(none) != 0 {
		t.Errorf("without case systems: %v, %v", none, err)
	}
	// The largest request the ingress takes fits, with room for its headers.
	if natsauth.CaseSystemMaxPayload < natsingress.MaxRequestBytes+4<<10 {
		t.Errorf("a case system's messages hold %d bytes, less than a request of %d with its headers", natsauth.CaseSystemMaxPayload, natsingress.MaxRequestBytes)
	}
}

// TestReadContext_Refused: a context file without a url, or not JSON, is refused naming the
// file, rather than giving nirctl an empty URL to dial (mutation testing: dropping the url
// check passed).
func TestReadContext_Refused(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"nourl.json": `{"description": "x", "inbox_prefix": "_INBOX.reader"}`, "garbage.json": "{"} {
		file := filepath.Join(dir, name)
		if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if url, _, err := natsauth.ReadContext(file); err == nil || !strings.Contains(err.Error(), file) {
			t.Errorf("ReadContext(%s) = %q, %v; want an error naming the file", name, url, err)
		}
	}
}

// TestLoadOrCreate_Swapped: the mode LoadOrCreate checks is that of the seed file it read. A
// local process swapping a user's seed file between one others may read (holding a seed it
// chose) and a private one never gets its seed taken: LoadOrCreate read the one file and
// then looked up the mode of whatever the path named at that moment, and so let the embedded
// server take a key that process holds as the user's.
func TestLoadOrCreate_Swapped(t *testing.T) {
	dir := t.TempDir()
	seed := func() (seed []byte, pub string) {
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		seed, _ = kp.Seed()
		pub, _ = kp.PublicKey()
		return append(seed, '\n'), pub
	}
	ours, _ := seed()
	theirs, theirPub := seed()
	swaptest.Swap(t, filepath.Join(dir, natsauth.Reader+".nk"),
		swaptest.Version{Data: ours, Mode: 0o600}, swaptest.Version{Data: theirs, Mode: 0o644})
	deadline := time.Now().Add(2 * time.Second)
	for n := 0; time.Now().Before(deadline); n++ {
		users, err := natsauth.LoadOrCreate(dir, nil)
		if err != nil {
			continue // refused, or the path between two renames
		}
		if users[0].Server.Nkey == theirPub {
			t.Fatalf("load %d took the seed of a file others may read", n)
		}
	}
}

// TestLoadOrCreate_ConcurrentStarts: starts that make the same seed at once never replace one
// another's seed: each has the key its seed file holds, the losers reading the winner's. The seed was
// renamed into place, replacing one another start had made and announced to its server, whose
// clients then could not connect with the file.
func TestLoadOrCreate_ConcurrentStarts(t *testing.T) {
	for range 5 {
		dir := filepath.Join(t.TempDir(), "nats")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		const n = 8
		pubs := make(chan string, n)
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				if users, err := natsauth.LoadOrCreate(dir, nil); err == nil {
					pubs <- users[0].Server.Nkey
				}
			})
		}
		wg.Wait()
		close(pubs)
		b, err := os.ReadFile(filepath.Join(dir, natsauth.Reader+".nk"))
		if err != nil {
			t.Fatal(err)
		}
		kp, err := nkeys.FromSeed([]byte(strings.TrimSpace(string(b))))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := kp.PublicKey()
		started := 0
		for pub := range pubs {
			started++
			if pub != want {
				t.Fatalf("a start has key %s, its seed file holds %s", pub, want)
			}
		}
		if started != n {
			t.Fatalf("%d of %d starts succeeded", started, n)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 1 {
			t.Fatalf("%s holds %d files, want its seed only (no temporary file)", dir, len(entries))
		}
	}
}
