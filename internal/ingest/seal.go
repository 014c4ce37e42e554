package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/introreg/nir/eventstore"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
	"github.com/introreg/nir/sealing"
)

// Sealer seals the identifying fields of events before they are stored, opens them when they
// are read, and destroys a person's data key (sealing.Events over eventstore.KeyStore; DOMAIN.md
// Product decisions 15).
type Sealer interface {
	Seal(ctx context.Context, ev *nirv1.Event) error
	Open(ctx context.Context, ev *nirv1.Event) error
	Destroy(ctx context.Context, personKey string) error
}

// sealedStore is the event store as the append path sees it with a Sealer: every event it
// reads comes opened, and every event it appends is stored sealed, so the checks, the history
// cache and the retry comparison work on what the client sent, and the stream holds no
// national id and no birth date in clear.
type sealedStore struct {
	Store
	sealer Sealer
}

// Read returns the person's history opened. A sealed field whose data key is damaged or
// lost (sealing.ErrKeyUnreadable) fails the read with an *unreadableError, which still holds
// the history with those fields unreadable, for the one use that needs none of them: a
// request of erasures (Service.readStored). A key that an erasure of the person names among
// the keys it destroys is read as destroyed, «slettet», without an error: the erasure is
// recorded, and only the damage kept the key store from overwriting the key.
func (s sealedStore) Read(ctx context.Context, personKey string) ([]eventstore.Stored, uint64, error) {
	history, last, err := s.Store.Read(ctx, personKey)
	if err != nil {
		return nil, 0, err
	}
	var bad []unopened
	for _, h := range history {
		if err := s.open(ctx, h.Event, &bad); err != nil {
			return nil, 0, err
		}
	}
	if len(bad) == 0 {
		return history, last, nil
	}
	destroyed := map[string]bool{}
	for _, h := range history {
		for _, k := range h.Event.GetPersonErased().GetDestroyedKeys() {
			destroyed[k] = true
		}
	}
	for _, u := range bad {
		if !destroyed[u.keyID] {
			return nil, 0, &unreadableError{history: history, last: last, err: u.err}
		}
	}
	return history, last, nil
}

// unopened is a data key that did not open for a sealed field (sealing.ErrKeyUnreadable).
type unopened struct {
	keyID string
	err   error
}

// open opens the sealed fields of ev in place. A field whose data key is damaged or lost is
// read as unreadable (sealing.Unreadable), and the key added to bad, so that the other
// fields, and the other events a merge copied, are still opened. Other errors are returned.
func (s sealedStore) open(ctx context.Context, ev *nirv1.Event, bad *[]unopened) error {
	err := s.sealer.Open(ctx, ev)
	if err == nil || !errors.Is(err, sealing.ErrKeyUnreadable) {
		return err
	}
	if m := ev.GetPersonsMerged(); m != nil {
		// Open stopped at the copy whose key does not open: each copy on its own (an
		// opened one has nothing sealed left).
		for _, c := range m.GetAbsorbedEvents() {
			if err := s.open(ctx, c, bad); err != nil {
				return err
			}
		}
		return nil
	}
	sealing.Unreadable(ev)
	*bad = append(*bad, unopened{keyID: ev.GetDataKeyId(), err: err})
	return nil
}

// unreadableError is sealedStore.Read's error for a history with a sealed field whose data
// key is damaged or lost: it wraps the key store's error (sealing.ErrKeyUnreadable: DataLoss
// for the caller), and holds the history read with those fields unreadable («slettet», no
// birth date), every other field as stored, data key ids included. The regelmotor and the
// access rules need none of the sealed fields to judge an erasure, and its keys are the
// events' data key ids; nothing else is judged on such a history (Service.readStored).
type unreadableError struct {
	history []eventstore.Stored
	last    uint64
	err     error
}

func (e *unreadableError) Error() string { return e.err.Error() }
func (e *unreadableError) Unwrap() error { return e.err }

func (s sealedStore) Append(ctx context.Context, batch ...eventstore.PersonAppend) ([]eventstore.Position, error) {
	if !slices.ContainsFunc(batch, func(a eventstore.PersonAppend) bool { return slices.ContainsFunc(a.Events, sealable) }) {
		// Nothing to seal (most appends): the events go as they are, without copying the
		// batch.
		return s.Store.Append(ctx, batch...)
	}
	out := make([]eventstore.PersonAppend, len(batch))
	for i, a := range batch {
		out[i] = a
		out[i].Events = make([]*nirv1.Event, len(a.Events))
		for j, ev := range a.Events {
			if sealable(ev) {
				sealed := proto.Clone(ev).(*nirv1.Event)
				if err := s.sealer.Seal(ctx, sealed); err != nil {
					return nil, err
				}
				// The clear event, which the history cache keeps, names its key as the stored
				// one does: an erasure collects the keys from the history.
				keyIDs(ev, sealed)
				ev = sealed
			}
			out[i].Events[j] = ev
		}
	}
	return s.Store.Append(ctx, out...)
}

// sealable reports whether ev holds what the sealer seals: a person's ids (a registration,
// an id added) or the events a merge copies.
func sealable(ev *nirv1.Event) bool {
	return ev.GetPersonRegistered() != nil || ev.GetIdentifierAdded() != nil || ev.GetPersonsMerged() != nil
}

// keyIDs copies the data key ids of sealed, and of the events a merge copied into it, onto
// clear, the same event before it was sealed.
func keyIDs(clear, sealed *nirv1.Event) {
	clear.DataKeyId = sealed.GetDataKeyId()
	cs, ss := clear.GetPersonsMerged().GetAbsorbedEvents(), sealed.GetPersonsMerged().GetAbsorbedEvents()
	for i := range min(len(cs), len(ss)) {
		keyIDs(cs[i], ss[i])
	}
}

// erasedKeys are the data keys an erasure of the person folded in st destroys: every key
// that sealed an event on the person's subject, retracted ones included (their sealed bytes
// stay in the stream), and those of the events merges in force copied into it, nested merges
// included (the same human's ids, sealed with the absorbed person's keys). A retracted
// merge's copies are left: the absorbed person is its own again. That holds at every level:
// the copy of a nested merge retracted on this person (an un-merge of a person merged into
// one merged into this one) leaves that person's keys too (before 2026-12-06 they were
// destroyed, and the un-merged person, never erased, lost its national id). A merge the fold
// left out (rules.State.Faults) is not retracted: its absorbed person is still closed into
// this one, so its copies' keys are destroyed too.
func erasedKeys(st *rules.State) []string {
	var keys []string
	seen := map[string]bool{}
	add := func(ev *nirv1.Event) {
		if id := ev.GetDataKeyId(); id != "" && !seen[id] {
			seen[id] = true
			keys = append(keys, id)
		}
	}
	var copies func(ev *nirv1.Event)
	copies = func(ev *nirv1.Event) {
		for _, c := range ev.GetPersonsMerged().GetAbsorbedEvents() {
			add(c)
			if c.GetPersonsMerged() != nil && st.Retracted[c.GetId()] {
				continue // the nested merge is undone: its absorbed person is its own
			}
			copies(c)
		}
	}
	for _, le := range st.Log() {
		add(le.Event)
		if le.Event.GetPersonsMerged() != nil && !st.Retracted[le.Event.GetId()] {
			copies(le.Event)
		}
	}
	return keys
}

// erasureKeys are the data keys an erasure of the person folded in st destroys: erasedKeys,
// and every key that sealed an event on the subject of a person merged into this one
// (erasedPersons), read from the stream. A merge copies only what is in force on the
// absorbed person, so the copies need not hold every key of its subject: found on 2026-12-06
// (review of the fixes of the identity lifecycle), A's registration retracted on B, then B
// merged into C, left A's data key out of C's erasure, and A's D-nummer readable on A's own
// subject.
func (s *Service) erasureKeys(ctx context.Context, st *rules.State) ([]string, error) {
	keys := erasedKeys(st)
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		seen[k] = true
	}
	raw := s.store
	if ss, ok := raw.(sealedStore); ok {
		raw = ss.Store // the key ids are in clear; nothing needs opening
	}
	for _, pk := range erasedPersons(st)[1:] {
		h, _, err := raw.Read(ctx, pk)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			// A subject damaged on disk (a hole in its chain) must not stop the erasure of the
			// person itself: its keys are those of the merge's copies (erasedKeys), and those
			// of the part that cannot be read cannot be found anyway. Found on 2026-12-06
			// (review of this read): the erasure was refused, and sending it again changed
			// nothing.
			s.log.WarnContext(ctx, "erasure: a person merged into the erased one cannot be read; the keys of its own subject beyond the merge's copies are not destroyed",
				"person_key", pk, "err", err)
			continue
		}
		for _, e := range h {
			if id := e.Event.GetDataKeyId(); id != "" && !seen[id] {
				seen[id] = true
				keys = append(keys, id)
			}
		}
	}
	return keys, nil
}

// erasedPersons are the persons an erasure of the person folded in st erases the identity of:
// the person itself and every person merged into it by a merge in force, nested ones included
// (the persons whose keys erasedKeys destroys). The append path drops their cached histories
// once the erasure is stored (Service.try).
func erasedPersons(st *rules.State) []string {
	out := []string{st.PersonKey}
	var merged func(ev *nirv1.Event)
	merged = func(ev *nirv1.Event) {
		m := ev.GetPersonsMerged()
		if m == nil || st.Retracted[ev.GetId()] {
			return
		}
		out = append(out, m.GetAbsorbedPersonKey())
		for _, c := range m.GetAbsorbedEvents() {
			merged(c)
		}
	}
	for _, le := range st.Log() {
		merged(le.Event)
	}
	return out
}

// ErrKeysNotDestroyed is returned when an erasure is stored but a data key it names could not
// be destroyed yet: the same request again (or any erasure of the person) destroys it. It
// wraps the key store's errors: sealing.ErrKeyUnreadable for a key damaged on disk, which no
// retry destroys.
var ErrKeysNotDestroyed = errors.New("the erasure is recorded, but not every data key was destroyed yet; send the erasure again")

// destroy destroys the data keys an erasure names.
func (s *Service) destroy(ctx context.Context, erasure *nirv1.Event) error {
	if s.sealer == nil {
		return nil
	}
	var errs []error
	for _, k := range erasure.GetPersonErased().GetDestroyedKeys() {
		if err := s.sealer.Destroy(ctx, k); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		s.log.Error("destroying the data keys of an erasure failed", "event_id", erasure.GetId(), "err", err)
		return fmt.Errorf("%w: %w", ErrKeysNotDestroyed, err)
	}
	return nil
}

// storedErasure returns the person's erasure in force, if any: not one the fold left out
// (rules.State.Faults), which did not erase the person.
func storedErasure(st *rules.State) *nirv1.Event {
	for _, le := range st.Log() {
		if le.Event.GetPersonErased() != nil && !st.Faulted(le.Event.GetId()) {
			return le.Event
		}
	}
	return nil
}
