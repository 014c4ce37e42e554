package ingest

import (
	"errors"
	"fmt"
	"strings"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/rules"
)

var (
	// ErrInvalid is returned when a registration is malformed: a missing or bad field, an
	// invalid national id or kommunenummer. The error is an *InvalidError naming the field.
	ErrInvalid = errors.New("invalid registration")

	// ErrRefused is returned when the regelmotor refuses a registration. The error is a
	// *RefusedError carrying the refusals with their rule codes.
	ErrRefused = errors.New("registration refused by rule")

	// ErrNotFound is returned when a registration or a read names a person the register
	// does not know.
	ErrNotFound = errors.New("person not found")

	// ErrConflict is returned when the person changed since the sequence the caller expected,
	// or kept changing under concurrent writers through every retry. It wraps
	// eventstore.ErrConflict.
	ErrConflict = eventstore.ErrConflict

	// ErrTooLarge is returned when a request holds more registrations or bytes than one
	// atomic append may, or more retractions of one person than the Service re-folds in one
	// request (Config.MaxRefoldEvents).
	ErrTooLarge = eventstore.ErrTooLarge

	// ErrIDInUse is returned when an event's id is already stored for another person. The
	// error is an *IDError naming the field.
	ErrIDInUse = eventstore.ErrIDInUse

	// ErrIDReused is returned when an event's id is already stored for the same person with
	// other content (not a retry). The error is an *IDError naming the field.
	ErrIDReused = eventstore.ErrIDReused

	// ErrUnavailable is returned when an event id cannot be checked yet: the read models'
	// event-id index is further behind the stream than the dedupe window covers, and did
	// not catch up within the request's time. Retrying later succeeds.
	ErrUnavailable = errors.New("the event-id index is catching up with the stream")

	// ErrUnconfirmed is returned instead of a refusal judged on the stream's history when
	// the stream leader that answered the read cannot be shown to have led its replicas
	// then (a NATS node cut off from the others answers from a store that ends early).
	// Retrying later gets the answer. It wraps eventstore.ErrUnconfirmed.
	ErrUnconfirmed = eventstore.ErrUnconfirmed

	// ErrNoRoom is returned when the event store refused to store for want of room: its
	// disk, or the storage JetStream allows itself, is full. Nothing was stored; retrying
	// once the operator has made room succeeds.
	ErrNoRoom = eventstore.ErrNoRoom

	// ErrHistoryBroken is returned when a person's events read from the stream do not chain:
	// one of them cannot be read back (a damaged record) or a replica skipped it, so the
	// request cannot be judged on the person's history. Nothing is stored.
	ErrHistoryBroken = eventstore.ErrHistoryBroken

	// ErrPersonFull is returned when a request would take a person past the most events one
	// person may have (Config.MaxPersonEvents). Nothing is stored.
	ErrPersonFull = errors.New("the person has the most events one person may have")

	// ErrFoldFault is returned when the rules panic folding a registration's event (a bug in
	// nird, not in the registration; rules.State.Faults): stored, the event would be left out
	// of the person's state and every read model, so nothing is stored. The error is a
	// *FoldFaultError naming the registration. The same request succeeds once nird is fixed.
	ErrFoldFault = errors.New("the rules failed folding the event")

	// ErrNewerEvents is returned for a computed termination (the regelmotor's) on a person
	// whose history holds an event this build cannot wholly read (nirv1.HoldsUnknown: a newer
	// nird's kind or field, in a rolling upgrade): folded without it, the person may owe
	// another termination, or none. Nothing is stored; the newer nird's regelmotor decides.
	ErrNewerEvents = errors.New("the person holds events of a newer nird that this nird cannot wholly read; its regelmotor leaves the person to a newer nird")
)

// FoldFaultError names the registration whose event the rules panicked folding
// (ErrFoldFault). Its message never holds a national id, nor what the rules panicked with.
type FoldFaultError struct {
	Index   int    // registration index in the request
	Field   string // e.g. "registrations[2].event"
	EventID string
	// Panic says what the fold panicked with (rules.Fault.Panic): for nird's log only.
	Panic string
}

// FoldFaultReason is what a FoldFaultError says of its registration.
const FoldFaultReason = "the register's rules failed folding the event (a bug in nird, not in the registration); nothing was stored; it may be sent again once nird is fixed"

func (e *FoldFaultError) Error() string { return e.Field + ": " + FoldFaultReason }

// Is reports that a *FoldFaultError is ErrFoldFault.
func (e *FoldFaultError) Is(target error) bool { return target == ErrFoldFault }

// IDError names the registration whose event id is already stored: for another person
// (ErrIDInUse) or with other content (ErrIDReused). Its message never holds a national id.
type IDError struct {
	Index  int    // registration index in the request; -1 when the server did not say which
	Field  string // e.g. "registrations[2].event.id"
	Reason string
	Err    error // ErrIDInUse or ErrIDReused
}

func (e *IDError) Error() string { return e.Field + ": " + e.Reason }

// Unwrap returns ErrIDInUse or ErrIDReused.
func (e *IDError) Unwrap() error { return e.Err }

// InvalidError names the field of a registration that is wrong. Its message never holds a
// national id.
type InvalidError struct {
	Index  int    // registration index in the request
	Field  string // field path, e.g. "registrations[2].event.id"
	Reason string
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("%s: %s", e.Field, e.Reason)
}

// Is reports that an *InvalidError is ErrInvalid.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

// RefusedError holds the regelmotor's refusals of a request.
type RefusedError struct {
	Refusals []rules.Refusal
}

func (e *RefusedError) Error() string {
	var b strings.Builder
	for i, r := range e.Refusals {
		if i > 0 {
			b.WriteString("; ")
		}
		// The message names the code, the rule, its DOMAIN.md section and version.
		b.WriteString(r.MessageEN)
	}
	return b.String()
}

// Is reports that a *RefusedError is ErrRefused.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }
