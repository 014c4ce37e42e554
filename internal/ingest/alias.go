package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/oklog/ulid/v2"

	"github.com/introreg/nir/eventstore"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// A person may hold several national ids over time: a DUF-nummer, a D-nummer, later a
// fødselsnummer (DOMAIN.md Product decisions 15). The person's subject is keyed by the first
// id registered; every further id is claimed on the subject its own key names, by an
// IdentifierClaimed message stored in the same atomic batch as the event that brings the id
// (a PersonRegistered's further ids, an IdentifierAdded) and expecting that subject to be
// empty. Person subjects and claims share one key space, so the stream itself makes every id
// belong to one person, across every nird: the claim of an id that keys a person, or that
// another person claimed, fails the batch's concurrency check.
//
// A lookup by an id finds the subject of the id's key; when that holds a claim, the person is
// the one it names.

// ErrIDTaken is returned when a registration names a national id that another person holds.
// The error is an *IDError naming the field; it never holds the id.
var ErrIDTaken = errors.New("the national id belongs to another person")

// claim is one national id a registration brings to a person.
type claim struct {
	key   string // the id's own key: the subject claimed
	field string // the id's field in the request, for errors
	owner string // the person's key
	index int    // the registration's index
	event *nirv1.Event
}

// claimsOf returns the ids ev brings to the person with key owner that need a claim: every id
// of a PersonRegistered but the one that keys the person, and the id of an IdentifierAdded.
func (s *Service) claimsOf(ev *nirv1.Event, owner string, index int) []claim {
	field := fmt.Sprintf("registrations[%d].event.", index)
	var out []claim
	add := func(id, f string, typ nirv1.IdentifierType) {
		if id == "" {
			return
		}
		key := s.keys.Key(id)
		if key == owner {
			return
		}
		for _, c := range out {
			if c.key == key {
				return
			}
		}
		out = append(out, claim{key: key, field: field + f, owner: owner, index: index, event: claimEvent(ev, key, owner, typ)})
	}
	if pr := ev.GetPersonRegistered(); pr != nil {
		add(pr.GetFodselsnummer(), "person_registered.fodselsnummer", nirv1.IdentifierType_IDENTIFIER_TYPE_FODSELSNUMMER)
		add(pr.GetDNummer(), "person_registered.d_nummer", nirv1.IdentifierType_IDENTIFIER_TYPE_D_NUMMER)
		add(pr.GetDufNummer(), "person_registered.duf_nummer", nirv1.IdentifierType_IDENTIFIER_TYPE_DUF_NUMMER)
	}
	if ia := ev.GetIdentifierAdded(); ia != nil {
		add(ia.GetNationalId(), "identifier_added.national_id", ia.GetType())
	}
	return out
}

// claimEvent is the claim of the id keyed key for the person owner, made for ev (already
// stamped). Its id is derived from ev's and key, so that a retried append claims with the same
// message id and JetStream's dedupe window holds it too.
func claimEvent(ev *nirv1.Event, key, owner string, typ nirv1.IdentifierType) *nirv1.Event {
	return &nirv1.Event{
		Id:          claimID(ev.GetId(), key),
		PersonKey:   key,
		Kommune:     ev.GetKommune(),
		Actor:       ev.GetActor(),
		RecordedAt:  ev.GetRecordedAt(),
		CausationId: ev.GetId(),
		Payload: &nirv1.Event_IdentifierClaimed{IdentifierClaimed: &nirv1.IdentifierClaimed{
			PersonKey: owner, Type: typ, EventId: ev.GetId(),
		}},
	}
}

// claimID is a ULID with the time of the event id and an entropy drawn from the event id and
// the claimed key.
func claimID(eventID, key string) string {
	var ms uint64
	if u, err := ulid.ParseStrict(eventID); err == nil {
		ms = u.Time()
	}
	h := sha256.Sum256([]byte("nir claim\x00" + eventID + "\x00" + key))
	u, err := ulid.New(ms, bytes.NewReader(h[:10]))
	if err != nil {
		// Only a time beyond ULID's range fails, and the time came from a ULID.
		panic(fmt.Sprintf("ingest: claim id: %v", err))
	}
	return u.String()
}

// claimed returns the person an id's subject was claimed for: the person key its
// IdentifierClaimed names, or "" when the history is not a claim (a person, or nothing).
func claimed(key string, history []eventstore.Stored) string {
	if len(history) == 0 || history[0].Event.GetIdentifierClaimed() == nil {
		return ""
	}
	return foldHistory(key, history).AliasOf
}

// takenClaim finds, after an append failed its concurrency check, a claim whose id another
// person holds by now. It returns the *IDError for it, or nil when every claim is still free
// (or held by the claiming person itself, which a new read of the person shows).
func (s *Service) takenClaim(ctx context.Context, claims []claim) error {
	for _, c := range claims {
		history, _, err := s.store.Read(ctx, c.key)
		if err != nil {
			return fmt.Errorf("read claimed id: %w", err)
		}
		if len(history) == 0 || claimed(c.key, history) == c.owner {
			continue
		}
		s.cache.put(c.key, history, history[len(history)-1].Seq)
		return &IDError{Index: c.index, Field: c.field, Reason: "belongs to another person in the register", Err: ErrIDTaken}
	}
	return nil
}
