package eventstore

import (
	"errors"
	"fmt"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"google.golang.org/protobuf/proto"
)

const (
	// subjectPrefix is the stream's subject space: one subject per person key.
	subjectPrefix = "nir.ev."
	// maxKeyLen bounds a person key. An HMAC-SHA256 in hex is 64 characters.
	maxKeyLen = 128
	// maxIDLen is the server's limit for a message id in an atomic batch.
	maxIDLen = 64
)

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

// Decode unmarshals the message stored at stream sequence seq. It is the one place events
// are decoded. Any failure is a *DecodeError naming seq; Decode never panics on bad input.
// A payload of a type this binary does not know decodes without error (its oneof is nil
// and the bytes are kept as unknown fields), so newer events do not stop older readers.
func Decode(seq uint64, data []byte) (*nirv1.Event, error) {
	ev := &nirv1.Event{}
	if err := proto.Unmarshal(data, ev); err != nil {
		return nil, &DecodeError{Seq: seq, Err: err}
	}
	if ev.GetId() == "" {
		return nil, &DecodeError{Seq: seq, Err: errors.New("event has no id")}
	}
	if err := validKey(ev.GetPersonKey()); err != nil {
		return nil, &DecodeError{Seq: seq, Err: err}
	}
	return ev, nil
}

// decodeOn decodes a message and checks that its envelope belongs to the subject it was
// stored on, so an event can never be folded into another person.
func decodeOn(seq uint64, subject string, data []byte) (*nirv1.Event, error) {
	ev, err := Decode(seq, data)
	if err != nil {
		return nil, err
	}
	if subject != subjectPrefix+ev.GetPersonKey() {
		return nil, &DecodeError{Seq: seq, Err: errors.New("envelope person key does not match the subject")}
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
