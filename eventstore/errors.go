package eventstore

import (
	"errors"
	"fmt"
)

var (
	// ErrConflict is returned by Append when a person's last stream sequence is not the
	// ExpectedLastSeq the caller folded: somebody else appended to the person in between.
	// Nothing of the batch is stored. The caller re-reads the person, re-checks its rules
	// and tries again. Both of the server's wrong-last-sequence codes (10071, and 10164 on
	// replicated streams) become ErrConflict.
	ErrConflict = errors.New("eventstore: conflict: the person has events the caller has not seen")

	// ErrTooLarge is returned by Append when an event is larger than the server accepts in
	// one message, or when one request holds more events than fit in one atomic batch
	// (MaxBatchEvents). Nothing is stored.
	ErrTooLarge = errors.New("eventstore: event or batch too large")

	// ErrInvalid is returned by Append when an event lacks an id, a person key or a payload,
	// when its person key differs from the PersonAppend's, when a person key is not a safe
	// subject token, or when one request repeats an event id or a person. It is also
	// returned by Open for an unusable Config. Nothing is stored.
	ErrInvalid = errors.New("eventstore: invalid")

	// ErrClosed is returned by every method called after (or while) Close runs.
	ErrClosed = errors.New("eventstore: closed")
)

// DecodeError is returned when a stored message cannot be decoded into an event. It names
// the stream sequence of the message so an operator can inspect it with the nats CLI
// (nats stream get NIR_EVENTS <seq>). It never carries the message body.
type DecodeError struct {
	// Seq is the stream sequence of the undecodable message.
	Seq uint64
	// Err is the underlying reason.
	Err error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("eventstore: decode event at stream seq %d: %v", e.Seq, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }
