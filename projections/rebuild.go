package projections

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"
)

// Progress phases of a rebuild or replay.
const (
	// PhaseStore: the events are stored (Done and Total count stream sequences).
	PhaseStore = "store"
	// PhaseFold: each person is folded once and every model written (Done and Total count
	// persons).
	PhaseFold = "fold"
)

// Progress reports a rebuild or replay.
type Progress struct {
	// Phase is PhaseStore, then PhaseFold.
	Phase string
	// Done of Total: stream sequences (of the stream's last sequence when it started) while
	// storing, persons while folding.
	Done, Total uint64
	// Rate is events per second so far; ETA the estimated time left.
	Rate    float64
	ETA     time.Duration
	Elapsed time.Duration
	// FromFile is the last sequence whose events a rebuild took from the live file, checked
	// against the stream's checkpoint through it (Rebuild); 0 while none is, and when the
	// whole stream is read.
	FromFile uint64
}

// rebuildBatch is the transaction size of rebuilds and replays: large, since nothing waits.
const rebuildBatch = 20000

// maxMapSize bounds the mapping a rebuild sizes its new file's for at the start
// (DBOptions.MapSize): a live file larger than it maps as bbolt grows it.
const maxMapSize = 64 << 30

// build folds the feed into a new file at path (removed first) with large transactions and no
// fsync, reporting progress after each transaction; a caller that keeps the file syncs it.
// With src (a live file of the same stream), the events src holds through the stream's last
// checkpoint it covers (and the cut-off's bound, in an as-of replay) are taken from it once
// they match the checkpoint (copyAttested), and the stream is read after that checkpoint only.
func (p *Projector) build(ctx context.Context, path string, opt ReplayOptions, src *DB, progress func(Progress)) (*DB, error) {
	// The stream's identity before its first event is read: the new file belongs to it.
	var sid string
	if idf, ok := p.feed.(Identifier); ok {
		var err error
		if sid, err = idf.StreamID(ctx); err != nil {
			return nil, &feedError{fmt.Errorf("projections: stream identity: %w", err)}
		}
	}
	create := func() (*DB, error) {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("projections: %w", err)
		}
		dopt := DBOptions{NoSync: true, StateCache: p.opt.StateCache, Logger: p.logger, Open: p.opt.Open}
		if src != nil {
			// The new file grows to about the live file's size (less for an early cut-off).
			if fi, err := os.Stat(src.path); err == nil && fi.Size() <= min(maxMapSize, math.MaxInt) {
				dopt.MapSize = int(fi.Size())
			}
		}
		db, err := Open(path, dopt)
		if err != nil {
			return nil, err
		}
		if sid != "" {
			if err := db.setStreamID(sid); err != nil {
				db.Close()
				return nil, err
			}
		}
		// The store pass spills each event for the fold to read by ranges of persons; without
		// a spill the fold reads the events from the file.
		if db.spill, err = newSpill(filepath.Dir(path), opt.To); err != nil {
			p.logger.Warn("rebuild: no spill files: the fold reads the events from the new file", "err", err)
		}
		return db, nil
	}
	db, err := create()
	if err != nil {
		return nil, err
	}
	// The passes read the file's pages through its mapping (the commits, the fold): they
	// are dropped from the resident set on a clock, if the file is larger than
	// dropMappedAbove (the writer commits seldom while the fold reads), and all once built.
	stopDrops := dropMappedMeanwhile(db.bolt, dropMappedAbove)
	defer func() { stopDrops() }()
	total := opt.To
	t0 := time.Now()
	var fromFile uint64
	report := func(phase string, done, total, from uint64, start time.Time) {
		if progress == nil {
			return
		}
		pr := Progress{Phase: phase, Done: done, Total: total, Elapsed: time.Since(t0), FromFile: fromFile}
		if s := time.Since(start).Seconds(); s > 0 && done >= from {
			pr.Rate = float64(done-from+1) / s
		}
		if pr.Rate > 0 && total > done {
			pr.ETA = time.Duration(float64(total-done) / pr.Rate * float64(time.Second))
		}
		progress(pr)
	}
	// Two passes: store every event, then fold each person once. Folding in stream order
	// would refold a person from their stored events each time a batch touches them.
	var last uint64
	store := opt
	store.Undecoded = opt.RecordedUntil.IsZero() // the fold decodes each event once
	// from is the first sequence to read from the stream: after what the copy covers.
	var from uint64
	if att, ok := p.feed.(Attester); ok && src != nil && sid != "" && opt.From <= 1 {
		if srcID, err := src.StreamID(); err == nil && srcID == sid {
			what := "rebuild"
			if !opt.RecordedUntil.IsZero() {
				what = "as-of replay"
			}
			var through uint64
			through, last, err = copyAttested(ctx, att, src, db, opt.To, opt.RecordedUntil, func(done, total uint64) { report(PhaseStore, done, total, 1, t0) })
			switch {
			case ctx.Err() != nil:
				err = ctx.Err()
			case err != nil:
				p.logger.Warn(what+": the live file's events are not used; the whole stream is read", "err", err)
				stopDrops()
				db.Close()
				last, err = 0, nil
				if db, err = create(); err == nil {
					stopDrops = dropMappedMeanwhile(db.bolt, dropMappedAbove)
				}
			case through == 0:
				p.logger.Info(what + ": no checkpoint signed by this nird's key covers the live file's events; the whole stream is read")
			case through > 0:
				fromFile, from = through, through+1
				p.logger.Info(what+": events taken from the live file, checked against the stream's checkpoint", "through_seq", through, "took", time.Since(t0).Round(time.Millisecond))
			}
			if err != nil {
				if db != nil {
					db.Close()
				}
				os.Remove(path)
				return nil, err
			}
		}
	}
	store.From = max(store.From, from)
	if store.To == 0 || store.From <= store.To {
		err = applyRange(ctx, p.feed, store, rebuildBatch, func(batch []Record) error {
			var err error
			if last, err = db.bulkStore(batch); err != nil {
				return err
			}
			report(PhaseStore, last, total, max(opt.From, 1), t0)
			return nil
		})
	}
	if err == nil {
		t1 := time.Now()
		err = db.foldAll(last, func(done, persons uint64) { report(PhaseFold, done, persons, 1, t1) })
	}
	// The checkpoint is the last record stored (foldAll's), never opt.To: a replay that
	// ended short of it is not taken as having delivered the rest (Rebuild's final stretch
	// replays from the checkpoint).
	if err != nil {
		db.Close()
		os.Remove(path)
		return nil, err
	}
	stopDrops()
	dropMapped(db.bolt, 0) // the fold read them: as the live file, it starts from what queries read
	return db, nil
}

// Rebuild folds the whole stream from sequence 1 into a new file with large transactions,
// fsyncs it once, and swaps it in atomically for the live file; queries keep being served from
// the old file meanwhile, and those in flight at the swap finish on it. progress (may be nil)
// is called after each transaction. Only one rebuild runs at a time (ErrRebuildRunning), and
// none during an as-of replay (ErrReplayRunning).
//
// If the process dies during a rebuild, the live file is untouched and the half-built file is
// removed by the next New: a rebuild always starts again from sequence 1.
//
// The events the live file holds are taken from it when they match the stream's last signed
// checkpoint they cover (the feed is an Attester), and the stream is read after that
// checkpoint only; otherwise, and while the live file awaits a repair, the whole stream is
// read. Both give the same file. RebuildFromStream always reads the whole stream.
func (p *Projector) Rebuild(ctx context.Context, progress func(Progress)) error {
	return p.rebuild(ctx, false, progress)
}

// RebuildFromStream is Rebuild reading the whole stream, never the live file's events.
func (p *Projector) RebuildFromStream(ctx context.Context, progress func(Progress)) error {
	return p.rebuild(ctx, true, progress)
}

func (p *Projector) rebuild(ctx context.Context, fromStream bool, progress func(Progress)) error {
	if !p.rebuilding.CompareAndSwap(false, true) {
		return ErrRebuildRunning
	}
	if p.replaying.Load() {
		// Not both at once: each takes a file as large as the live one and a rebuild's
		// memory. (AsOf looks the other way round, after its own flag: one of two started
		// at once may be refused, never both let through.)
		p.rebuilding.Store(false)
		return ErrReplayRunning
	}
	defer func() {
		p.rebuilding.Store(false)
		p.stats.progress.Store(nil)
	}()
	report := func(pr Progress) {
		p.stats.progress.Store(&pr)
		if progress != nil {
			progress(pr)
		}
	}
	// A repair pending now is done by this rebuild.
	repair := p.repair.Load()
	last, err := p.feed.LastSeq(ctx)
	if err != nil {
		// The stream not reachable for a moment: a repair Run does is tried again.
		return &feedError{fmt.Errorf("projections: rebuild: %w", err)}
	}
	p.noteLast(last)
	path := filepath.Join(p.opt.Dir, rebuildFile)
	src, release := p.liveSource(fromStream || repair != nil)
	db, err := p.build(ctx, path, ReplayOptions{From: 1, To: last}, src, report)
	release() // before the swap, which waits for the old file's users
	if err != nil {
		return fmt.Errorf("projections: rebuild: %w", err)
	}
	if repair == nil {
		// A repair replaces a file that is not served anyway (and keeps it aside); a rebuild
		// replaces models that are right, and must not drop what only they still hold.
		if err := p.checkLost(db); err != nil {
			db.Close()
			os.Remove(path)
			p.logger.Error("rebuild not swapped in: the stream lacks events the live read models hold; restore the stream from a backup (nirctl verify names the sequences)", "err", err)
			return fmt.Errorf("projections: rebuild: %w", err)
		}
	}
	if last == 0 {
		if _, err := db.Advance(0); err != nil {
			db.Close()
			return err
		}
	}

	// Final stretch: with the live writer held off, bring the new file up to the stream's end,
	// then swap. The live runner continues from the new checkpoint afterwards.
	var newQ, againQ uint64 // the new file's quarantines, new and found again
	p.writeMu.Lock()
	swapErr := func() error {
		// The new file's fsync while the stream's end is asked for: the server may have to
		// read the stream's last block again for it, which takes about as long (20-30 ms each
		// at 0.1 M events).
		synced := make(chan error, 1)
		go func() { synced <- db.Sync() }()
		now, lastErr := p.feed.LastSeq(ctx)
		if err := <-synced; err != nil {
			return err
		}
		if lastErr != nil {
			return &feedError{fmt.Errorf("projections: rebuild: %w", lastErr)}
		}
		ckpt, err := db.Checkpoint()
		if err != nil {
			return err
		}
		if now > ckpt {
			// From the new file's checkpoint, the last record the first pass stored: the
			// replay to last may have ended short of it.
			from := ckpt + 1
			err = applyRange(ctx, p.feed, ReplayOptions{From: from, To: now}, rebuildBatch, func(b []Record) error {
				c, err := db.Apply(b)
				ckpt = c
				return err
			})
			if err != nil {
				return err
			}
			if ckpt < now {
				// Swapped in, the file would lack the events after ckpt (the live runner
				// would go on after them), or take the live file back to ckpt.
				return &feedError{fmt.Errorf("%w: the replay of seq %d..%d ended after seq %d; the live models stay as they are (rebuild again)", ErrShortReplay, from, now, ckpt)}
			}
			if err := db.Sync(); err != nil {
				return err
			}
		}
		// A rebuild stopped meanwhile (nird's shutdown, the operator's client gone) swaps
		// nothing in.
		if err := ctx.Err(); err != nil {
			return err
		}
		db.bolt.NoSync = false
		// Before the swap, while the live file is the one replaced and its writer held off.
		if newQ, againQ, err = p.rebuiltQuarantines(db, repair != nil); err != nil {
			return err
		}
		live := filepath.Join(p.opt.Dir, liveFile)
		p.keepDamaged()
		if err := os.Rename(path, live); err != nil {
			return err
		}
		syncDir(p.opt.Dir)
		db.path = live
		return nil
	}()
	if swapErr != nil {
		p.writeMu.Unlock()
		db.Close()
		os.Remove(path)
		return fmt.Errorf("projections: rebuild swap: %w", swapErr)
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.writeMu.Unlock()
		return errors.Join(ErrClosed, db.Close())
	}
	old := p.cur
	p.cur = &handle{db: db}
	p.mu.Unlock()
	p.countQuarantines(newQ, false)
	p.countQuarantines(againQ, true)
	p.repair.CompareAndSwap(repair, nil)
	if c, err := db.Checkpoint(); err == nil {
		p.setCheckpoint(c)
	}
	// The replaced file is closed once its last readers are done, without the caller waiting:
	// closing it frees its blocks on disk, as long again as the fsync at 0.1 M events. Close
	// waits for it; it is counted before writeMu is let go, which Close takes first, so that
	// Close never waits before it is counted.
	p.retired.Add(1)
	// The live fold goes on in the new file while the old one's last readers finish: a
	// reader may be as slow as its client (a CSV export writes to it under Use).
	p.writeMu.Unlock()
	p.logger.Info("rebuild swapped in", "stream_seq", last)
	go func() {
		defer p.retired.Done()
		old.refs.Wait()
		if err := old.db.Close(); err != nil {
			p.logger.Warn("closing the replaced read-model file", "err", err)
		}
	}()
	return nil
}

// rebuiltQuarantines sorts the quarantine entries of a rebuild's new file db into new ones
// and those found again (countQuarantines). Found again are those the live file it replaces
// holds too, or, for a repair (a live file damaged or another stream's, not read), those up
// to the live checkpoint; and past the live checkpoint, those a fresh live file had yet to
// reach in its catch-up (caughtUp). New are the others: an event the rules now panic on
// where the live models folded it, a message that arrived while the rebuild ran. Called
// with writeMu held.
func (p *Projector) rebuiltQuarantines(db *DB, repair bool) (newQ, againQ uint64, err error) {
	qs, err := db.Quarantined(0)
	if err != nil {
		return 0, 0, err
	}
	ckpt := p.stats.checkpoint.Load()
	classify := func(held func(seq uint64) (bool, error)) error {
		for _, q := range qs {
			again, err := held(q.Seq)
			if err != nil {
				return err
			}
			if again || q.Seq > ckpt && p.caughtUp(q.Seq) {
				againQ++
			} else {
				newQ++
			}
		}
		return nil
	}
	if repair {
		err = classify(func(seq uint64) (bool, error) { return seq <= ckpt, nil })
	} else {
		err = p.use("", func(live *DB) error { return classify(live.quarantinedAt) })
	}
	return newQ, againQ, err
}

// liveSource returns the live file for build to take events from, held open until release
// is called; nil (and a release that does nothing) with fromStream, or while the live file
// awaits a repair.
func (p *Projector) liveSource(fromStream bool) (src *DB, release func()) {
	if fromStream || p.repair.Load() != nil {
		return nil, func() {}
	}
	h, err := p.acquire("")
	if err != nil {
		return nil, func() {}
	}
	return h.db, h.refs.Done
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// checkLost returns ErrStreamLost when the new file found a sequence missing from the stream
// (QuarantineMissing) at which the live file holds an event: applied it (its checkpoint is at
// or past it) and did not quarantine it.
func (p *Projector) checkLost(db *DB) error {
	quarantined, err := db.Quarantined(0)
	if err != nil {
		return err
	}
	var missing []uint64
	for _, q := range quarantined {
		if q.Reason == QuarantineMissing {
			missing = append(missing, q.Seq)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return p.use("", func(live *DB) error {
		ckpt, err := live.Checkpoint()
		if err != nil {
			return err
		}
		var lost []uint64
		for _, seq := range missing {
			if seq > ckpt {
				break
			}
			if q, err := live.quarantinedAt(seq); err != nil {
				return err
			} else if !q {
				lost = append(lost, seq)
			}
		}
		if len(lost) > 0 {
			return fmt.Errorf("%w: %d event(s), the first at stream sequence %d", ErrStreamLost, len(lost), lost[0])
		}
		return nil
	})
}
