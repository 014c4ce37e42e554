package backup

import (
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
