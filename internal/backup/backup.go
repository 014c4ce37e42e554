// Package backup copies the register's event stream to a directory and back: a consistent
// backup while nird runs and takes appends, and a restore onto an empty data directory or an
// empty cluster, whole or up to an earlier point (disaster recovery from a bad import).
//
// # Format
//
// A backup is a directory (mode 0700) with two files (mode 0600: they hold personal data):
//
//   - events.nirbak: "NIRBAK1\n", then one record per stream message in sequence order:
//     a 4-byte big-endian length n, n bytes of body, and the CRC-32C (Castagnoli) of the
//     body, 4 bytes big-endian. The body is uvarint sequence, varint receive time (Unix
//     nanoseconds), the subject, the headers (uvarint count, then name and value pairs) and
//     the data, each string a uvarint length and its bytes. The data is the stored event as
//     nird encoded it (protobuf, deterministic), byte for byte.
//   - keys.json: the persons' data keys as the bucket NIR_KEYS holds them (DOMAIN.md Product
//     decisions 15): each person key's data key wrapped with the master key (base64), which
//     the master key alone opens, and the persons whose keys were destroyed (erased). Every
//     backup, full or incremental, holds the whole bucket as it was after its events were
//     copied. Without the master key (kept apart, like the person key) the backup's national
//     ids and birth dates cannot be read. It names (damaged) the data keys the bucket counts
//     but could not read back, when the backup was made accepting them (below).
//   - manifest.json (Manifest): the sequence range, times, the stream's identity and
//     metadata (which name the person key's fingerprint, never the key), the nir version,
//     the size and SHA-256 of events.nirbak, and the SHA-256 of the manifest itself
//     (Manifest.ManifestSHA256), and, when made with the register's checkpoint key
//     (Options.Key), its seal: the key's signature of it, which binds keys.json to the events
//     and the checkpoints (Seal). It is written last: a directory without it is an
//     unfinished backup.
//
// An incremental backup (Options.After) holds the messages after an earlier backup's last
// sequence and names that backup's SHA-256, so that a restore applies a chain in order.
//
// # Damaged data keys and checkpoints
//
// The server answers a record of the key bucket or the checkpoint stream whose checksum
// fails as no message, and goes on counting it. A backup never goes without such a record
// unsaid: Write fails with ErrDamaged naming each (a data key by its id, a checkpoint by its
// sequence in the checkpoint stream) and writes nothing, unless the caller accepts exactly
// those (Options.AcceptDamagedKeys, AcceptUnreadableCheckpoints, or recorded by the earlier
// backup of an incremental one); then the manifest records them. Failing is the default
// because a backup without a data key restores a register that reads what the key sealed
// (national ids, birth dates) as unreadable («uleselig»), and because only the earlier backups still hold
// the key: a backup job that goes on succeeding lets them be rotated away unnoticed. Restore
// takes a damaged key from an earlier backup of its chain that holds it whole, and stores
// any other as an entry no master key opens, which the restored register reads as damaged
// (DataLoss), as the register backed up did, never as an erasure (LostKeys names them).
//
// Restore reads the whole file and checks its SHA-256, every record's CRC, the chain's
// digest, each carried checkpoint's digest at its sequence, and the checkpoints' order before
// it stores anything (a broken link is no refusal: BrokenLinks) (Verify, which a caller runs
// before it opens the target; CheckSignatures checks the checkpoints' signatures against the
// register's key, and that there is one), and then stores each message at its own sequence
// (eventstore.Import): a damaged or truncated backup is refused with the record it fails at,
// and the target is left untouched.
package backup

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"iter"
	"maps"
	"math"
	"net/textproto"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/buildinfo"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/smallfile"
)

// The files of a backup directory.
const (
	EventsFile   = "events.nirbak"
	KeysFile     = "keys.json"
	ManifestFile = "manifest.json"
)

const magic = "NIRBAK1\n"

// FormatVersion is the version of the backup format this package writes and reads.
const FormatVersion = 1

// Manifest describes a backup.
type Manifest struct {
	Format     int       `json:"format"`
	NirVersion string    `json:"nir_version"`
	Created    time.Time `json:"created"`
	Stream     string    `json:"stream"`
	// StreamID is the stream instance's identity (eventstore.Identity.String).
	StreamID string `json:"stream_id"`
	// Metadata is the stream's metadata, among it the person key's fingerprint.
	Metadata map[string]string `json:"metadata"`
	// FirstSeq and LastSeq are the range of sequences held (FirstSeq > LastSeq: none).
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	Count    uint64 `json:"count"`
	// FirstTime and LastTime are the stream's receive times of the first and last message.
	FirstTime time.Time `json:"first_time,omitzero"`
	LastTime  time.Time `json:"last_time,omitzero"`
	// After is the SHA-256 of the backup this one continues (incremental), "" for a full one.
	After string `json:"after,omitempty"`
	// Events is the events file: its size and SHA-256.
	Events FileSum `json:"events"`
	// Keys is the data-key file (absent in backups made before identities were sealed).
	Keys *FileSum `json:"keys,omitempty"`
	// Digest is the checkpoint digest (eventstore.Digest, hex) of the stream through
	// LastSeq: what a checkpoint of LastSeq would say. Restore checks the restored stream
	// against it. Empty in a backup that continues one without it.
	Digest string `json:"digest,omitempty"`
	// Checkpoints are the encodings (base64, as stored) of the stream's checkpoints that
	// cover sequences FirstSeq to LastSeq, in order; Restore stores them again.
	Checkpoints []string `json:"checkpoints,omitempty"`
	// DamagedKeys are the ids of the data keys the register's bucket counts but could not
	// read back (damaged on disk) when the backup was made, which keys.json therefore lacks:
	// the backup was made with them accepted (Options.AcceptDamagedKeys). A restore takes
	// each from an earlier backup of its chain that holds it, and otherwise stores an entry
	// that reads as damaged, never as an erasure.
	DamagedKeys []string `json:"damaged_keys,omitempty"`
	// UnreadableCheckpoints are the sequences in the checkpoint stream of the checkpoints
	// this backup should carry but could not read back (damaged on disk), accepted
	// (Options.AcceptUnreadableCheckpoints): Checkpoints lacks them.
	UnreadableCheckpoints []uint64 `json:"unreadable_checkpoints,omitempty"`
	// ManifestSHA256 is the SHA-256 (hex) of the manifest's own JSON encoding (json.Marshal)
	// with this field empty, so that damage anywhere in it (the stream's metadata with the
	// person key's fingerprint, a checkpoint) is found when the backup is opened, not by a
	// restored register. Empty in backups made before it; Open checks it when present.
	ManifestSHA256 string `json:"manifest_sha256,omitempty"`
	// Seal is the signature of the manifest by the register's checkpoint key
	// (Options.Key), made when the backup is written; nil when it was made without the key,
	// or before backups were sealed. See Seal.
	Seal *Seal `json:"seal,omitempty"`
}

// Seal signs a manifest with the register's checkpoint key (ed25519), which nird signs its
// checkpoints with: the signature is over sealPrefix and the manifest's SHA-256 with neither
// ManifestSHA256 nor Seal (sealMessage). The checkpoints cover the events and not the data
// keys, which live in a bucket of their own; the manifest holds the keys file's SHA-256
// beside the events' digest through LastSeq and the checkpoints, so the seal is a signed
// checkpoint of the backup's last sequence that covers its keys file too: a keys file
// altered (a key marked destroyed, dropped, added) or taken from another backup, its
// manifest made to match, no longer holds under the key (CheckSignatures).
type Seal struct {
	PublicKey string `json:"public_key"` // hex
	Signature string `json:"signature"`  // base64
}

// sealPrefix begins what a Seal signs. No checkpoint's encoding begins with it ('n' is no
// protobuf field tag), so a seal never passes for a checkpoint, nor a checkpoint for a seal.
const sealPrefix = "nir backup manifest seal v1\n"

// sealMessage is what m's Seal signs.
func (m Manifest) sealMessage() ([]byte, error) {
	m.Seal = nil
	sum, err := m.selfSum()
	if err != nil {
		return nil, err
	}
	return []byte(sealPrefix + sum), nil
}

// seal signs m with key.
func seal(m Manifest, key ed25519.PrivateKey) (*Seal, error) {
	msg, err := m.sealMessage()
	if err != nil {
		return nil, err
	}
	return &Seal{PublicKey: hex.EncodeToString(key.Public().(ed25519.PublicKey)),
		Signature: base64.StdEncoding.EncodeToString(ed25519.Sign(key, msg))}, nil
}

// ErrKeysNotCovered is the error of a restore with the register's public key
// (CheckSignatures) of a backup whose keys file the key does not vouch for: its manifest has
// no seal, or the seal is another key's or does not hold for the manifest.
var ErrKeysNotCovered = errors.New("backup: the keys file is not covered by a signature of the key given")

// selfSum is the SHA-256 (hex) that ManifestSHA256 holds.
func (m Manifest) selfSum() (string, error) {
	m.ManifestSHA256 = ""
	b, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:]), nil
}

// FileSum is a file's size and SHA-256 (hex).
type FileSum struct {
	Name   string `json:"name"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// Options configure Write.
type Options struct {
	// After, when set, makes the backup incremental: only the messages after After.LastSeq,
	// chained to it.
	After *Manifest
	// Through bounds the backup (0 = the stream's last sequence when it starts).
	Through uint64
	// Progress, when set, is called now and then with the last sequence copied and the last.
	Progress func(done, total uint64)
	// AcceptDamagedKeys and AcceptUnreadableCheckpoints name the data keys (by id) and the
	// checkpoints (by their sequence in the checkpoint stream) the register cannot read back
	// that the backup may go without, recording them in its manifest. Any other such one
	// fails the backup (ErrDamaged). Those an incremental backup's earlier one (After)
	// recorded are accepted too.
	AcceptDamagedKeys           []string
	AcceptUnreadableCheckpoints []uint64
	// Key, when set, seals the manifest (Seal): the register's checkpoint key, which nird
	// signs its checkpoints with. The checkpoints the backup carries must be signed by it.
	Key ed25519.PrivateKey
}

// ErrDamaged is the error of a backup that would hold less than the register: a data key or
// a checkpoint the register holds cannot be read back (damaged on disk). The error names
// them (data keys by id, never a person's national id) and the way on.
var ErrDamaged = errors.New("backup: the register holds data it cannot read back")

// ErrThroughBeyondEnd is the error of a backup bounded (Options.Through) beyond the stream's
// last sequence.
var ErrThroughBeyondEnd = errors.New("backup: the bound is beyond the stream's end")

// confirmTries is how many times Write reads the stream's end from a leader it cannot
// confirm (ErrUnconfirmed) before it gives up: a deposed leader learns it within seconds, and
// the next read goes to the new one.
const confirmTries = 3

// confirmedLastSeq is the last sequence of a stream leader confirmed since before the read
// (eventstore.Store.ConfirmedLastSeq): a node cut off from the others by a partition answers
// as leader for seconds from a store that ends early, and a backup bounded by its answer
// ended before events the new leader had acknowledged. Confirming a leader after reading
// LeaderLastSeq did not tie the confirmation to the node that answered the read; the bound is
// now the confirmed leader's own. Unconfirmed, it is asked again, up to confirmTries times,
// and then refused with nothing written.
func confirmedLastSeq(ctx context.Context, store *eventstore.Store) (uint64, error) {
	for try := 1; ; try++ {
		last, err := store.ConfirmedLastSeq(ctx, time.Now())
		if err == nil {
			return last, nil
		}
		if !errors.Is(err, eventstore.ErrUnconfirmed) {
			return 0, fmt.Errorf("backup: confirming the stream leader: %w", err)
		}
		if try == confirmTries {
			return 0, fmt.Errorf("backup: the stream leader whose last sequence bounds the backup could not be confirmed, %d times (a node cut off from the cluster, or an election): the backup could end before events the cluster acknowledged, so nothing was copied; run it again once the cluster is whole: %w",
				try, err)
		}
	}
}

// Write copies the stream into dir, which must not exist or be empty, and returns its
// manifest. The copy is the stream as it stood at one sequence (the last when Write starts,
// or Options.Through): appends that arrive meanwhile are left for the next backup.
func Write(ctx context.Context, store *eventstore.Store, dir string, opt Options) (Manifest, error) {
	if err := emptyDir(dir); err != nil {
		return Manifest{}, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Manifest{}, err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return Manifest{}, err
	}
	id, err := store.CurrentIdentity(ctx)
	if err != nil {
		return Manifest{}, err
	}
	// A register a restore did not finish lacks what the restore had yet to write (data
	// keys, checkpoints): a backup of it would hand that loss on as a whole register, whose
	// restore then finishes without a word.
	if err := store.UnfinishedRestore(ctx); err != nil {
		return Manifest{}, fmt.Errorf("backup: %w", err)
	}
	// The leader's, which has every acknowledged event: a replica that lags answers a
	// direct get from behind, and the backup ended before events acknowledged before it.
	through, err := confirmedLastSeq(ctx, store)
	if err != nil {
		return Manifest{}, err
	}
	// A bound beyond the stream's end (a typo, another register's sequence) is refused at
	// once: the copy would otherwise wait for sequences that may never come.
	if opt.Through > through {
		return Manifest{}, fmt.Errorf("%w: --through %d is beyond the stream's last sequence %d: give a sequence the register holds, or leave --through out to copy through the last", ErrThroughBeyondEnd, opt.Through, through)
	}
	if opt.Through != 0 {
		through = opt.Through
	}
	m := Manifest{Format: FormatVersion, NirVersion: buildinfo.Read().Version, Created: time.Now().UTC(),
		Stream: eventstore.StreamName, StreamID: id.String(), Metadata: maps.Clone(id.Metadata), FirstSeq: 1}
	if opt.After != nil {
		if opt.After.StreamID != m.StreamID {
			return Manifest{}, fmt.Errorf("backup: the earlier backup is of another stream (%s, this one is %s): make a full backup", opt.After.StreamID, m.StreamID)
		}
		m.FirstSeq, m.After = opt.After.LastSeq+1, opt.After.Events.SHA256
	}

	tmp, err := os.CreateTemp(dir, EventsFile+".tmp*")
	if err != nil {
		return Manifest{}, err
	}
	defer os.Remove(tmp.Name())
	sum := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(tmp, sum), 1<<20)
	if _, err := w.WriteString(magic); err != nil {
		tmp.Close()
		return Manifest{}, err
	}
	var body []byte
	var digest eventstore.Digest
	digestOK := opt.After == nil
	if !digestOK && opt.After.Digest != "" {
		if d, err := hex.DecodeString(opt.After.Digest); err == nil && len(d) == len(digest.Sum) {
			digest.Seq, digestOK = opt.After.LastSeq, true
			copy(digest.Sum[:], d)
		}
	}
	last, err := store.Export(ctx, m.FirstSeq, through, func(r eventstore.RawMessage) error {
		digest.Add(r.Seq, r.Subject, eventstore.HashOf(r.Data))
		body = appendRecord(body[:0], r)
		if len(body) > maxRecordBytes { // a restore would refuse it (readEvents)
			return fmt.Errorf("the message at sequence %d is %d bytes, more than a restore reads (%d MiB)", r.Seq, len(body), maxRecordBytes>>20)
		}
		var frame [4]byte
		binary.BigEndian.PutUint32(frame[:], uint32(len(body)))
		w.Write(frame[:])
		w.Write(body)
		binary.BigEndian.PutUint32(frame[:], crc32.Checksum(body, castagnoli))
		if _, err := w.Write(frame[:]); err != nil {
			return err
		}
		if m.Count == 0 {
			m.FirstTime = r.Time.UTC()
		}
		m.Count++
		m.LastTime = r.Time.UTC()
		if opt.Progress != nil && r.Seq%10000 == 0 {
			opt.Progress(r.Seq, through)
		}
		return nil
	})
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Manifest{}, fmt.Errorf("backup: %w", err)
	}
	m.LastSeq = last
	if digestOK {
		m.Digest = hex.EncodeToString(digest.Sum[:])
	}
	cps, unreadable, err := store.ReadCheckpoints(ctx)
	if err != nil {
		return Manifest{}, fmt.Errorf("backup: %w", err)
	}
	carried := carriedBefore(cps, opt.After)
	for _, c := range cps[carried:] {
		if c.Checkpoint != nil && c.Checkpoint.GetStreamSeq() <= last {
			if err := signedBy(c.Checkpoint, opt.Key); err != nil {
				return Manifest{}, err
			}
			m.Checkpoints = append(m.Checkpoints, base64.StdEncoding.EncodeToString(c.Data))
		}
	}
	// The unreadable checkpoints this backup would carry: after the last one the earlier
	// backup carries, and before the first made after this backup's last sequence.
	from, beyond := carriedThrough(cps, unreadable, carried, opt.After), uint64(math.MaxUint64)
	for _, c := range cps {
		if c.Checkpoint != nil && c.Checkpoint.GetStreamSeq() > last {
			beyond = c.Seq
			break
		}
	}
	for _, q := range unreadable {
		if q > from && q < beyond {
			m.UnreadableCheckpoints = append(m.UnreadableCheckpoints, q)
		}
	}
	// The data keys after the events: every key of a person the events hold is there (nird
	// stores the key before the person's first sealed event), and a key destroyed meanwhile
	// stays destroyed.
	keys, err := store.ExportKeys(ctx)
	if err != nil {
		return Manifest{}, fmt.Errorf("backup: the persons' data keys (the connection must be allowed to read the bucket %s): %w", eventstore.KeyBucket, err)
	}
	m.DamagedKeys = keys.Damaged
	if err := accepted(m, opt); err != nil {
		return Manifest{}, err
	}
	fi, err := os.Stat(tmp.Name())
	if err != nil {
		return Manifest{}, err
	}
	m.Events = FileSum{Name: EventsFile, Bytes: fi.Size(), SHA256: hex.EncodeToString(sum.Sum(nil))}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, EventsFile)); err != nil {
		return Manifest{}, err
	}
	kb, err := json.Marshal(keyFile{Wrapped: keys.Wrapped, Destroyed: keys.Destroyed, Damaged: keys.Damaged})
	if err != nil {
		return Manifest{}, err
	}
	if err := smallfile.WriteNew(filepath.Join(dir, KeysFile), kb); err != nil {
		return Manifest{}, err
	}
	ks := sha256.Sum256(kb)
	m.Keys = &FileSum{Name: KeysFile, Bytes: int64(len(kb)), SHA256: hex.EncodeToString(ks[:])}
	if opt.Key != nil {
		if m.Seal, err = seal(m, opt.Key); err != nil {
			return Manifest{}, err
		}
	}
	if m.ManifestSHA256, err = m.selfSum(); err != nil {
		return Manifest{}, err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return Manifest{}, err
	}
	// Open reads at most maxManifestBytes: a backup whose manifest is larger could be made
	// but never restored (checkpoints made every second, --checkpoint-interval 1s, fill it
	// within days). It is refused here, unfinished, saying why (TestWrite_ManifestOpenCannotRead).
	if len(b)+1 > maxManifestBytes {
		return Manifest{}, fmt.Errorf("backup %s: its manifest would be %d MiB with %d checkpoints, more than a restore reads (%d MiB): make an incremental backup (--after, which carries only the checkpoints since the earlier one) more often, or checkpoints less often (--checkpoint-every, --checkpoint-interval)",
			dir, (len(b)+1)>>20, len(m.Checkpoints), maxManifestBytes>>20)
	}
	// Whole or not at all (smallfile.WriteNew): a backup cut short by a crash or a full disk
	// has no manifest, never part of one. WriteNew syncs the directory where it can; a backup
	// whose directory cannot be synced is refused, not called made.
	if err := smallfile.WriteNew(filepath.Join(dir, ManifestFile), append(b, '\n')); err != nil {
		return Manifest{}, err
	}
	if err := syncDir(dir); err != nil {
		return Manifest{}, err
	}
	if opt.Progress != nil {
		opt.Progress(last, through)
	}
	return m, nil
}

// signedBy refuses a checkpoint a backup sealed with key (when set) carries that is not
// signed with key: a restore with the register's public key would refuse the backup, so it
// is refused when it is made, naming the checkpoint, not when it is needed.
func signedBy(cp *nirv1.Checkpoint, key ed25519.PrivateKey) error {
	if key == nil || bytes.Equal(cp.GetPublicKey(), key.Public().(ed25519.PublicKey)) {
		return nil
	}
	return fmt.Errorf("backup: the key given to seal the backup (--checkpoint-key) is not the key the checkpoint through stream sequence %d is signed with: give the key nird signs its checkpoints with (its --checkpoint-key, data/checkpoint.key); nothing was written",
		cp.GetStreamSeq())
}

// accepted returns ErrDamaged, naming them and the way on, unless every data key and
// checkpoint m records as damaged is one opt accepts or the earlier backup recorded.
func accepted(m Manifest, opt Options) error {
	okKeys := map[string]bool{}
	okCPs := map[uint64]bool{}
	for _, k := range opt.AcceptDamagedKeys {
		okKeys[k] = true
	}
	for _, q := range opt.AcceptUnreadableCheckpoints {
		okCPs[q] = true
	}
	if a := opt.After; a != nil {
		for _, k := range a.DamagedKeys {
			okKeys[k] = true
		}
		for _, q := range a.UnreadableCheckpoints {
			okCPs[q] = true
		}
	}
	var keys []string
	var cps []uint64
	for _, k := range m.DamagedKeys {
		if !okKeys[k] {
			keys = append(keys, k)
		}
	}
	for _, q := range m.UnreadableCheckpoints {
		if !okCPs[q] {
			cps = append(cps, q)
		}
	}
	if len(keys) == 0 && len(cps) == 0 {
		return nil
	}
	var what, accept []string
	if len(keys) > 0 {
		what = append(what, fmt.Sprintf("the data key(s) %s in %s (a restore without them reads what they sealed, the persons' national ids and birth dates, as unreadable)",
			strings.Join(keys, ", "), eventstore.KeyBucket))
		for _, k := range keys {
			accept = append(accept, "key:"+k)
		}
	}
	if len(cps) > 0 {
		var ns []string
		for _, q := range cps {
			ns = append(ns, fmt.Sprint("checkpoint ", q))
			accept = append(accept, fmt.Sprint("checkpoint:", q))
		}
		what = append(what, fmt.Sprintf("%s of %s", strings.Join(ns, ", "), eventstore.CheckpointStreamName))
	}
	return fmt.Errorf("%w: %s cannot be read back (damaged on disk), so this backup would hold less than the register and nothing was written. "+
		"Keep the earlier backups that hold them (do not let them be rotated away): a restore of those into a new data directory gets them back (deploy/README.md, \"When data is damaged\"). "+
		"To back up the rest now, recording them in the manifest as damaged, accept them: --accept-damaged %s",
		ErrDamaged, strings.Join(what, "; and "), strings.Join(accept, ","))
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func appendRecord(b []byte, r eventstore.RawMessage) []byte {
	b = binary.AppendUvarint(b, r.Seq)
	b = binary.AppendVarint(b, r.Time.UnixNano())
	b = appendString(b, r.Subject)
	keys := make([]string, 0, len(r.Header))
	n := 0
	for k, vs := range r.Header {
		keys = append(keys, k)
		n += len(vs)
	}
	sort.Strings(keys)
	b = binary.AppendUvarint(b, uint64(n))
	for _, k := range keys {
		for _, v := range r.Header[k] {
			b = appendString(b, k)
			b = appendString(b, v)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(r.Data)))
	return append(b, r.Data...)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// Backup is a backup directory read and checked by Open.
type Backup struct {
	Dir      string
	Manifest Manifest
	events   []byte // the events file, checked against the manifest's SHA-256
	keys     *eventstore.KeyExport
}

// keyFile is the content of KeysFile.
type keyFile struct {
	Wrapped   map[string][]byte `json:"wrapped"`
	Destroyed []string          `json:"destroyed,omitempty"`
	Damaged   []string          `json:"damaged,omitempty"`
}

// maxManifestBytes bounds the manifest Open reads. Its size is that of the checkpoints it
// carries, each under 300 bytes in base64: 256 MiB holds hourly checkpoints (nird's default
// interval) for a century, yet refuses an endless file before it fills memory.
var maxManifestBytes = 256 << 20

// Open reads a backup directory and checks it whole: the manifest, the events file's size
// and SHA-256, and every record (its CRC, and that the sequences run from FirstSeq to
// LastSeq without a gap). Nothing of a backup that fails is used. The events file is held in
// memory (a year of the register is about 1 GB), read record by record, each checked before
// the next is read (readEvents).
func Open(dir string) (*Backup, error) {
	// Through smallfile, as the other files: a FIFO in its place made Open wait for a writer
	// for ever, and /dev/zero read until memory ran out (TestOpen_ManifestNotARegularFile).
	mb, err := smallfile.Read(filepath.Join(dir, ManifestFile), int64(maxManifestBytes))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("backup %s: no %s: not a backup directory, or a backup that did not finish", dir, ManifestFile)
	}
	if errors.Is(err, smallfile.ErrTooLarge) || errors.Is(err, smallfile.ErrNotRegular) {
		return nil, fmt.Errorf("backup %s: %s is not a manifest nirctl wrote (%w); this backup cannot be restored", dir, ManifestFile, err)
	}
	if err != nil {
		return nil, fmt.Errorf("backup %s: %w", dir, err)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(mb))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("backup %s: %s is damaged: %s", dir, ManifestFile, jsonProblem(err))
	}
	if m.ManifestSHA256 != "" {
		if sum, err := m.selfSum(); err != nil || sum != m.ManifestSHA256 {
			return nil, fmt.Errorf("backup %s: %s is damaged (it does not match its own SHA-256); this backup cannot be restored", dir, ManifestFile)
		}
	}
	if m.Format != FormatVersion {
		return nil, fmt.Errorf("backup %s: format %d, this nirctl reads format %d", dir, m.Format, FormatVersion)
	}
	if m.Events.Name != EventsFile || m.Stream != eventstore.StreamName {
		return nil, fmt.Errorf("backup %s: the manifest names %q of stream %q, want %q of %q", dir, m.Events.Name, m.Stream, EventsFile, eventstore.StreamName)
	}
	data, err := readEvents(dir, m)
	if err != nil {
		return nil, err
	}
	b := &Backup{Dir: dir, Manifest: m, events: data}
	var n uint64
	for r, err := range b.records() {
		if err != nil {
			return nil, err
		}
		if want := m.FirstSeq + n; r.Seq != want {
			return nil, fmt.Errorf("backup %s: record %d holds sequence %d, want %d", dir, n+1, r.Seq, want)
		}
		n++
	}
	// The sequences too when there is no record: a backup of none runs from FirstSeq to
	// FirstSeq-1, and a file of none under a manifest of more is truncated or replaced. No
	// stream sequence is 0 (0 to MaxUint64 would pass as uint64s), and a full backup starts
	// at 1 (TestOpen_RefusesAnEmptyRangeThatWraps).
	if n != m.Count || m.FirstSeq+n != m.LastSeq+1 || m.FirstSeq == 0 || (m.After == "" && m.FirstSeq != 1) {
		return nil, fmt.Errorf("backup %s: %s holds %d records, the manifest says %d, sequences %d to %d: truncated or replaced, or the manifest is damaged; this backup cannot be restored",
			dir, EventsFile, n, m.Count, m.FirstSeq, m.LastSeq)
	}
	if m.Keys != nil {
		kb, err := smallfile.Read(filepath.Join(dir, KeysFile), m.Keys.Bytes)
		if errors.Is(err, smallfile.ErrTooLarge) || errors.Is(err, smallfile.ErrNotRegular) {
			return nil, fmt.Errorf("backup %s: %s does not match the manifest (%w): the file is damaged; this backup cannot be restored", dir, KeysFile, err)
		}
		if err != nil {
			return nil, fmt.Errorf("backup %s: %w", dir, err)
		}
		if s := sha256.Sum256(kb); m.Keys.Name != KeysFile || int64(len(kb)) != m.Keys.Bytes || hex.EncodeToString(s[:]) != m.Keys.SHA256 {
			return nil, fmt.Errorf("backup %s: %s does not match the manifest: the file is damaged; this backup cannot be restored", dir, KeysFile)
		}
		var kf keyFile
		if err := json.Unmarshal(kb, &kf); err != nil {
			return nil, fmt.Errorf("backup %s: %s is damaged: %v", dir, KeysFile, err)
		}
		if !slices.Equal(kf.Damaged, m.DamagedKeys) {
			return nil, fmt.Errorf("backup %s: %s and the manifest name different damaged data keys: this backup cannot be restored", dir, KeysFile)
		}
		b.keys = &eventstore.KeyExport{Wrapped: kf.Wrapped, Destroyed: kf.Destroyed, Damaged: kf.Damaged}
	}
	return b, nil
}

// jsonProblem describes a decoding error of a file that should be a manifest without
// quoting the file: another file in its place may hold national ids, and the decoder names an
// unknown field by its text (TestOpen_DamagedManifestNamesNoContent).
func jsonProblem(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("not JSON (byte %d)", syntax.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("the field %s is not a %s (byte %d)", typ.Field, typ.Type, typ.Offset)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated"
	default:
		return "not a manifest (a field a manifest does not have?)"
	}
}

// maxRecordBytes bounds a record's body in the events file: a message of the stream with
// its subject and headers, which nir's NATS configurations bound at 8 MiB (max_payload,
// eventstore.EmbeddedMaxPayload and deploy/nats). Eight times that leaves room for a server
// configured larger, and refuses a record that claims gigabytes before it is read.
const maxRecordBytes = 8 * eventstore.EmbeddedMaxPayload

// readEvents reads the events file m describes into memory, as Restore holds it, record by
// record, each checked (recordAt) before the next is read, and then its SHA-256. Memory grows
// with records that hold, never with what a forged manifest says: a file larger than its
// count of records could be is refused unread, and a sparse one of gigabytes of zeros at its
// first zero record (TestOpen_HugeSparseEventsFile). Before, the whole file was read first,
// as large as the manifest said. A FIFO or a device in its place is refused unread.
func readEvents(dir string, m Manifest) ([]byte, error) {
	cantRestore := func(format string, a ...any) error {
		return fmt.Errorf("backup %s: %s "+format+"; this backup cannot be restored", append([]any{dir, EventsFile}, a...)...)
	}
	if perRecord := uint64(8 + maxRecordBytes); m.Count < (math.MaxInt64-uint64(len(magic)))/perRecord &&
		m.Events.Bytes > int64(len(magic))+int64(m.Count*perRecord) {
		return nil, cantRestore("is %d bytes by the manifest, more than %d event(s) can be (each at most %d MiB): the manifest is forged or damaged", m.Events.Bytes, m.Count, maxRecordBytes>>20)
	}
	f, fi, err := smallfile.Open(filepath.Join(dir, EventsFile))
	if errors.Is(err, smallfile.ErrNotRegular) {
		return nil, fmt.Errorf("backup %s: %w: not the file the manifest describes (%d bytes); this backup cannot be restored", dir, err, m.Events.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("backup %s: %w", dir, err)
	}
	defer f.Close()
	if fi.Size() != m.Events.Bytes {
		return nil, cantRestore("is %d bytes, the manifest says %d: truncated or replaced", fi.Size(), m.Events.Bytes)
	}
	sum := sha256.New()
	in := bufio.NewReaderSize(io.TeeReader(io.LimitReader(f, m.Events.Bytes), sum), 1<<20)
	var data []byte
	next := func(n int) error { // reads n bytes more into data
		data = slices.Grow(data, n)
		if _, err := io.ReadFull(in, data[len(data):len(data)+n]); err != nil {
			return cantRestore("could not be read whole (changed while read?): %v", err)
		}
		data = data[:len(data)+n]
		return nil
	}
	if err := next(min(len(magic), int(m.Events.Bytes))); err != nil {
		return nil, err
	}
	if !bytes.Equal(data, []byte(magic)) {
		return nil, notNirbak(dir, len(data))
	}
	for i := 1; int64(len(data)) < m.Events.Bytes; i++ {
		off, left := len(data), m.Events.Bytes-int64(len(data))
		if err := next(int(min(left, 4))); err != nil {
			return nil, err
		}
		if n := int64(binary.BigEndian.Uint32(data[off:])); left >= 8 && n <= maxRecordBytes && n+8 <= left {
			if err := next(int(n) + 4); err != nil {
				return nil, err
			}
		}
		if _, _, err := recordAt(dir, data, off, i); err != nil {
			return nil, err
		}
	}
	if hex.EncodeToString(sum.Sum(nil)) != m.Events.SHA256 {
		return nil, cantRestore("does not match the manifest's SHA-256: the file is damaged")
	}
	return data, nil
}

func notNirbak(dir string, size int) error {
	return fmt.Errorf("backup %s: %s (%d bytes) is not a nir backup file: damaged or replaced; this backup cannot be restored", dir, EventsFile, size)
}

// records decodes the events file.
func (b *Backup) records() iter.Seq2[eventstore.RawMessage, error] {
	return func(yield func(eventstore.RawMessage, error) bool) {
		data := b.events
		if !bytes.HasPrefix(data, []byte(magic)) {
			yield(eventstore.RawMessage{}, notNirbak(b.Dir, len(data)))
			return
		}
		for i, off := 1, len(magic); off < len(data); i++ {
			r, next, err := recordAt(b.Dir, data, off, i)
			if !yield(r, err) || err != nil {
				return
			}
			off = next
		}
	}
}

// recordAt decodes the i'th record of the events file, at off in data, and returns it and
// the offset after it.
func recordAt(dir string, data []byte, off, i int) (eventstore.RawMessage, int, error) {
	bad := func(why string) (eventstore.RawMessage, int, error) {
		return eventstore.RawMessage{}, 0, fmt.Errorf("backup %s: %s, record %d (byte %d): %s", dir, EventsFile, i, off, why)
	}
	if len(data)-off < 4 {
		return bad("truncated")
	}
	n := int(binary.BigEndian.Uint32(data[off:]))
	if n > maxRecordBytes {
		return bad(fmt.Sprintf("%d bytes, more than any message the stream can hold (%d MiB): forged or damaged", n, maxRecordBytes>>20))
	}
	if n > len(data)-off-8 {
		return bad("truncated")
	}
	body := data[off+4 : off+4+n]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(data[off+4+n:]) {
		return bad("checksum mismatch: the record is damaged")
	}
	r, err := parseRecord(body)
	if err != nil {
		return bad(err.Error())
	}
	return r, off + 8 + n, nil
}

func parseRecord(b []byte) (eventstore.RawMessage, error) {
	var r eventstore.RawMessage
	var ok bool
	if r.Seq, b, ok = uvarint(b); !ok {
		return r, errors.New("bad sequence")
	}
	t, n := binary.Varint(b)
	if n <= 0 {
		return r, errors.New("bad time")
	}
	r.Time, b = time.Unix(0, t).UTC(), b[n:]
	if r.Subject, b, ok = str(b); !ok {
		return r, errors.New("bad subject")
	}
	if !streamSubject(r.Subject) {
		return r, fmt.Errorf("a subject the stream %s cannot hold (not %s<token>): forged or damaged", eventstore.StreamName, eventPrefix)
	}
	var count uint64
	if count, b, ok = uvarint(b); !ok || count > uint64(len(b)) {
		return r, errors.New("bad header count")
	}
	if count > 0 {
		r.Header = nats.Header{}
	}
	for range count {
		var k, v string
		if k, b, ok = str(b); !ok {
			return r, errors.New("bad header name")
		}
		if !headerName(k) {
			return r, errors.New("a header name NATS cannot send: forged or damaged")
		}
		if v, b, ok = str(b); !ok {
			return r, errors.New("bad header value")
		}
		r.Header[k] = append(r.Header[k], v)
	}
	var dl uint64
	if dl, b, ok = uvarint(b); !ok || dl != uint64(len(b)) {
		return r, errors.New("bad data length")
	}
	r.Data = b
	return r, nil
}

// eventPrefix is the prefix of the stream's subjects, each followed by one person's token.
var eventPrefix = strings.TrimSuffix(eventstore.EventSubjects, ">")

// streamSubject reports whether subject is one the register's stream can hold: its prefix
// and one token (the stream's filter) without whitespace, which splits a NATS subject.
// Checked when a backup is opened, so that a forged record is refused before a restore
// writes anything, rather than published, perhaps to the JetStream API.
func streamSubject(subject string) bool {
	token, ok := strings.CutPrefix(subject, eventPrefix)
	return ok && token != "" && !strings.ContainsAny(token, ". \t\r\n")
}

// headerName reports whether k is a header name the NATS client (nats.go) sends: printable
// ASCII but the separators it refuses. Restore could not store a record with another.
func headerName(k string) bool {
	for i := range len(k) {
		if k[i] <= ' ' || k[i] >= 0x7f || strings.IndexByte(`"()/,:;<=>?@[\]{}`, k[i]) >= 0 {
			return false
		}
	}
	return k != ""
}

func uvarint(b []byte) (uint64, []byte, bool) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, b, false
	}
	return v, b[n:], true
}

func str(b []byte) (string, []byte, bool) {
	n, b, ok := uvarint(b)
	if !ok || n > uint64(len(b)) {
		return "", b, false
	}
	return string(b[:n]), b[n:], true
}

// Until bounds a restore to an earlier point: the messages through Seq (0 = no bound), and
// received by the stream at or before Time (zero = no bound). The stream's receive time is
// the right clock for "the register as it stood yesterday at 18:00": it is the order
// things were stored in, also for backdated history loads.
type Until struct {
	Seq  uint64
	Time time.Time
}

func (u Until) keeps(r eventstore.RawMessage) bool {
	return (u.Seq == 0 || r.Seq <= u.Seq) && (u.Time.IsZero() || !r.Time.After(u.Time))
}

// ErrUntilBackdated is the error of a restore whose Until.Time falls among the messages the
// backed-up register holds with receive times not their own: those it received in a restore
// (eventstore.Import) or a history load, marked backdated (eventstore.MetaBackdatedThrough).
// A register restored once holds its whole earlier history with the restore's receive time,
// so a time before it would restore nothing, and a time after it everything. Until.Seq says
// where to stop instead.
var ErrUntilBackdated = errors.New("backup: the restore's --until time cannot be resolved")

// Chain checks that backups follow each other (each incremental one continues the one
// before it, the first is full) and are of one stream.
func Chain(bs []*Backup) error {
	for i, b := range bs {
		m := b.Manifest
		switch {
		case i == 0 && m.After != "":
			return fmt.Errorf("backup %s is incremental (it continues a backup with SHA-256 %s): give the full backup first", b.Dir, m.After)
		case i > 0 && m.After != bs[i-1].Manifest.Events.SHA256:
			return fmt.Errorf("backup %s does not continue %s (it continues SHA-256 %q)", b.Dir, bs[i-1].Dir, m.After)
		case i > 0 && m.FirstSeq != bs[i-1].Manifest.LastSeq+1:
			return fmt.Errorf("backup %s starts at sequence %d, %s ends at %d", b.Dir, m.FirstSeq, bs[i-1].Dir, bs[i-1].Manifest.LastSeq)
		}
	}
	return nil
}

// Verify checks a chain of opened backups (Open) before a restore touches its target, and
// writes nothing: that they follow each other (Chain), that their checkpoints are in order,
// each covering more of the stream than the one before it (links: BrokenLinks), that
// each checkpoint's digest is that of the messages through its sequence, that every
// backup's messages have its manifest's digest, and that until.Time does not fall among
// backdated sequences (ErrUntilBackdated). With key, every checkpoint must be signed by it,
// the backups must carry at least one, and every manifest must be sealed by it
// (CheckSignatures). It returns the last stream sequence through which something signed
// vouches for the messages (0: nothing): the last checkpoint the backups carry, or, with key,
// the last backup's last sequence when its manifest holds the digest of the messages through
// it, since its seal signs that digest.
func Verify(bs []*Backup, until Until, key ed25519.PublicKey) (uint64, error) {
	if err := Chain(bs); err != nil {
		return 0, err
	}
	if len(bs) == 0 {
		return 0, errors.New("backup: nothing to restore")
	}
	if key != nil {
		if err := CheckSignatures(bs, key); err != nil {
			return 0, err
		}
	}
	// The sequences a restore or a history load stored with receive times that are not when
	// the register received them (MarkBackdated): an --until time must not cut among them.
	var backdated uint64
	for _, b := range bs {
		if n, err := strconv.ParseUint(b.Manifest.Metadata[eventstore.MetaBackdatedThrough], 10, 64); err == nil {
			backdated = max(backdated, n)
		}
	}
	// The carried checkpoints, each checked against the messages below before anything is
	// stored: nird continues its checkpoints from the last one and signs them with the
	// register's key, so a forged one would be vouched for.
	carried, err := carriedCheckpoints(bs)
	if err != nil {
		return 0, err
	}
	var lastCP uint64
	if len(carried) > 0 {
		lastCP = carried[len(carried)-1].cp.GetStreamSeq()
	}
	// Every backup's digest is checked before anything is stored: a mismatch found while
	// importing would leave the target holding the events without their data keys and
	// checkpoints, and refuse a second restore as not empty.
	var digest eventstore.Digest
	var backdatedTime time.Time // the receive time of the last backdated message
	check := func() error {
		for len(carried) > 0 && carried[0].cp.GetStreamSeq() <= digest.Seq {
			c := carried[0]
			carried = carried[1:]
			if c.cp.GetStreamSeq() < digest.Seq || !bytes.Equal(c.cp.GetDigest(), digest.Sum[:]) {
				return fmt.Errorf("%w: backup %s: checkpoint %d of the manifest's checkpoints (through stream sequence %d) does not have the digest of the backup's messages through sequence %d: the manifest was edited or the checkpoint forged; nothing was restored",
					ErrCheckpointMismatch, c.dir, c.index+1, c.cp.GetStreamSeq(), c.cp.GetStreamSeq())
			}
		}
		return nil
	}
	if err := check(); err != nil { // a checkpoint of sequence 0: the digest of nothing
		return 0, err
	}
	for _, b := range bs {
		for r, err := range b.records() {
			if err != nil {
				return 0, err
			}
			digest.Add(r.Seq, r.Subject, eventstore.HashOf(r.Data))
			if r.Seq <= backdated {
				backdatedTime = r.Time
			}
			if err := check(); err != nil {
				return 0, err
			}
		}
		if m := b.Manifest; m.Digest != "" && m.Digest != hex.EncodeToString(digest.Sum[:]) {
			return 0, fmt.Errorf("backup %s: the messages do not have the manifest's digest: the backup is damaged or not the stream it says; nothing was restored", b.Dir)
		}
	}
	if len(carried) > 0 {
		c := carried[0]
		return 0, fmt.Errorf("%w: backup %s: checkpoint %d of the manifest's checkpoints covers stream sequence %d, beyond the backups' last message (%d): the manifest was edited or the checkpoint forged; nothing was restored",
			ErrCheckpointMismatch, c.dir, c.index+1, c.cp.GetStreamSeq(), digest.Seq)
	}
	if !until.Time.IsZero() && backdated > 0 && until.Time.Before(backdatedTime) {
		return 0, fmt.Errorf("%w: --until %s falls among sequences 1 to %d, which the register received in a restore or a history load (at %s): their receive times are not when they were stored first, so a time cannot say where to stop among them; nothing was restored. Give --to-seq N instead (the last sequence to keep), or a time after %s",
			ErrUntilBackdated, until.Time.Format(time.RFC3339Nano), backdated, backdatedTime.Format(time.RFC3339Nano), backdatedTime.Format(time.RFC3339Nano))
	}
	if m := bs[len(bs)-1].Manifest; key != nil && m.Digest != "" {
		// Sealed by key (CheckSignatures), and its digest checked against the messages above.
		return max(lastCP, m.LastSeq), nil
	}
	return lastCP, nil
}

// Restore stores the messages of a chain of checked backups (Open, Verify) into store, whose
// stream must be empty, each at its own sequence, up to until. It returns the last sequence
// stored. It verifies the chain again (Verify, without a key) before it writes anything.
// On an error the target stays marked unfinished (eventstore.Store.BeginRestore), and the
// sequence returned may be lower than the target's last: an import batch whose
// acknowledgement timed out may have been stored (eventstore.Store.Import).
func Restore(ctx context.Context, store *eventstore.Store, bs []*Backup, until Until, progress func(done, total uint64)) (uint64, error) {
	if err := Chain(bs); err != nil {
		return 0, err
	}
	if len(bs) == 0 {
		return 0, errors.New("backup: nothing to restore")
	}
	// Everything restore writes is looked at before the first write: the event stream, the
	// checkpoints and the data keys.
	if err := store.RestoreTarget(ctx); err != nil {
		return 0, err
	}
	total := bs[len(bs)-1].Manifest.LastSeq
	if _, err := Verify(bs, until, nil); err != nil {
		return 0, err
	}
	if err := targetMetadata(ctx, store, bs[0].Manifest.Metadata); err != nil {
		return 0, err
	}
	carried, err := carriedCheckpoints(bs)
	if err != nil {
		return 0, err
	}
	msgs := func(yield func(eventstore.RawMessage, error) bool) {
		for _, b := range bs {
			for r, err := range b.records() {
				if err != nil {
					yield(r, err)
					return
				}
				if !until.keeps(r) {
					return
				}
				if progress != nil && r.Seq%10000 == 0 {
					progress(r.Seq, total)
				}
				if !yield(r, nil) {
					return
				}
			}
		}
	}
	var erased []string // the keys the restored erasures destroyed
	msgs = withErasures(withoutRepeatedIDs(msgs), &erased)
	// Marked before the first write and unmarked after the last: a restore stopped between
	// (killed, a NATS timeout) leaves a register nird refuses to start on, and that a
	// restore again starts over (eventstore.RestoreTarget).
	if err := store.BeginRestore(ctx); err != nil {
		return 0, err
	}
	stored, err := store.Import(ctx, msgs)
	if progress != nil {
		progress(stored, total)
	}
	if err == nil && failAfter != nil {
		err = failAfter("events")
	}
	if err != nil {
		return stored, err
	}
	// The data keys of the newest backup that holds them, less those of every erasure the
	// restored stream holds; a key that backup could not read (damaged in the register) is
	// taken from the newest earlier backup that holds it whole.
	keys := chainKeys(bs)
	keys.Destroyed = append(keys.Destroyed, erased...)
	if err := store.ImportKeys(ctx, keys); err != nil {
		return stored, fmt.Errorf("backup: the events are restored, the data keys not: %w", err)
	}
	// The checkpoints of the restored range, and none beyond it (a restore up to an earlier
	// point leaves out what it does not restore).
	var keep [][]byte
	for _, c := range carried {
		if c.cp.GetStreamSeq() > stored {
			break
		}
		keep = append(keep, c.data)
	}
	if _, err := store.ImportCheckpoints(ctx, keep); err != nil {
		return stored, fmt.Errorf("backup: the events are restored, their checkpoints not: %w", err)
	}
	if err := store.FinishRestore(ctx); err != nil {
		return stored, fmt.Errorf("backup: everything is restored, but the mark that the restore is unfinished could not be removed (restore again): %w", err)
	}
	return stored, nil
}

// targetMetadata refuses an empty target stream whose metadata names a register (a "nir_"
// entry: the person key's fingerprint) other than the backup's: a stream's metadata is never
// changed after it is created, so a stream created for another manifest (a restore refused
// after its caller opened the target) would keep that one's. The entries the stream sets
// itself (its id, the backdated and unfinished-restore marks) are not compared, nor ones the
// backup has and the stream lacks (a target opened without metadata).
func targetMetadata(ctx context.Context, store *eventstore.Store, want map[string]string) error {
	id, err := store.CurrentIdentity(ctx)
	if err != nil {
		return err
	}
	for _, k := range slices.Sorted(maps.Keys(id.Metadata)) {
		switch {
		case !strings.HasPrefix(k, "nir_"), k == eventstore.MetaStreamID, k == eventstore.MetaBackdatedThrough, k == eventstore.MetaRestoreUnfinished:
			continue
		case id.Metadata[k] != want[k]:
			return fmt.Errorf("backup: the target stream %s has the metadata %s=%q, the backup %q: it was created for another backup (a refused restore?) or by a nird started before the restore; delete the stream and restore again; nothing was restored",
				eventstore.StreamName, k, id.Metadata[k], want[k])
		}
	}
	return nil
}

// ErrCheckpointMismatch is the error of a restore whose backups carry a checkpoint that
// does not hold for their messages: its digest is not theirs through its sequence, it is out
// of order or does not name the one before it, or (with CheckSignatures) its signature does
// not hold, or it is not signed by the key given.
var ErrCheckpointMismatch = errors.New("backup: a carried checkpoint does not hold")

// ErrNoCheckpoint is the error of a restore with a key (CheckSignatures) of backups that
// carry no checkpoint: nothing signed vouches for their messages.
var ErrNoCheckpoint = errors.New("backup: the backups carry no checkpoint")

// carriedCheck is a checkpoint a backup's manifest carries: the index+1'th of dir's.
type carriedCheck struct {
	dir   string
	index int
	data  []byte // as stored
	cp    *nirv1.Checkpoint
}

// carriedCheckpoints decodes the checkpoints bs carry, in the order they are stored: each
// once (an incremental backup may carry an earlier one's again), each covering more of the
// stream than the one before it, as nird makes them. One that does not decode, is repeated
// within a manifest or is out of order is refused (ErrCheckpointMismatch): nird continues
// its checkpoints from the last one stored. BrokenLinks counts those that do not name the
// one before.
func carriedCheckpoints(bs []*Backup) ([]carriedCheck, error) {
	var out []carriedCheck
	seen := map[string]bool{} // by the decoded bytes: base64 decoding ignores '\n'
	for _, b := range bs {
		here := map[string]bool{}
		for i, c := range b.Manifest.Checkpoints {
			d, err := base64.StdEncoding.DecodeString(c)
			if err != nil {
				return nil, fmt.Errorf("backup %s: checkpoint %d of the manifest is not base64", b.Dir, i+1)
			}
			cp := new(nirv1.Checkpoint)
			if proto.Unmarshal(d, cp) != nil {
				return nil, fmt.Errorf("%w: backup %s: checkpoint %d of the manifest's checkpoints does not decode: the manifest was edited or damaged; nothing was restored",
					ErrCheckpointMismatch, b.Dir, i+1)
			}
			if here[string(d)] {
				return nil, fmt.Errorf("%w: backup %s: checkpoint %d of the manifest's checkpoints (through stream sequence %d) repeats one before it: the manifest was edited; nothing was restored",
					ErrCheckpointMismatch, b.Dir, i+1, cp.GetStreamSeq())
			}
			here[string(d)] = true
			if seen[string(d)] {
				continue // carried by an earlier backup of the chain too
			}
			seen[string(d)] = true
			if n := len(out); n > 0 && cp.GetStreamSeq() <= out[n-1].cp.GetStreamSeq() {
				return nil, fmt.Errorf("%w: backup %s: checkpoint %d of the manifest's checkpoints (through stream sequence %d) does not cover more than the one before it (through stream sequence %d): the checkpoints were reordered or repeated; nothing was restored",
					ErrCheckpointMismatch, b.Dir, i+1, cp.GetStreamSeq(), out[n-1].cp.GetStreamSeq())
			}
			out = append(out, carriedCheck{dir: b.Dir, index: i, data: d, cp: cp})
		}
	}
	return out, nil
}

// BrokenLinks counts the checkpoints bs carry that do not name the one carried before them
// (Previous; the first, none) beyond the checkpoints the manifests record as unreadable
// (UnreadableCheckpoints). A restore does not refuse them: a register restored once with
// unreadable checkpoints (AcceptUnreadableCheckpoints) holds such a gap that no later backup
// records, and each carried checkpoint is compared with the digest of the messages it covers
// and kept in order all the same (Verify). nirctl restore warns of them; nirctl verify reports
// them after the restore. Found on 2026-12-06 (review of the restore fixes): refusing them
// made every backup of a once-restored register unrestorable.
func BrokenLinks(bs []*Backup) (int, error) {
	carried, err := carriedCheckpoints(bs)
	if err != nil {
		return 0, err
	}
	gaps := 0 // the broken links the manifests account for
	for _, b := range bs {
		gaps += len(b.Manifest.UnreadableCheckpoints)
	}
	broken := 0
	var prev []byte
	for _, c := range carried {
		if !bytes.Equal(c.cp.GetPrevious(), prev) {
			if gaps > 0 {
				gaps-- // a checkpoint the register could not read, recorded in a manifest
			} else {
				broken++
			}
		}
		prev = eventstore.HashOf(c.data)
	}
	return broken, nil
}

// CheckSignatures checks, before a restore, that the backups carry at least one checkpoint
// (when they hold messages), in order (carriedCheckpoints), and that every one is signed by
// key (the register's checkpoint key, which nird logs at start) and that each signature
// holds (eventstore.CheckSignature), and that every backup's manifest is sealed by key
// (Seal; ErrKeysNotCovered). Restore compares the checkpoints with the messages, and the
// messages and the keys file with the manifest, but whoever may write the backup can make
// those agree; only the signature by a key known from elsewhere cannot be forged with them:
// the checkpoints' over the messages through the last one, the seal's over the keys file.
func CheckSignatures(bs []*Backup, key ed25519.PublicKey) error {
	carried, err := carriedCheckpoints(bs)
	if err != nil {
		return err
	}
	if len(carried) == 0 && len(bs) > 0 && bs[len(bs)-1].Manifest.LastSeq > 0 {
		return fmt.Errorf("%w (through stream sequence %d): nothing signed by the key vouches for their messages, which whoever can write a backup can rewrite; nothing was restored. Restore without --public-key only a backup known sound by other means, and check the restored register with nirctl verify --checkpoint",
			ErrNoCheckpoint, bs[len(bs)-1].Manifest.LastSeq)
	}
	for _, c := range carried {
		if err := eventstore.CheckSignature(c.cp, key); err != nil {
			return fmt.Errorf("%w: backup %s: checkpoint %d of the manifest's checkpoints (through stream sequence %d): %v; nothing was restored",
				ErrCheckpointMismatch, c.dir, c.index+1, c.cp.GetStreamSeq(), err)
		}
	}
	for _, b := range bs {
		if why := sealProblem(b.Manifest, key); why != "" {
			return fmt.Errorf("%w: backup %s: %s. With --public-key a restore takes the persons' data keys (%s) only from a backup whose manifest, which holds the file's SHA-256, is sealed by that key: whoever can write a backup could otherwise mark data keys destroyed, drop or add them, and the restored register would read those persons as erased or unreadable; nothing was restored. Restore without --public-key only a backup known sound by other means",
				ErrKeysNotCovered, b.Dir, why, KeysFile)
		}
	}
	return nil
}

// sealProblem says why m's seal does not vouch for it under key ("" when it does).
//
// A backup without a seal (made before backups were sealed, or without --checkpoint-key) is
// refused, not let through with a warning: whoever alters a keys file can remove the seal
// as easily, and a warning would leave the key's check to whoever reads stderr.
func sealProblem(m Manifest, key ed25519.PublicKey) string {
	s := m.Seal
	if s == nil {
		return "the manifest has no seal (a backup made before nirctl sealed backups or without nirctl backup --checkpoint-key, or the seal was removed)"
	}
	pk, err := hex.DecodeString(s.PublicKey)
	if err != nil || !bytes.Equal(pk, key) {
		return "the manifest is sealed by another key than the one given"
	}
	msg, err := m.sealMessage()
	sig, serr := base64.StdEncoding.DecodeString(s.Signature)
	if err != nil || serr != nil || !ed25519.Verify(key, msg, sig) {
		return fmt.Sprintf("the manifest's seal does not hold: %s or the manifest was changed after the backup was made", KeysFile)
	}
	return ""
}

// failAfter, set by tests, fails a restore after the step it names ("events": after
// storing them, before the data keys), as a restore killed there would stop.
var failAfter func(step string) error

// chainKeys returns the data keys a restore of bs stores: those of the newest backup that
// holds keys, and for each key it records as damaged, the key from the newest earlier backup
// that holds it whole (made before the damage). The keys no backup of bs holds whole stay in
// Damaged.
func chainKeys(bs []*Backup) eventstore.KeyExport {
	var keys eventstore.KeyExport
	newest := -1
	for i, b := range bs {
		if b.keys != nil {
			keys, newest = *b.keys, i
		}
	}
	if len(keys.Damaged) == 0 {
		return keys
	}
	keys.Wrapped = maps.Clone(keys.Wrapped)
	var lost []string
	for _, id := range keys.Damaged {
		found := false
		for i := newest - 1; i >= 0 && !found; i-- {
			if k := bs[i].keys; k != nil {
				if w, ok := k.Wrapped[id]; ok {
					keys.Wrapped[id], found = w, true
				}
			}
		}
		if !found {
			lost = append(lost, id)
		}
	}
	keys.Damaged = lost
	return keys
}

// LostKeys returns the ids of the data keys a restore of bs cannot put back: damaged in the
// register when its newest backup was made, and whole in none of the earlier ones given. The
// restored register reads what they sealed as unreadable (DataLoss), as the register backed
// up did; a restore that also gives an earlier backup holding them (its chain) gets them back.
func LostKeys(bs []*Backup) []string {
	return chainKeys(bs).Damaged
}

// carriedBefore returns how many of the stream's checkpoints (cps, in their stream's order)
// the earlier backup already carries: those up to the last one it holds. A backup carries
// the checkpoints after those, through its last sequence. Not the checkpoints of its own
// sequences only: nird checkpoints while a backup runs, so a checkpoint of a sequence the
// earlier backup holds may have been made after that backup listed the checkpoints, and
// without it the restored chain has a gap. When the earlier backup carries none (or one the
// stream no longer holds), every checkpoint is carried again; Restore drops the repeats.
func carriedBefore(cps []eventstore.StoredCheckpoint, after *Manifest) int {
	if after == nil || len(after.Checkpoints) == 0 {
		return 0
	}
	last := after.Checkpoints[len(after.Checkpoints)-1]
	for i, c := range cps {
		if base64.StdEncoding.EncodeToString(c.Data) == last {
			return i + 1
		}
	}
	return 0
}

// carriedThrough returns the sequence in the checkpoint stream through which the earlier
// backup carries the checkpoints (0: none), carried being carriedBefore's count. When the
// last one it carries is not among those read (cps), it is taken for the first unreadable
// one after the last read one that covers less of the event stream: it was read whole
// when the earlier backup was made, and is damaged now.
func carriedThrough(cps []eventstore.StoredCheckpoint, unreadable []uint64, carried int, after *Manifest) uint64 {
	if carried > 0 {
		return cps[carried-1].Seq
	}
	if after == nil || len(after.Checkpoints) == 0 {
		return 0
	}
	d, err := base64.StdEncoding.DecodeString(after.Checkpoints[len(after.Checkpoints)-1])
	cp := new(nirv1.Checkpoint)
	if err != nil || proto.Unmarshal(d, cp) != nil {
		return 0
	}
	var before uint64 // the last read one that covers less than it
	for _, c := range cps {
		if c.Checkpoint != nil && c.Checkpoint.GetStreamSeq() < cp.GetStreamSeq() {
			before = c.Seq
		}
	}
	for _, q := range unreadable {
		if q > before {
			return q
		}
	}
	return before
}

// idRepeats returns a function that reports whether a message's Nats-Msg-Id header, as the
// server reads it (the first value, trimmed), repeats one of a message passed to it before.
// It keeps 16 bytes of each id's SHA-256, not the id: a restore holds the backup in memory
// already, and a register's ids are millions.
func idRepeats() func(eventstore.RawMessage) bool {
	seen := map[[16]byte]struct{}{}
	return func(r eventstore.RawMessage) bool {
		vs := r.Header[nats.MsgIdHdr]
		if len(vs) == 0 {
			return false
		}
		id := textproto.TrimString(vs[0])
		if id == "" {
			return false
		}
		h := sha256.Sum256([]byte(id))
		k := [16]byte(h[:16])
		if _, ok := seen[k]; ok {
			return true
		}
		seen[k] = struct{}{}
		return false
	}
}

// withoutRepeatedIDs passes msgs through, each whose Nats-Msg-Id repeats an earlier one's
// without that header. A restore sends every message within the target's dedupe window,
// and JetStream refuses an atomic batch holding an id stored already or twice (10201): a
// register that holds an event id twice (stored for a second person after the window,
// nirctl verify's duplicate-id) could not be restored at all. Its first holder keeps it;
// RepeatedIDs names the others.
func withoutRepeatedIDs(msgs iter.Seq2[eventstore.RawMessage, error]) iter.Seq2[eventstore.RawMessage, error] {
	repeats := idRepeats()
	return func(yield func(eventstore.RawMessage, error) bool) {
		for r, err := range msgs {
			if err == nil && repeats(r) {
				r.Header = maps.Clone(r.Header)
				delete(r.Header, nats.MsgIdHdr)
			}
			if !yield(r, err) {
				return
			}
		}
	}
}

// RepeatedIDs returns the sequences, among those a restore of bs up to until stores, of the
// messages whose Nats-Msg-Id header repeats an earlier message's: Restore stores them
// without it (withoutRepeatedIDs). Their subjects and data are restored as they were.
func RepeatedIDs(bs []*Backup, until Until) []uint64 {
	repeats := idRepeats()
	var out []uint64
	for _, b := range bs {
		for r, err := range b.records() {
			if err != nil || !until.keeps(r) {
				return out
			}
			if repeats(r) {
				out = append(out, r.Seq)
			}
		}
	}
	return out
}

// withErasures passes msgs through, noting the data keys each erasure among them destroyed
// (PersonErased.destroyed_keys).
func withErasures(msgs iter.Seq2[eventstore.RawMessage, error], erased *[]string) iter.Seq2[eventstore.RawMessage, error] {
	return func(yield func(eventstore.RawMessage, error) bool) {
		for r, err := range msgs {
			if err == nil {
				ev := &nirv1.Event{}
				if proto.Unmarshal(r.Data, ev) == nil && ev.GetPersonErased() != nil {
					*erased = append(*erased, ev.GetPersonErased().GetDestroyedKeys()...)
				}
			}
			if !yield(r, err) {
				return
			}
		}
	}
}

func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("backup: %s is not empty: give a new directory for each backup", dir)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
