// Package feed adapts the event store to the projections' Feed, so that neither package
// imports the other (DESIGN.md "Packages").
package feed

import (
	"context"
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

// Feed is a projections.Feed and projections.Waiter over an *eventstore.Store.
type Feed struct {
	store *eventstore.Store
	stop  func() error

	// mu guards grown.
	mu    sync.Mutex
	grown chan struct{} // closed and replaced when the stream may have grown
}

var (
	_ projections.Feed       = (*Feed)(nil)
	_ projections.Waiter     = (*Feed)(nil)
	_ projections.Identifier = (*Feed)(nil)
)

// New returns a feed over store. It listens to the stream's subjects on the store's
// connection to wake waiting projections at once; Close stops that.
func New(store *eventstore.Store) (*Feed, error) {
	f := &Feed{store: store, grown: make(chan struct{})}
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

func (f *Feed) signal() {
	f.mu.Lock()
	close(f.grown)
	f.grown = make(chan struct{})
	f.mu.Unlock()
}

// Replay implements projections.Feed.
func (f *Feed) Replay(ctx context.Context, opt projections.ReplayOptions) iter.Seq2[projections.Record, error] {
	return func(yield func(projections.Record, error) bool) {
		for s, err := range f.store.Replay(ctx, eventstore.ReplayOptions{From: opt.From, To: opt.To, RecordedUntil: opt.RecordedUntil, Undecoded: opt.Undecoded}) {
			if err != nil {
				yield(projections.Record{}, err)
				return
			}
			rec := projections.Record{Seq: s.Seq, Event: s.Event, Raw: s.Raw, PersonKey: s.PersonKey}
			if s.Quarantine != nil {
				// The reasons are the same words in both packages (TestReasons).
				rec = projections.Record{Seq: s.Seq, Quarantine: s.Quarantine.Reason}
			}
			if !yield(rec, nil) {
				return
			}
		}
	}
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
