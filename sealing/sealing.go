// Package sealing is the cryptography of erasure by crypto-shredding (DOMAIN.md Product
// decisions 15, issue 12): a person's identifying fields are sealed with a data key of their
// own, and each data key is stored wrapped with the register's master key. Destroying a
// person's wrapped data key (eventstore.KeyStore.Destroy) leaves the sealed fields unreadable
// wherever they are, the stream and its backups included, while everything sealed for other
// persons stays readable.
//
// Both layers are AES-256-GCM from Go's standard library, with a random 96-bit nonce per
// message and the person key as additional data, so that a sealed value or a wrapped key
// copied to another person does not open. Nothing here logs, and no error holds a key or a
// plaintext.
//
// Not wired into nird yet: the append path, the readers and backups must use it together
// (see the note on issue 12), or sealed identities could outlive their keys' backups.
package sealing

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/introreg/nir/smallfile"
)

// KeySize is the size of master and data keys: AES-256.
const KeySize = 32

var (
	// ErrOpen is returned when a sealed value or a wrapped key does not open: another key,
	// another person, or damaged bytes. It says nothing of which.
	ErrOpen = errors.New("sealing: the value does not open with this key")
	// ErrBadKey is returned for a master key of the wrong size or form.
	ErrBadKey = errors.New("sealing: bad key")
)

// Key is an AES-256 key: the master key, or a person's data key.
type Key struct {
	aead cipher.AEAD
}

// NewKey returns the key with the given 32 bytes.
func NewKey(b []byte) (*Key, error) {
	if len(b) != KeySize {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrBadKey, len(b), KeySize)
	}
	block, err := aes.NewCipher(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	return &Key{aead: aead}, nil
}

// NewDataKey makes a random data key and returns it with its bytes (to be wrapped).
func NewDataKey() (*Key, []byte, error) {
	b := make([]byte, KeySize)
	if _, err := rand.Read(b); err != nil {
		return nil, nil, fmt.Errorf("sealing: new data key: %w", err)
	}
	k, err := NewKey(b)
	return k, b, err
}

// Seal encrypts plaintext for the person with key personKey: nonce ‖ ciphertext ‖ tag.
func (k *Key) Seal(personKey string, plaintext []byte) []byte {
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic(fmt.Sprintf("sealing: nonce: %v", err)) // crypto/rand does not fail on Linux
	}
	return k.aead.Seal(nonce, nonce, plaintext, []byte(personKey))
}

// Open decrypts what Seal made for the same person. Errors: ErrOpen.
func (k *Key) Open(personKey string, sealed []byte) ([]byte, error) {
	n := k.aead.NonceSize()
	if len(sealed) < n+k.aead.Overhead() {
		return nil, ErrOpen
	}
	out, err := k.aead.Open(nil, sealed[:n], sealed[n:], []byte(personKey))
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}

// Wrap seals a data key's bytes with the master key m for the person.
func (m *Key) Wrap(personKey string, dataKey []byte) []byte { return m.Seal(personKey, dataKey) }

// Unwrap opens a wrapped data key of the person. Errors: ErrOpen.
func (m *Key) Unwrap(personKey string, wrapped []byte) (*Key, error) {
	b, err := m.Open(personKey, wrapped)
	if err != nil {
		return nil, err
	}
	return NewKey(b)
}

// MasterKeyEnv is the environment variable that may hold the master key (64 hex digits),
// instead of a file.
const MasterKeyEnv = "NIR_MASTER_KEY"

// LoadMaster reads the master key from the environment variable MasterKeyEnv when it is set,
// else from the file at path (64 hex digits), making the file (mode 0600) with a new random
// key when it does not exist and create is set. A file open to others, or writable by its
// group, is refused: without the master key nothing identifying can be read, and with it
// everything can.
func LoadMaster(path string, create bool) (*Key, error) {
	if v, ok := os.LookupEnv(MasterKeyEnv); ok {
		return parseMaster(v, MasterKeyEnv)
	}
	// Never more than a line; a FIFO or a device in its place is refused, not waited on.
	// The mode checked is the file's read (fi), not the path's at some later moment.
	b, fi, err := smallfile.ReadStat(path, 4096)
	if errors.Is(err, os.ErrNotExist) && create {
		k := make([]byte, KeySize)
		if _, err := rand.Read(k); err != nil {
			return nil, fmt.Errorf("sealing: new master key: %w", err)
		}
		if err := smallfile.WriteNew(path, []byte(hex.EncodeToString(k)+"\n")); err != nil {
			return nil, fmt.Errorf("sealing: master key file: %w", err)
		}
		return NewKey(k)
	}
	if err != nil {
		return nil, fmt.Errorf("sealing: master key file: %w", err)
	}
	// Group read is allowed: container platforms mount secrets read-only for a group
	// (deploy/kubernetes, deploy/compose). Anything for others, or a group write, is not.
	if fi.Mode().Perm()&0o027 != 0 {
		return nil, fmt.Errorf("%w: the master key file %s is open to others or writable by its group (mode %v); chmod 600 it", ErrBadKey, path, fi.Mode().Perm())
	}
	return parseMaster(string(b), path)
}

func parseMaster(s, from string) (*Key, error) {
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != KeySize {
		return nil, fmt.Errorf("%w: %s does not hold %d hex digits", ErrBadKey, from, 2*KeySize)
	}
	return NewKey(b)
}
