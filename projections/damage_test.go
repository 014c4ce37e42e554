package projections

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/introreg/nir/internal/syncbuf"
)

// builtFile builds the live models of recs in dir and returns the file's bytes.
func builtFile(t *testing.T, dir string, recs []Record) []byte {
	t.Helper()
	p, err := New(NewSliceFeed(recs), Options{Dir: dir, BatchSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.CatchUp(bg); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, liveFile))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// caughtUp returns a projector whose live models in dir have caught up with recs; it is
// closed when the test ends.
func caughtUp(t *testing.T, dir string, recs []Record) *Projector {
	t.Helper()
	return caughtUpOn(t, NewSliceFeed(recs), Options{Dir: dir, BatchSize: 64})
}

// caughtUpOn returns a projector over feed with opt whose live models have caught up with
// the stream's end; it is closed when the test ends.
func caughtUpOn(t *testing.T, feed Feed, opt Options) *Projector {
	t.Helper()
	p, err := New(feed, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if _, err := p.CatchUp(bg); err != nil {
		t.Fatal(err)
	}
	return p
}

// flip flips n bytes of b at random places (seeded).
func flip(b []byte, n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	for range n {
		b[r.IntN(len(b))] ^= byte(1 + r.IntN(255))
	}
	return b
}

// TestProjector_DamagedFile: a read-model file truncated, with flipped bytes, or replaced by
// garbage is never served and never crashes the process: New finds the damage before bbolt
// uses the file, moves it aside, and Run rebuilds the models from the stream. Flips that hit
// nothing in use leave the models as they were; flips that spoil only the newest meta page
// leave the previous transaction's models, which Run brings up to date. Either way the models
// served are those of a clean build (up to their checkpoint). New checks every value's checksum here, as nird has it do (VerifyAtStart):
// without, a flip inside a value is found only when a query reads it, and the test's dump
// reads the raw bytes.
func TestProjector_DamagedFile(t *testing.T) {
	t.Parallel()
	recs := population(21, 40, testKommuner)
	want := cleanDump(t, recs)
	good := builtFile(t, t.TempDir(), recs)
	type attack struct {
		name   string
		damage func([]byte) []byte
	}
	attacks := []attack{
		{"TruncatedToHalf", func(b []byte) []byte { return b[:len(b)/2] }},
		{"TruncatedToOnePage", func(b []byte) []byte { return b[:4096] }},
		{"Truncated100Bytes", func(b []byte) []byte { return b[:100] }},
		{"Garbage", func(b []byte) []byte {
			r := rand.New(rand.NewPCG(9, 9))
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			return b
		}},
		{"Zeroed", func(b []byte) []byte { clear(b); return b }},
		{"MetaPagesZeroed", func(b []byte) []byte { clear(b[:8192]); return b }},
	}
	for seed := uint64(1); seed <= 40; seed++ {
		attacks = append(attacks, attack{fmt.Sprintf("Flip200Seed%d", seed), func(b []byte) []byte { return flip(b, 200, seed) }})
	}
	detected := 0
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, liveFile), a.damage(bytes.Clone(good)), 0o600); err != nil {
				t.Fatal(err)
			}
			p, err := New(NewSliceFeed(recs), Options{Dir: dir, BatchSize: 64, VerifyAtStart: true}) // as nird opens it
			if err != nil {
				t.Fatalf("New over a damaged file: %v", err)
			}
			defer p.Close()
			if p.Repairing() != "" {
				detected++
				if err := p.Use("", func(*DB) error { return nil }); !errors.Is(err, ErrUnavailable) {
					t.Fatalf("a damaged file is served: Use = %v", err)
				}
				kept, _ := filepath.Glob(filepath.Join(dir, liveFile+".damaged-*"))
				if len(kept) != 1 {
					t.Errorf("damaged file not kept aside: %v", kept)
				}
			}
			rebuiltLike(t, p, recs, "")
			if got := liveDump(t, p); got != want {
				t.Fatalf("models after %s differ from a clean build", a.name)
			}
		})
	}
	t.Logf("%d of %d attacks found damage at start (the rest hit only unused bytes)", detected, len(attacks))
}

// TestProjector_DamagedWhileServed: bytes of a value flipped under a running projector are
// found by the checksum when read: the query fails with ErrUnavailable instead of serving
// them, the file is kept aside and rebuilt, and Verify finds such damage without a query.
func TestProjector_DamagedWhileServed(t *testing.T) {
	t.Parallel()
	recs := population(22, 30, testKommuner)
	for _, how := range []string{"Query", "Verify"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			p := caughtUp(t, dir, recs)
			rep, err := p.Verify(bg)
			if err != nil || len(rep.Problems) != 0 || rep.Values == 0 {
				t.Fatalf("Verify of a sound file = %+v, %v", rep, err)
			}
			// Flip a byte of every copy of one person key in the file (its list row among
			// them): the mapping bbolt reads shows it at once.
			pk := recs[0].Event.GetPersonKey()
			path := filepath.Join(dir, liveFile)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for i := bytes.Index(b, []byte(pk)); i >= 0; {
				if _, err := f.WriteAt([]byte{b[i+10] ^ 0x20}, int64(i+10)); err != nil {
					t.Fatal(err)
				}
				n++
				j := bytes.Index(b[i+1:], []byte(pk))
				if j < 0 {
					break
				}
				i += 1 + j
			}
			f.Close()
			if n == 0 {
				t.Fatal("person key not found in the file")
			}
			if how == "Query" {
				err = p.Use("", func(db *DB) error {
					for _, k := range testKommuner {
						if _, err := db.ListPersons(PersonQuery{Kommune: k, PageSize: 1000}); err != nil {
							return err
						}
					}
					_, err := db.State(pk)
					return err
				})
				if !errors.Is(err, ErrUnavailable) {
					t.Fatalf("query over flipped bytes = %v, want ErrUnavailable", err)
				}
			} else {
				rep, err := p.Verify(bg)
				if err != nil || len(rep.Problems) == 0 || rep.Repairing == "" {
					t.Fatalf("Verify of a damaged file = %+v, %v", rep, err)
				}
			}
			if !strings.Contains(p.Repairing(), "damaged") {
				t.Fatalf("repairing = %q", p.Repairing())
			}
			rebuiltLike(t, p, recs, "")
			if kept, _ := filepath.Glob(filepath.Join(dir, liveFile+".damaged-*")); len(kept) != 1 {
				t.Errorf("damaged file not kept: %v", kept)
			}
		})
	}
}

// TestProjector_DamagedIDBlock: a byte flipped in an entry of a block of the event-id index
// (ids.go) is found by the block's checksum when the append path looks an id up: the look-up
// answers as an index that has read nothing (checkpoint 0), never with another sequence or
// person, and the file is rebuilt, after which the id is found again.
func TestProjector_DamagedIDBlock(t *testing.T) {
	t.Parallel()
	recs := population(23, 30, testKommuner)
	dir := t.TempDir()
	p := caughtUp(t, dir, recs)
	path := filepath.Join(dir, liveFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// An id inside a block, not its first (whose bytes are the block's key too).
	var rec Record
	at := -1
	for _, r := range recs {
		k := idKey(r.Event.GetId())
		if i := bytes.Index(b, k); i >= 0 && bytes.Count(b, k) == 1 && isULIDKey(k) {
			rec, at = r, i
			break
		}
	}
	if at < 0 {
		t.Fatal("no event id found once in the file")
	}
	id, pk := rec.Event.GetId(), rec.Event.GetPersonKey()
	if got, ckpt, err := p.EventPersons([]string{id}); err != nil || got[id] != pk || ckpt == 0 {
		t.Fatalf("EventPersons before the damage = %v, %d, %v", got, ckpt, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{b[at+9] ^ 0x10}, int64(at+9)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	got, ckpt, err := p.EventPersons([]string{id})
	if err != nil || len(got) != 0 || ckpt != 0 {
		t.Fatalf("EventPersons over a damaged block = %v, checkpoint %d, %v; want nothing known", got, ckpt, err)
	}
	if !strings.Contains(p.Repairing(), "damaged") {
		t.Fatalf("repairing = %q", p.Repairing())
	}
	rebuiltLike(t, p, recs, "")
	if got, _, err := p.EventPersons([]string{id}); err != nil || got[id] != pk {
		t.Fatalf("EventPersons after the rebuild = %v, %v", got, err)
	}
}

// TestProjector_NewestMetaDamaged: a file whose newest meta page is damaged opens at the
// previous transaction, as bbolt does: the models of an earlier checkpoint, whole, which Run
// brings up to date. nird says so in its log (before, it said nothing).
func TestProjector_NewestMetaDamaged(t *testing.T) {
	t.Parallel()
	recs := population(23, 20, testKommuner)
	want := cleanDump(t, recs)
	good := builtFile(t, t.TempDir(), recs)
	m0 := readBoltMeta(good)
	m1 := readBoltMeta(good[m0.pageSize:])
	if !m0.valid || !m1.valid || m0.txid == m1.txid {
		t.Fatalf("a built file's meta pages: %+v %+v", m0, m1)
	}
	newest := 0
	if m1.txid > m0.txid {
		newest = int(m0.pageSize)
	}
	bad := bytes.Clone(good)
	bad[newest+pageHeaderSize+48] ^= 0xff // the txid: the checksum no longer matches
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, liveFile), bad, 0o600); err != nil {
		t.Fatal(err)
	}
	p, log := newLogged(t, recs, Options{Dir: dir, BatchSize: 64, VerifyAtStart: true})
	if p.Repairing() != "" {
		t.Fatalf("a file with one sound meta page is repaired: %s", p.Repairing())
	}
	var at uint64
	err := p.Use("", func(db *DB) (err error) { at, err = db.Checkpoint(); return err })
	if err != nil || at >= uint64(len(recs)) {
		t.Fatalf("opened at checkpoint %d of %d (%v), want the previous transaction's", at, len(recs), err)
	}
	if !strings.Contains(log.String(), "meta pages is damaged") {
		t.Errorf("nothing said of the damaged meta page: %s", log.String())
	}
	rebuiltLike(t, p, recs, "")
	if got := liveDump(t, p); got != want {
		t.Fatal("the models caught up differ from a clean build")
	}
}

// keptSnapshot builds the models of a small population in a new directory with one snapshot
// kept, "good", and closes them; it returns the directory, the population, the snapshot's
// dump and its file's bytes, for a test to lay other files beside it and open them again.
func keptSnapshot(t *testing.T) (dir string, recs []Record, want string, good []byte) {
	t.Helper()
	recs = population(24, 30, testKommuner)
	dir = t.TempDir()
	p := caughtUp(t, dir, recs)
	db, err := p.AsOf(bg, AsOfOptions{RecordedUntil: time.Now(), Keep: "good"})
	if err != nil {
		t.Fatal(err)
	}
	want = dump(t, db)
	db.Close()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	good, err = os.ReadFile(filepath.Join(dir, snapshotDir, "good.db"))
	if err != nil {
		t.Fatal(err)
	}
	return dir, recs, want, good
}

// newLogged is New over recs with opts, its log written into the buffer it returns; the
// projector is closed when the test ends.
func newLogged(t *testing.T, recs []Record, opts Options) (*Projector, *syncbuf.Buffer) {
	t.Helper()
	var log syncbuf.Buffer
	opts.Logger = slog.New(slog.NewTextHandler(&log, nil))
	p, err := New(NewSliceFeed(recs), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, &log
}

// TestProjector_SnapshotFilesDamaged: what lies in the snapshots' directory in place of a
// snapshot (a file truncated to nothing or to a page, flipped bytes, garbage, a directory, a
// FIFO, a dangling link) never stops OpenSnapshots, which nird runs at every start, and is
// never served: damage is moved aside, the rest skipped, both logged; the sound snapshot is
// served as before. Before, an empty file, a directory or a dangling link made OpenSnapshots
// fail (nird refused to start: "write …: bad file descriptor", "no such device"), and a
// FIFO made it wait for ever (nird hung at start).
func TestProjector_SnapshotFilesDamaged(t *testing.T) {
	t.Parallel()
	dir, recs, want, good := keptSnapshot(t)
	snaps := filepath.Join(dir, snapshotDir)
	junk := map[string]func(path string) error{
		"empty":     func(p string) error { return os.WriteFile(p, nil, 0o600) },
		"one-page":  func(p string) error { return os.WriteFile(p, good[:4096], 0o600) },
		"half":      func(p string) error { return os.WriteFile(p, good[:len(good)/2], 0o600) },
		"flipped":   func(p string) error { return os.WriteFile(p, flip(bytes.Clone(good), 200, 7), 0o600) },
		"garbage":   func(p string) error { return os.WriteFile(p, []byte("not a snapshot"), 0o600) },
		"directory": func(p string) error { return os.Mkdir(p, 0o700) },
		"fifo":      func(p string) error { return syscall.Mkfifo(p, 0o600) },
		"dangling":  func(p string) error { return os.Symlink(filepath.Join(snaps, "gone.db"), p) },
	}
	for name, mk := range junk {
		if err := mk(filepath.Join(snaps, name+".db")); err != nil {
			t.Fatal(err)
		}
	}
	p2, log := newLogged(t, recs, Options{Dir: dir})
	done := make(chan error, 1)
	go func() { done <- p2.OpenSnapshots() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("OpenSnapshots with junk beside a snapshot: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("OpenSnapshots hangs")
	}
	served := p2.Snapshots()
	if !slices.Contains(served, "good") {
		t.Fatalf("the sound snapshot is not served: %v", served)
	}
	for _, n := range served {
		if n == "good" {
			continue
		}
		// Flips may hit only bytes nothing uses; what is served must be the sound models.
		if err := p2.Use(n, func(db *DB) error {
			if dump(t, db) != want {
				t.Errorf("snapshot %s is served with models that differ from the sound one", n)
			}
			return nil
		}); err != nil {
			t.Errorf("snapshot %s: %v", n, err)
		}
	}
	if err := p2.Use("good", func(db *DB) error {
		if dump(t, db) != want {
			t.Error("the sound snapshot's models changed")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// (A file cut in half may have lost only free pages at its end.)
	for _, n := range []string{"empty", "one-page", "garbage", "directory", "fifo", "dangling"} {
		if slices.Contains(served, n) {
			t.Errorf("junk %q is served as a snapshot", n)
		}
		if !strings.Contains(log.String(), "snapshot="+n) {
			t.Errorf("nothing logged of junk %q", n)
		}
		if n == "dangling" {
			continue
		}
		if aside, _ := filepath.Glob(filepath.Join(snaps, n+".db.damaged-*")); len(aside) != 1 {
			t.Errorf("damaged snapshot %q not moved aside: %v", n, aside)
		}
	}
}

// TestProjector_SnapshotDamagedWhileServed: a snapshot cut short or with flipped bytes while
// it is served (a local process, a disk going bad) is found by the read that meets the
// damage: that read fails with ErrCorrupt naming the snapshot, the snapshot is taken out of
// service and its file moved aside, and one of the same name can be made again; the live
// models are not affected. Before, every such read failed with the checksum's or the fault's
// error (an Internal error for the client) and the snapshot stayed listed and served.
func TestProjector_SnapshotDamagedWhileServed(t *testing.T) {
	t.Parallel()
	recs := population(25, 60, testKommuner)
	for _, how := range []string{"Truncated", "Flipped"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			p := caughtUp(t, dir, recs)
			live := liveDump(t, p)
			db, err := p.AsOf(bg, AsOfOptions{RecordedUntil: time.Now(), Keep: "s"})
			if err != nil {
				t.Fatal(err)
			}
			want := dump(t, db)
			db.Close()
			path := filepath.Join(dir, snapshotDir, "s.db")
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			flipped := 0
			switch how {
			case "Truncated":
				err = os.Truncate(path, 2*4096)
			case "Flipped":
				// The byte after each copy of a person's key: the first of its value, or
				// one of an event's data, which the checksums cover.
				f, ferr := os.OpenFile(path, os.O_RDWR, 0)
				if ferr != nil {
					t.Fatal(ferr)
				}
				for _, r := range recs[:10] {
					k := []byte(r.Event.GetPersonKey())
					for i := 0; ; i++ {
						j := bytes.Index(b[i:], k)
						if j < 0 {
							break
						}
						i += j
						at := i + len(k)
						if _, err = f.WriteAt([]byte{b[at] ^ 0x20}, int64(at)); err != nil {
							break
						}
						flipped++
					}
				}
				f.Close()
				if flipped == 0 {
					t.Fatal("no person key found in the snapshot")
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			err = p.Use("s", func(db *DB) error {
				for _, r := range recs[:10] {
					if _, err := db.History(r.Event.GetPersonKey()); err != nil {
						return err
					}
				}
				return db.Dump(io.Discard)
			})
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), `snapshot "s" is damaged`) {
				t.Fatalf("a read of the damaged snapshot: %v; want ErrCorrupt naming it", err)
			}
			if got := p.Snapshots(); len(got) != 0 {
				t.Errorf("the damaged snapshot is still served: %v", got)
			}
			if err := p.Use("s", func(*DB) error { return nil }); !errors.Is(err, ErrNotFound) {
				t.Errorf("a later read of the damaged snapshot: %v, want ErrNotFound", err)
			}
			if aside, _ := filepath.Glob(path + ".damaged-*"); len(aside) != 1 {
				t.Errorf("the damaged snapshot was not kept aside: %v", aside)
			}
			if got := liveDump(t, p); got != live {
				t.Error("the live models changed")
			}
			db, err = p.AsOf(bg, AsOfOptions{RecordedUntil: time.Now(), Keep: "s"})
			if err != nil {
				t.Fatalf("making the snapshot again: %v", err)
			}
			db.Close()
			if err := p.Use("s", func(db *DB) error {
				if dump(t, db) != want {
					t.Error("the snapshot made again differs")
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestProjector_PageLoop: a file whose branch pages point to themselves (a loop in a B+tree,
// on which bbolt would recurse until Go's stack limit, a fatal error no recover catches) is
// found by the walk at start, moved aside and rebuilt. The same damage made while nird serves
// the file is not found before bbolt meets it: that stops the process (README, "Damaged read
// models are rebuilt"), and this is what the next start does.
func TestProjector_PageLoop(t *testing.T) {
	t.Parallel()
	recs := population(26, 400, testKommuner)
	want := cleanDump(t, recs)
	dir := t.TempDir()
	b := builtFile(t, dir, recs)
	looped := 0
	for off := 2 * 4096; off+4096 <= len(b); off += 4096 {
		if binary.LittleEndian.Uint16(b[off+8:]) != branchPageFlag {
			continue
		}
		id := binary.LittleEndian.Uint64(b[off:])
		for i := range int(binary.LittleEndian.Uint16(b[off+10:])) {
			binary.LittleEndian.PutUint64(b[off+pageHeaderSize+i*elemSize+8:], id)
		}
		looped++
	}
	if looped == 0 {
		t.Fatal("no branch page in the file")
	}
	if err := os.WriteFile(filepath.Join(dir, liveFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := New(NewSliceFeed(recs), Options{Dir: dir, BatchSize: 64, VerifyAtStart: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if r := p.Repairing(); !strings.Contains(r, "reached twice") {
		t.Fatalf("a file with %d looped branch pages: repairing %q, want the loop found", looped, r)
	}
	rebuiltLike(t, p, recs, "")
	if got := liveDump(t, p); got != want {
		t.Fatal("models after the repair differ from a clean build")
	}
}

// TestProjector_SnapshotUsePanics: a panic in a function given to Use on a snapshot (a bug
// serving one request, which nird recovers) still releases the snapshot, so that deleting it
// and closing the Projector do not wait for ever.
func TestProjector_SnapshotUsePanics(t *testing.T) {
	t.Parallel()
	p := caughtUp(t, t.TempDir(), population(27, 10, testKommuner))
	db, err := p.AsOf(bg, AsOfOptions{RecordedUntil: time.Now(), Keep: "s"})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	func() {
		defer func() { _ = recover() }()
		_ = p.Use("s", func(*DB) error { panic("a bug") })
	}()
	done := make(chan error, 1)
	go func() { done <- p.DeleteSnapshot("s") }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("DeleteSnapshot waits for ever for a query that panicked")
	}
}
