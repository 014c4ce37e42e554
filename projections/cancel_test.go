package projections

import (
	"context"
	"errors"
	"iter"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// gatedFeed counts the highest sequence its Replay has yielded, so that a test can wait
// until applyRange's reader has read far enough ahead that it must be blocked handing a
// batch over (the batch queue holds two) before it ends the context: no sleeps to guess it.
type gatedFeed struct {
	Feed
	mu      sync.Mutex
	yielded uint64
	reached chan struct{} // closed once yielded >= at
	at      uint64
}

func newGatedFeed(f Feed) *gatedFeed { return &gatedFeed{Feed: f} }

// arm makes waitYielded wait for sequence at.
func (g *gatedFeed) arm(at uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.at, g.reached = at, make(chan struct{})
	if g.yielded >= at {
		close(g.reached)
	}
}

func (g *gatedFeed) waitYielded(t *testing.T) {
	g.mu.Lock()
	ch := g.reached
	g.mu.Unlock()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Error("the replay never read far enough ahead")
	}
}

func (g *gatedFeed) Replay(ctx context.Context, opt ReplayOptions) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		for r, err := range g.Feed.Replay(ctx, opt) {
			if err == nil {
				g.mu.Lock()
				g.yielded = max(g.yielded, r.Seq)
				if g.reached != nil && g.at > 0 && g.yielded >= g.at {
					select {
					case <-g.reached:
					default:
						close(g.reached)
					}
				}
				g.mu.Unlock()
			}
			if !yield(r, err) {
				return
			}
		}
	}
}

// Found on 2026-12-06: a catch-up whose context ended (nird's shutdown) while the replay's
// reader waited to hand over a batch returned no error, and catchUpOnce advanced the
// checkpoint to the stream's last sequence: the events not yet applied were skipped for
// good. Now the catch-up fails with the context's error and the checkpoint names the last
// event applied; the next catch-up applies the rest.
func TestRun_StopDuringCatchUpLosesNothing(t *testing.T) {
	recs := population(3, 50, testKommuner)
	feed := newGatedFeed(NewSliceFeed(recs))
	feed.arm(4) // batch 1 applied, 2 and 3 queued, 4 waiting to be handed over
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var once sync.Once
	var opened atomic.Int64
	p, err := New(feed, Options{Dir: t.TempDir(), BatchSize: 1, Open: func(ev *nirv1.Event) error {
		opened.Add(1)
		once.Do(func() {
			feed.waitYielded(t)
			cancel() // SIGTERM
		})
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ckpt, err := p.CatchUp(ctx)
	if err == nil {
		t.Errorf("a catch-up stopped by its context returned no error (checkpoint %d of %d)", ckpt, len(recs))
	}
	var c uint64
	p.use("", func(db *DB) error { c, _ = db.Checkpoint(); return nil })
	if n := uint64(opened.Load()); c > n {
		t.Fatalf("checkpoint %d stored after applying %d of %d events", c, n, len(recs))
	}
	// The restart applies the rest.
	if c, err = p.CatchUp(context.Background()); err != nil || c != uint64(len(recs)) {
		t.Fatalf("catch-up after the stop = %d, %v; want %d", c, err, len(recs))
	}
	if n := opened.Load(); n != int64(len(recs)) {
		t.Errorf("events applied in all = %d, want %d", n, len(recs))
	}
	// The same models as one uninterrupted catch-up.
	want := newTestProjector(t, NewSliceFeed(recs))
	if _, err := want.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, exp := modelsDigest(t, p), modelsDigest(t, want); got != exp {
		t.Errorf("models after a stopped catch-up and a restart differ from one catch-up:\n got %s\nwant %s", got, exp)
	}
}

// modelsDigest lists each kommune's persons in the live models.
func modelsDigest(t *testing.T, p *Projector) string {
	t.Helper()
	var out string
	if err := p.Use("", func(db *DB) error {
		ks, err := db.Kommuner()
		if err != nil {
			return err
		}
		for _, k := range ks {
			page, err := db.ListPersons(PersonQuery{Kommune: k})
			if err != nil {
				return err
			}
			out += k + ":" + keys(page.Rows) + " "
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// Found on 2026-12-06: after a catch-up cut short by shutdown, the access record of a person
// who moved still named the kommune they left, with a checkpoint past the move, which
// ingest's freshness check trusts. Now the record names the new kommune once the move is
// caught up, and never claims a checkpoint past what it folded.
func TestRun_StopDuringCatchUpKeepsAccessRight(t *testing.T) {
	var s scenario
	s.person("pkMover", "0301", "2023-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, 40)
	for _, r := range population(3, 40, testKommuner) {
		r.Seq = uint64(len(s.recs) + 1)
		s.recs = append(s.recs, r)
	}
	s.add("pkMover", "0301", "2024-02-01", &nirv1.PersonMoved{ToKommune: "4601", Date: pd("2024-02-01")})
	moveSeq := uint64(len(s.recs))

	feed := newGatedFeed(NewSliceFeed(s.recs))
	feed.arm(4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var once sync.Once
	p, err := New(feed, Options{Dir: t.TempDir(), BatchSize: 1, Open: func(*nirv1.Event) error {
		once.Do(func() {
			feed.waitYielded(t)
			cancel() // nird's shutdown
		})
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.CatchUp(ctx); err == nil {
		t.Error("a catch-up stopped by its context returned no error")
	}
	chain, err := p.AccessChain(s.recs[0].Event.GetPersonKey(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if end := chain[len(chain)-1]; end.Checkpoint >= moveSeq && end.Kommune != "4601" {
		t.Fatalf("after the stop the record claims seq %d folded but names kommune %q (found %v), not 4601 the person moved to at seq %d", end.Checkpoint, end.Kommune, end.Found, moveSeq)
	}
	// nird restarts and catches up.
	if _, err := p.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	chain, err = p.AccessChain(s.recs[0].Event.GetPersonKey(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if end := chain[len(chain)-1]; end.Checkpoint < moveSeq || end.Kommune != "4601" {
		t.Fatalf("after the restart the access record names kommune %q at checkpoint %d; want 4601 at or past seq %d", end.Kommune, end.Checkpoint, moveSeq)
	}
}

// shortFeed's Replay ends without an error before the To it was asked for, as
// eventstore.Replay does when a node cut off by a partition answers as stream leader from a
// store that ends early (replayBounds clamps to its last sequence).
type shortFeed struct {
	*SliceFeed
	upTo    atomic.Uint64
	replays atomic.Int64
}

func newShortFeed(recs []Record, upTo uint64) *shortFeed {
	f := &shortFeed{SliceFeed: NewSliceFeed(recs)}
	f.upTo.Store(upTo)
	return f
}

func (f *shortFeed) Replay(ctx context.Context, opt ReplayOptions) iter.Seq2[Record, error] {
	f.replays.Add(1)
	if upTo := f.upTo.Load(); opt.To == 0 || opt.To > upTo {
		opt.To = upTo
	}
	return f.SliceFeed.Replay(ctx, opt)
}

// Found on 2026-12-06: catchUpOnce took a replay that ended without an error as complete
// and advanced the checkpoint to the stream's last sequence: the events it did not deliver
// were never folded. Now the checkpoint stays at the last record delivered, the short
// replay is reported (Run retries), and the next round applies the rest.
func TestRun_ShortReplayDoesNotAdvancePastIt(t *testing.T) {
	recs := population(3, 20, testKommuner)
	half := uint64(len(recs) / 2)
	f := newShortFeed(recs, half)
	p, err := New(f, Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ckpt, err := p.CatchUp(context.Background())
	if ckpt != half || err == nil {
		t.Fatalf("short replay: checkpoint %d, err %v; want %d and an error naming the short replay", ckpt, err, half)
	}
	if applied := p.Stats().EventsApplied; applied != half {
		t.Errorf("applied %d, want %d", applied, half)
	}
	// The partition heals: the next round applies the rest.
	f.upTo.Store(uint64(len(recs)))
	if ckpt, err = p.CatchUp(context.Background()); err != nil || ckpt != uint64(len(recs)) {
		t.Fatalf("after the heal: checkpoint %d, %v; want %d", ckpt, err, len(recs))
	}
	if applied := p.Stats().EventsApplied; applied != uint64(len(recs)) {
		t.Errorf("applied %d in all, want %d", applied, len(recs))
	}
}

// Found on 2026-12-06: a rebuild whose replay ended short (a partition) advanced its new
// file to the stream's end and swapped it in without the events it did not deliver. Now the
// rebuild fails and the live file stays.
func TestRebuild_ShortReplayNotSwappedIn(t *testing.T) {
	recs := population(3, 20, testKommuner)
	f := newShortFeed(recs, uint64(len(recs)))
	p := caughtUpOn(t, f, Options{Dir: t.TempDir()})
	before := modelsDigest(t, p)
	f.upTo.Store(uint64(len(recs) / 2))
	err := p.RebuildFromStream(context.Background(), nil)
	if err == nil {
		t.Error("a rebuild whose replay ended short succeeded")
	}
	var c uint64
	p.use("", func(db *DB) error { c, _ = db.Checkpoint(); return nil })
	if after := modelsDigest(t, p); c != uint64(len(recs)) || after != before {
		t.Fatalf("after the short rebuild: checkpoint %d (want %d), models changed: %v", c, len(recs), after != before)
	}
}

// A repair (a rebuild Run does itself) whose replay ends short is tried again after a pause,
// as a catch-up that cannot read the stream is: nird does not stop, and the repair is done
// once the stream is whole again.
func TestRun_RepairRetriesShortReplay(t *testing.T) {
	recs := population(3, 20, testKommuner)
	f := newShortFeed(recs, uint64(len(recs)))
	p := caughtUpOn(t, f, Options{Dir: t.TempDir()})
	f.upTo.Store(uint64(len(recs) / 2))
	p.requestRepair("a test", false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	// Two repairs tried: the store pass and the final stretch each, twice.
	n := f.replays.Load()
	waitFor(t, "two repairs tried", func() bool {
		select {
		case err := <-done:
			t.Fatalf("Run returned %v on a short replay in a repair", err)
		default:
		}
		return f.replays.Load() >= n+4
	})
	if p.Repairing() == "" {
		t.Fatal("the repair is taken as done while the replay ends short")
	}
	f.upTo.Store(uint64(len(recs)))
	waitFor(t, "the repair", func() bool { return p.Repairing() == "" })
	if c := p.Stats().Checkpoint; c != uint64(len(recs)) {
		t.Errorf("checkpoint after the repair = %d, want %d", c, len(recs))
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
}

// Found on 2026-12-06: an as-of replay (CreateSnapshot runs it under the request's context,
// the console under its own, nirctl replay until Ctrl-C) whose context ended while the
// store pass's reader waited to hand over a batch kept a half-built snapshot under the name,
// and AsOf reported success. Now it fails and keeps nothing.
func TestAsOf_CancelledKeepsNothing(t *testing.T) {
	const pad = 100000
	var recs []Record
	for i := 1; i <= pad; i++ {
		recs = append(recs, Record{Seq: uint64(i), Quarantine: QuarantineUndecodable})
	}
	for _, r := range population(3, 50, testKommuner) {
		r.Seq += pad
		recs = append(recs, r)
	}
	feed := newGatedFeed(NewSliceFeed(recs))
	p, err := New(feed, Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	feed.arm(4 * rebuildBatch) // batch 1 stored, 2 and 3 queued, 4 read whole
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var once sync.Once
	db, err := p.AsOf(ctx, AsOfOptions{RecordedUntil: time.Now(), Keep: "2022@2023-02-28", Progress: func(pr Progress) {
		once.Do(func() {
			feed.waitYielded(t)
			cancel() // the operator's client goes away
		})
	}})
	if err == nil {
		c, _ := db.Checkpoint()
		db.Close()
		t.Fatalf("a cancelled as-of replay succeeded and kept a snapshot at checkpoint %d of %d", c, len(recs))
	}
	if err := p.Use("2022@2023-02-28", func(*DB) error { return nil }); err == nil {
		t.Error("the cancelled replay's snapshot is served")
	}
	st, err := p.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Snapshots) != 0 {
		t.Errorf("snapshots after a cancelled replay: %v", st.Snapshots)
	}
	for _, pattern := range []string{"asof-*", filepath.Join(snapshotDir, "*")} {
		if left, _ := filepath.Glob(filepath.Join(p.opt.Dir, pattern)); len(left) != 0 {
			t.Errorf("files left by the cancelled replay: %v", left)
		}
	}
}

// Found on 2026-12-06: a rebuild whose context ended in its final stretch (the events that
// arrived while it ran, replayed under the live writer's lock) while the reader waited to
// hand over a batch advanced the new file to the stream's end, synced it and swapped it in
// without the events it had not applied. Now the rebuild fails and the live file stays; the
// live runner applies the new events.
func TestRebuild_CancelledInFinalStretchNotSwappedIn(t *testing.T) {
	base := population(3, 20, testKommuner)
	slice := NewSliceFeed(append([]Record(nil), base...))
	feed := newGatedFeed(slice)
	last := uint64(len(base))
	// What arrives during the rebuild: one event, 80000 unusable messages, and a person
	// registered at the end.
	var late []Record
	var s scenario
	s.person("pkLate1", "0301", "2024-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, 77)
	ev := s.recs[0]
	ev.Seq = last + 1
	late = append(late, ev)
	for i := uint64(2); i <= 80001; i++ {
		late = append(late, Record{Seq: last + i, Quarantine: QuarantineUndecodable})
	}
	var s2 scenario
	s2.person("pkLate2", "4601", "2024-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, 78)
	ev2 := s2.recs[0]
	ev2.Seq = last + 80002
	late = append(late, ev2)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var once, addOnce sync.Once
	var stretch atomic.Bool
	p, err := New(feed, Options{Dir: t.TempDir(), Open: func(e *nirv1.Event) error {
		if stretch.Load() && e.GetPersonKey() == "pkLate1" {
			once.Do(func() {
				feed.waitYielded(t)
				cancel()
			})
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	err = p.Rebuild(ctx, func(pr Progress) {
		if pr.Phase == PhaseFold {
			addOnce.Do(func() {
				feed.arm(last + 4*rebuildBatch) // the stretch's batch 4 read whole
				slice.Add(late...)
				stretch.Store(true)
			})
		}
	})
	if !stretch.Load() {
		t.Fatal("the rebuild never reached its fold")
	}
	if err == nil {
		t.Error("a rebuild cancelled in its final stretch succeeded")
	}
	var ckpt uint64
	p.Use("", func(db *DB) error { ckpt, _ = db.Checkpoint(); return nil })
	found := false
	for _, k := range []string{"0301", "4601"} {
		p.Use("", func(db *DB) error {
			page, _ := db.ListPersons(PersonQuery{Kommune: k})
			for _, r := range page.Rows {
				found = found || r.PersonKey == "pkLate2"
			}
			return nil
		})
	}
	if ckpt >= last+80002 && !found {
		t.Fatalf("a cancelled rebuild swapped in a file at checkpoint %d without pkLate2 (seq %d)", ckpt, last+80002)
	}
	// The live runner brings the models to the stream's end.
	if ckpt, err = p.CatchUp(context.Background()); err != nil || ckpt != last+80002 {
		t.Fatalf("catch-up after the cancelled rebuild = %d, %v; want %d", ckpt, err, last+80002)
	}
}

// flakyLastFeed is a SliceFeed whose LastSeq fails while down is set: the stream not
// reachable for a while (a partition, a leader election).
type flakyLastFeed struct {
	*SliceFeed
	down atomic.Bool
}

func (f *flakyLastFeed) LastSeq(ctx context.Context) (uint64, error) {
	if f.down.Load() {
		return 0, errors.New("nats: timeout")
	}
	return f.SliceFeed.LastSeq(ctx)
}

// Found by a review on 2026-12-06: a repair that could not read the stream's last sequence
// for a moment (at its start or in its final stretch) returned a plain error, and Run, which
// retries only failures to read the feed, stopped: nird ended on a NATS timeout during a
// repair. Now the repair is tried again until the stream answers.
func TestRun_RepairRetriesStreamOutage(t *testing.T) {
	recs := population(3, 20, testKommuner)
	f := &flakyLastFeed{SliceFeed: NewSliceFeed(recs)}
	p := caughtUpOn(t, f, Options{Dir: t.TempDir()})
	if err := p.Check(bg); err != nil {
		t.Fatal(err)
	}
	p.requestRepair("a test", false)
	f.down.Store(true)
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	go func() { time.Sleep(500 * time.Millisecond); f.down.Store(false) }()
	select {
	case err := <-done:
		t.Fatalf("Run ended on a moment's stream outage during a repair: %v", err)
	case <-time.After(3 * time.Second):
	}
	waitFor(t, "the repair", func() bool { return p.Repairing() == "" })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run stopped by its context = %v, want nil", err)
	}
}

// Found by a review on 2026-12-06: a repair asked for while an operator's rebuild ran made
// Run call Rebuild, which answered ErrRebuildRunning, and Run stopped (nird ended). Now the
// repair waits for the operator's rebuild, as it waits for an as-of replay.
func TestRun_RepairDuringOperatorRebuildWaits(t *testing.T) {
	recs := population(3, 20, testKommuner)
	p := caughtUpOn(t, NewSliceFeed(recs), Options{Dir: t.TempDir()})
	if err := p.Check(bg); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	started := make(chan struct{})
	var once atomic.Bool
	rebuilt := make(chan error, 1)
	go func() {
		rebuilt <- p.Rebuild(bg, func(Progress) {
			if once.CompareAndSwap(false, true) {
				close(started)
				<-release
			}
		})
	}()
	<-started
	p.requestRepair("damage found by a catch-up meanwhile", true)
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	select {
	case err := <-done:
		close(release)
		<-rebuilt
		t.Fatalf("Run ended while an operator's rebuild ran and a repair was pending: %v", err)
	case <-time.After(2 * time.Second):
	}
	close(release)
	if err := <-rebuilt; err != nil {
		t.Fatalf("the operator's rebuild: %v", err)
	}
	waitFor(t, "the repair", func() bool { return p.Repairing() == "" })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run stopped by its context = %v, want nil", err)
	}
}

// Found on 2026-12-06 (review of the runtime fixes): an as-of replay whose replay ended early
// without an error (a node cut off by a partition answering as the stream's leader from a
// store that ends early) was kept as a complete snapshot: the replay delivers nothing for the
// events after the cut-off, so its end told nothing of where it stopped. Now the sequences
// after the last one stored are read again, and unless each is an event recorded after the
// cut-off the replay fails and keeps nothing.
func TestAsOf_ShortReplayKeepsNothing(t *testing.T) {
	recs := population(3, 40, testKommuner)
	// The cut-off halfway: the first half was recorded by it, the rest after.
	half := len(recs) / 2
	cut := recs[half-1].Event.GetRecordedAt().AsTime()
	for recs[half].Event.GetRecordedAt().AsTime().Equal(cut) {
		half++
	}
	f := newShortFeed(recs, uint64(len(recs)))
	p := caughtUpOn(t, f, Options{Dir: t.TempDir()})

	// Whole: the events after the cut-off are read again and found recorded after it.
	db, err := p.AsOf(context.Background(), AsOfOptions{RecordedUntil: cut})
	if err != nil {
		t.Fatalf("whole replay: %v", err)
	}
	c, _ := db.Checkpoint()
	db.Close()
	if c != uint64(half) {
		t.Fatalf("whole replay stored through seq %d, want %d", c, half)
	}

	// Short: the replay ends a quarter of the way, before the cut-off.
	f.upTo.Store(uint64(half / 2))
	db, err = p.AsOf(context.Background(), AsOfOptions{RecordedUntil: cut, Keep: "2022@2023-02-28"})
	if err == nil {
		c, _ := db.Checkpoint()
		db.Close()
		t.Fatalf("an as-of replay that ended short succeeded, through seq %d of %d", c, half)
	}
	if !errors.Is(err, ErrShortReplay) {
		t.Errorf("short replay: %v, want ErrShortReplay", err)
	}
	if err := p.Use("2022@2023-02-28", func(*DB) error { return nil }); err == nil {
		t.Error("the short replay's snapshot is served")
	}
	if left, _ := filepath.Glob(filepath.Join(p.opt.Dir, "asof-*")); len(left) != 0 {
		t.Errorf("files left by the short replay: %v", left)
	}
}

// Found on 2026-12-06 (review of the as-of clock skew): a snapshot of a cut-off less than the
// clock skew ago may lack an event recorded by the cut-off that reaches the stream later,
// and nothing said so. Now a replay made before its cut-off settled (the feed's cut-off plus
// its skew, Attester.CutOff) records until when it is provisional, and the status shows it;
// one made after says nothing.
func TestAsOf_ProvisionalUntilCutOffSettles(t *testing.T) {
	p := caughtUpOn(t, newTrustingFeed(population(3, 10, testKommuner)), Options{Dir: t.TempDir()})
	now := time.Now()
	for _, tc := range []struct {
		name string
		cut  time.Time
		want time.Time // zero: final
	}{
		{"fresh", now, now.Add(10 * time.Minute)},
		{"settled", now.Add(-11 * time.Minute), time.Time{}},
	} {
		db, err := p.AsOf(context.Background(), AsOfOptions{RecordedUntil: tc.cut, Keep: tc.name})
		if err != nil {
			t.Fatal(err)
		}
		got, ok := db.Provisional()
		db.Close()
		if ok != !tc.want.IsZero() || !got.Equal(tc.want) {
			t.Errorf("%s: provisional until %v (%v), want %v", tc.name, got, ok, tc.want)
		}
	}
	st, err := p.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st.Snapshots {
		if provisional := !s.ProvisionalUntil.IsZero(); provisional != (s.Name == "fresh") {
			t.Errorf("status of snapshot %s: provisional until %v", s.Name, s.ProvisionalUntil)
		}
	}
	if len(st.Snapshots) != 2 {
		t.Errorf("status lists %d snapshots, want 2", len(st.Snapshots))
	}
}
