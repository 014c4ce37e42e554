package projections

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// switchFeed is a feed whose stream can be replaced under the projector, with an identity.
type switchFeed struct {
	mu   sync.Mutex // guards cur, id, gets and unreadable
	cur  *SliceFeed
	id   string
	gets int // RawAt calls
	// unreadable is a sequence the stream counts but whose message RawAt cannot give (a
	// record damaged on disk).
	unreadable uint64
}

func (f *switchFeed) set(id string, recs []Record) {
	f.mu.Lock()
	f.cur, f.id = NewSliceFeed(recs), id
	f.mu.Unlock()
}

func (f *switchFeed) feed() *SliceFeed {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cur
}

func (f *switchFeed) Replay(ctx context.Context, opt ReplayOptions) iter.Seq2[Record, error] {
	return f.feed().Replay(ctx, opt)
}

func (f *switchFeed) LastSeq(ctx context.Context) (uint64, error) { return f.feed().LastSeq(ctx) }

func (f *switchFeed) StreamID(context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.id, nil
}

func (f *switchFeed) RawAt(_ context.Context, seq uint64) ([]byte, error) {
	f.mu.Lock()
	f.gets++
	recs, unreadable := f.cur.records, f.unreadable
	f.mu.Unlock()
	if seq == unreadable {
		return nil, ErrNotFound
	}
	for _, r := range recs {
		if r.Seq == seq {
			if r.Raw != nil {
				return r.Raw, nil
			}
			return marshalOpt.Marshal(r.Event)
		}
	}
	return nil, ErrNotFound
}

var _ Identifier = (*switchFeed)(nil)

// rebuiltLike runs p until its live models are served again and equal a clean build of
// recs, failing on any query answered meanwhile from other models than before (allowed,
// a dump; "" allows none).
func rebuiltLike(t *testing.T, p *Projector, recs []Record, allowed string) {
	t.Helper()
	want := cleanDump(t, recs)
	ctx, cancel := context.WithCancel(bg)
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	waitFor(t, "the rebuilt models", func() bool {
		var got string
		var at uint64
		err := p.Use("", func(db *DB) error {
			var b bytes.Buffer
			var err error
			at, err = db.DumpAt(&b)
			got = b.String()
			return err
		})
		if errors.Is(err, ErrUnavailable) {
			return false
		}
		if err != nil {
			t.Fatal(err)
		}
		if got == allowed && allowed != "" {
			return false
		}
		if got != want {
			// An earlier transaction's models are the models as of its checkpoint, served
			// while the runner catches up: bbolt opens the previous meta page when the
			// newest is damaged, as after a crash before the last commit. Anything else
			// served is garbage.
			if at < uint64(len(recs)) && got == cleanDump(t, recs[:at]) {
				return false
			}
			t.Fatalf("served models (checkpoint %d) differ from a clean build of the stream up to there", at)
		}
		return true
	})
	if p.Repairing() != "" {
		t.Errorf("still repairing after the rebuild: %s", p.Repairing())
	}
}

// TestProjector_ForeignModels: live models of another stream instance, beyond the stream's
// end, or whose last event is not the stream's at that sequence are not served but rebuilt;
// models of the same stream are kept as they are (one message read back).
func TestProjector_ForeignModels(t *testing.T) {
	t.Parallel()
	recs := population(11, 30, testKommuner)
	other := population(12, 20, testKommuner)
	tests := []struct {
		name string
		// then is the stream the models find when they start again.
		id   string
		then []Record
	}{
		{"AnotherInstance", "B", recs},
		{"BeyondTheEnd", "A", recs[:len(recs)/2]},
		{"RolledBackAndRewritten", "A", append(recs[:len(recs)/2:len(recs)/2], renumber(other, uint64(len(recs)/2)+1)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			f := &switchFeed{}
			f.set("A", recs)
			p, err := New(f, Options{Dir: dir, BatchSize: 64})
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Check(bg); err != nil || p.Repairing() != "" {
				t.Fatalf("Check of a new file: %v, repairing %q", err, p.Repairing())
			}
			if _, err := p.CatchUp(bg); err != nil {
				t.Fatal(err)
			}
			p.Close()

			f.set(tt.id, tt.then)
			p, err = New(f, Options{Dir: dir, BatchSize: 64})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if err := p.Check(bg); err != nil {
				t.Fatal(err)
			}
			if p.Repairing() == "" {
				t.Fatalf("models of %s not found foreign", tt.name)
			}
			if err := p.Use("", func(*DB) error { return nil }); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Use of foreign models = %v, want ErrUnavailable", err)
			}
			if st, err := p.Status(bg); err != nil || st.Repairing == "" {
				t.Fatalf("Status while repairing = %+v, %v", st, err)
			}
			if st := p.Stats(); !st.Unserved || st.KeptAside != 0 {
				t.Fatalf("Stats while repairing: unserved %v, kept aside %d; want true, 0", st.Unserved, st.KeptAside)
			}
			rebuiltLike(t, p, tt.then, "")
			if st := p.Stats(); st.Unserved || st.KeptAside != 1 {
				t.Fatalf("Stats after the repair: unserved %v, kept aside %d; want false, 1", st.Unserved, st.KeptAside)
			}
			// The replaced file is kept: it may hold the only copy of events the stream lost
			// (a damaged message block; before, it was deleted by the swap).
			kept, _ := filepath.Glob(filepath.Join(dir, liveFile+".damaged-*"))
			if len(kept) != 1 {
				t.Fatalf("the replaced read-model file was not kept: %v", kept)
			}
			old, err := Open(kept[0], DBOptions{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer old.Close()
			if dump(t, old) != cleanDump(t, recs) {
				t.Error("the kept file does not hold the models of the stream as it was")
			}
		})
	}
	// SameStream: the models are checked by reading their last event back. LastEventUnreadable:
	// the stream counts the last event the models applied but cannot read it back (damaged
	// on disk): nothing says the models are another stream's, and they hold the event as it
	// was. They are kept; they used to be rebuilt from the stream, without the event.
	for _, tc := range []struct {
		name       string
		unreadable bool
	}{{"SameStream", false}, {"LastEventUnreadable", true}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			f := &switchFeed{}
			f.set("A", recs)
			p, _ := New(f, Options{Dir: dir})
			if _, err := p.CatchUp(bg); err != nil {
				t.Fatal(err)
			}
			before := liveDump(t, p)
			p.Close()
			if tc.unreadable {
				f.mu.Lock()
				f.unreadable = recs[len(recs)-1].Seq
				f.mu.Unlock()
			}
			p, _ = New(f, Options{Dir: dir})
			defer p.Close()
			if err := p.Check(bg); err != nil || p.Repairing() != "" {
				t.Fatalf("Check (last event unreadable: %v): %v, repairing %q", tc.unreadable, err, p.Repairing())
			}
			if liveDump(t, p) != before || f.gets == 0 {
				t.Errorf("models changed, or the last event was not asked for (%d reads)", f.gets)
			}
		})
	}
	t.Run("StreamRecreatedWhileRunning", func(t *testing.T) {
		f := &switchFeed{}
		f.set("A", recs)
		p, _ := New(f, Options{Dir: t.TempDir(), BatchSize: 64})
		defer p.Close()
		if _, err := p.CatchUp(bg); err != nil {
			t.Fatal(err)
		}
		before := liveDump(t, p)
		f.set("B", other) // fewer events: the stream's end falls below the checkpoint
		rebuiltLike(t, p, other, before)
	})
}

// renumber returns recs with sequences from first on.
func renumber(recs []Record, first uint64) []Record {
	out := make([]Record, len(recs))
	for i, r := range recs {
		r.Seq = first + uint64(i)
		out[i] = r
	}
	return out
}

// TestProjector_ForeignSnapshot: a snapshot built from another instance of the stream (a
// file of another register's put among the snapshots, or one of a stream deleted and
// re-created) is taken out of service by Check and moved aside, as foreign live models are
// not served; a snapshot of the same stream stays. Before, Check looked at the live models
// only, and the other register's figures were served under the snapshot's name.
func TestProjector_ForeignSnapshot(t *testing.T) {
	t.Parallel()
	recs := population(13, 30, testKommuner)
	for _, tt := range []struct {
		name, id string
		kept     bool
	}{{"SameStream", "A", true}, {"AnotherInstance", "B", false}} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			f := &switchFeed{}
			f.set("A", recs)
			p, err := New(f, Options{Dir: dir, BatchSize: 64})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.CatchUp(bg); err != nil {
				t.Fatal(err)
			}
			db, err := p.AsOf(bg, AsOfOptions{RecordedUntil: time.Now(), Keep: "s"})
			if err != nil {
				t.Fatal(err)
			}
			db.Close()
			p.Close()

			f.set(tt.id, recs)
			p, err = New(f, Options{Dir: dir, BatchSize: 64})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if err := p.OpenSnapshots(); err != nil {
				t.Fatal(err)
			}
			if err := p.Check(bg); err != nil {
				t.Fatal(err)
			}
			served := slices.Contains(p.Snapshots(), "s")
			aside, _ := filepath.Glob(filepath.Join(dir, snapshotDir, "s.db.damaged-*"))
			if served != tt.kept || (len(aside) == 1) == tt.kept {
				t.Fatalf("snapshot of stream A on stream %s: served %v, moved aside %v; want served %v", tt.id, served, aside, tt.kept)
			}
			if !tt.kept {
				if err := p.Use("s", func(*DB) error { return nil }); !errors.Is(err, ErrNotFound) {
					t.Errorf("a query on the foreign snapshot: %v, want ErrNotFound", err)
				}
			}
		})
	}
}

// streamLost returns a projector whose live models hold recs, on a stream that has since lost
// recs[k] (its record answered as no message: lost), and is closed at the test's end.
func streamLost(t *testing.T) (p *Projector, recs, lost []Record, k int) {
	t.Helper()
	recs = population(13, 40, testKommuner)
	k = 17
	lost = append([]Record(nil), recs...)
	lost[k] = Record{Seq: recs[k].Seq, Quarantine: QuarantineMissing}
	f := &switchFeed{}
	f.set("A", recs)
	p, err := New(f, Options{Dir: t.TempDir(), BatchSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if _, err := p.CatchUp(bg); err != nil {
		t.Fatal(err)
	}
	f.set("A", lost)
	return p, recs, lost, k
}

// TestProjector_RebuildStreamLost: a rebuild that finds an event missing from the stream (a
// record its store can no longer read back, JetStream answering no message) which the live
// models hold is not swapped in: the live file is then the only copy of that event outside a
// backup (TestDamage_EventDataFlipped, adversarial). Before, the rebuild went on without the
// event and replaced the file. A sequence the live models never had either, and a repair
// (whose file is not served anyway), go through.
func TestProjector_RebuildStreamLost(t *testing.T) {
	t.Parallel()
	p, recs, lost, k := streamLost(t)
	before := liveDump(t, p)
	for _, fromStream := range []bool{true, false} {
		rebuild := p.Rebuild
		if fromStream {
			rebuild = p.RebuildFromStream
		}
		err := rebuild(bg, nil)
		if !errors.Is(err, ErrStreamLost) || !strings.Contains(err.Error(), fmt.Sprintf("stream sequence %d", recs[k].Seq)) {
			t.Fatalf("rebuild (from the stream %v) of a stream that lost an event the models hold: %v, want ErrStreamLost naming seq %d", fromStream, err, recs[k].Seq)
		}
		if liveDump(t, p) != before {
			t.Fatalf("rebuild (from the stream %v) swapped in models without the lost event", fromStream)
		}
	}

	// A repair goes through, without the event.
	p.requestRepair("test: the live file is damaged", true)
	rebuiltLike(t, p, lost, before)

	// Now the live models lack it too: a rebuild has nothing to lose.
	if err := p.RebuildFromStream(bg, nil); err != nil {
		t.Fatalf("rebuild of models that lack the event as the stream does: %v", err)
	}
}

// TestProjector_AsOfStreamLost: an as-of replay that finds an event missing from the stream
// which the live models hold is refused (ErrStreamLost naming the sequence) and keeps no
// snapshot, as a rebuild is not swapped in (TestProjector_RebuildStreamLost). Before, the
// replay went on without the event: an analyst's figures "as known then" lacked a known
// event, and only the snapshot's quarantine list told.
func TestProjector_AsOfStreamLost(t *testing.T) {
	t.Parallel()
	p, recs, lost, k := streamLost(t)
	for _, fromStream := range []bool{true, false} {
		db, err := p.AsOf(bg, AsOfOptions{RecordedUntil: time.Now(), Keep: "s", FromStream: fromStream})
		if err == nil {
			db.Close()
		}
		if !errors.Is(err, ErrStreamLost) || !strings.Contains(err.Error(), fmt.Sprintf("stream sequence %d", recs[k].Seq)) {
			t.Fatalf("as-of replay (from the stream %v) of a stream that lost an event the models hold: %v, want ErrStreamLost naming seq %d", fromStream, err, recs[k].Seq)
		}
		if slices.Contains(p.Snapshots(), "s") {
			t.Fatalf("as-of replay (from the stream %v) kept a snapshot without the lost event", fromStream)
		}
	}

	// Once the live models lack it too (after a repair), there is nothing to lose.
	p.requestRepair("test: the live file is damaged", true)
	rebuiltLike(t, p, lost, "")
	db, err := p.AsOf(bg, AsOfOptions{RecordedUntil: time.Now()})
	if err != nil {
		t.Fatalf("as-of replay of a stream that lacks an event the models lack too: %v", err)
	}
	if n := db.QuarantinedCount(); n != 1 {
		t.Errorf("the replay's quarantine: %d messages, want the missing one", n)
	}
	db.Close()
}
