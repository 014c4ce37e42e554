package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// Defaults of Options.
const (
	DefaultBatchSize    = 5000
	DefaultPollInterval = 100 * time.Millisecond
	liveFile            = "models.db"
	rebuildFile         = "models.db.rebuild"
	snapshotDir         = "snapshots"
)

// Options configure a Projector. The zero value of each field means its default.
type Options struct {
	// Dir holds the live read-model file (models.db), the rebuild file while a rebuild runs
	// and the named snapshots (snapshots/NAME.db). Required.
	Dir string
	// BatchSize is the most events applied in one transaction (DefaultBatchSize). While live,
	// a transaction holds whatever arrived, so latency stays low.
	BatchSize int
	// PollInterval is how often LastSeq is polled when the feed is no Waiter.
	PollInterval time.Duration
	// StateCache bounds the folded person states kept in memory (see DBOptions).
	StateCache int
	// VerifyAtStart checks every value's checksum of the live file when New opens it, not
	// only its structure (see DBOptions.VerifyValues; values are checked whenever read).
	VerifyAtStart bool
	// Logger; nil discards.
	Logger *slog.Logger
	// Open opens the sealed identifying fields of an event before it is folded, in every
	// file the projector opens (DBOptions.Open).
	Open func(ev *nirv1.Event) error
}

// Projector keeps the live read models up to date from a Feed (Run), rebuilds them into a new
// file and swaps it in (Rebuild), replays them as of a recorded-time cut-off (AsOf) and serves
// queries on the live models and on named snapshots (Use).
type Projector struct {
	feed   Feed
	opt    Options
	logger *slog.Logger

	// mu guards cur, snaps and closed. Lock order: writeMu before mu.
	mu     sync.RWMutex
	cur    *handle
	snaps  map[string]*handle
	closed bool

	// writeMu serialises applying to the live file with the swap at the end of a rebuild.
	writeMu sync.Mutex
	// retired counts the files a rebuild replaced that are not closed yet (Close waits).
	retired sync.WaitGroup

	rebuilding atomic.Bool
	replaying  atomic.Bool   // an as-of replay runs (AsOf)
	verifyTurn chan struct{} // buffered 1: held by the Verify that runs
	comparing  atomic.Bool   // CompareFold runs
	stats      statsCounters

	// repair is set while the live models must be rebuilt before they are served again
	// (another stream's, damaged); wake tells Run.
	repair atomic.Pointer[repairReq]
	wake   chan struct{}
	// checked is set once Check has run.
	checked atomic.Bool
	// unreadableWarned is the sequence Check last warned that it could not read back.
	unreadableWarned atomic.Uint64

	// advMu guards advanced, which is closed and replaced whenever the live checkpoint is
	// set (WaitFor).
	advMu    sync.Mutex
	advanced chan struct{}

	// fresh says the live file held nothing when New opened it (a new pod's, or one that
	// stood in for a damaged file); freshLast is then the stream's last sequence when it
	// was first read, plus one (0 before): quarantines up to it are found again
	// (countQuarantines).
	fresh     bool
	freshLast atomic.Uint64
}

// handle is an open DB with the queries in flight on it, so that a swap closes the old file
// only after they finish.
type handle struct {
	db   *DB
	refs sync.WaitGroup
}

type statsCounters struct {
	lastSeq, checkpoint, applied, batches, applyNanos, lastApplyNanos atomic.Uint64
	keptAside                                                         atomic.Uint64
	// quarantinesNew and quarantinesAgain count the quarantine entries the live models
	// added since start, new ones and those found again (countQuarantines).
	quarantinesNew, quarantinesAgain atomic.Uint64
	progress                         atomic.Pointer[Progress]

	// The regelmotor worker's passes (RunRegelmotor): completed, failed, the terminations
	// appended, and when the last pass ended (Unix nanoseconds).
	passes, failedPasses, terminations, lastPassNanos atomic.Uint64
}

// New opens (or creates) the live read models in opt.Dir. A leftover rebuild file from an
// interrupted rebuild is removed (a rebuild always starts again from sequence 1), and so are
// leftover files of unkept as-of replays. Only one Projector may use a Dir at a time.
func New(feed Feed, opt Options) (*Projector, error) {
	if opt.Dir == "" {
		return nil, fmt.Errorf("%w: Options.Dir is required", ErrInvalidArgument)
	}
	if opt.BatchSize <= 0 {
		opt.BatchSize = DefaultBatchSize
	}
	if opt.PollInterval <= 0 {
		opt.PollInterval = DefaultPollInterval
	}
	logger := opt.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "projections")
	if err := os.MkdirAll(filepath.Join(opt.Dir, snapshotDir), 0o700); err != nil {
		return nil, fmt.Errorf("projections: %w", err)
	}
	for _, f := range []string{rebuildFile, liveFile + ".verify"} {
		if err := os.Remove(filepath.Join(opt.Dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("projections: remove an interrupted rebuild or verify: %w", err)
		}
	}
	removeStaleSpills(opt.Dir)
	// Unkept as-of replays, the copies of verifications and the fresh folds of comparisons of
	// a process that died are of no use to anyone; nor is a CSV export's temporary file, left
	// only by a process that died between creating and unlinking it (beside the live file or
	// a snapshot, whichever it was made from).
	for _, pattern := range []string{"asof-*.db", verifyPattern, foldPattern, exportPattern, filepath.Join(snapshotDir, exportPattern)} {
		if stale, err := filepath.Glob(filepath.Join(opt.Dir, pattern)); err == nil {
			for _, f := range stale {
				os.RemoveAll(f)
			}
		}
	}
	live := filepath.Join(opt.Dir, liveFile)
	dbOpt := DBOptions{StateCache: opt.StateCache, Logger: logger, VerifyValues: opt.VerifyAtStart, Open: opt.Open}
	t0 := time.Now()
	db, err := Open(live, dbOpt)
	var damage error
	if errors.Is(err, ErrCorrupt) {
		// Never served and never a crash: kept for forensics, and rebuilt from the stream by
		// Run; until then an empty file stands in, and queries get ErrUnavailable.
		damage = err
		aside, merr := moveAside(live)
		if merr != nil {
			return nil, fmt.Errorf("projections: move the damaged read-model file aside: %w (it is damaged: %v)", merr, err)
		}
		logger.Error("read-model file damaged; moved aside and rebuilt from the stream", "path", aside, "err", err)
		db, err = Open(live, dbOpt)
	}
	if err != nil {
		return nil, err
	}
	logger.Info("read-model file checked", "path", live, "bytes", db.Size(), "values_verified", opt.VerifyAtStart, "seconds", time.Since(t0).Seconds())
	p := &Projector{feed: feed, opt: opt, logger: logger, cur: &handle{db: db}, snaps: map[string]*handle{}, advanced: make(chan struct{}), verifyTurn: make(chan struct{}, 1),
		wake: make(chan struct{}, 1)}
	if damage != nil {
		p.requestRepair("the read-model file was damaged: "+damage.Error(), false)
	}
	if c, err := db.Checkpoint(); err == nil {
		p.setCheckpoint(c)
		p.fresh = c == 0
	}
	return p, nil
}

// noteLast records the stream's last sequence, read before catching up or rebuilding: the
// first one read is where a fresh live file's catch-up ends (freshLast).
func (p *Projector) noteLast(last uint64) {
	if p.fresh {
		p.freshLast.CompareAndSwap(0, last+1)
	}
}

// caughtUp reports whether the message at seq was in the stream when a fresh live file began
// its catch-up: a quarantine of it is found again, not new.
func (p *Projector) caughtUp(seq uint64) bool {
	b := p.freshLast.Load()
	return b != 0 && seq < b
}

// countQuarantines counts n quarantine entries the live models added, new ones or found
// again. They are counted apart so that an alert on new ones does not fire at every start of
// a pod that catches up from a stream holding an old quarantined message (or at a rebuild),
// as the per-file count and the gauge did.
func (p *Projector) countQuarantines(n uint64, again bool) {
	if again {
		p.stats.quarantinesAgain.Add(n)
	} else {
		p.stats.quarantinesNew.Add(n)
	}
}

// moveAside renames a damaged file to path.damaged-TIME and returns the new name.
func moveAside(path string) (string, error) {
	aside := path + ".damaged-" + time.Now().UTC().Format("20060102T150405.000000000Z")
	if err := os.Rename(path, aside); err != nil {
		return "", err
	}
	syncDir(filepath.Dir(path))
	return aside, nil
}

// Close closes the live file and the open snapshots, after the queries in flight. It is
// idempotent and nil-safe. Run must have returned.
func (p *Projector) Close() error {
	if p == nil {
		return nil
	}
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	hs := []*handle{p.cur}
	for _, h := range p.snaps {
		hs = append(hs, h)
	}
	p.mu.Unlock()
	var errs []error
	for _, h := range hs {
		h.refs.Wait()
		errs = append(errs, h.db.Close())
	}
	p.retired.Wait()
	return errors.Join(errs...)
}

// acquire returns the live handle (snapshot "") or a named snapshot's, counted as in use.
func (p *Projector) acquire(snapshot string) (*handle, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return nil, ErrClosed
	}
	h := p.cur
	if snapshot != "" {
		h = p.snaps[snapshot]
		if h == nil {
			return nil, fmt.Errorf("%w: snapshot %q", ErrNotFound, snapshot)
		}
	}
	h.refs.Add(1)
	return h, nil
}

// Use runs fn with the live read models (snapshot "") or a named snapshot. The file stays open
// until fn returns, even if a rebuild swaps a new live file in meanwhile. fn must not keep the
// DB after it returns. While the live models are being rebuilt because they do not belong to
// the stream or are damaged (Repairing), Use("") fails with ErrUnavailable.
//
// A snapshot found damaged (a checksum that fails, a fault on a file cut short) is taken out
// of service and moved aside, as at start: the call fails with an error wrapping ErrCorrupt
// that names the snapshot and says to create it again, and later calls find no snapshot of
// that name.
func (p *Projector) Use(snapshot string, fn func(db *DB) error) error {
	if r := p.repair.Load(); r != nil && snapshot == "" {
		return fmt.Errorf("%w: the read models are being rebuilt from the stream (%s)", ErrUnavailable, r.reason)
	}
	if snapshot != "" {
		h, err := p.acquire(snapshot)
		if err != nil {
			return err
		}
		err = func() error {
			defer h.refs.Done() // also if fn panics (a request's panic is recovered)
			return fn(h.db)
		}()
		if errors.Is(err, ErrCorrupt) {
			p.retireSnapshot(snapshot, h, "its file is damaged: "+err.Error())
			return fmt.Errorf("%w: snapshot %q is damaged; it is no longer served (create it again)", ErrCorrupt, snapshot)
		}
		return err
	}
	err := p.use(snapshot, fn)
	if errors.Is(err, ErrCorrupt) {
		// What was read is not served; the file is rebuilt.
		p.requestRepair("the read-model file is damaged: "+err.Error(), true)
		return fmt.Errorf("%w: the read models are being rebuilt from the stream (the file is damaged)", ErrUnavailable)
	}
	return err
}

// retireSnapshot takes the snapshot h, damaged or foreign for reason, out of service under
// name, unless it is no longer served (deleted or replaced meanwhile, or retired by another
// query), moves its file aside (name.db.damaged-TIME, for forensics) and closes it once its
// queries are done.
func (p *Projector) retireSnapshot(name string, h *handle, reason string) {
	p.mu.Lock()
	if p.closed || p.snaps[name] != h {
		p.mu.Unlock()
		return
	}
	delete(p.snaps, name)
	// Under the lock, so that a replay keeping a new snapshot of the name (which takes the
	// old one out under it first) never has its file moved instead.
	aside, merr := moveAside(filepath.Join(p.opt.Dir, snapshotDir, name+".db"))
	p.mu.Unlock()
	p.logger.Error("snapshot taken out of service and moved aside (create it again)", "snapshot", name, "reason", reason, "path", aside, "err", merr)
	go func() {
		h.refs.Wait()
		h.db.Close()
	}()
}

// use is Use also while a repair is pending: the runtime's own access.
func (p *Projector) use(snapshot string, fn func(db *DB) error) error {
	h, err := p.acquire(snapshot)
	if err != nil {
		return err
	}
	defer h.refs.Done()
	return fn(h.db)
}

// setCheckpoint records the live models' checkpoint and wakes WaitFor.
func (p *Projector) setCheckpoint(c uint64) {
	p.stats.checkpoint.Store(c)
	p.advMu.Lock()
	close(p.advanced)
	p.advanced = make(chan struct{})
	p.advMu.Unlock()
}

// WaitFor returns nil once the live models have applied the stream up to sequence seq (a
// client's own append, for reading its writes on any nird), or ctx's error when ctx ends
// first. It does not make the models catch up faster; Run does that.
func (p *Projector) WaitFor(ctx context.Context, seq uint64) error {
	for {
		p.advMu.Lock()
		advanced := p.advanced
		p.advMu.Unlock()
		if p.stats.checkpoint.Load() >= seq {
			return nil
		}
		select {
		case <-advanced:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// StreamLastSeq asks the stream for its last sequence now; Stats' LastSeq is the one the
// live models last saw, which may be older.
func (p *Projector) StreamLastSeq(ctx context.Context) (uint64, error) {
	last, err := p.feed.LastSeq(ctx)
	if err != nil {
		return 0, fmt.Errorf("projections: last sequence: %w", err)
	}
	return last, nil
}

// Stats is the runtime's counters, for metrics (no global registration).
type Stats struct {
	// LastSeq is the stream's last sequence as last seen.
	LastSeq uint64
	// Checkpoint is the live models' last applied sequence.
	Checkpoint uint64
	// Lag is LastSeq minus Checkpoint.
	Lag uint64
	// EventsApplied and Batches count applied events and transactions since start.
	EventsApplied, Batches uint64
	// ApplySeconds is the total time spent in apply transactions; LastApply the latest one.
	ApplySeconds float64
	LastApply    time.Duration
	// Rebuilding is true while a rebuild runs; Progress is its progress.
	Rebuilding bool
	Progress   *Progress
	// Quarantined is the number of stream messages the live models skipped as not usable
	// events.
	Quarantined uint64
	// QuarantinesNew counts the quarantine entries the live models have added since start
	// for stream messages no earlier build of them had met (a rebuild's swap does not reset
	// it), those removed again included: a foreign message that arrived, or an event the
	// rules now panic on. QuarantinesFoundAgain counts those a new file found again: the
	// catch-up of a file that started empty, up to the stream's end when it began (a new
	// pod's), and a rebuild's that the file it replaced held too (all of a repair's, whose
	// file is damaged or another stream's, up to its checkpoint).
	QuarantinesNew, QuarantinesFoundAgain uint64
	// UnknownKinds counts the events of a kind, or with fields, this build does not know that
	// the live models have met, kept in their file (a newer nird wrote them).
	UnknownKinds uint64
	// FirstUnknownKind is the stream sequence of the first such event the live models have
	// folded, kept in their file (0: none): while it is set the regelmotor does not run.
	FirstUnknownKind uint64
	// Unserved is true while the live models are not served until a rebuild from the stream
	// ends (Repairing says why).
	Unserved bool
	// KeptAside counts the live files kept aside (models.db.damaged-*) since start: damaged,
	// or built from events the stream no longer holds.
	KeptAside uint64
	// Regelmotor is what this process's regelmotor worker has done since start.
	Regelmotor RegelmotorStats
}

// RegelmotorStats counts the regelmotor worker's passes (RunRegelmotor). A pass that
// appended some terminations and failed others counts as failed.
type RegelmotorStats struct {
	Passes, FailedPasses uint64
	// Terminations is how many computed terminations the passes that did not fail handed to
	// the appender (one already stored counts again until the models have applied it).
	Terminations uint64
	// LastPass is when the last pass ended; zero before the first.
	LastPass time.Time
}

// Stats returns the current counters.
func (p *Projector) Stats() Stats {
	s := Stats{
		LastSeq:       p.stats.lastSeq.Load(),
		Checkpoint:    p.stats.checkpoint.Load(),
		EventsApplied: p.stats.applied.Load(),
		Batches:       p.stats.batches.Load(),
		ApplySeconds:  time.Duration(p.stats.applyNanos.Load()).Seconds(),
		LastApply:     time.Duration(p.stats.lastApplyNanos.Load()),
		Rebuilding:    p.rebuilding.Load(),
		Progress:      p.stats.progress.Load(),
		Unserved:      p.repair.Load() != nil,
		KeptAside:     p.stats.keptAside.Load(),
		Regelmotor: RegelmotorStats{
			Passes:       p.stats.passes.Load(),
			FailedPasses: p.stats.failedPasses.Load(),
			Terminations: p.stats.terminations.Load(),
		},
	}
	s.QuarantinesNew, s.QuarantinesFoundAgain = p.stats.quarantinesNew.Load(), p.stats.quarantinesAgain.Load()
	if ns := p.stats.lastPassNanos.Load(); ns != 0 {
		s.Regelmotor.LastPass = time.Unix(0, int64(ns))
	}
	if h, err := p.acquire(""); err == nil {
		s.Quarantined = h.db.QuarantinedCount()
		s.UnknownKinds = h.db.UnknownKinds()
		s.FirstUnknownKind = h.db.FirstUnknownKind()
		h.refs.Done()
	}
	if s.LastSeq > s.Checkpoint {
		s.Lag = s.LastSeq - s.Checkpoint
	}
	return s
}

// Status is the state of the live models and the snapshots.
type Status struct {
	Models     []ModelStatus
	LastSeq    uint64
	Lag        uint64
	FileSize   int64
	Snapshots  []SnapshotInfo
	Rebuilding bool
	// Repairing says why the live models are being rebuilt and not served ("" when served).
	Repairing string
	// Quarantined lists the first StatusQuarantineMax stream messages the live models
	// skipped as not usable events; QuarantinedTotal counts them all.
	Quarantined      []Quarantine
	QuarantinedTotal uint64
}

// StatusQuarantineMax bounds the quarantined messages Status lists.
const StatusQuarantineMax = 1000

// SnapshotInfo describes a named snapshot.
type SnapshotInfo struct {
	Name string
	// Checkpoint is the last stream sequence replayed into it; 0 when the cut-off kept no
	// event at all.
	Checkpoint uint64
	FileSize   int64
	// RecordedUntil is the cut-off: the snapshot holds the events recorded up to it (zero
	// for a snapshot kept before the cut-off was recorded).
	RecordedUntil time.Time
	// ProvisionalUntil, when not zero, says the snapshot was made before its cut-off had
	// settled (DB.Provisional): replay it again after this instant for the final figures.
	ProvisionalUntil time.Time
}

// Status returns each model's checkpoint, the lag behind the stream and the file sizes.
func (p *Projector) Status(ctx context.Context) (*Status, error) {
	last, err := p.feed.LastSeq(ctx)
	if err != nil {
		return nil, fmt.Errorf("projections: status: %w", err)
	}
	st := &Status{LastSeq: last, Rebuilding: p.rebuilding.Load()}
	err = p.use("", func(db *DB) error {
		ms, err := db.Status()
		if err != nil {
			return err
		}
		st.Models, st.FileSize = ms, db.Size()
		if st.Quarantined, err = db.Quarantined(StatusQuarantineMax); err != nil {
			return err
		}
		st.QuarantinedTotal = db.QuarantinedCount()
		c, err := db.Checkpoint()
		if last > c {
			st.Lag = last - c
		}
		return err
	})
	if errors.Is(err, ErrCorrupt) {
		// The status says so instead of failing.
		p.requestRepair("the read-model file is damaged: "+err.Error(), true)
		err = nil
	}
	st.Repairing = p.Repairing()
	if err != nil {
		return nil, err
	}
	p.mu.RLock()
	names := make([]string, 0, len(p.snaps))
	for n := range p.snaps {
		names = append(names, n)
	}
	p.mu.RUnlock()
	sortStrings(names)
	for _, n := range names {
		_ = p.Use(n, func(db *DB) error {
			c, _ := db.Checkpoint()
			asof, _ := db.AsOf()
			prov, _ := db.Provisional()
			st.Snapshots = append(st.Snapshots, SnapshotInfo{Name: n, Checkpoint: c, FileSize: db.Size(), RecordedUntil: asof, ProvisionalUntil: prov})
			return nil
		})
	}
	return st, nil
}

// Run keeps the live models up to date until ctx is done (returning nil then). It applies in
// batches of up to BatchSize while catching up, and whatever has arrived when live.
//
// It first checks that the live models belong to the stream (Check), again every
// IdentityCheckInterval and whenever the stream falls below the checkpoint, and rebuilds them
// when they do not or when they were found damaged, before it applies anything more.
func (p *Projector) Run(ctx context.Context) error {
	stopped := func(err error) error {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if !p.checked.Load() {
		if err := p.Check(ctx); err != nil {
			return stopped(err)
		}
	}
	waiter, _ := p.feed.(Waiter)
	nextCheck := time.Now().Add(IdentityCheckInterval)
	var backoff time.Duration
	// retry waits after a failure to read the stream (unreachable for a while: a partition,
	// a leader election) and says whether to go on; the read models stay as they are and
	// keep being served meanwhile. Any other error stops Run.
	retry := func(err error) bool {
		backoff = min(max(2*backoff, 100*time.Millisecond), 5*time.Second)
		p.logger.Warn("the event stream is not reachable; retrying", "err", err, "in", backoff)
		return sleep(ctx, backoff)
	}
	// full waits after a write that found no room on the models' disk and says whether to
	// go on: a full disk is the operator's to fix, and nird goes on serving the models as
	// they are, and taking appends, meanwhile. A failed write commits nothing (Apply drops
	// what it had cached), so the next attempt starts again from the checkpoint. A repair
	// (a whole rebuild each time) is tried again less often than a catch-up.
	var fullSince time.Time
	full := func(err error, most time.Duration) bool {
		if fullSince.IsZero() {
			fullSince = time.Now()
		}
		backoff = min(max(2*backoff, time.Second), most)
		p.logger.Error("the read models' disk is full: they stay as they are, and are served, until there is room", "err", err, "retry_in", backoff)
		return sleep(ctx, backoff)
	}
	var fe *feedError
	waited := false // a repair waited for an as-of replay, and said so
	for {
		if ctx.Err() != nil {
			return nil
		}
		if p.repair.Load() != nil {
			err := p.runRepair(ctx)
			switch {
			case errors.Is(err, ErrReplayRunning), errors.Is(err, ErrRebuildRunning):
				// The operator's as-of replay or rebuild ends first (one at a time). Before,
				// a repair asked for during an operator's rebuild stopped nird (found by a
				// review on 2026-12-06, TestRun_RepairDuringOperatorRebuildWaits).
				if !waited {
					p.logger.Warn("a repair of the read models waits for the operator's as-of replay or rebuild that runs to end")
					waited = true
				}
				if !sleep(ctx, time.Second) {
					return nil
				}
			case diskFull(err):
				if !full(err, 5*time.Minute) {
					return nil
				}
			case errors.As(err, &fe):
				// The stream could not be read (or its replay ended early: a partition);
				// the repair is tried again.
				if !retry(err) {
					return nil
				}
			case err != nil:
				return stopped(err)
			default:
				waited = false
			}
			continue
		}
		if time.Now().After(nextCheck) {
			nextCheck = time.Now().Add(IdentityCheckInterval)
			if err := p.Check(ctx); errors.As(err, &fe) {
				if !retry(err) {
					return nil
				}
			} else if err != nil {
				return stopped(err)
			}
			continue
		}
		ckpt, last, err := p.catchUp(ctx)
		switch {
		case errors.As(err, &fe):
			if !retry(err) {
				return nil
			}
			continue
		case diskFull(err):
			if !full(err, 30*time.Second) {
				return nil
			}
			continue
		case err != nil:
			return stopped(err)
		}
		if !fullSince.IsZero() {
			p.logger.Info("the read models' disk has room again; the models are advanced", "checkpoint", ckpt, "paused_seconds", time.Since(fullSince).Seconds())
			fullSince = time.Time{}
		}
		backoff = 0
		if last > ckpt {
			continue
		}
		if last < ckpt {
			if err := p.Check(ctx); errors.As(err, &fe) {
				if !retry(err) {
					return nil
				}
			} else if err != nil {
				return stopped(err)
			}
			continue
		}
		// Wait for the stream to grow, a repair to be asked for, or the next check.
		wctx, cancel := context.WithDeadline(ctx, nextCheck)
		done := make(chan struct{})
		go func() {
			select {
			case <-p.wake:
				cancel()
			case <-done:
			}
		}()
		if waiter != nil {
			err = waiter.Wait(wctx, ckpt)
		} else {
			t := time.NewTimer(p.opt.PollInterval)
			select {
			case <-wctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
		close(done)
		cancel()
		if err != nil && wctx.Err() == nil && !retry(fmt.Errorf("projections: wait for events after seq %d: %w", ckpt, err)) {
			return nil
		}
	}
}

// CatchUp applies every event up to the stream's last sequence at the time of the call and
// returns the live checkpoint.
func (p *Projector) CatchUp(ctx context.Context) (uint64, error) {
	c, _, err := p.catchUp(ctx)
	return c, err
}

// catchUp is catchUpOnce; damage it finds in the live file is not an error but a repair:
// the file is rebuilt from the stream (Run does it next) and not served meanwhile.
func (p *Projector) catchUp(ctx context.Context) (ckpt, last uint64, err error) {
	ckpt, last, err = p.catchUpOnce(ctx)
	if errors.Is(err, ErrCorrupt) {
		p.requestRepair("the read-model file is damaged: "+err.Error(), true)
		return ckpt, last, nil
	}
	return ckpt, last, err
}

func (p *Projector) catchUpOnce(ctx context.Context) (ckpt, last uint64, err error) {
	h, err := p.acquire("")
	if err != nil {
		return 0, 0, err
	}
	ckpt, err = h.db.Checkpoint()
	h.refs.Done()
	if err != nil {
		return 0, 0, err
	}
	last, err = p.feed.LastSeq(ctx)
	if err != nil {
		return ckpt, 0, &feedError{fmt.Errorf("projections: last sequence: %w", err)}
	}
	p.stats.lastSeq.Store(last)
	p.noteLast(last)
	p.setCheckpoint(ckpt)
	if last <= ckpt || p.repair.Load() != nil {
		return ckpt, last, nil
	}
	from := ckpt + 1
	err = applyRange(ctx, p.feed, ReplayOptions{From: from, To: last}, p.opt.BatchSize, func(batch []Record) error {
		p.writeMu.Lock()
		defer p.writeMu.Unlock()
		h, err := p.acquire("")
		if err != nil {
			return err
		}
		defer h.refs.Done()
		t0 := time.Now()
		added := h.db.QuarantinesAdded()
		c, err := h.db.Apply(batch)
		if err != nil {
			return fmt.Errorf("projections: apply seq %d..%d: %w", batch[0].Seq, batch[len(batch)-1].Seq, err)
		}
		p.countQuarantines(h.db.QuarantinesAdded()-added, p.caughtUp(batch[len(batch)-1].Seq))
		d := time.Since(t0)
		p.stats.applied.Add(uint64(len(batch)))
		p.stats.batches.Add(1)
		p.stats.applyNanos.Add(uint64(d))
		p.stats.lastApplyNanos.Store(uint64(d))
		p.setCheckpoint(c)
		ckpt = c
		return nil
	})
	if err == nil && ckpt < last {
		// The replay ended without an error before last: a store that ends early (a node
		// cut off by a partition that answers as the stream's leader). The checkpoint stays
		// at the last record applied, and the next round (Run, after a pause) replays the
		// rest. It never moves to a bound the replay did not reach: the event store delivers
		// every sequence up to it, a real hole as a "missing" record.
		err = &feedError{fmt.Errorf("%w: the replay of seq %d..%d ended after seq %d", ErrShortReplay, from, last, ckpt)}
	}
	return ckpt, last, err
}

// sleep waits d, or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// diskFull reports whether err is a write that found no room on the disk.
func diskFull(err error) bool { return errors.Is(err, syscall.ENOSPC) }

// feedError is a failure to read the feed (not to apply): Run waits and tries again.
type feedError struct{ err error }

func (e *feedError) Error() string { return e.err.Error() }
func (e *feedError) Unwrap() error { return e.err }

// applyRange replays opt from the feed and hands the records to apply in batches. The replay
// (decoding, and encoding for storage) runs in its own goroutine, so that it overlaps with
// applying the previous batch.
//
// It returns nil only when the replay ran to its end: when ctx ends first it returns ctx's
// error (also when the reader stopped while it waited to hand a batch over), so that no
// caller takes the range as applied. A replay may still end before opt.To without an error
// (a store that ends early): callers move a checkpoint only to the last record applied,
// never to opt.To.
func applyRange(ctx context.Context, feed Feed, opt ReplayOptions, batchSize int, apply func([]Record) error) error {
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan []Record, 2)
	var replayErr error
	go func() {
		defer close(batches)
		batch := make([]Record, 0, batchSize)
		send := func() bool {
			select {
			case batches <- batch:
				batch = make([]Record, 0, batchSize)
				return true
			case <-ctx.Done():
				return false
			}
		}
		for rec, err := range feed.Replay(ctx, opt) {
			if err != nil {
				replayErr = &feedError{fmt.Errorf("projections: replay from seq %d: %w", opt.From, err)}
				return
			}
			if rec.Raw == nil && rec.Event != nil {
				if raw, err := marshalOpt.Marshal(rec.Event); err == nil {
					rec.Raw = raw
				}
			}
			batch = append(batch, rec)
			if len(batch) >= batchSize && !send() {
				return
			}
		}
		if len(batch) > 0 {
			send()
		}
	}()
	var applyErr error
	for b := range batches {
		if applyErr != nil {
			continue // drain until the replay goroutine has stopped
		}
		if applyErr = apply(b); applyErr != nil {
			cancel()
		}
	}
	// replayErr was written before batches was closed. The reader stops before the replay's
	// end only when ctx ends: by applyErr's cancel, or by parent's.
	switch {
	case applyErr != nil:
		return applyErr
	case parent.Err() != nil:
		// Stopped (the reader, or a feed that ends its replay quietly when ctx ends), not
		// failed: the caller sees why, and takes nothing as applied beyond what apply got.
		return parent.Err()
	}
	return replayErr
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
