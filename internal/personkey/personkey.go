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
	"os"
	"path/filepath"
	"strings"
)

// SecretSize is the size in bytes of a generated secret.
const SecretSize = 32

// FileName is the name of the secret file nird creates in its data directory.
const FileName = "personkey.secret"

// ErrBadSecret is returned when a secret is missing, malformed or too short.
var ErrBadSecret = errors.New("personkey: bad secret")

// Keyer derives person keys. It is safe for concurrent use.
type Keyer struct {
	secret []byte
}

// New returns a Keyer for secret, which must be at least 16 bytes.
func New(secret []byte) (*Keyer, error) {
	if len(secret) < 16 {
		return nil, fmt.Errorf("%w: %d bytes, want at least 16", ErrBadSecret, len(secret))
	}
	return &Keyer{secret: append([]byte(nil), secret...)}, nil
}

// Key returns the person key for a national id: 64 lowercase hex characters, usable as a
// NATS subject token. Surrounding space is ignored; the id itself is not validated here.
func (k *Keyer) Key(nationalID string) string {
	m := hmac.New(sha256.New, k.secret)
	m.Write([]byte(strings.TrimSpace(nationalID)))
	return hex.EncodeToString(m.Sum(nil))
}

// IsKey reports whether s has the form of a person key.
func IsKey(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// LoadOrCreate reads the hex secret in path, creating it with a fresh random secret (mode
// 0600) when the file does not exist. Every nird of a cluster must be given the same file.
func LoadOrCreate(path string) (*Keyer, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		secret := make([]byte, SecretSize)
		if _, err := rand.Read(secret); err != nil {
			return nil, fmt.Errorf("personkey: generate secret: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("personkey: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("personkey: create %s: %w", path, err)
		}
		_, err = f.WriteString(hex.EncodeToString(secret) + "\n")
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("personkey: write %s: %w", path, err)
		}
		return New(secret)
	}
	if err != nil {
		return nil, fmt.Errorf("personkey: read %s: %w", path, err)
	}
	secret, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not hex", ErrBadSecret, path)
	}
	return New(secret)
}
