package backup_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/backup"
	"github.com/introreg/nir/internal/storetest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

func openStore(t *testing.T) *eventstore.Store {
	t.Helper()
	s, err := eventstore.Open(context.Background(), eventstore.Config{Dir: filepath.Join(t.TempDir(), "js"),
		Metadata: map[string]string{"nir_person_key_fingerprint": "test-fingerprint"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func personKey(i int) string {
	h := sha256.Sum256([]byte(fmt.Sprint("backup test person ", i)))
	return hex.EncodeToString(h[:])
}

func event(key string, recorded time.Time) *nirv1.Event {
	return &nirv1.Event{Id: ulid.Make().String(), PersonKey: key, Kommune: "0301", Actor: &nirv1.Actor{Subject: "test"},
		RecordedAt: timestamppb.New(recorded),
		Payload:    &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: "4601", Date: &nirv1.Date{Year: 2024, Month: 3, Day: 1}}}}
}

// appendN appends n events for person i and returns their positions.
func appendN(t *testing.T, s *eventstore.Store, i, n int) []eventstore.Position {
	t.Helper()
	var out []eventstore.Position
	for range n {
		pos, err := s.Append(context.Background(), eventstore.PersonAppend{PersonKey: personKey(i), Events: []*nirv1.Event{event(personKey(i), time.Now())}})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pos...)
	}
	return out
}

// all returns every message of a store by sequence.
func all(t *testing.T, s *eventstore.Store) []eventstore.RawMessage {
	t.Helper()
	var out []eventstore.RawMessage
	if _, err := s.Export(context.Background(), 0, 0, func(m eventstore.RawMessage) error {
		m.Data = bytes.Clone(m.Data)
		out = append(out, m)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestBackup_DuringAppends: a backup taken while 16 clients append holds the stream exactly
// as it stood at one sequence; restored onto a fresh store, every acknowledged event up to
// that sequence is there once, at its sequence, byte for byte, and nothing after it.
func TestBackup_DuringAppends(t *testing.T) {
	ctx := context.Background()
	src := openStore(t)
	var (
		mu    sync.Mutex
		acked = map[string]uint64{} // event id → sequence
		stop  atomic.Bool
		wg    sync.WaitGroup
		count atomic.Int64
	)
	for c := range 16 {
		wg.Go(func() {
			for !stop.Load() {
				ev := event(personKey(c), time.Now())
				pos, err := src.Append(ctx, eventstore.PersonAppend{PersonKey: personKey(c), Events: []*nirv1.Event{ev}})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked[pos[0].EventID] = pos[0].Seq
				mu.Unlock()
				count.Add(1)
			}
		})
	}
	for count.Load() < 400 {
		time.Sleep(10 * time.Millisecond)
	}
	ackedBefore := uint64(count.Load())
	dir := filepath.Join(t.TempDir(), "backup")
	m, err := backup.Write(ctx, src, dir, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for n := count.Load(); count.Load() < n+200; {
		time.Sleep(10 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()

	if m.LastSeq < ackedBefore || m.Count != m.LastSeq || m.FirstSeq != 1 {
		t.Fatalf("manifest %+v: want sequences 1 to at least %d (acknowledged before the backup)", m, ackedBefore)
	}
	if m.Metadata["nir_person_key_fingerprint"] != "test-fingerprint" || m.StreamID == "" {
		t.Errorf("manifest does not name the stream and its key fingerprint: %+v", m)
	}
	for _, name := range []string{dir, filepath.Join(dir, backup.EventsFile), filepath.Join(dir, backup.ManifestFile)} {
		if fi, err := os.Stat(name); err != nil || fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: mode %v, %v: a backup holds personal data and is its owner's only", name, fi.Mode(), err)
		}
	}

	b, err := backup.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	dst := openStore(t)
	last, err := backup.Restore(ctx, dst, []*backup.Backup{b}, backup.Until{}, nil)
	if err != nil || last != m.LastSeq {
		t.Fatalf("restore: last %d, %v; want %d", last, err, m.LastSeq)
	}
	orig, restored := all(t, src), all(t, dst)
	if uint64(len(restored)) != m.LastSeq {
		t.Fatalf("restored %d messages, want %d", len(restored), m.LastSeq)
	}
	seen := map[string]int{}
	for i, r := range restored {
		o := orig[i]
		if r.Seq != o.Seq || r.Subject != o.Subject || !bytes.Equal(r.Data, o.Data) || r.Header.Get("Nats-Msg-Id") != o.Header.Get("Nats-Msg-Id") {
			t.Fatalf("sequence %d restored as %d %s (%d bytes), want %s (%d bytes)", o.Seq, r.Seq, r.Subject, len(r.Data), o.Subject, len(o.Data))
		}
		seen[r.Header.Get("Nats-Msg-Id")]++
	}
	for id, seq := range acked {
		switch {
		case seq <= m.LastSeq && seen[id] != 1:
			t.Errorf("acknowledged event at %d is restored %d times", seq, seen[id])
		case seq > m.LastSeq && seen[id] != 0:
			t.Errorf("event at %d, after the backup's %d, was restored", seq, m.LastSeq)
		}
	}
	// The restored events read as the originals, and nird's appends go on after them.
	evs, lastSeq, err := dst.Read(ctx, personKey(3))
	if err != nil || len(evs) == 0 || lastSeq > m.LastSeq {
		t.Fatalf("read a restored person: %d events, last %d, %v", len(evs), lastSeq, err)
	}
	if pos := appendN(t, dst, 3, 1); pos[0].Seq != m.LastSeq+1 {
		t.Errorf("an append after the restore went to %d, want %d", pos[0].Seq, m.LastSeq+1)
	}
}

// TestBackup_Damaged: a damaged, truncated or unfinished backup is refused by Open with a
// message that says so, before anything is restored.
func TestBackup_Damaged(t *testing.T) {
	ctx := context.Background()
	src := openStore(t)
	for i := range 5 {
		appendN(t, src, i, 4)
	}
	dir := filepath.Join(t.TempDir(), "b")
	if _, err := backup.Write(ctx, src, dir, backup.Options{}); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(dir, backup.EventsFile))
	if err != nil {
		t.Fatal(err)
	}
	manifest, _ := os.ReadFile(filepath.Join(dir, backup.ManifestFile))
	for _, c := range []struct {
		name   string
		events []byte
		drop   bool
		want   string
	}{
		{"FlippedByte", func() []byte { b := bytes.Clone(good); b[len(b)/2] ^= 0x40; return b }(), false, "damaged"},
		{"Truncated", good[:len(good)-30], false, "truncated or replaced"},
		{"NoManifest", good, true, "not a backup directory, or a backup that did not finish"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := filepath.Join(t.TempDir(), "copy")
			if err := os.MkdirAll(d, 0o700); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(d, backup.EventsFile), c.events, 0o600)
			if !c.drop {
				os.WriteFile(filepath.Join(d, backup.ManifestFile), manifest, 0o600)
			}
			if _, err := backup.Open(d); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Open = %v, want an error saying %q", err, c.want)
			}
		})
	}
	// A record damaged with a manifest to match (someone recomputed the file's hash, and
	// dropped the manifest's own checksum, as a backup made before it has none): the
	// record's own checksum still catches it.
	t.Run("RecordChecksum", func(t *testing.T) {
		d := filepath.Join(t.TempDir(), "copy")
		os.MkdirAll(d, 0o700)
		bad := bytes.Clone(good)
		bad[len(bad)-10] ^= 0x01
		os.WriteFile(filepath.Join(d, backup.EventsFile), bad, 0o600)
		sum := sha256.Sum256(bad)
		forged := bytes.Replace(manifest, []byte(hex.EncodeToString(sha256Of(good))), []byte(hex.EncodeToString(sum[:])), 1)
		forged = regexp.MustCompile(`,?\s*"manifest_sha256": "[0-9a-f]+"`).ReplaceAll(forged, nil)
		os.WriteFile(filepath.Join(d, backup.ManifestFile), forged, 0o600)
		if _, err := backup.Open(d); err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
			t.Errorf("Open = %v, want a record checksum mismatch", err)
		}
	})
	// The data keys damaged: a restore would seal no person's ids again, or leave persons
	// unreadable (DOMAIN.md Product decisions 15).
	t.Run("KeysDamaged", func(t *testing.T) {
		d := filepath.Join(t.TempDir(), "copy")
		os.MkdirAll(d, 0o700)
		os.WriteFile(filepath.Join(d, backup.EventsFile), good, 0o600)
		os.WriteFile(filepath.Join(d, backup.ManifestFile), manifest, 0o600)
		os.WriteFile(filepath.Join(d, backup.KeysFile), []byte(`{"wrapped":{"ab":"AAAA"}}`), 0o600)
		if _, err := backup.Open(d); err == nil || !strings.Contains(err.Error(), backup.KeysFile) {
			t.Errorf("Open = %v, want an error naming %s", err, backup.KeysFile)
		}
	})
	// A backup is written into a new directory only.
	if _, err := backup.Write(ctx, src, dir, backup.Options{}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("a second backup into the same directory: %v", err)
	}
	// A restore goes into an empty stream only.
	b, err := backup.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Restore(ctx, src, []*backup.Backup{b}, backup.Until{}, nil); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("restore into a stream with messages: %v", err)
	}
}

func sha256Of(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

// TestBackup_UntilAndIncremental: a restore stops at a sequence or at a receive time (the
// register as it stood then); an incremental backup continues a full one, and a chain
// restores the whole; as-of replays of the restored stream cut by the events' recorded
// times as the original's did.
func TestBackup_UntilAndIncremental(t *testing.T) {
	ctx := context.Background()
	src := openStore(t)
	for i := range 4 {
		appendN(t, src, i, 5)
	}
	time.Sleep(20 * time.Millisecond)
	mid := time.Now()
	time.Sleep(20 * time.Millisecond)
	for i := range 4 {
		appendN(t, src, i, 5)
	}
	full := filepath.Join(t.TempDir(), "full")
	fm, err := backup.Write(ctx, src, full, backup.Options{})
	if err != nil || fm.LastSeq != 40 {
		t.Fatalf("full backup: %+v, %v", fm, err)
	}
	appendN(t, src, 9, 7)
	incr := filepath.Join(t.TempDir(), "incr")
	im, err := backup.Write(ctx, src, incr, backup.Options{After: &fm})
	if err != nil || im.FirstSeq != 41 || im.LastSeq != 47 || im.After != fm.Events.SHA256 {
		t.Fatalf("incremental backup: %+v, %v", im, err)
	}
	fb, ib := openBackup(t, full), openBackup(t, incr)

	for _, c := range []struct {
		name  string
		chain []*backup.Backup
		until backup.Until
		want  uint64
		err   string
	}{
		{"Chain", []*backup.Backup{fb, ib}, backup.Until{}, 47, ""},
		{"ToSequence", []*backup.Backup{fb, ib}, backup.Until{Seq: 12}, 12, ""},
		{"ToTime", []*backup.Backup{fb}, backup.Until{Time: mid}, 20, ""},
		{"IncrementalAlone", []*backup.Backup{ib}, backup.Until{}, 0, "give the full backup first"},
		{"WrongOrder", []*backup.Backup{fb, fb}, backup.Until{}, 0, "does not continue"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dst := openStore(t)
			last, err := backup.Restore(ctx, dst, c.chain, c.until, nil)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("restore: %v, want %q", err, c.err)
				}
				if n, _ := dst.LastSeq(ctx); n != 0 {
					t.Errorf("a refused restore stored %d messages", n)
				}
				return
			}
			if err != nil || last != c.want {
				t.Fatalf("restore: last %d, %v; want %d", last, err, c.want)
			}
			if n, _ := dst.LastSeq(ctx); n != c.want {
				t.Errorf("stream ends at %d, want %d", n, c.want)
			}
		})
	}

	// As-of replay: the restored stream was received after mid, but its events were
	// recorded before; the cut-off keeps the same events as on the original.
	dst := openStore(t)
	if _, err := backup.Restore(ctx, dst, []*backup.Backup{fb, ib}, backup.Until{}, nil); err != nil {
		t.Fatal(err)
	}
	asOf := func(s *eventstore.Store) []uint64 {
		var seqs []uint64
		for st, err := range s.Replay(ctx, eventstore.ReplayOptions{RecordedUntil: mid}) {
			if err != nil {
				t.Fatal(err)
			}
			seqs = append(seqs, st.Seq)
		}
		return seqs
	}
	if o, r := asOf(src), asOf(dst); len(o) != 20 || fmt.Sprint(o) != fmt.Sprint(r) {
		t.Errorf("as-of replay: original %v, restored %v; want the same 20", o, r)
	}
}

// TestBackup_Checkpoints: a backup carries the stream's digest and its checkpoints; a
// restore puts the checkpoints back (only those of what it restores), the restored stream
// matches them, and a manifest whose digest is not the messages' is refused.
func TestBackup_Checkpoints(t *testing.T) {
	ctx := context.Background()
	src := openStore(t)
	appendN(t, src, 1, 10)
	storetest.CheckpointThrough(t, src, 10, nil)
	appendN(t, src, 2, 10)
	storetest.CheckpointThrough(t, src, 20, nil)
	full := filepath.Join(t.TempDir(), "full")
	fm, err := backup.Write(ctx, src, full, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cps, err := src.Checkpoints(ctx)
	if err != nil || len(cps) != 2 || len(fm.Checkpoints) != 2 {
		t.Fatalf("%d checkpoints (%v), %d in the manifest; want 2 and 2", len(cps), err, len(fm.Checkpoints))
	}
	if want := hex.EncodeToString(cps[1].Checkpoint.GetDigest()); fm.Digest != want {
		t.Errorf("manifest digest %s, want the checkpoint's through 20, %s", fm.Digest, want)
	}
	appendN(t, src, 3, 5)
	incr := filepath.Join(t.TempDir(), "incr")
	im, err := backup.Write(ctx, src, incr, backup.Options{After: &fm})
	if err != nil {
		t.Fatal(err)
	}
	var d eventstore.Digest
	for _, m := range all(t, src) {
		d.Add(m.Seq, m.Subject, eventstore.HashOf(m.Data))
	}
	if im.Digest != hex.EncodeToString(d.Sum[:]) || len(im.Checkpoints) != 0 {
		t.Errorf("incremental manifest: digest %s (want %x), %d checkpoints (want 0)", im.Digest, d.Sum, len(im.Checkpoints))
	}
	fb, ib := openBackup(t, full), openBackup(t, incr)

	for _, c := range []struct {
		name  string
		until backup.Until
		want  int // checkpoints restored
	}{{"Whole", backup.Until{}, 2}, {"ToSequence15", backup.Until{Seq: 15}, 1}} {
		t.Run(c.name, func(t *testing.T) {
			dst := openStore(t)
			if _, err := backup.Restore(ctx, dst, []*backup.Backup{fb, ib}, c.until, nil); err != nil {
				t.Fatal(err)
			}
			got, err := dst.Checkpoints(ctx)
			if err != nil || len(got) != c.want {
				t.Fatalf("%d checkpoints restored (%v), want %d", len(got), err, c.want)
			}
			for i, g := range got {
				if !bytes.Equal(g.Data, cps[i].Data) {
					t.Errorf("checkpoint %d restored differently", i)
				}
			}
		})
	}

	// A manifest with another digest: the messages are not the stream it describes.
	fb.Manifest.Digest = strings.Repeat("0", 64)
	dst := openStore(t)
	if _, err := backup.Restore(ctx, dst, []*backup.Backup{fb}, backup.Until{}, nil); err == nil || !strings.Contains(err.Error(), "manifest's digest") {
		t.Errorf("restore with a wrong digest: %v", err)
	}
}

// TestBackup_CheckpointMadeAfterTheBackup: nird checkpoints while a backup runs, so a
// checkpoint of a sequence the backup holds can be made after the backup listed the
// checkpoints. The next incremental backup carries it, or the restored chain has a gap
// (verify: "checkpoint … does not name the checkpoint before it"; seen once in five runs of
// TestBackupRestore_Nird).
func TestBackup_CheckpointMadeAfterTheBackup(t *testing.T) {
	ctx := context.Background()
	src := openStore(t)
	appendN(t, src, 1, 10)
	storetest.CheckpointThrough(t, src, 10, nil)
	appendN(t, src, 2, 10)
	full := filepath.Join(t.TempDir(), "full")
	fm, err := backup.Write(ctx, src, full, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if fm.LastSeq != 20 || len(fm.Checkpoints) != 1 {
		t.Fatalf("full backup through %d with %d checkpoints; want 20 and 1", fm.LastSeq, len(fm.Checkpoints))
	}
	storetest.CheckpointThrough(t, src, 20, nil) // of a sequence the full backup holds, made after it
	appendN(t, src, 3, 5)
	storetest.CheckpointThrough(t, src, 25, nil)
	incr := filepath.Join(t.TempDir(), "incr")
	im, err := backup.Write(ctx, src, incr, backup.Options{After: &fm})
	if err != nil {
		t.Fatal(err)
	}
	cps, err := src.Checkpoints(ctx)
	if err != nil || len(cps) != 3 {
		t.Fatalf("%d checkpoints in the source (%v), want 3", len(cps), err)
	}
	if len(im.Checkpoints) != 2 {
		t.Errorf("the incremental backup carries %d checkpoints; want 2 (through 20, made after the full backup, and through 25)", len(im.Checkpoints))
	}
	fb, ib := openBackup(t, full), openBackup(t, incr)
	dst := openStore(t)
	if _, err := backup.Restore(ctx, dst, []*backup.Backup{fb, ib}, backup.Until{}, nil); err != nil {
		t.Fatal(err)
	}
	got, err := dst.Checkpoints(ctx)
	if err != nil || len(got) != len(cps) {
		t.Fatalf("%d checkpoints restored (%v), want %d", len(got), err, len(cps))
	}
	for i := range got {
		if !bytes.Equal(got[i].Data, cps[i].Data) {
			t.Errorf("checkpoint %d restored differently", i+1)
		}
	}
}

// openBackup opens the backup in dir.
func openBackup(t *testing.T, dir string) *backup.Backup {
	t.Helper()
	b, err := backup.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBackup_ManifestDigestDamaged: a backup whose manifest's digest is damaged (a hex digit
// changed: the manifest still decodes, and the events file still has the manifest's SHA-256)
// is refused before anything is stored, and the target stays empty, so that the restore can
// be done again from a sound copy. Before, Restore compared the digest only after it had
// stored every message: it failed, but left the target holding the events without their
// data keys and checkpoints, and a restore again into it was refused as not empty.
func TestBackup_ManifestDigestDamaged(t *testing.T) {
	ctx := context.Background()
	src := openStore(t)
	for i := range 3 {
		appendN(t, src, i, 3)
	}
	full := filepath.Join(t.TempDir(), "full")
	m, err := backup.Write(ctx, src, full, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, src, 7, 2)
	incr := filepath.Join(t.TempDir(), "incr")
	mi, err := backup.Write(ctx, src, incr, backup.Options{After: &m})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		dir  string
		m    backup.Manifest
	}{{"Full", full, m}, {"Incremental", incr, mi}} {
		t.Run(c.name, func(t *testing.T) {
			if c.m.Digest == "" {
				t.Fatal("the manifest holds no digest")
			}
			d := filepath.Join(t.TempDir(), c.name)
			if err := os.MkdirAll(d, 0o700); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{backup.EventsFile, backup.KeysFile, backup.ManifestFile} {
				b, err := os.ReadFile(filepath.Join(c.dir, f))
				if err != nil && f != backup.KeysFile {
					t.Fatal(err)
				}
				if f == backup.ManifestFile {
					digit := byte('0')
					if c.m.Digest[5] == '0' {
						digit = '1'
					}
					bad := c.m.Digest[:5] + string(digit) + c.m.Digest[6:]
					b = bytes.Replace(b, []byte(c.m.Digest), []byte(bad), 1)
				}
				if err == nil {
					if err := os.WriteFile(filepath.Join(d, f), b, 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
			chain := []string{d}
			if c.name == "Incremental" {
				chain = []string{full, d}
			}
			var bs []*backup.Backup
			for _, dir := range chain {
				b, err := backup.Open(dir)
				if err != nil {
					// Refused at Open: as good, nothing stored.
					return
				}
				bs = append(bs, b)
			}
			dst := openStore(t)
			_, err := backup.Restore(ctx, dst, bs, backup.Until{}, nil)
			if err == nil || !strings.Contains(err.Error(), "digest") {
				t.Fatalf("restore of a backup whose manifest's digest is damaged: %v, want an error about the digest", err)
			}
			if n := len(all(t, dst)); n != 0 {
				t.Fatalf("the refused restore left %d messages in the target", n)
			}
		})
	}
}

// TestBackup_ManifestDamaged: damage in the manifest that the files' checksums and the
// records do not show (the stream's metadata, which holds the person key's fingerprint; the
// times) makes Open refuse the backup, naming the manifest. Before, Open took it, and the
// restored stream carried the damaged fingerprint: nird then refused to start saying its
// person key was not the register's. A manifest without its own checksum (a backup made
// before it) still opens.
func TestBackup_ManifestDamaged(t *testing.T) {
	ctx := context.Background()
	src := openStore(t)
	appendN(t, src, 1, 3)
	dir := filepath.Join(t.TempDir(), "b")
	m, err := backup.Write(ctx, src, dir, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(dir, backup.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	copyWith := func(t *testing.T, manifest []byte) string {
		d := filepath.Join(t.TempDir(), "copy")
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{backup.EventsFile, backup.KeysFile} {
			b, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, f), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(d, backup.ManifestFile), manifest, 0o600); err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, c := range []struct{ name, old, new string }{
		{"Fingerprint", "test-fingerprint", "test-fingerprinT"},
		{"Created", `"created": "` + m.Created.Format("2006"), `"created": "` + fmt.Sprint(m.Created.Year()-1)},
	} {
		t.Run(c.name, func(t *testing.T) {
			bad := bytes.Replace(good, []byte(c.old), []byte(c.new), 1)
			if bytes.Equal(bad, good) {
				t.Fatalf("%q not in the manifest", c.old)
			}
			if _, err := backup.Open(copyWith(t, bad)); err == nil || !strings.Contains(err.Error(), backup.ManifestFile+" is damaged") {
				t.Errorf("Open = %v, want %s refused as damaged", err, backup.ManifestFile)
			}
		})
	}
	t.Run("WithoutItsChecksum", func(t *testing.T) {
		old := regexp.MustCompile(`,?\s*"manifest_sha256": "[0-9a-f]+"`).ReplaceAll(good, nil)
		if bytes.Equal(old, good) {
			t.Fatal("the manifest holds no checksum of its own")
		}
		if _, err := backup.Open(copyWith(t, old)); err != nil {
			t.Errorf("a manifest of an older backup: %v", err)
		}
	})
}

// TestBackup_EventsFileReplaced: an events file larger than the manifest says, or a FIFO in
// its place, is refused by Open at once, without being read. Before, Open read the whole of
// whatever was there into memory before it compared the size (a link to /dev/zero: until
// memory ran out), and waited for ever on a FIFO.
func TestBackup_EventsFileReplaced(t *testing.T) {
	ctx := context.Background()
	src := openStore(t)
	appendN(t, src, 1, 3)
	dir := filepath.Join(t.TempDir(), "b")
	if _, err := backup.Write(ctx, src, dir, backup.Options{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		replace func(path string) error
	}{
		{"Larger", func(p string) error {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(p, append(b, make([]byte, 1000)...), 0o600)
		}},
		{"FIFO", func(p string) error {
			if err := os.Remove(p); err != nil {
				return err
			}
			return syscall.Mkfifo(p, 0o600)
		}},
		{"DevZero", func(p string) error {
			if err := os.Remove(p); err != nil {
				return err
			}
			return os.Symlink("/dev/zero", p)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := copyBackup(t, dir)
			if err := c.replace(filepath.Join(d, backup.EventsFile)); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { _, err := backup.Open(d); done <- err }()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), "cannot be restored") {
					t.Errorf("Open = %v, want the backup refused", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Open does not return")
			}
		})
	}
}
