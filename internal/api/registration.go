// Package api implements nir's Connect services (gRPC, gRPC-Web and HTTP+JSON from one
// handler) on top of the append path and the read models. It is the edge where errors are
// classified for callers (DESIGN.md "Services and security"): invalid input names the field
// (InvalidArgument), a rule refusal carries the rule's code (FailedPrecondition), a conflict
// is Aborted, a forbidden action PermissionDenied. Internal errors are logged here once and
// the caller gets a generic message.
package api

import (
	"context"
	"errors"
	"log/slog"
	"strconv"

	"connectrpc.com/connect"

	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/ingest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
)

// Registration serves nir.v1.RegistrationService.
type Registration struct {
	ingest *ingest.Service
	log    *slog.Logger
}

var _ nirv1connect.RegistrationServiceHandler = (*Registration)(nil)

// NewRegistration returns the registration service over the append path. A nil logger
// discards.
func NewRegistration(svc *ingest.Service, log *slog.Logger) *Registration {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Registration{ingest: svc, log: log.With("component", "api")}
}

// Append implements RegistrationService.Append.
func (h *Registration) Append(ctx context.Context, req *connect.Request[nirv1.AppendRequest]) (*connect.Response[nirv1.AppendResponse], error) {
	positions, err := h.AppendAs(ctx, req.Msg)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&nirv1.AppendResponse{Positions: positions}), nil
}

// AppendAs authorizes and appends a request for the principal in ctx; it is shared by the
// Connect handler and the NATS ingress, and returns Connect errors.
func (h *Registration) AppendAs(ctx context.Context, req *nirv1.AppendRequest) ([]*nirv1.Position, error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("no principal"))
	}
	switch p.Role {
	case auth.RoleKommune:
		for i, reg := range req.GetRegistrations() {
			// A missing event or kommune is invalid input, reported by the append path's
			// validation with the field named; only a kommune given is checked here.
			if k := reg.GetEvent().GetKommune(); k != "" && k != p.Kommune {
				return nil, fieldError(connect.CodePermissionDenied, "registrations["+strconv.Itoa(i)+"].event.kommune",
					"a kommune may only register for its own kommune ("+p.Kommune+")")
			}
		}
	case auth.RoleSystem:
	default:
		return nil, connect.NewError(connect.CodePermissionDenied, errors.New("role "+string(p.Role)+" may not append"))
	}
	// A kommune registers only for persons it has (or had), or moves to itself; others are
	// NotFound, like unknown persons. p.Kommune is "" for the system principal.
	positions, err := h.ingest.AppendFor(ctx, p.Actor(), p.Kommune, req.GetRegistrations())
	if err != nil {
		return nil, Error(ctx, h.log, "append", err)
	}
	return positions, nil
}

// History implements RegistrationService.History.
func (h *Registration) History(ctx context.Context, req *connect.Request[nirv1.HistoryRequest]) (*connect.Response[nirv1.HistoryResponse], error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("no principal"))
	}
	key, events, err := h.ingest.History(ctx, req.Msg.GetPerson())
	if err != nil {
		return nil, Error(ctx, h.log, "history", err)
	}
	switch p.Role {
	case auth.RoleKommune:
		if !ingest.LivedIn(events, p.Kommune) {
			// Not found rather than denied: a kommune must not learn whether another
			// kommune's person exists.
			return nil, Error(ctx, h.log, "history", ingest.ErrNotFound)
		}
	case auth.RoleSystem:
	default:
		return nil, connect.NewError(connect.CodePermissionDenied, errors.New("role "+string(p.Role)+" may not read a person's history"))
	}
	out := &nirv1.HistoryResponse{PersonKey: key, Events: make([]*nirv1.StoredEvent, len(events))}
	for i, e := range events {
		out.Events[i] = &nirv1.StoredEvent{Sequence: e.Seq, Event: e.Event}
	}
	return connect.NewResponse(out), nil
}

// Error classifies an error for the caller. Errors the caller cannot act on are logged once
// here and returned as a generic internal error.
func Error(ctx context.Context, log *slog.Logger, op string, err error) error {
	var (
		invalid *ingest.InvalidError
		refused *ingest.RefusedError
	)
	switch {
	case errors.As(err, &invalid):
		return fieldError(connect.CodeInvalidArgument, invalid.Field, invalid.Reason)
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
	case errors.Is(err, ingest.ErrNotFound):
		return connect.NewError(connect.CodeNotFound, errors.New("person not found"))
	case errors.Is(err, ingest.ErrTooLarge):
		return connect.NewError(connect.CodeResourceExhausted, err)
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, err)
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, err)
	}
	log.ErrorContext(ctx, "request failed", "op", op, "err", err)
	return connect.NewError(connect.CodeInternal, errors.New(op+" failed; see nird's log"))
}

func fieldError(code connect.Code, field, reason string) *connect.Error {
	ce := connect.NewError(code, errors.New(field+": "+reason))
	if d, err := connect.NewErrorDetail(&nirv1.FieldViolation{Field: field, Reason: reason}); err == nil {
		ce.AddDetail(d)
	}
	return ce
}
