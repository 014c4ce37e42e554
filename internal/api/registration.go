// Package api implements nir's Connect services (gRPC, gRPC-Web and HTTP+JSON from one
// handler) on top of the append path and the read models. It is the edge where errors are
// classified for callers (DESIGN.md "Services and security"): invalid input names the field
// (InvalidArgument), a rule refusal carries the rule's code (FailedPrecondition), a conflict
// is Aborted, a forbidden action PermissionDenied. Internal errors are logged here once and
// the caller gets a generic message. Requests are decoded with Unmarshal (decode.go), which
// keeps what the schema does not define out of the register, whichever the wire format.
package api

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/introreg/nir/internal/access"
	"github.com/introreg/nir/internal/ingest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
	"github.com/introreg/nir/rules"
	"github.com/introreg/nir/sealing"
)

// Registration serves nir.v1.RegistrationService.
type Registration struct {
	ingest *ingest.Service
	reads  *PersonReads
	log    *slog.Logger
	fails  *failures
}

var _ nirv1connect.RegistrationServiceHandler = (*Registration)(nil)

// NewRegistration returns the registration service over the append path. History takes
// its turn in reads (shared with the query service's AuditHistory); nil is a bound of its
// own (NewPersonReads(0, 0)). A nil logger discards.
func NewRegistration(svc *ingest.Service, log *slog.Logger, reads *PersonReads) *Registration {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if reads == nil {
		reads = NewPersonReads(0, 0)
	}
	log = log.With("component", "api")
	return &Registration{ingest: svc, reads: reads, log: log, fails: newFailures(log)}
}

// Append implements RegistrationService.Append.
func (h *Registration) Append(ctx context.Context, req *connect.Request[nirv1.AppendRequest]) (*connect.Response[nirv1.AppendResponse], error) {
	positions, err := h.AppendAs(ingest.WithTransport(ctx, ingest.TransportHTTP), req.Msg)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&nirv1.AppendResponse{Positions: positions}), nil
}

// AppendAs appends a request for the principal in ctx, under its access.Scope (the append
// path applies the access rules to every event); it is shared by the Connect handler, the
// NATS ingress and the console, and returns Connect errors. A request holding fields the
// schema does not define never reaches it: both transports decode with Unmarshal, which
// refuses one, and the console builds its requests itself.
func (h *Registration) AppendAs(ctx context.Context, req *nirv1.AppendRequest) ([]*nirv1.Position, error) {
	scope, err := access.FromContext(ctx)
	if err != nil {
		return nil, callerError(ctx, h.fails, "append", err)
	}
	positions, err := h.ingest.Append(ctx, scope, req.GetRegistrations())
	if err != nil {
		return nil, callerError(ctx, h.fails, "append", err)
	}
	return positions, nil
}

// History implements RegistrationService.History.
func (h *Registration) History(ctx context.Context, req *connect.Request[nirv1.HistoryRequest]) (*connect.Response[nirv1.HistoryResponse], error) {
	scope, err := access.FromContext(ctx)
	if err != nil {
		return nil, callerError(ctx, h.fails, "history", err)
	}
	if err := scope.CanReadHistory(); err != nil {
		return nil, callerError(ctx, h.fails, "history", err)
	}
	done, err := h.reads.acquire(ctx, scope.String())
	if err != nil {
		return nil, callerError(ctx, h.fails, "history", err)
	}
	defer done()
	key, events, err := h.ingest.History(ctx, scope, req.Msg.GetPerson())
	if err != nil {
		return nil, callerError(ctx, h.fails, "history", err)
	}
	// A person the caller may not see is not found, like an unknown one: a kommune must not
	// learn whether another kommune's person exists. A former kommune sees its own period.
	st := ingest.FoldHistory(key, events)
	visible, err := scope.Visible(st)
	if err != nil {
		return nil, callerError(ctx, h.fails, "history", err)
	}
	out := &nirv1.HistoryResponse{PersonKey: key}
	for _, e := range events {
		if !visible(e.Event) {
			continue
		}
		ev := e.Event
		if st.Erased {
			// A copy: the append path's history cache holds the event.
			ev = proto.Clone(ev).(*nirv1.Event)
			rules.RedactIdentity(ev)
		}
		out.Events = append(out.Events, &nirv1.StoredEvent{Sequence: e.Seq, Event: ev})
	}
	// Encoded before done releases the slot.
	return connect.NewResponse(encodedInSlot(req, out)), nil
}

// callerError classifies an error for the caller. Errors the caller cannot act on are logged
// once here, bounded by fails, and returned as a generic internal error.
func callerError(ctx context.Context, fails *failures, op string, err error) error {
	var (
		invalid *ingest.InvalidError
		refused *ingest.RefusedError
		deny    *access.DeniedError
		idErr   *ingest.IDError
		fault   *ingest.FoldFaultError
	)
	switch {
	case errors.As(err, &invalid):
		return fieldError(connect.CodeInvalidArgument, invalid.Field, invalid.Reason)
	case errors.As(err, &idErr):
		code := connect.CodeAlreadyExists // another person's id
		if errors.Is(err, ingest.ErrIDReused) {
			code = connect.CodeFailedPrecondition // the same person's id with other content
		}
		return fieldError(code, idErr.Field, idErr.Reason)
	case errors.As(err, &fault):
		// nird's bug, not the caller's: Internal, naming the registration; the same request
		// succeeds once nird is fixed. The append path logged it (event id, panic type).
		return fieldError(connect.CodeInternal, fault.Field, ingest.FoldFaultReason)
	case errors.Is(err, ingest.ErrUnavailable):
		return connect.NewError(connect.CodeUnavailable, errors.New("event ids cannot be checked yet (the read models are catching up with the stream); retry shortly"))
	case errors.Is(err, ingest.ErrHistoryBroken):
		// The operator's to repair (restore the stream from a backup); never the caller's.
		fails.error(ctx, "a person's history on the stream has a hole: nothing stored", op, err)
		return connect.NewError(connect.CodeDataLoss, errors.New("the person's history in the register's event stream cannot be read whole (a damaged record, or a replica that skipped it); nothing was stored; retry later, and tell the register's operator if it persists"))
	case errors.Is(err, ingest.ErrUnconfirmed):
		return connect.NewError(connect.CodeUnavailable, errors.New("the person's history cannot be confirmed with the stream's leader now (a NATS node may be cut off from the others); retry shortly"))
	case errors.Is(err, ingest.ErrNoRoom):
		// The operator's to fix (the alert NirDataDiskFull); the caller's to retry.
		fails.error(ctx, "the event store has no room: nothing stored", op, err)
		return connect.NewError(connect.CodeUnavailable, errors.New("the register's event store has no room for more events (its disk is full, or the storage its NATS server allows itself); nothing was stored; retry later"))
	case errors.Is(err, ingest.ErrKeysNotDestroyed) && errors.Is(err, sealing.ErrKeyUnreadable):
		// The erasure is stored; a key it destroys is damaged on disk and cannot be
		// overwritten (what it sealed is unreadable already). The operator's, not the caller's.
		fails.error(ctx, "an erasure is recorded, but a data key it destroys is damaged on disk and cannot be overwritten", op, err)
		return connect.NewError(connect.CodeDataLoss, errors.New("the erasure is recorded, but a data key it destroys is damaged on disk and cannot be overwritten (what it sealed cannot be read); sending it again does not help; tell the register's operator"))
	case errors.Is(err, ingest.ErrKeysNotDestroyed):
		fails.warn(ctx, "an erasure is recorded, but not every data key it destroys was destroyed yet", op, err)
		return connect.NewError(connect.CodeUnavailable, errors.New("the erasure is recorded, but not every data key it destroys was destroyed yet; send the erasure again"))
	case errors.Is(err, sealing.ErrKeyUnreadable):
		// A data key stored and damaged (on disk, or it does not open): the operator's to
		// restore from a backup; retrying does not help.
		fails.error(ctx, "a stored event's data key is damaged: nothing done", op, err)
		return connect.NewError(connect.CodeDataLoss, errors.New("a stored event's data key cannot be read (damaged); nothing was stored; tell the register's operator"))
	case errors.Is(err, sealing.ErrNoKey):
		// The append path is strict (sealing.Events.Strict): a data key an event names and the
		// key store could not find yet, as a cluster's bucket elects a leader.
		fails.warn(ctx, "a data key could not be read", op, err)
		return connect.NewError(connect.CodeUnavailable, errors.New("a stored event's data key cannot be read yet; retry shortly"))
	case errors.As(err, &deny):
		if deny.Field == "" {
			return connect.NewError(connect.CodePermissionDenied, errors.New(deny.Reason))
		}
		return fieldError(connect.CodePermissionDenied, deny.Field, deny.Reason)
	case errors.Is(err, access.ErrUnauthenticated):
		return connect.NewError(connect.CodeUnauthenticated, err)
	case errors.As(err, &refused):
		ce := connect.NewError(connect.CodeFailedPrecondition, errors.New(refused.Error()))
		for _, r := range refused.Refusals {
			if d, derr := connect.NewErrorDetail(&nirv1.RuleRefusal{
				Code: r.Code, Rule: r.Rule, Section: r.Section, Version: r.Version,
				EventId: r.EventID, MessageNb: r.MessageNB, MessageEn: r.MessageEN,
			}); derr == nil {
				ce.AddDetail(d)
			}
		}
		return ce
	case errors.Is(err, ingest.ErrConflict):
		return connect.NewError(connect.CodeAborted, errors.New("conflict: the person changed since the expected sequence; read the history and try again"))
	case errors.Is(err, ingest.ErrNotFound), errors.Is(err, access.ErrNotFound):
		return connect.NewError(connect.CodeNotFound, errors.New("person not found"))
	case errors.Is(err, ingest.ErrPersonFull):
		return connect.NewError(connect.CodeResourceExhausted, errors.New(strings.TrimPrefix(err.Error(), ingest.ErrPersonFull.Error()+": ")+"; ask the register's operators if a real person needs more"))
	case errors.Is(err, ingest.ErrTooLarge):
		return connect.NewError(connect.CodeResourceExhausted, err)
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, err)
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, err)
	}
	fails.error(ctx, "request failed", op, err)
	return connect.NewError(connect.CodeInternal, errors.New(op+" failed; see nird's log"))
}

func fieldError(code connect.Code, field, reason string) *connect.Error {
	ce := connect.NewError(code, errors.New(field+": "+reason))
	if d, err := connect.NewErrorDetail(&nirv1.FieldViolation{Field: field, Reason: reason}); err == nil {
		ce.AddDetail(d)
	}
	return ce
}
