// Package personkey derives the pseudonymous person key that names a person's subject in the
// event stream (DESIGN.md "Events", DOMAIN.md "Product decisions" 8).
//
// The key is HMAC-SHA256 over the national id (fødselsnummer, D-nummer or DUF-nummer), keyed
// with a secret that every nird of a deployment shares. Without the secret a key cannot be
// linked back to a national id by hashing candidate numbers (the number space is small), which
// is why a plain hash would not do. The plain id lives only inside event payloads.
package personkey

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/introreg/nir/rules"
	"github.com/introreg/nir/smallfile"
)

// SecretSize is the size in bytes of a generated secret.
const SecretSize = 32

// FileName is the name of the secret file nird creates in its data directory.
const FileName = "personkey.secret"

// minDistinctBytes is the fewest distinct byte values a secret must hold: a random secret of
// 16 bytes or more practically always has more, while an all-zero, repeated-byte or short
// repeating pattern key (a placeholder, a test value, a botched generation) has fewer.
const minDistinctBytes = 8

var (
	// ErrBadSecret is returned when a secret is missing, malformed, too short or degenerate.
	ErrBadSecret = errors.New("personkey: bad secret")
	// ErrInsecureFile is returned by Load when the secret file may be read or written by
	// group or others.
	ErrInsecureFile = errors.New("personkey: secret file open to group or others")
)

// Keyer derives person keys. It is safe for concurrent use.
type Keyer struct {
	secret []byte
	note   string // what Load changed about the file
	owner  string // what is wrong with the file's owner
	// macs holds HMAC states keyed with secret, reset after each use: keying a new one
	// costs two hash blocks and six allocations, on every append.
	macs sync.Pool
}

// New returns a Keyer for secret, which must be at least 16 bytes and not degenerate (at
// least 8 distinct byte values: no all-zero or repeating placeholder).
func New(secret []byte) (*Keyer, error) {
	if len(secret) < 16 {
		return nil, fmt.Errorf("%w: %d bytes, want at least 16", ErrBadSecret, len(secret))
	}
	var seen [256]bool
	distinct := 0
	for _, b := range secret {
		if !seen[b] {
			seen[b] = true
			distinct++
		}
	}
	if distinct < minDistinctBytes {
		return nil, fmt.Errorf("%w: degenerate (%d distinct byte values, as in an all-zero or repeating placeholder); generate a random one", ErrBadSecret, distinct)
	}
	return &Keyer{secret: append([]byte(nil), secret...)}, nil
}

// Generate returns a Keyer for a fresh random secret of SecretSize bytes.
func Generate() (*Keyer, error) {
	secret := make([]byte, SecretSize)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("personkey: generate secret: %w", err)
	}
	return New(secret)
}

// Key returns the person key for a national id: 64 lowercase hex characters, usable as a
// NATS subject token. Surrounding space is ignored; the id itself is not validated here.
func (k *Keyer) Key(nationalID string) string {
	m, _ := k.macs.Get().(hash.Hash)
	if m == nil {
		m = hmac.New(sha256.New, k.secret)
	}
	m.Write([]byte(strings.TrimSpace(nationalID)))
	var sum [sha256.Size]byte
	key := hex.EncodeToString(m.Sum(sum[:0]))
	m.Reset()
	k.macs.Put(m)
	return key
}

// fingerprintLabel is what Fingerprint keys: a fixed label, never a national id.
const fingerprintLabel = "nir person key fingerprint v1"

// Fingerprint identifies the secret without revealing it: the first 16 bytes, in hex, of
// the HMAC of a fixed label. nird records it with the stream, so that a nird given another
// secret (a lost and regenerated file, another data directory) is refused instead of keying
// the same national ids to other persons.
func (k *Keyer) Fingerprint() string {
	m := hmac.New(sha256.New, k.secret)
	m.Write([]byte(fingerprintLabel))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// IsKey reports whether s has the form of a person key (rules.IsPersonKey: the form is the
// regelmotor's too, which validates keys inside events).
func IsKey(s string) bool { return rules.IsPersonKey(s) }

// Load reads the hex secret in path. A missing file is an error wrapping os.ErrNotExist
// (the caller decides whether a new key may be made: never when events were keyed with the
// lost one). Whoever holds the secret can link person keys back to national ids, so the
// file's mode is checked: one that group or others may write is refused (ErrInsecureFile);
// one of nird's own that they may read is made private (mode 0600), and LoadNote says so;
// one provisioned for nird by another owner (a mounted secret, root:nird 0640) may be
// readable by a group nird is in, never by others (ErrInsecureFile).
func Load(path string) (*Keyer, error) { return load(path, true) }

// Inspect is Load changing nothing (for nird --check-config): a file Load would make
// private is left as it is, and LoadNote says what Load would do.
func Inspect(path string) (*Keyer, error) { return load(path, false) }

func load(path string, fix bool) (*Keyer, error) {
	// A FIFO in its place would make Open wait for ever, a device never end.
	f, fi, err := smallfile.Open(path)
	if err != nil {
		return nil, fmt.Errorf("personkey: %w", err)
	}
	defer f.Close()
	note, err := checkMode(f, fi, path, fix)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return nil, fmt.Errorf("personkey: read %s: %w", path, err)
	}
	secret, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not hex", ErrBadSecret, path)
	}
	k, err := New(secret)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	k.note, k.owner = note, smallfile.OwnerNote(fi, path)
	return k, nil
}

// LoadNote says what Load changed about the key file, or Inspect would change ("" when
// nothing), for the log.
func (k *Keyer) LoadNote() string { return k.note }

// OwnerNote says that the key file belongs to another user than nird's and root ("" when
// not): that user can read the key, and replace it or open it to others after Load checked
// it. Load does not refuse it: deploy/compose's secrets are the operator's own files, read
// through their group (a Kubernetes Secret's are root's).
func (k *Keyer) OwnerNote() string { return k.owner }

// checkMode applies Load's rule on the file's mode (see Load); without fix it changes
// nothing and says what it would change.
func checkMode(f *os.File, fi os.FileInfo, path string, fix bool) (note string, err error) {
	perm := fi.Mode().Perm()
	const leak = "(and if anyone may have copied it, the person keys are no longer pseudonymous to them)"
	if perm&0o022 != 0 {
		return "", fmt.Errorf("%w: %s has mode %04o: group or others may replace the key; run chmod 600 %s %s", ErrInsecureFile, path, perm, path, leak)
	}
	if perm&0o044 == 0 {
		return "", nil
	}
	owner, group, ok := smallfile.Owner(fi)
	if !ok || owner == os.Geteuid() {
		if !fix {
			return fmt.Sprintf("%s has mode %04o, readable by group or others; the start will make it %04o %s", path, perm, perm&^0o077, leak), nil
		}
		if err := f.Chmod(perm &^ 0o077); err != nil {
			return "", fmt.Errorf("%w: %s has mode %04o and could not be made private (%v); run chmod 600 %s %s", ErrInsecureFile, path, perm, err, path, leak)
		}
		return fmt.Sprintf("%s had mode %04o, readable by group or others; made it %04o %s", path, perm, perm&^0o077, leak), nil
	}
	if perm&0o004 == 0 && inGroup(group) {
		return "", nil // a secret provisioned for nird's group
	}
	return "", fmt.Errorf("%w: %s has mode %04o and another owner: readable by others, or by a group nird is not in; make it readable by nird's user or group only (e.g. chown root:nird, chmod 0640) %s", ErrInsecureFile, path, perm, leak)
}

// inGroup reports whether gid is the process's group or one of its supplementary groups.
func inGroup(gid int) bool {
	if gid == os.Getegid() {
		return true
	}
	groups, _ := os.Getgroups()
	for _, g := range groups {
		if g == gid {
			return true
		}
	}
	return false
}

// Write stores the secret in hex at path, which must not exist yet: created with mode 0600,
// fsynced, and its directory too.
func (k *Keyer) Write(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("personkey: %w", err)
	}
	if err := smallfile.WriteNew(path, []byte(hex.EncodeToString(k.secret)+"\n")); err != nil {
		return fmt.Errorf("personkey: %w", err)
	}
	return nil
}

// LoadOrCreate reads the secret in path (Load), creating it with a fresh random secret
// (mode 0600) when the file does not exist. It is for tools and tests: nird uses Load and
// Generate, so that a key lost from a register that holds events is never replaced
// silently.
func LoadOrCreate(path string) (*Keyer, error) {
	k, err := Load(path)
	if !errors.Is(err, os.ErrNotExist) {
		return k, err
	}
	if k, err = Generate(); err != nil {
		return nil, err
	}
	if err := k.Write(path); err != nil {
		return nil, err
	}
	return k, nil
}
