package ingest

import (
	"context"
	"errors"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/access"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// Transport names the way an append reached nird, for the metrics.
type Transport string

// The transports. An append whose context names none is TransportInternal.
const (
	TransportHTTP     Transport = "http"     // the Connect API (HTTP/1.1, HTTP/2, gRPC)
	TransportNATS     Transport = "nats"     // the NATS ingress (nir.cmd.append.<case system>)
	TransportConsole  Transport = "console"  // a form in the web console
	TransportInternal Transport = "internal" // nird itself: the regelmotor, a history load
)

type transportKey struct{}

// WithTransport returns ctx naming the transport an append came by; the entry points (the
// API, the NATS ingress, the console) set it, so that appends are counted where they
// happen, whatever the way in.
func WithTransport(ctx context.Context, t Transport) context.Context {
	return context.WithValue(ctx, transportKey{}, t)
}

func transportOf(ctx context.Context) Transport {
	if t, ok := ctx.Value(transportKey{}).(Transport); ok {
		return t
	}
	return TransportInternal
}

// Observer is told the outcome of every append, by transport and by the role of the scope
// (access.Scope.Role). It must be safe for concurrent use and must not block. Nothing it
// is given identifies a person: counts, rule codes, and the two labels.
type Observer interface {
	// Appended: a request stored events, of which duplicates were resends already stored.
	Appended(t Transport, role string, stored, duplicates int)
	// Refused: a request was refused by the regelmotor, once per rule code.
	Refused(t Transport, role, rule string)
	// Conflict: a request's expectation of the person's last sequence failed
	// (or the person kept changing past the patience), the client must read again.
	Conflict(t Transport, role string)
	// Unconfirmed: a refusal judged on the stream's history was not given, because the
	// stream leader could not be confirmed, or its counts of the subjects read never matched
	// the reads (ErrUnconfirmed, eventstore.ErrReadShort); the client retries.
	Unconfirmed(t Transport, role string)
	// FoldFault: a request was not stored because the rules panicked folding one of its
	// events (ErrFoldFault), a bug in nird.
	FoldFault(t Transport, role string)
}

func (s *Service) observe(ctx context.Context, scope access.Scope, positions []*nirv1.Position, err error) {
	if s.obs == nil {
		return
	}
	t, role := transportOf(ctx), string(scope.Role())
	if role == "" {
		role = "none" // a principal that reaches nothing; it cannot append, but is counted
	}
	if err == nil {
		dup := 0
		for _, p := range positions {
			if p.GetDuplicate() {
				dup++
			}
		}
		s.obs.Appended(t, role, len(positions)-dup, dup)
		return
	}
	var refused *RefusedError
	switch {
	case errors.As(err, &refused):
		for _, r := range refused.Refusals {
			s.obs.Refused(t, role, r.Code)
		}
	case errors.Is(err, eventstore.ErrConflict):
		s.obs.Conflict(t, role)
	case errors.Is(err, ErrUnconfirmed):
		s.obs.Unconfirmed(t, role)
	case errors.Is(err, ErrFoldFault):
		s.obs.FoldFault(t, role)
	}
}
