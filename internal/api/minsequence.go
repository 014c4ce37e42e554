package api

import (
	"context"
	"fmt"
	"sync"
	"time"

	"connectrpc.com/connect"

	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/projections"
)

// DefaultMinSequenceWait bounds how long a query with min_sequence waits for the read models
// when nird is given no other bound.
const DefaultMinSequenceWait = 10 * time.Second

// MaxMinSequenceWaiting is how many queries of one principal may wait for the read models at
// once; the next is answered ResourceExhausted at once. A case system reads its own writes
// one at a time, and each wait ends as soon as this nird applies the write (milliseconds);
// without a bound, a few principals asking for sequences nobody appended held every request
// slot nird has for --min-sequence-wait.
const MaxMinSequenceWaiting = 4

// minSequenceSlack is how far beyond the stream's last sequence, as this nird hears it, a
// min_sequence may be and still be waited for. An Append returns its sequence once the
// stream holds it, but the last sequence a nird hears may come from a replica still
// catching up with the stream's leader: 65 536 events is over three seconds of appends at
// nird's measured ceiling (about 20 000 events/s), far more than a replica trails by.
const minSequenceSlack = 1 << 16

// SequenceWaiter is what MinSequence needs of the read models; *projections.Projector
// satisfies it.
type SequenceWaiter interface {
	// WaitFor returns nil once the live models have applied the stream up to seq, or
	// ctx's error.
	WaitFor(ctx context.Context, seq uint64) error
	// Stats reports the live checkpoint and the stream's last sequence the models saw.
	Stats() projections.Stats
	// StreamLastSeq asks the stream for its last sequence now.
	StreamLastSeq(ctx context.Context) (uint64, error)
}

var _ SequenceWaiter = (*projections.Projector)(nil)

// MinSequence is the read-your-writes interceptor of the query service:
// NewSequenceGate(w, maxWait).Interceptor(). Use one gate for the interceptor and the CSV
// export (QueryConfig.Gate), so a principal's waiting calls are counted together.
func MinSequence(w SequenceWaiter, maxWait time.Duration) connect.UnaryInterceptorFunc {
	return NewSequenceGate(w, maxWait).Interceptor()
}

// A SequenceGate holds a read whose min_sequence is set (the sequence an Append returned,
// perhaps on another nird) until this nird's read models have applied that sequence, at
// most maxWait or the request's deadline; if they have not got there, the read fails with
// Unavailable naming both sequences, and the client retries. A min_sequence beyond the
// stream's last sequence (by more than a replica may trail) is OutOfRange at once, and a
// principal's read beyond its MaxMinSequenceWaiting waiting is ResourceExhausted at once.
type SequenceGate struct {
	w       SequenceWaiter
	maxWait time.Duration
	waiting perPrincipal
}

// NewSequenceGate returns the gate over w's read models; maxWait 0 means
// DefaultMinSequenceWait.
func NewSequenceGate(w SequenceWaiter, maxWait time.Duration) *SequenceGate {
	if maxWait <= 0 {
		maxWait = DefaultMinSequenceWait
	}
	return &SequenceGate{w: w, maxWait: maxWait}
}

// Interceptor is the gate for the query service's calls: requests without min_sequence,
// and procedures without it, pass straight through. Put it after authentication, so that
// nobody unauthenticated can make nird wait.
func (g *SequenceGate) Interceptor() connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			m, ok := req.Any().(interface{ GetMinSequence() uint64 })
			if !ok || m.GetMinSequence() == 0 {
				return next(ctx, req)
			}
			s, _ := req.Any().(interface{ GetSnapshot() string })
			if err := g.Wait(ctx, m.GetMinSequence(), s != nil && s.GetSnapshot() != ""); err != nil {
				return nil, err
			}
			return next(ctx, req)
		}
	}
}

// Wait returns nil once the read models have applied seq (at once for 0), or the
// connect error the caller answers with. snapshot says the read is of a snapshot, which
// never changes: min_sequence is refused with it.
func (g *SequenceGate) Wait(ctx context.Context, seq uint64, snapshot bool) error {
	if seq == 0 {
		return nil
	}
	if snapshot {
		return fieldError(connect.CodeInvalidArgument, "min_sequence", "not with a snapshot: a snapshot never changes")
	}
	w := g.w
	st := w.Stats()
	if st.Checkpoint >= seq {
		return nil
	}
	if seq > max(st.LastSeq, st.Checkpoint)+minSequenceSlack {
		// Beyond what the models last saw: ask the stream itself before waiting.
		lctx, cancel := context.WithTimeout(ctx, g.maxWait)
		last, err := w.StreamLastSeq(lctx)
		cancel()
		if err == nil && seq > last+minSequenceSlack {
			return fieldError(connect.CodeOutOfRange, "min_sequence", fmt.Sprintf("%d is beyond the stream's last sequence %d: no Append returned it", seq, last))
		}
	}
	p, _ := auth.FromContext(ctx)
	release, ok := g.waiting.take(p.String(), MaxMinSequenceWaiting)
	if !ok {
		ce := connect.NewError(connect.CodeResourceExhausted, fmt.Errorf("min_sequence: %s has %d queries waiting for this nird's read models (at sequence %d), its most; retry when one is answered",
			p, MaxMinSequenceWaiting, st.Checkpoint))
		ce.Meta().Set("Retry-After", "1")
		return ce
	}
	defer release()
	wctx, cancel := context.WithTimeout(ctx, g.maxWait)
	err := w.WaitFor(wctx, seq)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return connect.NewError(connect.CodeDeadlineExceeded, fmt.Errorf("min_sequence: the read models did not reach sequence %d before the request's deadline", seq))
		}
		return connect.NewError(connect.CodeUnavailable, fmt.Errorf("min_sequence: this nird's read models are at sequence %d, not yet at %d after %v; retry",
			w.Stats().Checkpoint, seq, g.maxWait))
	}
	return nil
}

// perPrincipal counts each principal's calls of one kind in flight (queries waiting for
// the read models, CSV exports), so that a principal may have at most a few.
type perPrincipal struct {
	mu sync.Mutex // guards n
	n  map[string]int
}

// take counts one more call of principal, unless it has most; release ends it.
func (pp *perPrincipal) take(principal string, most int) (release func(), ok bool) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	if pp.n == nil {
		pp.n = map[string]int{}
	}
	if pp.n[principal] >= most {
		return nil, false
	}
	pp.n[principal]++
	return func() {
		pp.mu.Lock()
		defer pp.mu.Unlock()
		if pp.n[principal]--; pp.n[principal] == 0 {
			delete(pp.n, principal)
		}
	}, true
}
