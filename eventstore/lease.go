package eventstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// LeaseBucket is the JetStream key-value bucket holding the leases of work that must run on
// one nird at a time (the regelmotor worker).
const LeaseBucket = "NIR_LEASES"

// DefaultLeaseTTL is a lease's term when LeaseOptions.TTL is 0.
const DefaultLeaseTTL = 15 * time.Second

// LeaseOptions configure a Lease.
type LeaseOptions struct {
	// Name is the lease's key in the bucket, e.g. "regelmotor".
	Name string
	// Holder names this process in the bucket (for operators: nats kv get NIR_LEASES …).
	Holder string
	// TTL is the term: a lease not renewed for TTL expires on the server and another
	// process may take it. It is the bucket's max age, so the first process to create the
	// bucket decides it; a different TTL later is logged and the bucket's is used. 0 =
	// DefaultLeaseTTL.
	TTL time.Duration
	// Logger; nil = the store's.
	Logger *slog.Logger
}

// Lease runs a function on one process at a time among those sharing the stream's server or
// cluster (see Run).
type Lease struct {
	s   *Store
	opt LeaseOptions
	log *slog.Logger

	held                   atomic.Bool
	acquired, lost, remade atomic.Uint64
	ttlNanos               atomic.Int64
}

// LeaseStats are a lease's counters, for metrics.
type LeaseStats struct {
	// Held is true while this process holds the lease.
	Held bool
	// Acquired counts the times it took the lease, Lost the times it lost it without
	// giving it up (a renewal refused or not answered within the term), Remade the times
	// it found the lease's record damaged and made the lease bucket again.
	Acquired, Lost, Remade uint64
	// TTL is the term in force (the bucket's).
	TTL time.Duration
}

// NewLease returns a lease of the store; Run takes and holds it.
func (s *Store) NewLease(opt LeaseOptions) *Lease {
	if opt.TTL <= 0 {
		opt.TTL = DefaultLeaseTTL
	}
	log := opt.Logger
	if log == nil {
		log = s.log
	}
	l := &Lease{s: s, opt: opt, log: log.With("lease", opt.Name, "holder", opt.Holder)}
	l.ttlNanos.Store(int64(opt.TTL))
	return l
}

// Stats returns the lease's counters.
func (l *Lease) Stats() LeaseStats {
	return LeaseStats{Held: l.held.Load(), Acquired: l.acquired.Load(), Lost: l.lost.Load(), Remade: l.remade.Load(), TTL: time.Duration(l.ttlNanos.Load())}
}

// Run takes the lease whenever it is free and runs fn while holding it, until ctx is done;
// then it stops fn, gives the lease up (so another process takes it at once) and returns
// nil. fn gets a context that is cancelled when the lease is lost, and Run waits for fn to
// return before it tries to take the lease again; an error from fn is logged and fn runs
// again on the next term it holds.
//
// The lease is a key in LeaseBucket, created only if absent (a compare-and-set on the
// stream leader) and renewed every TTL/5 with the revision it holds. It expires by the
// bucket's max age, on the NATS servers' clocks, so no holder's wall clock decides who holds
// it; a holder measures its own term on its monotonic clock from the last renewal the server
// acknowledged, and gives up before the server would let another take it. The servers'
// clocks must agree within TTL/5: a renewal is stamped with the bucket leader's clock and
// each replica expires it by its own, so a leader moving to a node whose clock is further
// ahead expires the key before the holder gives up, and another takes it while the holder
// still runs (a review of 2026-12-06; NTP keeps a cluster's clocks far closer). A second
// holder for that moment writes nothing twice, as below. A holder that dies is replaced within TTL plus one poll (TTL/4), plus one request. A holder that was
// paused (SIGSTOP) past its term may run on for a moment after waking until it notices, so
// fn must tolerate a second instance briefly: the regelmotor appends with deterministic
// event ids, which the store never stores twice.
func (l *Lease) Run(ctx context.Context, fn func(ctx context.Context) error) error {
	var kv jetstream.KeyValue
	poll := l.opt.TTL / 4
	for kv == nil {
		var err error
		if kv, err = l.bucket(ctx); err != nil {
			l.log.Warn("lease bucket not available", "err", err)
			if !sleep(ctx, poll) {
				return nil
			}
		}
	}
	for {
		ttl := time.Duration(l.ttlNanos.Load())
		poll = ttl / 4
		actx, cancel := context.WithTimeout(ctx, poll)
		start := time.Now()
		rev, err := kv.Create(actx, l.opt.Name, []byte(l.opt.Holder))
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, jetstream.ErrKeyExists):
			// Held by another (or by this process's previous term, until it expires), or
			// the record is damaged on disk: then nobody can ever take it.
			if l.stuck(ctx, kv) {
				if nkv, err := l.remake(ctx); err != nil {
					l.log.Error("the lease bucket could not be made again; the lease stays out of reach", "err", err)
				} else {
					kv = nkv
					continue
				}
			}
		case err != nil:
			l.log.Debug("lease not taken", "err", err)
		default:
			l.hold(ctx, kv, rev, start, ttl, fn)
			if ctx.Err() != nil {
				return nil
			}
			continue
		}
		if !sleep(ctx, poll) {
			return nil
		}
	}
}

// stuck reports whether the lease's record is damaged on disk: the server refuses to create
// the lease (its stream counts a message on the lease's subject) but gives no message for it,
// and still so a poll later. The server answers a record whose checksum fails as no message,
// never expires it by the bucket's max age, and cannot write after it (a delete or purge of
// the key waits and fails): nobody could take the lease again, and the regelmotor and the
// checkpoint writer stopped for good without a word above debug level.
func (l *Lease) stuck(ctx context.Context, kv jetstream.KeyValue) bool {
	unreadable := func() bool {
		gctx, cancel := l.s.withTimeout(ctx)
		st, err := l.s.js.Stream(gctx, "KV_"+LeaseBucket)
		cancel()
		if err != nil {
			return false
		}
		// Asked of the stream's leader: a follower's direct get may not have the record yet.
		m, damaged, err := l.s.lastOrDamaged(ctx, st, "$KV."+LeaseBucket+"."+l.opt.Name)
		return err == nil && m == nil && damaged
	}
	if !unreadable() || !sleep(ctx, time.Duration(l.ttlNanos.Load())/4) {
		return false
	}
	cctx, cancel := l.s.withTimeout(ctx)
	rev, err := kv.Create(cctx, l.opt.Name, []byte(l.opt.Holder))
	cancel()
	if err == nil {
		// Free after all (the record expired meanwhile): give it back; the next round takes
		// it as usual.
		dctx, cancel := l.s.withTimeout(ctx)
		_ = kv.Delete(dctx, l.opt.Name, jetstream.LastRevision(rev))
		cancel()
		return false
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return false
	}
	return unreadable()
}

// remake deletes the lease bucket and makes it again. The bucket holds only the leases, which
// their holders renew every fifth of a term: a holder of another lease loses it at its next
// renewal and takes it again, and two holders may overlap for up to a term, as after a
// holder's pause (see Run).
func (l *Lease) remake(ctx context.Context) (jetstream.KeyValue, error) {
	l.log.Error("the lease's record in the lease bucket is counted by its stream but cannot be read back (damaged on disk): nobody could take the lease again; the lease bucket is deleted and made again",
		"bucket", LeaseBucket)
	dctx, cancel := l.s.withTimeout(ctx)
	err := l.s.js.DeleteKeyValue(dctx, LeaseBucket)
	cancel()
	if err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("eventstore: delete lease bucket %s: %w", LeaseBucket, err)
	}
	l.remade.Add(1)
	return l.bucket(ctx)
}

// hold runs fn and renews the lease until ctx is done or the lease is lost.
func (l *Lease) hold(ctx context.Context, kv jetstream.KeyValue, rev uint64, granted time.Time, ttl time.Duration, fn func(ctx context.Context) error) {
	l.held.Store(true)
	l.acquired.Add(1)
	l.log.Info("lease taken", "ttl", ttl)
	fctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := fn(fctx); err != nil && fctx.Err() == nil {
			l.log.Error("leased work stopped", "err", err)
		}
	}()
	// The server lets another take the lease TTL after the last renewal it stored, which
	// was no earlier than the request's start: give up a fifth of the term before that, and
	// renew every fifth, so that three renewals may fail before the term ends.
	step := ttl / 5
	deadline := granted.Add(ttl - step)
	t := time.NewTicker(step)
	lost := ""
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-done:
			// fn returned on its own while holding: keep the term (the work is done for
			// now) and go on renewing.
			done = nil
			continue
		case <-t.C:
		}
		if time.Now().After(deadline) {
			lost = "term ended without an acknowledged renewal"
			break loop
		}
		rctx, cancel := context.WithTimeout(ctx, min(step, time.Until(deadline)))
		start := time.Now()
		next, err := kv.Update(rctx, l.opt.Name, []byte(l.opt.Holder), rev)
		cancel()
		switch {
		case ctx.Err() != nil:
			break loop
		case errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyNotFound):
			lost = "renewal refused: the lease expired or another holds it"
			break loop
		case err != nil:
			l.log.Warn("lease renewal failed; retrying within the term", "err", err, "term_left", time.Until(deadline).Round(time.Millisecond))
		default:
			rev, deadline = next, start.Add(ttl-step)
		}
	}
	t.Stop()
	stop()
	if done != nil {
		<-done
	}
	l.held.Store(false)
	if lost != "" {
		l.lost.Add(1)
		l.log.Warn("lease lost", "reason", lost)
		return
	}
	// Shutting down: give the lease up so another takes it without waiting for the term.
	rctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := kv.Delete(rctx, l.opt.Name, jetstream.LastRevision(rev)); err != nil {
		l.log.Warn("lease not given up; it expires with its term", "err", err)
		return
	}
	l.log.Info("lease given up")
}

// bucket opens LeaseBucket, creating it with the lease's TTL if it is missing.
func (l *Lease) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	if err := l.s.checkOpen(); err != nil {
		return nil, err
	}
	ctx, cancel := l.s.withTimeout(ctx)
	defer cancel()
	kv, err := l.s.js.KeyValue(ctx, LeaseBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = l.s.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      LeaseBucket,
			Description: "nird leases: work that runs on one nird at a time",
			History:     1,
			TTL:         l.opt.TTL,
			Storage:     jetstream.FileStorage,
			Replicas:    l.s.cfg.Replicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = l.s.js.KeyValue(ctx, LeaseBucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("eventstore: lease bucket %s: %w", LeaseBucket, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("eventstore: lease bucket %s: %w", LeaseBucket, err)
	}
	if ttl := st.TTL(); ttl <= 0 {
		return nil, fmt.Errorf("%w: lease bucket %s has no TTL: a dead holder would keep its lease for ever", ErrInvalid, LeaseBucket)
	} else if ttl != l.opt.TTL {
		l.log.Warn("the lease bucket's TTL differs from the configured one; using the bucket's", "bucket_ttl", ttl, "configured", l.opt.TTL)
		l.ttlNanos.Store(int64(ttl))
	}
	return kv, nil
}

// Holder returns who holds the lease now ("" when nobody does), as the bucket says.
func (l *Lease) Holder(ctx context.Context) (string, error) {
	kv, err := l.bucket(ctx)
	if err != nil {
		return "", err
	}
	ctx, cancel := l.s.withTimeout(ctx)
	defer cancel()
	e, err := kv.Get(ctx, l.opt.Name)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("eventstore: lease %s: %w", l.opt.Name, err)
	}
	return string(e.Value()), nil
}

// sleep waits d or until ctx is done; false means ctx is done.
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
