// Package feed adapts the event store to the projections' Feed, so that neither package
// imports the other (DESIGN.md "Packages").
package feed

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"iter"
	"sync"
	"time"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/projections"
)

// pollInterval bounds how long Wait relies on the stream's signal alone: signals can be
// dropped (a slow reader) or missing (a NATS user without subscribe permission on the stream's
// subjects), so Wait looks at the stream's last sequence at least this often.
const pollInterval = time.Second

// DefaultClockSkew is how long after an event's recorded_at the stream may have received it
// that an as-of cut-off allows for by default (SetClockSkew): nird stamps recorded_at before
// the append reaches the stream, which may take a group commit's wait, retries across a leader
// election, a request's whole deadline (the API's is at most 2 minutes), and nird's clock may
// be behind the NATS servers'. A wider skew only reads more of the stream after the cut-off
// (every event there recorded after it is left out); one too narrow leaves out events recorded
// before it.
const DefaultClockSkew = 10 * time.Minute

// MaxClockSkew bounds SetClockSkew.
const MaxClockSkew = 24 * time.Hour

// Feed is a projections.Feed and projections.Waiter over an *eventstore.Store.
type Feed struct {
	store *eventstore.Store
	stop  func() error
	trust ed25519.PublicKey // TrustCheckpoints
	skew  time.Duration     // SetClockSkew

	// mu guards grown.
	mu    sync.Mutex
	grown chan struct{} // closed and replaced when the stream may have grown
}

var (
	_ projections.Feed       = (*Feed)(nil)
	_ projections.Waiter     = (*Feed)(nil)
	_ projections.Identifier = (*Feed)(nil)
	_ projections.Attester   = (*Feed)(nil)
)

// New returns a feed over store. It listens to the stream's subjects on the store's
// connection to wake waiting projections at once; Close stops that.
func New(store *eventstore.Store) (*Feed, error) {
	f := &Feed{store: store, grown: make(chan struct{}), skew: DefaultClockSkew}
	stop, err := store.Notify(f.signal)
	if err != nil {
		return nil, err
	}
	f.stop = stop
	return f, nil
}

// Close stops listening. It is idempotent.
func (f *Feed) Close() error {
	if f.stop == nil {
		return nil
	}
	err := f.stop()
	f.stop = nil
	return err
}

// SetClockSkew sets how long after an event's recorded_at the stream may have received it
// that an as-of cut-off still allows for (DefaultClockSkew; 0 to MaxClockSkew): Replay and
// CutOff resolve a cut-off to the last message the stream received by cut-off + skew, and
// keep among them exactly the events recorded at or before the cut-off. Call it before the
// feed is used.
func (f *Feed) SetClockSkew(d time.Duration) error {
	if d < 0 || d > MaxClockSkew {
		return fmt.Errorf("feed: clock skew %v is not between 0 and %v", d, MaxClockSkew)
	}
	f.skew = d
	return nil
}

func (f *Feed) signal() {
	f.mu.Lock()
	close(f.grown)
	f.grown = make(chan struct{})
	f.mu.Unlock()
}

// Replay implements projections.Feed.
func (f *Feed) Replay(ctx context.Context, opt projections.ReplayOptions) iter.Seq2[projections.Record, error] {
	return func(yield func(projections.Record, error) bool) {
		for s, err := range f.store.Replay(ctx, eventstore.ReplayOptions{From: opt.From, To: opt.To, RecordedUntil: opt.RecordedUntil, ClockSkew: f.skew, Undecoded: opt.Undecoded}) {
			if err != nil {
				yield(projections.Record{}, err)
				return
			}
			if !yield(record(s), nil) {
				return
			}
		}
	}
}

// record is a stored message as the projections take it.
func record(s eventstore.Stored) projections.Record {
	if s.Quarantine != nil {
		// The reasons are the same words in both packages (TestReasons).
		return projections.Record{Seq: s.Seq, Quarantine: s.Quarantine.Reason}
	}
	return projections.Record{Seq: s.Seq, Event: s.Event, Raw: s.Raw, PersonKey: s.PersonKey}
}

// TrustCheckpoints makes the feed a projections.Attester: the stream's checkpoints signed by
// key (nird's checkpoint key) vouch for a copy of its messages, so that a rebuild may take
// the events the live read-model file holds instead of reading them again. Call it before
// the feed is used.
func (f *Feed) TrustCheckpoints(key ed25519.PublicKey) { f.trust = key }

// Attest implements projections.Attester: the last checkpoint at or below atMost that
// decodes, names this stream and is signed by the trusted key; nil without one (or without
// a trusted key).
func (f *Feed) Attest(ctx context.Context, atMost uint64) (projections.Attestation, error) {
	if len(f.trust) == 0 {
		return nil, nil
	}
	id, err := f.store.CurrentIdentity(ctx)
	if err != nil {
		return nil, err
	}
	cps, err := f.store.Checkpoints(ctx)
	if err != nil {
		return nil, err
	}
	for i := len(cps) - 1; i >= 0; i-- {
		cp := cps[i].Checkpoint
		if cp == nil || cp.GetStreamSeq() == 0 || cp.GetStreamSeq() > atMost || cp.GetStreamId() != id.String() || len(cp.GetDigest()) != sha256.Size {
			continue
		}
		if eventstore.CheckSignature(cp, f.trust) != nil {
			continue
		}
		return &attestation{f: f, seq: cp.GetStreamSeq(), want: cp.GetDigest()}, nil
	}
	return nil, nil
}

// CutOff implements projections.Attester: the bound Replay applies to the cut-off, settled
// once the clock skew has passed after it.
func (f *Feed) CutOff(ctx context.Context, recordedUntil time.Time) (uint64, time.Time, error) {
	bound, err := f.store.CutOffBound(ctx, recordedUntil, f.skew)
	return bound, recordedUntil.Add(f.skew), err
}

// attestation is a projections.Attestation: the checkpoint's digest computed again over the
// copy's messages.
type attestation struct {
	f    *Feed
	seq  uint64
	want []byte
	d    eventstore.Digest
}

func (a *attestation) Seq() uint64 { return a.seq }

func (a *attestation) next(seq uint64) error {
	if seq != a.d.Seq+1 || seq > a.seq {
		return fmt.Errorf("%w: seq %d given after seq %d (the checkpoint covers %d)", projections.ErrNotAttested, seq, a.d.Seq, a.seq)
	}
	return nil
}

func (a *attestation) Add(seq uint64, personKey string, data []byte) error {
	if err := a.next(seq); err != nil {
		return err
	}
	a.d.AddEvent(seq, personKey, eventstore.HashOf(data))
	return nil
}

func (a *attestation) Fetch(ctx context.Context, seq uint64) (projections.Record, error) {
	if err := a.next(seq); err != nil {
		return projections.Record{}, err
	}
	subject, data, err := a.f.store.MsgAt(ctx, seq)
	if err != nil {
		return projections.Record{}, err
	}
	a.d.Add(seq, subject, eventstore.HashOf(data))
	return record(eventstore.Undecoded(seq, time.Time{}, subject, data)), nil
}

func (a *attestation) Check() error {
	if a.d.Seq != a.seq || !bytes.Equal(a.d.Sum[:], a.want) {
		return fmt.Errorf("%w: the digest through seq %d differs from checkpoint's through seq %d", projections.ErrNotAttested, a.d.Seq, a.seq)
	}
	return nil
}

// StreamID implements projections.Identifier: the stream's identity as it is now.
func (f *Feed) StreamID(ctx context.Context) (string, error) {
	id, err := f.store.CurrentIdentity(ctx)
	if err != nil {
		return "", err
	}
	return id.String(), nil
}

// RawAt implements projections.Identifier.
func (f *Feed) RawAt(ctx context.Context, seq uint64) ([]byte, error) {
	raw, err := f.store.RawAt(ctx, seq)
	if errors.Is(err, eventstore.ErrNoMessage) {
		return nil, fmt.Errorf("%w: stream seq %d", projections.ErrNotFound, seq)
	}
	return raw, err
}

// LastSeq implements projections.Feed.
func (f *Feed) LastSeq(ctx context.Context) (uint64, error) { return f.store.LastSeq(ctx) }

// Wait implements projections.Waiter: it returns once the stream's last sequence is above
// after, or ctx is done.
func (f *Feed) Wait(ctx context.Context, after uint64) error {
	for {
		f.mu.Lock()
		grown := f.grown
		f.mu.Unlock()
		last, err := f.store.LastSeq(ctx)
		if err != nil {
			return err
		}
		if last > after {
			return nil
		}
		timer := time.NewTimer(pollInterval)
		select {
		case <-grown:
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		}
		timer.Stop()
	}
}
