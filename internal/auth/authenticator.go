package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
)

// Authenticator maps bearer tokens to principals. Build it with [LoadFile], [New] or [NewDev].
// It is safe for concurrent use.
type Authenticator struct {
	path string     // token file, for Reload; empty for New and NewDev
	dev  *Principal // non-nil in development mode

	table atomic.Pointer[table]
}

// table is one immutable generation of the token file.
type table struct {
	hashes     [][sha256.Size]byte
	principals []Principal
}

func newTable(entries []Entry) *table {
	t := &table{
		hashes:     make([][sha256.Size]byte, len(entries)),
		principals: make([]Principal, len(entries)),
	}
	for i, e := range entries {
		// Validate has checked the form, so decoding cannot fail.
		if _, err := hex.Decode(t.hashes[i][:], []byte(e.TokenSHA256)); err != nil {
			panic("auth: unvalidated entry: " + err.Error())
		}
		t.principals[i] = e.Principal()
	}
	return t
}

// LoadFile reads the token file at path (see [Entry] for the format) and returns an
// authenticator that knows its tokens. [Authenticator.Reload] reads the file again.
func LoadFile(path string) (*Authenticator, error) {
	entries, err := ReadEntries(path)
	if err != nil {
		return nil, err
	}
	a := &Authenticator{path: path}
	a.table.Store(newTable(entries))
	return a, nil
}

// New returns an authenticator for the given entries, validated as a token file's would be.
func New(entries []Entry) (*Authenticator, error) {
	if err := Validate(entries); err != nil {
		return nil, err
	}
	a := &Authenticator{}
	a.table.Store(newTable(entries))
	return a, nil
}

// DefaultDevPrincipal is the principal of development mode when the caller names none: an
// operator, who can reach status and administration but no person data.
var DefaultDevPrincipal = Principal{Name: "dev", Role: RoleOperator}

// NewDev returns an authenticator in development mode: every caller is authenticated, with or
// without a token, as p (DefaultDevPrincipal if p is the zero value). Authorization still
// applies. It is meant for a nird started without a token file on a developer's machine; the
// caller must log that it is in use.
//
// Because one role cannot reach every procedure, a caller in development mode may instead
// act as another role by sending a role name as its bearer token: "kommune:0301" (a kommune
// principal for 0301), "analyst", "operator" or "system"; the principal is then named
// "dev-<role>". Any other token, or none, gives p. Anyone can be anyone in development mode.
func NewDev(p Principal) (*Authenticator, error) {
	if p == (Principal{}) {
		p = DefaultDevPrincipal
	}
	if err := validDev(p); err != nil {
		return nil, err
	}
	a := &Authenticator{dev: &p}
	a.table.Store(&table{})
	return a, nil
}

func validDev(p Principal) error {
	e := Entry{Name: p.Name, Role: p.Role, Kommune: p.Kommune, System: p.System, TokenSHA256: strings.Repeat("0", 64)}
	if err := Validate([]Entry{e}); err != nil {
		return fmt.Errorf("dev principal: %w", err)
	}
	return nil
}

// devPrincipal is the principal a development-mode caller gets for token.
func (a *Authenticator) devPrincipal(token string) Principal {
	role, kommune, _ := strings.Cut(token, ":")
	p := Principal{Name: "dev-" + role, Role: Role(role), Kommune: kommune}
	if validDev(p) != nil {
		return *a.dev
	}
	return p
}

// Dev reports whether a is in development mode, and the principal every caller gets.
func (a *Authenticator) Dev() (Principal, bool) {
	if a.dev == nil {
		return Principal{}, false
	}
	return *a.dev, true
}

// Len returns the number of tokens a knows.
func (a *Authenticator) Len() int { return len(a.table.Load().principals) }

// Reload reads the token file again and swaps in its tokens; requests in flight finish with
// the old set. On error the old set stays. It fails for an authenticator not made by LoadFile.
func (a *Authenticator) Reload() error {
	if a.path == "" {
		return errors.New("auth: reload: authenticator has no token file")
	}
	entries, err := ReadEntries(a.path)
	if err != nil {
		return err
	}
	a.table.Store(newTable(entries))
	return nil
}

// Authenticate returns the principal whose token is token. It returns [ErrUnauthenticated] for
// an empty or unknown token. The comparison takes the same time whichever entry matches.
func (a *Authenticator) Authenticate(token string) (Principal, error) {
	if a.dev != nil {
		return a.devPrincipal(token), nil
	}
	if token == "" {
		return Principal{}, fmt.Errorf("%w: no bearer token", ErrUnauthenticated)
	}
	sum := sha256.Sum256([]byte(token))
	t := a.table.Load()
	i := match(t.hashes, sum)
	if i < 0 {
		return Principal{}, fmt.Errorf("%w: unknown token", ErrUnauthenticated)
	}
	return t.principals[i], nil
}

// match returns the index of sum in hashes, or -1. It compares sum with every entry without
// branching on the data and does not stop at a match, so its timing reveals neither where nor
// whether the hash matched (the file's hashes are unique, so at most one entry matches).
//
// The comparison XORs the four 64-bit words of the two hashes and ORs the differences, the
// same branch-free technique as subtle.ConstantTimeCompare, which costs about 30 times more
// here (180 ns against 6 ns per entry): with one token per kommune a scan would take 70 µs of
// CPU per request instead of 2.5 µs.
func match(hashes [][sha256.Size]byte, sum [sha256.Size]byte) int {
	s0 := binary.LittleEndian.Uint64(sum[0:])
	s1 := binary.LittleEndian.Uint64(sum[8:])
	s2 := binary.LittleEndian.Uint64(sum[16:])
	s3 := binary.LittleEndian.Uint64(sum[24:])
	found := -1
	for i := range hashes {
		h := &hashes[i]
		d := (binary.LittleEndian.Uint64(h[0:]) ^ s0) | (binary.LittleEndian.Uint64(h[8:]) ^ s1) |
			(binary.LittleEndian.Uint64(h[16:]) ^ s2) | (binary.LittleEndian.Uint64(h[24:]) ^ s3)
		eq := subtle.ConstantTimeEq(int32(uint32(d)|uint32(d>>32)), 0)
		found = subtle.ConstantTimeSelect(eq, i, found)
	}
	return found
}

// AuthenticateHeader authenticates the "Authorization: Bearer <token>" entry of h. It takes
// the header as a plain map so that both http.Header and nats.Header (a NATS request on
// nir.cmd.append.<case system>) can be passed; the key is looked up as given, canonical,
// and lowercase.
func (a *Authenticator) AuthenticateHeader(h map[string][]string) (Principal, error) {
	var v string
	for _, k := range [...]string{"Authorization", "authorization", "AUTHORIZATION"} {
		if vs := h[k]; len(vs) > 0 {
			v = vs[0]
			break
		}
	}
	token, err := BearerToken(v)
	if err != nil {
		if a.dev != nil {
			return *a.dev, nil
		}
		return Principal{}, err
	}
	return a.Authenticate(token)
}

// BearerToken extracts the token of an "Authorization" header value "Bearer <token>" (the
// scheme is case-insensitive, RFC 9110 11.1). It returns [ErrUnauthenticated] for an empty
// value or another scheme.
func BearerToken(authorization string) (string, error) {
	if authorization == "" {
		return "", fmt.Errorf("%w: no Authorization header", ErrUnauthenticated)
	}
	scheme, token, ok := strings.Cut(authorization, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", fmt.Errorf("%w: Authorization header is not a bearer token", ErrUnauthenticated)
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return "", fmt.Errorf("%w: empty bearer token", ErrUnauthenticated)
	}
	return token, nil
}

// SetBearer sets the Authorization header of h to carry token. Clients (nirctl, tests, a
// case system's NATS request) use it.
func SetBearer(h http.Header, token string) {
	h.Set("Authorization", "Bearer "+token)
}

// RunReload reloads the token file each time trigger delivers (cmd/nird passes a channel
// given to signal.Notify for SIGHUP) and returns nil when ctx is done. A failed reload keeps
// the old tokens and is logged, with the file's validation message, at Error; a successful
// one at Info with the number of tokens. A nil logger discards.
func (a *Authenticator) RunReload(ctx context.Context, trigger <-chan os.Signal, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-trigger:
			if err := a.Reload(); err != nil {
				logger.Error("token file reload failed; keeping the old tokens", "err", err)
				continue
			}
			logger.Info("token file reloaded", "tokens", a.Len())
		}
	}
}
