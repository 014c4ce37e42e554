package sealing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// ErrNoKey is returned by a Keys for a person without a data key: never made, or destroyed
// by an erasure. An event sealed with a destroyed key (ErrKeyDestroyed) opens as «slettet»
// (rules.ErasedText); one whose key is merely not found opens, for a reader that is not
// Strict, as unreadable (rules.UnreadableText): a key an event names is stored before the
// event, and only an erasure destroys one.
var ErrNoKey = errors.New("sealing: the person has no data key")

// ErrKeyDestroyed is returned by a Keys for a key an erasure destroyed (it wraps ErrNoKey in
// eventstore's errors): the one case a strict Events reads as «slettet».
var ErrKeyDestroyed = errors.New("sealing: the data key was destroyed")

// ErrKeyUnreadable is returned by a Keys for a stored data key that does not open with the
// master key that opens the others: the entry is damaged (in eventstore's errors it also
// wraps eventstore.ErrMasterKey). A reader that is not Strict reads what it sealed as
// unreadable (rules.UnreadableText), never as erased; restoring the entry (from a backup) and
// rebuilding brings it back.
var ErrKeyUnreadable = errors.New("sealing: the stored data key does not open (damaged)")

// Keys gives data keys by id (eventstore.KeyStore). Key returns ErrNoKey (or an error
// wrapping it) for an id without a key, ErrKeyDestroyed (wrapped) for one an erasure
// destroyed, and ErrKeyUnreadable (wrapped) for one stored and damaged or lost; Take returns
// a new stored key and its id; Destroy destroys a key for good.
type Keys interface {
	Key(ctx context.Context, id string) (*Key, error)
	Take(ctx context.Context) (string, *Key, error)
	Destroy(ctx context.Context, id string) error
}

// Events seals and opens the identifying fields of events (DOMAIN.md Product decisions 15):
// a registration's fødselsnummer, D-nummer, DUF-nummer and birth date, and an added id.
// They are stored only sealed with the person's data key; everything the law, the schemes
// and the statistics need stays in clear (sex, dates of permit, arrival and settlement, and
// the age on the permit date, which nird computes before it seals the birth date).
type Events struct {
	Keys Keys
	// Strict makes a key that is not found, or damaged (ErrKeyUnreadable), an error, for the
	// caller to try again or refuse. The append path is strict: it compares a retried event
	// with the stored one, and must not take an unreadable copy for other content. Readers
	// that must never stop (the read models) are not: they read such a key's fields as
	// unreadable (rules.UnreadableText). Either reads a field as «slettet» only when its key
	// was destroyed (ErrKeyDestroyed): an erasure.
	Strict bool
}

// Seal seals the identifying fields of ev in place, and of every event a merge copied into
// it: each with the data key its data_key_id names (an event opened from the store keeps
// it), or with a new key (Take) whose id it records. The person key is the additional data,
// so a value sealed for one person opens for no other. An event without identifying fields
// is left as it is.
func (e Events) Seal(ctx context.Context, ev *nirv1.Event) error {
	switch {
	case ev.GetPersonRegistered() != nil:
		p := ev.GetPersonRegistered()
		if p.GetFodselsnummer() == "" && p.GetDNummer() == "" && p.GetDufNummer() == "" && p.GetBirthDate() == nil {
			return nil
		}
		id := &nirv1.SealedIdentity{Fodselsnummer: p.GetFodselsnummer(), DNummer: p.GetDNummer(), DufNummer: p.GetDufNummer(), BirthDate: p.GetBirthDate()}
		sealed, err := e.seal(ctx, ev, id)
		if err != nil {
			return err
		}
		if birth, ok := rules.DateOf(p.GetBirthDate()); ok {
			if permit, ok := rules.DateOf(p.GetPermitDate()); ok {
				if age := rules.AgeOn(birth, permit); age >= 0 {
					p.AgeAtPermitDate = proto.Int32(int32(age))
				}
			}
		}
		p.Fodselsnummer, p.DNummer, p.DufNummer, p.BirthDate, p.SealedIdentity = "", "", "", nil, sealed
	case ev.GetIdentifierAdded() != nil:
		a := ev.GetIdentifierAdded()
		if a.GetNationalId() == "" {
			return nil
		}
		sealed, err := e.seal(ctx, ev, &nirv1.SealedIdentity{NationalId: a.GetNationalId()})
		if err != nil {
			return err
		}
		a.NationalId, a.SealedNationalId = "", sealed
	case ev.GetPersonsMerged() != nil:
		for _, c := range ev.GetPersonsMerged().GetAbsorbedEvents() {
			if err := e.Seal(ctx, c); err != nil {
				return err
			}
		}
	}
	return nil
}

func (e Events) seal(ctx context.Context, ev *nirv1.Event, id *nirv1.SealedIdentity) ([]byte, error) {
	var k *Key
	var err error
	if ev.GetDataKeyId() != "" {
		k, err = e.Keys.Key(ctx, ev.GetDataKeyId())
	} else {
		ev.DataKeyId, k, err = e.Keys.Take(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("sealing: data key of an event of person %s: %w", ev.GetPersonKey(), err)
	}
	plain, err := proto.Marshal(id)
	if err != nil {
		return nil, fmt.Errorf("sealing: %w", err)
	}
	return k.Seal(ev.GetPersonKey(), plain), nil
}

// Open restores the identifying fields of ev in place, as the client sent them, and of every
// event a merge copied into it. The fields sealed with a key an erasure destroyed read as
// rules.ErasedText: the registration's fødselsnummer and the added id, with no birth date
// (the age on the permit date, kept in clear, stays). Those that cannot be read otherwise
// read so as rules.UnreadableText: a key damaged or lost on disk (for a reader that is not
// Strict), a sealed value that does not open with its key (damaged, or sealed for another
// person), a sealed value naming no key. Such a person is not erased, and is never read as
// one (before 2026-12-06 every such field read «slettet», and a rebuild from the stream showed
// a person whose key was damaged as erased). A value that does not open is never guessed at.
// Other errors (the key store unreachable) are returned, and ev may then be partly opened. An
// event stored in clear (before sealing) is left as it is.
func (e Events) Open(ctx context.Context, ev *nirv1.Event) error {
	switch {
	case len(ev.GetPersonRegistered().GetSealedIdentity()) > 0:
		p := ev.GetPersonRegistered()
		id, erased, err := e.open(ctx, ev, p.GetSealedIdentity())
		if err != nil {
			return err
		}
		p.SealedIdentity = nil
		if id == nil {
			// The age on the permit date, kept in clear when the birth date was sealed,
			// stays: the law and the schemes follow it for an erased person
			// (rules.Person.KeptAge; DOMAIN.md Product decisions 15: an erasure changes no
			// statistic), and for one whose key is damaged. Dropped here, a rebuild gave
			// every erased person no age.
			unopened(ev, erased)
			return nil
		}
		p.AgeAtPermitDate = nil // the birth date it was computed from is back
		p.Fodselsnummer, p.DNummer, p.DufNummer, p.BirthDate = id.GetFodselsnummer(), id.GetDNummer(), id.GetDufNummer(), id.GetBirthDate()
	case len(ev.GetIdentifierAdded().GetSealedNationalId()) > 0:
		a := ev.GetIdentifierAdded()
		id, erased, err := e.open(ctx, ev, a.GetSealedNationalId())
		if err != nil {
			return err
		}
		if id == nil {
			unopened(ev, erased)
			return nil
		}
		a.SealedNationalId, a.NationalId = nil, id.GetNationalId()
	case ev.GetPersonsMerged() != nil:
		for _, c := range ev.GetPersonsMerged().GetAbsorbedEvents() {
			if err := e.Open(ctx, c); err != nil {
				return err
			}
		}
	}
	return nil
}

// unopened reads ev's identifying fields, which its key did not open, as «slettet» when an
// erasure destroyed the key, and as unreadable otherwise.
func unopened(ev *nirv1.Event, erased bool) {
	if erased {
		rules.RedactIdentity(ev)
	} else {
		rules.UnreadableIdentity(ev)
	}
}

// Unreadable reads the fields of ev that are still sealed, and of every event a merge copied
// into it, as gone, as Open reads those of a key an erasure destroyed: the registration's
// fødselsnummer and the added id as rules.ErasedText, with no birth date. Fields opened
// already are left as they are. It is for the append path, whose one use of a history with a
// damaged data key is an erasure (judged on it, or stored already and naming the key), after
// which the person is erased: ev keeps its data_key_id. The read models read such fields as
// rules.UnreadableText (Open), until an erasure is folded.
func Unreadable(ev *nirv1.Event) {
	switch {
	case len(ev.GetPersonRegistered().GetSealedIdentity()) > 0:
		rules.RedactIdentity(ev) // the age on the permit date stays, as Open leaves it
	case len(ev.GetIdentifierAdded().GetSealedNationalId()) > 0:
		rules.RedactIdentity(ev)
	case ev.GetPersonsMerged() != nil:
		for _, c := range ev.GetPersonsMerged().GetAbsorbedEvents() {
			Unreadable(c)
		}
	}
}

// open returns the identity sealed in ev, or nil when it cannot be read, with erased true
// when that is because an erasure destroyed its key (the one case read as «slettet»), false
// when it is unreadable otherwise. The event keeps its data_key_id (a merge copies it, an
// erasure collects it).
func (e Events) open(ctx context.Context, ev *nirv1.Event, sealed []byte) (id *nirv1.SealedIdentity, erased bool, err error) {
	personKey := ev.GetPersonKey()
	if ev.GetDataKeyId() == "" {
		return nil, false, nil // sealed, but no key named: nothing opens it
	}
	k, err := e.Keys.Key(ctx, ev.GetDataKeyId())
	switch {
	case errors.Is(err, ErrKeyDestroyed):
		return nil, true, nil
	case !e.Strict && (errors.Is(err, ErrKeyUnreadable) || errors.Is(err, ErrNoKey)):
		// A damaged or lost key entry must not stop the readers that must never stop (the
		// read models): its fields read as unreadable, and the key store says so in its
		// log. Not as erased: the person was not.
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("sealing: data key of an event of person %s: %w", personKey, err)
	}
	plain, err := k.Open(personKey, sealed)
	if err != nil {
		return nil, false, nil
	}
	id = &nirv1.SealedIdentity{}
	if proto.Unmarshal(plain, id) != nil {
		return nil, false, nil
	}
	return id, false, nil
}

// Destroy destroys a data key: everything sealed with it reads as «slettet» from then on,
// wherever it is stored.
func (e Events) Destroy(ctx context.Context, id string) error {
	return e.Keys.Destroy(ctx, id)
}

// OnDestroyed has destroyed called with the id of every data key destroyed from now on, by
// this process or another, and blind once that can no longer be told, when e's key store can
// tell (eventstore.KeyStore does, by its watch of the key bucket: KeyStore.OnDestroyed), and
// reports whether it can.
func (e Events) OnDestroyed(destroyed func(id string), blind func()) bool {
	n, ok := e.Keys.(interface {
		OnDestroyed(func(id string), func())
	})
	if ok {
		n.OnDestroyed(destroyed, blind)
	}
	return ok
}

// OpenTimeout bounds how long Opener waits for a data key the key store must fetch.
const OpenTimeout = 10 * time.Second

// Opener returns Open for readers without a context of their own (projections.Options.Open):
// an event without sealed fields costs a type switch; a sealed one is opened, waiting at most
// OpenTimeout for its key.
func (e Events) Opener() func(*nirv1.Event) error {
	return func(ev *nirv1.Event) error {
		if !IsSealed(ev) {
			return nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), OpenTimeout)
		defer cancel()
		return e.Open(ctx, ev)
	}
}

// IsSealed reports whether ev, or an event a merge copied into it, holds a sealed field:
// a cheap test that spares readers the key store for the other events.
func IsSealed(ev *nirv1.Event) bool {
	switch {
	case len(ev.GetPersonRegistered().GetSealedIdentity()) > 0, len(ev.GetIdentifierAdded().GetSealedNationalId()) > 0:
		return true
	case ev.GetPersonsMerged() != nil:
		for _, c := range ev.GetPersonsMerged().GetAbsorbedEvents() {
			if IsSealed(c) {
				return true
			}
		}
	}
	return false
}
