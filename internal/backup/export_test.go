package backup

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"hash/crc32"
	"os"
	"path/filepath"

	"github.com/introreg/nir/eventstore"
)

// SetFailAfter makes restores fail after the step named (failAfter) until reset with nil.
func SetFailAfter(f func(step string) error) { failAfter = f }

// Forge rewrites the backup in dir as whoever can write it can: each record through edit,
// the records' checksums, the events file's size and SHA-256, the manifest's digest and its
// own SHA-256 made to match.
func Forge(dir string, edit func(r *eventstore.RawMessage)) error {
	b, err := Open(dir)
	if err != nil {
		return err
	}
	m := b.Manifest
	out := []byte(magic)
	var digest eventstore.Digest
	for r, err := range b.records() {
		if err != nil {
			return err
		}
		edit(&r)
		digest.Add(r.Seq, r.Subject, eventstore.HashOf(r.Data))
		body := appendRecord(nil, r)
		out = binary.BigEndian.AppendUint32(out, uint32(len(body)))
		out = append(out, body...)
		out = binary.BigEndian.AppendUint32(out, crc32.Checksum(body, castagnoli))
	}
	if err := os.WriteFile(filepath.Join(dir, EventsFile), out, 0o600); err != nil {
		return err
	}
	sum := sha256.Sum256(out)
	m.Events.Bytes, m.Events.SHA256 = int64(len(out)), hex.EncodeToString(sum[:])
	m.Digest = hex.EncodeToString(digest.Sum[:])
	return writeManifest(dir, m)
}

// writeManifest writes m as the manifest of the backup in dir, with its own SHA-256 made to
// match.
func writeManifest(dir string, m Manifest) error {
	var err error
	if m.ManifestSHA256, err = m.selfSum(); err != nil {
		return err
	}
	mb, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, ManifestFile), mb, 0o600)
}

// SetMaxManifestBytes bounds the manifest Write writes and Open reads, until restored.
func SetMaxManifestBytes(n int) (restore func()) {
	old := maxManifestBytes
	maxManifestBytes = n
	return func() { maxManifestBytes = old }
}

// ForgeKeys rewrites the keys file of the backup in dir as whoever can write it can: its
// content through edit, and the manifest's size and SHA-256 of it and its own SHA-256 made to
// match. A seal the manifest has is left as it is: only the register's key can make one.
func ForgeKeys(dir string, edit func(k *eventstore.KeyExport)) error {
	b, err := Open(dir)
	if err != nil {
		return err
	}
	k := eventstore.KeyExport{Wrapped: map[string][]byte{}}
	if b.keys != nil {
		k = *b.keys
	}
	edit(&k)
	kb, err := json.Marshal(keyFile{Wrapped: k.Wrapped, Destroyed: k.Destroyed, Damaged: k.Damaged})
	if err != nil {
		return err
	}
	return ForgeKeysFile(dir, kb)
}

// ForgeKeysFile puts kb in place of the keys file of the backup in dir, the manifest made to
// match as ForgeKeys does (a keys file taken from another backup, say).
func ForgeKeysFile(dir string, kb []byte) error {
	b, err := Open(dir)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, KeysFile), kb, 0o600); err != nil {
		return err
	}
	m := b.Manifest
	sum := sha256.Sum256(kb)
	m.Keys = &FileSum{Name: KeysFile, Bytes: int64(len(kb)), SHA256: hex.EncodeToString(sum[:])}
	return writeManifest(dir, m)
}

// Reseal rewrites the manifest of the backup in dir through edit and seals it again with key,
// as only the register's key can (a backup its own nirctl made that way).
func Reseal(dir string, key ed25519.PrivateKey, edit func(m *Manifest)) error {
	b, err := Open(dir)
	if err != nil {
		return err
	}
	m := b.Manifest
	edit(&m)
	if m.Seal, err = seal(m, key); err != nil {
		return err
	}
	return writeManifest(dir, m)
}
