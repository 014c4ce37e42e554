package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/nats-io/nats.go"
)

// testTokens makes one token per role and an authenticator that knows them.
func testTokens(tb testing.TB) (map[string]string, []Principal, *Authenticator) {
	tb.Helper()
	principals := []Principal{
		{Name: "oslo-fagsystem", Role: RoleKommune, Kommune: "0301", System: "Visma Flyt"},
		{Name: "bergen-fagsystem", Role: RoleKommune, Kommune: "4601"},
		{Name: "ssb", Role: RoleAnalyst},
		{Name: "drift", Role: RoleOperator},
		{Name: "regelmotor", Role: RoleSystem},
	}
	tokens := map[string]string{}
	var entries []Entry
	for _, p := range principals {
		token, e, err := GenerateToken(p)
		if err != nil {
			tb.Fatal(err)
		}
		tokens[p.Name] = token
		entries = append(entries, e)
	}
	a, err := New(entries)
	if err != nil {
		tb.Fatal(err)
	}
	return tokens, principals, a
}

func TestAuthenticator_Authenticate(t *testing.T) {
	t.Parallel()
	tokens, principals, a := testTokens(t)
	for _, p := range principals {
		t.Run("OK/"+p.Name, func(t *testing.T) {
			got, err := a.Authenticate(tokens[p.Name])
			if err != nil || got != p {
				t.Fatalf("Authenticate = %+v, %v; want %+v", got, err, p)
			}
		})
	}
	oslo := tokens["oslo-fagsystem"]
	for name, token := range map[string]string{
		"Empty":         "",
		"Unknown":       "nir_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"Truncated":     oslo[:len(oslo)-1],
		"Extended":      oslo + "x",
		"TheHashItself": HashToken(oslo),
	} {
		t.Run("ErrUnauthenticated/"+name, func(t *testing.T) {
			_, err := a.Authenticate(token)
			if !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("Authenticate = %v, want ErrUnauthenticated", err)
			}
			if token != "" && strings.Contains(err.Error(), token) {
				t.Fatalf("error %q repeats the token", err)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	t.Parallel()
	h := func(s string) [sha256.Size]byte { return sha256.Sum256([]byte(s)) }
	hashes := [][sha256.Size]byte{h("a"), h("b"), h("c")}
	// Differs from h("c") in the last byte only: a compare that looked at a prefix would match.
	lastByte := h("c")
	lastByte[sha256.Size-1] ^= 1
	firstByte := h("a")
	firstByte[0] ^= 0x80
	tests := []struct {
		name string
		sum  [sha256.Size]byte
		want int
	}{
		{"First", h("a"), 0},
		{"Middle", h("b"), 1},
		{"Last", h("c"), 2},
		{"None", h("d"), -1},
		{"DiffersInLastByte", lastByte, -1},
		{"DiffersInFirstByte", firstByte, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := match(hashes, tt.sum); got != tt.want {
				t.Errorf("match = %d, want %d", got, tt.want)
			}
		})
	}
	// A difference in any one bit of any byte is a mismatch (each 64-bit word, both halves).
	for i := range sha256.Size {
		for bit := range 8 {
			sum := h("b")
			sum[i] ^= 1 << bit
			if got := match(hashes, sum); got != -1 {
				t.Fatalf("hash differing in byte %d bit %d matched entry %d", i, bit, got)
			}
		}
	}
	if got := match(nil, h("a")); got != -1 {
		t.Errorf("match(no entries) = %d, want -1", got)
	}
}

func TestBearerToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		header string
		want   string // "" means ErrUnauthenticated
	}{
		{"Bearer nir_abc", "nir_abc"},
		{"bearer nir_abc", "nir_abc"},
		{"BEARER  nir_abc ", "nir_abc"},
		{"", ""},
		{"Bearer", ""},
		{"Bearer ", ""},
		{"Basic dXNlcjpwYXNz", ""},
		{"nir_abc", ""},
	}
	for _, tt := range tests {
		t.Run(tt.header, func(t *testing.T) {
			got, err := BearerToken(tt.header)
			if tt.want == "" {
				if !errors.Is(err, ErrUnauthenticated) {
					t.Fatalf("BearerToken(%q) = %q, %v; want ErrUnauthenticated", tt.header, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("BearerToken(%q) = %q, %v; want %q", tt.header, got, err, tt.want)
			}
		})
	}
}

func TestAuthenticator_AuthenticateHeader(t *testing.T) {
	t.Parallel()
	tokens, _, a := testTokens(t)
	token := tokens["ssb"]
	httpHeader := http.Header{}
	SetBearer(httpHeader, token)
	tests := []struct {
		name   string
		header map[string][]string
		ok     bool
	}{
		{"HTTP", httpHeader, true},
		{"NATS", nats.Header{"Authorization": {"Bearer " + token}}, true},
		{"NATSLowercase", nats.Header{"authorization": {"Bearer " + token}}, true},
		{"Missing", nats.Header{"Nats-Msg-Id": {"x"}}, false},
		{"Nil", nil, false},
		{"WrongToken", http.Header{"Authorization": {"Bearer " + tokens["drift"] + "0"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := a.AuthenticateHeader(tt.header)
			if tt.ok {
				if err != nil || p.Name != "ssb" {
					t.Fatalf("AuthenticateHeader = %+v, %v; want ssb", p, err)
				}
				return
			}
			if !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("AuthenticateHeader = %+v, %v; want ErrUnauthenticated", p, err)
			}
		})
	}
}

func TestNewDev(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   Principal
		want Principal
		err  bool
	}{
		{"Default", Principal{}, DefaultDevPrincipal, false},
		{"Kommune", Principal{Name: "dev-oslo", Role: RoleKommune, Kommune: "0301"}, Principal{Name: "dev-oslo", Role: RoleKommune, Kommune: "0301"}, false},
		{"KommuneWithoutNumber", Principal{Name: "dev", Role: RoleKommune}, Principal{}, true},
		{"UnknownRole", Principal{Name: "dev", Role: "root"}, Principal{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := NewDev(tt.in)
			if tt.err {
				if !errors.Is(err, ErrInvalidConfig) {
					t.Fatalf("NewDev = %v, want ErrInvalidConfig", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p, dev := a.Dev(); !dev || p != tt.want {
				t.Fatalf("Dev() = %+v, %v; want %+v, true", p, dev, tt.want)
			}
			for _, token := range []string{"", "anything"} {
				if p, err := a.Authenticate(token); err != nil || p != tt.want {
					t.Fatalf("Authenticate(%q) = %+v, %v; want %+v", token, p, err, tt.want)
				}
			}
			if p, err := a.AuthenticateHeader(nil); err != nil || p != tt.want {
				t.Fatalf("AuthenticateHeader(nil) = %+v, %v", p, err)
			}
		})
	}
	// A development-mode caller may pick another role by sending it as the token.
	a, err := NewDev(Principal{})
	if err != nil {
		t.Fatal(err)
	}
	for token, want := range map[string]Principal{
		"kommune:0301": {Name: "dev-kommune", Role: RoleKommune, Kommune: "0301"},
		"analyst":      {Name: "dev-analyst", Role: RoleAnalyst},
		"system":       {Name: "dev-system", Role: RoleSystem},
		"operator":     {Name: "dev-operator", Role: RoleOperator},
		"kommune":      DefaultDevPrincipal, // no kommunenummer: not a principal
		"kommune:31":   DefaultDevPrincipal,
		"analyst:0301": DefaultDevPrincipal,
		"root":         DefaultDevPrincipal,
		"nir_abc":      DefaultDevPrincipal,
	} {
		if p, err := a.Authenticate(token); err != nil || p != want {
			t.Errorf("dev Authenticate(%q) = %+v, %v; want %+v", token, p, err, want)
		}
		if p, err := a.AuthenticateHeader(map[string][]string{"Authorization": {"Bearer " + token}}); err != nil || p != want {
			t.Errorf("dev AuthenticateHeader(%q) = %+v, %v; want %+v", token, p, err, want)
		}
	}
	if p, err := a.AuthenticateHeader(map[string][]string{"Authorization": {"Basic eA=="}}); err != nil || p != DefaultDevPrincipal {
		t.Errorf("dev AuthenticateHeader(Basic) = %+v, %v", p, err)
	}

	_, _, a = testTokens(t)
	if _, dev := a.Dev(); dev {
		t.Error("a token-file authenticator reports dev mode")
	}
}

func TestLoadFile_Reload(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tokens.json")
	t1, e1, _ := GenerateToken(Principal{Name: "oslo", Role: RoleKommune, Kommune: "0301"})
	t2, e2, _ := GenerateToken(Principal{Name: "drift", Role: RoleOperator})
	if err := WriteEntries(path, []Entry{e1}); err != nil {
		t.Fatal(err)
	}
	a, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(t2); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("token not yet in the file: %v", err)
	}

	// Reload while authenticating concurrently: every call sees the old or the new table.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				if p, err := a.Authenticate(t1); err != nil || p.Name != "oslo" {
					t.Errorf("Authenticate during reload = %+v, %v", p, err)
					return
				}
			}
		})
	}
	if err := WriteEntries(path, []Entry{e1, e2}); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if p, err := a.Authenticate(t2); err != nil || p.Name != "drift" {
		t.Fatalf("after reload: %+v, %v", p, err)
	}
	if a.Len() != 2 {
		t.Fatalf("Len = %d, want 2", a.Len())
	}

	// A broken file keeps the old tokens.
	if err := os.WriteFile(path, []byte(`[{"name":"x"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Reload(broken) = %v, want ErrInvalidConfig", err)
	}
	if _, err := a.Authenticate(t2); err != nil {
		t.Fatalf("a failed reload dropped the old tokens: %v", err)
	}

	if _, err := LoadFile(filepath.Join(t.TempDir(), "missing.json")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("LoadFile(missing) = %v, want ErrNotExist", err)
	}
	if err := (&Authenticator{}).Reload(); err == nil {
		t.Fatal("Reload without a file succeeded")
	}
}

// BenchmarkAuthenticate measures one authentication against a token file the size of a
// national deployment: one token per kommune (357) plus a few others.
func BenchmarkAuthenticate(b *testing.B) {
	var entries []Entry
	var last string
	for i := range 400 {
		token, e, err := GenerateToken(Principal{Name: fmt.Sprintf("p%d", i), Role: RoleAnalyst})
		if err != nil {
			b.Fatal(err)
		}
		entries = append(entries, e)
		last = token
	}
	a, err := New(entries)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Authenticate(last); err != nil {
			b.Fatal(err)
		}
	}
}

func TestAuthenticator_RunReload(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tokens.json")
	if _, err := AddToken(path, Principal{Name: "oslo", Role: RoleKommune, Kommune: "0301"}); err != nil {
		t.Fatal(err)
	}
	a, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	trigger := make(chan os.Signal)
	done := make(chan error, 1)
	go func() { done <- a.RunReload(ctx, trigger, nil) }()

	token, err := AddToken(path, Principal{Name: "ssb", Role: RoleAnalyst})
	if err != nil {
		t.Fatal(err)
	}
	// The channel is unbuffered: the second send is received only after the first reload.
	trigger <- syscall.SIGHUP
	trigger <- syscall.SIGHUP
	if a.Len() != 2 {
		t.Fatalf("token file not reloaded: %d tokens", a.Len())
	}
	if p, err := a.Authenticate(token); err != nil || p.Name != "ssb" {
		t.Fatalf("new token after reload: %+v, %v", p, err)
	}

	// A broken file is logged and the old tokens stay.
	if err := os.WriteFile(path, []byte("["), 0o600); err != nil {
		t.Fatal(err)
	}
	trigger <- syscall.SIGHUP
	trigger <- syscall.SIGHUP // the first reload has finished once the second is received
	if a.Len() != 2 {
		t.Fatalf("a broken file changed the tokens: %d", a.Len())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("RunReload = %v", err)
	}
}
