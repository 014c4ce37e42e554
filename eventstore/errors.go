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

	// ErrNotNew is returned by Append (wrapping ErrConflict) when an event of a person
	// appended with PersonAppend.NoDuplicates is found stored already, a retry of the caller's
	// own among them: the history the caller judged on was behind the stream. Nothing of the
	// batch is stored: the caller reads the person and judges the retry on its history before
	// anything of the request is stored.
	ErrNotNew = fmt.Errorf("%w: an event of the person is stored already", ErrConflict)

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

	// ErrIDInUse is returned by Append when an event's id is already stored for another
	// person (the server's dedupe window remembers it). The error is an *IDError. Nothing of
	// the caller's request is stored.
	ErrIDInUse = errors.New("eventstore: event id already stored for another person")

	// ErrIDReused is returned by Append when an event's id is already stored for the same
	// person with other content: not a retry, but a new event under a used id. The error is
	// an *IDError. Nothing of the caller's request is stored.
	ErrIDReused = errors.New("eventstore: event id already stored with other content")

	// ErrHistoryBroken is returned by Read when a person's events on the stream do not chain
	// (Event.prev_hash): an event links to a message that is not there. The store cannot read
	// one of the person's messages back (a damaged record, which JetStream answers as no
	// message), or a replica skipped it; an append on such a history would be checked
	// against the wrong events. The wrapped message names the sequence.
	ErrHistoryBroken = errors.New("eventstore: the person's history on the stream has a hole")
)

// IDError names the event id of an ErrIDInUse or ErrIDReused. EventID is empty when the
// server refused an atomic batch for an id it did not name, and no event of the batch was
// found in its person's history: one of the batch's ids is stored for another person.
type IDError struct {
	EventID string
	Err     error // ErrIDInUse or ErrIDReused
}

func (e *IDError) Error() string {
	if e.EventID == "" {
		return e.Err.Error() + " (an event of the batch)"
	}
	return e.Err.Error() + ": " + e.EventID
}

func (e *IDError) Unwrap() error { return e.Err }

// DecodeError says that a stored message is not a usable event: it does not decode, or
// its envelope does not belong to its subject. It names the stream sequence of the message
// so an operator can inspect it with the nats CLI (nats stream get NIR_EVENTS <seq>), and
// never carries the message body. Decode returns it; Read and Replay skip such a message
// (quarantine) and report it in Stored.Quarantine instead of stopping.
type DecodeError struct {
	// Seq is the stream sequence of the message.
	Seq uint64
	// Reason is one of the Reason constants.
	Reason string
	// Err is the underlying error, if any (never the message's content).
	Err error
}

func (e *DecodeError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("eventstore: decode event at stream seq %d: %s: %v", e.Seq, e.Reason, e.Err)
	}
	return fmt.Sprintf("eventstore: decode event at stream seq %d: %s", e.Seq, e.Reason)
}

func (e *DecodeError) Unwrap() error { return e.Err }
