package eventstore

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

const (
	// subjectPrefix is the stream's subject space: one subject per person key.
	subjectPrefix = "nir.ev."
	// maxKeyLen bounds a person key. An HMAC-SHA256 in hex is 64 characters.
	maxKeyLen = 128
	// maxIDLen is the server's limit for a message id in an atomic batch.
	maxIDLen = 64
)

// EventSubjects are the stream's subjects, nir.ev.<person key>.
const EventSubjects = subjectPrefix + ">"

// Encode marshals an event for the stream. It refuses an event without id, person key or
// payload (ErrInvalid), so that nothing undecodable or unaddressable is ever written.
func Encode(ev *nirv1.Event) ([]byte, error) {
	if err := validateEvent(ev); err != nil {
		return nil, err
	}
	b, err := proto.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("eventstore: encode event %s: %w", ev.GetId(), err)
	}
	return b, nil
}

// Reasons a stored message is not a usable event (DecodeError.Reason). A replay or read
// skips such a message (see Stored.Quarantine); the read models record the reason, so a
// consumer that checks events it received undecoded (projections' rebuild) must apply the
// same checks in the same order, with the same words: subject, protobuf, id, envelope,
// payload.
const (
	ReasonBadSubject  = "subject is not a person key"
	ReasonUndecodable = "not a protobuf event"
	ReasonNoID        = "event has no id"
	ReasonBadKey      = "envelope person key is not a safe subject token"
	ReasonOtherPerson = "envelope names another person than its subject"
	// ReasonNoPayload is an event with no payload and nothing a newer kind left (see
	// nirv1.EmptyEvent): nird never writes one, so something else wrote it.
	ReasonNoPayload = "event has no payload"
	// ReasonMissing is a sequence the stream does not hold any more (it never deletes: its
	// store lost the message). A Replay delivers it as quarantined rather than skip it
	// unseen (Store.gap).
	ReasonMissing = "missing from the stream"
)

// Decode unmarshals the message stored at stream sequence seq. It is the one place events
// are decoded. Any failure is a *DecodeError naming seq; Decode never panics on bad input.
// A payload of a type this binary does not know decodes without error (its oneof is nil
// and the bytes are kept as unknown fields), so newer events do not stop older readers.
func Decode(seq uint64, data []byte) (*nirv1.Event, error) {
	ev, err := nirv1.UnmarshalEvent(data)
	if err != nil {
		return nil, &DecodeError{Seq: seq, Reason: ReasonUndecodable, Err: err}
	}
	if ev.GetId() == "" {
		return nil, &DecodeError{Seq: seq, Reason: ReasonNoID}
	}
	if err := validKey(ev.GetPersonKey()); err != nil {
		return nil, &DecodeError{Seq: seq, Reason: ReasonBadKey, Err: err}
	}
	if nirv1.EmptyEvent(ev) {
		return nil, &DecodeError{Seq: seq, Reason: ReasonNoPayload}
	}
	return ev, nil
}

// subjectKey returns the person key of a stream subject, or a *DecodeError when the subject
// is not nir.ev.<safe key> (a message a tool stored on a subject nird never writes).
func subjectKey(seq uint64, subject string) (string, error) {
	key, ok := strings.CutPrefix(subject, subjectPrefix)
	if !ok {
		return "", &DecodeError{Seq: seq, Reason: ReasonBadSubject}
	}
	if err := validKey(key); err != nil {
		return "", &DecodeError{Seq: seq, Reason: ReasonBadSubject, Err: err}
	}
	return key, nil
}

// decodeOn decodes a message and checks that its envelope belongs to the subject it was
// stored on, so an event can never be folded into another person. The checks, in order:
// the subject is a person's, the data is an event, it has an id, its envelope names the
// subject's person (which makes the envelope's key a safe one too).
func decodeOn(seq uint64, subject string, data []byte) (*nirv1.Event, error) {
	key, err := subjectKey(seq, subject)
	if err != nil {
		return nil, err
	}
	ev, err := nirv1.UnmarshalEvent(data)
	if err != nil {
		return nil, &DecodeError{Seq: seq, Reason: ReasonUndecodable, Err: err}
	}
	if ev.GetId() == "" {
		return nil, &DecodeError{Seq: seq, Reason: ReasonNoID}
	}
	if ev.GetPersonKey() != key {
		return nil, &DecodeError{Seq: seq, Reason: ReasonOtherPerson}
	}
	if nirv1.EmptyEvent(ev) {
		return nil, &DecodeError{Seq: seq, Reason: ReasonNoPayload}
	}
	return ev, nil
}

func validateEvent(ev *nirv1.Event) error {
	switch {
	case ev == nil:
		return fmt.Errorf("%w: nil event", ErrInvalid)
	case !validID(ev.GetId()):
		return fmt.Errorf("%w: event id must be 1 to %d printable ASCII characters", ErrInvalid, maxIDLen)
	case ev.GetPayload() == nil:
		return fmt.Errorf("%w: event %s has no payload", ErrInvalid, ev.GetId())
	}
	if err := validKey(ev.GetPersonKey()); err != nil {
		return fmt.Errorf("%w: event %s: %v", ErrInvalid, ev.GetId(), err)
	}
	return nil
}

func validID(id string) bool {
	if id == "" || len(id) > maxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

// validKey reports whether key can be used as one subject token: [A-Za-z0-9_-], at most
// maxKeyLen long, and not shaped like a plain national id. The error never repeats the key.
func validKey(key string) error {
	if key == "" {
		return errors.New("empty person key")
	}
	if len(key) > maxKeyLen {
		return fmt.Errorf("person key longer than %d characters", maxKeyLen)
	}
	digits := 0
	for i := 0; i < len(key); i++ {
		c := key[i]
		if '0' <= c && c <= '9' {
			digits++
		}
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return errors.New("person key is not a safe subject token ([A-Za-z0-9_-])")
		}
	}
	// A national id (fødselsnummer, D-nummer: 11 digits; DUF: 12) must never become a
	// subject. A keyed hash in hex is practically never all digits.
	if digits == len(key) && (len(key) == 11 || len(key) == 12) {
		return errors.New("person key looks like a national id, not a keyed hash")
	}
	return nil
}

// Subject returns the stream subject of a person key, or ErrInvalid if the key is not a
// safe subject token. Other tools (nats CLI, operators) address a person with it.
func Subject(personKey string) (string, error) {
	if err := validKey(personKey); err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return subjectPrefix + personKey, nil
}

// ValidKey returns nil when key can be a person's subject token, or an error saying why not
// (never repeating the key).
func ValidKey(key string) error { return validKey(key) }

// SameEvent reports whether a and b are one event sent twice: equal in everything but what
// each attempt stamps anew (recorded_at, and the actor, which a retry through another token
// may change). An event id is the event's idempotency key only as long as it names the same
// content; the same id with other content is a new event under a used id.
func SameEvent(a, b *nirv1.Event) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, y := proto.Clone(a).(*nirv1.Event), proto.Clone(b).(*nirv1.Event)
	x.RecordedAt, y.RecordedAt = nil, nil
	x.Actor, y.Actor = nil, nil
	x.PrevHash, y.PrevHash = nil, nil // where it was appended, not what it says
	x.DataKeyId, y.DataKeyId = "", "" // which key sealed it (DOMAIN.md Product decisions 15)
	// Sealed identities differ in every sealing (a fresh nonce, a fresh key): two sealed
	// copies are compared on what they hold in clear, the age on the permit date among it. The
	// append path compares retries opened, in clear, first; this is for a retry the stream's
	// dedupe window answers before the append path saw the stored copy.
	unseal := func(e *nirv1.Event) {
		if p := e.GetPersonRegistered(); p != nil {
			p.SealedIdentity = nil
		}
		if a := e.GetIdentifierAdded(); a != nil {
			a.SealedNationalId = nil
		}
	}
	unseal(x)
	unseal(y)
	// What nird copied into a merge at append time (the absorbed person's events).
	if m := x.GetPersonsMerged(); m != nil {
		m.AbsorbedEvents = nil
	}
	if m := y.GetPersonsMerged(); m != nil {
		m.AbsorbedEvents = nil
	}
	// The keys nird named in an erasure (DOMAIN.md Product decisions 15).
	if e := x.GetPersonErased(); e != nil {
		e.DestroyedKeys = nil
	}
	if e := y.GetPersonErased(); e != nil {
		e.DestroyedKeys = nil
	}
	return proto.Equal(x, y)
}
