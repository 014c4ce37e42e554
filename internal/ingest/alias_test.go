package ingest_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/introreg/nir/internal/access"
	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/ingest"
	"github.com/introreg/nir/internal/personkey"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// dnrPerson is person i registered by D-nummer only (DOMAIN.md Product decisions 15: a
// refugee reaches the kommune with a D-nummer and gets a fødselsnummer later).
func dnrPerson(i int) (dnr, fnr string, reg *nirv1.Registration) {
	birth := rules.Date{Y: 1991, M: time.Month(1 + i%12), D: 1 + i%28}
	dnr, fnr = rules.SyntheticDNummer(birth, i), rules.SyntheticFodselsnummer(birth, i)
	_, reg = person(i, false)
	pr := reg.GetEvent().GetPersonRegistered()
	pr.Fodselsnummer, pr.DNummer = "", dnr
	pr.BirthDate = birth.Proto()
	return dnr, fnr, reg
}

func addID(person, id string, typ nirv1.IdentifierType) *nirv1.Registration {
	return &nirv1.Registration{Person: &nirv1.PersonRef{NationalId: person}, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301",
		Payload: &nirv1.Event_IdentifierAdded{IdentifierAdded: &nirv1.IdentifierAdded{Type: typ, NationalId: id, Date: d(2024, 5, 2), Source: "folkeregisteret"}}}}
}

const fnrType = nirv1.IdentifierType_IDENTIFIER_TYPE_FODSELSNUMMER

// TestService_IdentifierAdded: an id added to a person finds the person, appends by it go to
// the person, and it cannot be registered again as another person (DOMAIN.md Product
// decisions 15).
func TestService_IdentifierAdded(t *testing.T) {
	ctx := context.Background()
	svc, store := newService(t)
	dnr, fnr, reg := dnrPerson(1)
	pos, err := svc.Append(ctx, oslo, []*nirv1.Registration{reg})
	if err != nil {
		t.Fatal(err)
	}
	owner := pos[0].PersonKey
	// Before the id is added it names nobody.
	if _, _, err := svc.History(ctx, &nirv1.PersonRef{NationalId: fnr}); !errors.Is(err, ingest.ErrNotFound) {
		t.Fatalf("history by a fødselsnummer not yet added: %v, want ErrNotFound", err)
	}
	added, err := svc.Append(ctx, oslo, []*nirv1.Registration{addID(dnr, fnr, fnrType)})
	if err != nil {
		t.Fatal(err)
	}
	if added[0].PersonKey != owner {
		t.Fatalf("IdentifierAdded stored for %s, want the person %s", added[0].PersonKey, owner)
	}
	// One extra message: the claim, on the subject of the id's own key.
	last, _ := store.LastSeq(ctx)
	if last != added[0].Sequence+1 {
		t.Fatalf("stream at %d after the IdentifierAdded at %d: want exactly one claim message", last, added[0].Sequence)
	}
	keys, _ := personkey.New([]byte("test secret for the ingest tests"))
	claim, _, err := store.Read(ctx, keys.Key(fnr))
	if err != nil || len(claim) != 1 || claim[0].Event.GetIdentifierClaimed().GetPersonKey() != owner {
		t.Fatalf("claim subject = %v, %v", claim, err)
	}
	// An append by the new id goes to the person; the history by either id is the person's.
	p2, err := svc.Append(ctx, oslo, []*nirv1.Registration{offer(fnr)})
	if err != nil || p2[0].PersonKey != owner {
		t.Fatalf("offer by the added id: %v, %v; want person %s", p2, err, owner)
	}
	for _, id := range []string{dnr, fnr} {
		key, hist, err := svc.History(ctx, &nirv1.PersonRef{NationalId: id})
		if err != nil || key != owner || len(hist) != 3 {
			t.Fatalf("history: key %s, %d events, %v; want the person with 3 events", key, len(hist), err)
		}
	}
	// A registration by the fødselsnummer from a case system that did not know the link is
	// the same person registered twice: the rule refuses it, and no second person appears.
	_, reg2 := person(1, false)
	reg2.GetEvent().GetPersonRegistered().Fodselsnummer = fnr
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{reg2}); !errors.Is(err, ingest.ErrRefused) || !strings.Contains(err.Error(), "NIR-R002") {
		t.Fatalf("registering the added id as a new person: %v, want NIR-R002", err)
	}
	// Another kommune does not learn that the person exists.
	bergen := access.For(auth.Principal{Name: "bergen", Role: auth.RoleKommune, Kommune: "4601"})
	reg3 := reg2
	reg3.GetEvent().Id = ulid.Make().String()
	reg3.GetEvent().Kommune = "4601"
	reg3.GetEvent().GetPersonRegistered().SettlementKommune = "4601"
	if _, err := svc.Append(ctx, bergen, []*nirv1.Registration{reg3}); !errors.Is(err, access.ErrNotFound) {
		t.Fatalf("another kommune registering the added id: %v, want not found", err)
	}
	// Adding the same id again is refused by the rule; the id held by another person is
	// AlreadyExists naming the field, never the number.
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{addID(dnr, fnr, fnrType)}); !errors.Is(err, ingest.ErrRefused) || !strings.Contains(err.Error(), "NIR-R050") {
		t.Fatalf("adding a held id again: %v, want NIR-R050", err)
	}
	dnr2, _, regB := dnrPerson(2)
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{regB}); err != nil {
		t.Fatal(err)
	}
	_, err = svc.Append(ctx, oslo, []*nirv1.Registration{addID(dnr2, fnr, fnrType)})
	var ie *ingest.IDError
	if !errors.As(err, &ie) || !errors.Is(err, ingest.ErrIDTaken) || ie.Field != "registrations[0].event.identifier_added.national_id" {
		t.Fatalf("adding another person's id: %v, want ErrIDTaken naming the field", err)
	}
	if strings.Contains(err.Error(), fnr) {
		t.Fatal("the error holds the national id")
	}
	// A registration naming a held id among its own is refused likewise.
	_, fnrC, regC := dnrPerson(3)
	regC.GetEvent().GetPersonRegistered().Fodselsnummer = fnrC
	regC.GetEvent().GetPersonRegistered().DNummer = dnr
	_, err = svc.Append(ctx, oslo, []*nirv1.Registration{regC})
	if !errors.As(err, &ie) || !errors.Is(err, ingest.ErrIDTaken) || ie.Field != "registrations[0].event.person_registered.d_nummer" {
		t.Fatalf("registering with another person's D-nummer: %v, want ErrIDTaken naming the field", err)
	}
	if _, _, err := svc.History(ctx, &nirv1.PersonRef{NationalId: fnrC}); !errors.Is(err, ingest.ErrNotFound) {
		t.Fatalf("the refused registration was stored: %v", err)
	}
	// An added id cannot be retracted (its claim is permanent).
	retract := &nirv1.Registration{Person: &nirv1.PersonRef{NationalId: fnr}, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301",
		Payload: &nirv1.Event_EventRetracted{EventRetracted: &nirv1.EventRetracted{EventId: added[0].EventId}}}}
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{retract}); !errors.Is(err, ingest.ErrRefused) || !strings.Contains(err.Error(), "NIR-R051") {
		t.Fatalf("retracting an added id: %v, want NIR-R051", err)
	}
	// No client writes a claim.
	forged := &nirv1.Registration{Person: &nirv1.PersonRef{NationalId: dnr2}, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301",
		Payload: &nirv1.Event_IdentifierClaimed{IdentifierClaimed: &nirv1.IdentifierClaimed{PersonKey: owner, Type: fnrType, EventId: added[0].EventId}}}}
	var de *access.DeniedError
	if _, err := svc.Append(ctx, access.For(auth.Principal{Name: "regelmotor", Role: auth.RoleSystem}), []*nirv1.Registration{forged}); !errors.As(err, &de) {
		t.Fatalf("a forged claim: %v, want denied", err)
	}
}

// TestService_IdentifierClaimedOnce: the same id added to two persons at once, by two
// services on one stream (as two nird processes would), goes to exactly one of them.
func TestService_IdentifierClaimedOnce(t *testing.T) {
	ctx := context.Background()
	svcA, store := newService(t)
	keys, err := personkey.New([]byte("test secret for the ingest tests"))
	if err != nil {
		t.Fatal(err)
	}
	svcB := ingest.New(ingest.Config{Store: store, Keys: keys, Now: func() time.Time { return fixedNow }})
	for round := range 10 {
		dA, fnr, regA := dnrPerson(100 + 2*round)
		dB, _, regB := dnrPerson(101 + 2*round)
		if _, err := svcA.Append(ctx, oslo, []*nirv1.Registration{regA, regB}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, s := range []struct {
			svc *ingest.Service
			id  string
		}{{svcA, dA}, {svcB, dB}} {
			wg.Go(func() { _, errs[i] = s.svc.Append(ctx, oslo, []*nirv1.Registration{addID(s.id, fnr, fnrType)}) })
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, ingest.ErrIDTaken):
				t.Fatalf("round %d: %v, want ErrIDTaken for the loser", round, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d services added the id, want exactly one (%v)", round, won, errs)
		}
	}
}
