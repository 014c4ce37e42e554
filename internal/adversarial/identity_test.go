package adversarial

// One person, many numbers (issue 12, DOMAIN.md Product decisions 15): a national id is
// claimed on the subject of its own key, so a hostile case system tries to use the claims to
// reach another kommune's person, or to take an id away from it.

import (
	"context"
	"strings"
	"testing"

	"connectrpc.com/connect"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

func kbAddID(fnr string) *nirv1.Event {
	return &nirv1.Event{Payload: &nirv1.Event_IdentifierAdded{IdentifierAdded: &nirv1.IdentifierAdded{
		Type: nirv1.IdentifierType_IDENTIFIER_TYPE_FODSELSNUMMER, NationalId: fnr, Date: kbDate(2024, 5, 2), Source: "folkeregisteret"}}}
}

func TestIdentityAttacks(t *testing.T) {
	w := kbStart(t)
	ctx := context.Background()
	for _, tr := range kbTransports {
		// A case system writes the claim itself: an id of its choosing would lead to the
		// Oslo person (and the next append by that id would land there), or a claim on the
		// person's own subject would turn the person into an alias.
		t.Run("ForgedClaim/"+tr, func(t *testing.T) {
			key, _, _ := w.osloPerson(t)
			for _, token := range []string{kbBergen, kbOslo, kbSystem} {
				before := w.lastSeq(t)
				forged := &nirv1.Event{Payload: &nirv1.Event_IdentifierClaimed{IdentifierClaimed: &nirv1.IdentifierClaimed{
					PersonKey: key, Type: nirv1.IdentifierType_IDENTIFIER_TYPE_FODSELSNUMMER, EventId: "01HGW2N7EHJ2K3M4N5P6Q7R8S9"}}}
				kommune := strings.TrimPrefix(token, "kommune:")
				if token == kbSystem {
					kommune = "0301"
				}
				reg := kbOn(key, kommune, forged)
				reg.Person = &nirv1.PersonRef{NationalId: kbPerson()}
				res := w.appendVia(t, tr, token, &nirv1.AppendRequest{Registrations: []*nirv1.Registration{reg}})
				w.refused(t, res, before, connect.CodePermissionDenied)
				if !strings.Contains(res.msg, "identifier_claimed") {
					t.Errorf("%s: the refusal %q does not name identifier_claimed", token, res.msg)
				}
			}
		})

		// Bergen adds a fødselsnummer of its choosing to Oslo's person, to reach the person
		// through it later.
		t.Run("AddIDToAnotherKommunesPerson/"+tr, func(t *testing.T) {
			key, _, _ := w.osloPerson(t)
			before := w.lastSeq(t)
			res := w.appendVia(t, tr, kbBergen, &nirv1.AppendRequest{Registrations: []*nirv1.Registration{kbOn(key, "4601", kbAddID(kbPerson()))}})
			w.refused(t, res, before, connect.CodeNotFound)
		})

		// Bergen adds the Oslo person's fødselsnummer to a Bergen person, so that Oslo's
		// appends by it would go to Bergen's person: the id is taken, and Oslo's person keeps
		// it.
		t.Run("TakeAnotherPersonsID/"+tr, func(t *testing.T) {
			osloFnr := kbPerson()
			osloKey := w.mustAppend(t, kbOslo, kbRegister(osloFnr, "0301", "0301"))[0].GetPersonKey()
			bergenKey := w.mustAppend(t, kbBergen, kbRegister(kbPerson(), "4601", "4601"))[0].GetPersonKey()
			before := w.lastSeq(t)
			res := w.appendVia(t, tr, kbBergen, &nirv1.AppendRequest{Registrations: []*nirv1.Registration{kbOn(bergenKey, "4601", kbAddID(osloFnr))}})
			w.refused(t, res, before, connect.CodeAlreadyExists)
			if strings.Contains(res.msg, osloFnr) {
				t.Errorf("the refusal holds the national id")
			}
			off := kbOn("", "0301", kbOffer(kbDate(2024, 3, 1)))
			off.Person = &nirv1.PersonRef{NationalId: osloFnr}
			if pos := w.mustAppend(t, kbOslo, off); pos[0].GetPersonKey() != osloKey {
				t.Errorf("Oslo's append by its person's id went to %s, want %s", pos[0].GetPersonKey(), osloKey)
			}
		})
	}

	// Bergen looks up by an id Oslo added to its person: the lookup follows the claim, and
	// the person is as hidden as by its first id.
	t.Run("LookupByAddedID", func(t *testing.T) {
		key, _, _ := w.osloPerson(t)
		added := kbPerson()
		w.mustAppend(t, kbOslo, kbOn(key, "0301", kbAddID(added)))
		w.caughtUp(t)
		res, err := w.query(kbOslo).GetPerson(ctx, connect.NewRequest(&nirv1.GetPersonRequest{Person: &nirv1.PersonRef{NationalId: added}}))
		if err != nil || res.Msg.GetPerson().GetPersonKey() != key {
			t.Fatalf("Oslo's lookup by the added id: %v, %v", res, err)
		}
		if _, err := w.query(kbBergen).GetPerson(ctx, connect.NewRequest(&nirv1.GetPersonRequest{Person: &nirv1.PersonRef{NationalId: added}})); connect.CodeOf(err) != connect.CodeNotFound {
			t.Errorf("Bergen's lookup by the added id: %v, want NotFound", err)
		}
		if _, err := w.reg(kbBergen).History(ctx, connect.NewRequest(&nirv1.HistoryRequest{Person: &nirv1.PersonRef{NationalId: added}})); connect.CodeOf(err) != connect.CodeNotFound {
			t.Errorf("Bergen's history by the added id: %v, want NotFound", err)
		}
	})
}

func kbMerge(absorbed string) *nirv1.Event {
	return &nirv1.Event{Payload: &nirv1.Event_PersonsMerged{PersonsMerged: &nirv1.PersonsMerged{AbsorbedPersonKey: absorbed, Reason: "samme person"}}}
}

// TestMergeAttacks: a merge moves one person's history into another's, so a hostile case
// system tries it to take another kommune's person, and an operator token tries to write
// anything but a merge.
func TestMergeAttacks(t *testing.T) {
	w := kbStart(t)
	for _, tr := range kbTransports {
		// Bergen absorbs Oslo's person into a Bergen person (the history would be Bergen's),
		// or merges its own person into Oslo's (it would write on Oslo's person).
		for _, intoOslo := range []bool{false, true} {
			name := "AbsorbAnotherKommunesPerson/"
			if intoOslo {
				name = "MergeIntoAnotherKommunesPerson/"
			}
			t.Run(name+tr, func(t *testing.T) {
				osloKey, _, _ := w.osloPerson(t)
				bergenKey := w.mustAppend(t, kbBergen, kbRegister(kbPerson(), "4601", "4601"))[0].GetPersonKey()
				survivor, absorbed := bergenKey, osloKey
				if intoOslo {
					survivor, absorbed = osloKey, bergenKey
				}
				before := w.lastSeq(t)
				res := w.appendVia(t, tr, kbBergen, &nirv1.AppendRequest{Registrations: []*nirv1.Registration{kbOn(survivor, "4601", kbMerge(absorbed))}})
				w.refused(t, res, before, connect.CodeNotFound)
			})
		}
		// A client writes the closing itself, to hide a person from every list.
		t.Run("ForgedClosing/"+tr, func(t *testing.T) {
			osloKey, _, _ := w.osloPerson(t)
			other, _, _ := w.osloPerson(t)
			before := w.lastSeq(t)
			forged := &nirv1.Event{Payload: &nirv1.Event_PersonMergedInto{PersonMergedInto: &nirv1.PersonMergedInto{SurvivingPersonKey: other, MergeEventId: "01HGW2N7EHJ2K3M4N5P6Q7R8S9"}}}
			res := w.appendVia(t, tr, kbOslo, &nirv1.AppendRequest{Registrations: []*nirv1.Registration{kbOn(osloKey, "0301", forged)}})
			w.refused(t, res, before, connect.CodePermissionDenied)
		})
	}
	// An operator's token records merges only: not an offer, not the retraction of a
	// kommune's event.
	t.Run("OperatorWritesOtherEvents", func(t *testing.T) {
		key, _, offer := w.osloPerson(t)
		for _, ev := range []*nirv1.Event{kbOffer(kbDate(2024, 3, 1)), kbRetract(offer), kbMove("4601", kbDate(2024, 6, 1))} {
			before := w.lastSeq(t)
			res := w.appendVia(t, "connect", kbOperator, &nirv1.AppendRequest{Registrations: []*nirv1.Registration{kbOn(key, "0301", ev)}})
			w.refused(t, res, before, connect.CodePermissionDenied)
		}
	})
}
