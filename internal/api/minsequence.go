package api

import (
	"context"
	"fmt"
	"time"

	"connectrpc.com/connect"

	"github.com/introreg/nir/projections"
)

// DefaultMinSequenceWait bounds how long a query with min_sequence waits for the read models
// when nird is given no other bound.
const DefaultMinSequenceWait = 10 * time.Second

// SequenceWaiter is what MinSequence needs of the read models; *projections.Projector
// satisfies it.
type SequenceWaiter interface {
	// WaitFor returns nil once the live models have applied the stream up to seq, or
	// ctx's error.
	WaitFor(ctx context.Context, seq uint64) error
	// Stats reports the live checkpoint.
	Stats() projections.Stats
}

var _ SequenceWaiter = (*projections.Projector)(nil)

// MinSequence is the read-your-writes interceptor of the query service: a request whose
// min_sequence is set (the sequence an Append returned, perhaps on another nird) is held
// until this nird's read models have applied that sequence, at most maxWait or the
// request's deadline, and is then answered; if they have not got there, it fails with
// Unavailable naming both sequences, and the client retries. Requests without the field,
// and procedures without it, pass straight through. Put it after authentication, so that
// nobody unauthenticated can make nird wait.
func MinSequence(w SequenceWaiter, maxWait time.Duration) connect.UnaryInterceptorFunc {
	if maxWait <= 0 {
		maxWait = DefaultMinSequenceWait
	}
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			m, ok := req.Any().(interface{ GetMinSequence() uint64 })
			if !ok || m.GetMinSequence() == 0 {
				return next(ctx, req)
			}
			seq := m.GetMinSequence()
			if s, ok := req.Any().(interface{ GetSnapshot() string }); ok && s.GetSnapshot() != "" {
				return nil, fieldError(connect.CodeInvalidArgument, "min_sequence", "not with a snapshot: a snapshot never changes")
			}
			wctx, cancel := context.WithTimeout(ctx, maxWait)
			err := w.WaitFor(wctx, seq)
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return nil, connect.NewError(connect.CodeDeadlineExceeded, fmt.Errorf("min_sequence: the read models did not reach sequence %d before the request's deadline", seq))
				}
				return nil, connect.NewError(connect.CodeUnavailable, fmt.Errorf("min_sequence: this nird's read models are at sequence %d, not yet at %d after %v; retry",
					w.Stats().Checkpoint, seq, maxWait))
			}
			return next(ctx, req)
		}
	}
}
