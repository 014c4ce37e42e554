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

// registeredTwice registers person i with Oslo twice: by D-nummer, and again by fødselsnummer
// (as a case system that did not know the D-nummer would), the pair an operator merges. It
// returns the second registration and both positions, the D-nummer's first.
func registeredTwice(t *testing.T, svc *ingest.Service, i int) (dnr, fnr string, regA *nirv1.Registration, pos []*nirv1.Position) {
	t.Helper()
	dnr, fnr, regS := dnrPerson(i)
	_, regA = person(i, false)
	regA.GetEvent().GetPersonRegistered().Fodselsnummer = fnr
	regA.GetEvent().GetPersonRegistered().BirthDate = regS.GetEvent().GetPersonRegistered().GetBirthDate()
	pos, err := svc.Append(context.Background(), oslo, []*nirv1.Registration{regS, regA})
	if err != nil {
		t.Fatal(err)
	}
	return dnr, fnr, regA, pos
}

// sameBirthOther is another person, registered by a D-nummer of sequence seq, born on the day
// person i of dnrPerson was: one the id of person i may be added to without NIR-R059.
func sameBirthOther(i, seq int) (dnr, fnr string, reg *nirv1.Registration) {
	_, fnr, reg = dnrPerson(i)
	pr := reg.GetEvent().GetPersonRegistered()
	dnr = rules.SyntheticDNummer(rules.Date{Y: 1991, M: time.Month(1 + i%12), D: 1 + i%28}, seq)
	pr.DNummer = dnr
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
	if _, _, err := svc.History(ctx, historyReader, &nirv1.PersonRef{NationalId: fnr}); !errors.Is(err, ingest.ErrNotFound) {
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
		key, hist, err := svc.History(ctx, historyReader, &nirv1.PersonRef{NationalId: id})
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
	// Another person of the same birth date (an id of another birth date is NIR-R059).
	dnr2, _, regB := sameBirthOther(1, 41)
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
	if _, _, err := svc.History(ctx, historyReader, &nirv1.PersonRef{NationalId: fnrC}); !errors.Is(err, ingest.ErrNotFound) {
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
	svcB := serviceOn(t, store)
	for round := range 10 {
		dA, fnr, regA := dnrPerson(100 + 2*round)
		dB, _, regB := sameBirthOther(100+2*round, 53+2*round)
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

func mergeReg(survivor, absorbedKey string) *nirv1.Registration {
	return &nirv1.Registration{Person: &nirv1.PersonRef{NationalId: survivor}, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301",
		Payload: &nirv1.Event_PersonsMerged{PersonsMerged: &nirv1.PersonsMerged{AbsorbedPersonKey: absorbedKey, Reason: "samme person"}}}}
}

// TestService_Merge: two persons found to be one are merged by the kommune that has both or by
// an operator; the merged person's ids and appends lead to the survivor; a contradiction is
// refused; the merge is undone by retracting it (DOMAIN.md Product decisions 15).
func TestService_Merge(t *testing.T) {
	ctx := context.Background()
	svc, store := newService(t)
	dnr, fnr, _, pos := registeredTwice(t, svc, 21)
	survivor, absorbed := pos[0].PersonKey, pos[1].PersonKey
	offerA := offer(fnr)
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{offerA}); err != nil {
		t.Fatal(err)
	}

	bergen := access.For(auth.Principal{Name: "bergen", Role: auth.RoleKommune, Kommune: "4601"})
	m := mergeReg(dnr, absorbed)
	m.GetEvent().Kommune = "4601"
	m.Person = &nirv1.PersonRef{PersonKey: survivor}
	if _, err := svc.Append(ctx, bergen, []*nirv1.Registration{m}); !errors.Is(err, access.ErrNotFound) {
		t.Fatalf("another kommune merging: %v, want not found", err)
	}
	operator := access.For(auth.Principal{Name: "drift", Role: auth.RoleOperator})
	var de *access.DeniedError
	if _, err := svc.Append(ctx, operator, []*nirv1.Registration{offer(dnr)}); !errors.As(err, &de) {
		t.Fatalf("an operator registering an offer: %v, want denied", err)
	}
	// A contradiction the rules see: another birth date.
	dnrC, _, regC := dnrPerson(22)
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{regC}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{mergeReg(dnrC, absorbed)}); !errors.Is(err, ingest.ErrRefused) || !strings.Contains(err.Error(), "NIR-R052") || !strings.Contains(err.Error(), "birth date") {
		t.Fatalf("merging persons of different birth dates: %v, want NIR-R052 naming the birth date", err)
	}

	mreg := mergeReg(dnr, absorbed)
	merged, err := svc.Append(ctx, operator, []*nirv1.Registration{mreg})
	if err != nil || merged[0].PersonKey != survivor {
		t.Fatalf("merge: %v, %v", merged, err)
	}
	// A retried merge is the same event again (nird's copy of the absorbed events aside).
	if again, err := svc.Append(ctx, operator, []*nirv1.Registration{mreg}); err != nil || !again[0].Duplicate || again[0].Sequence != merged[0].Sequence {
		t.Fatalf("the merge retried: %v, %v; want the original position", again, err)
	}
	_, hist, err := svc.History(ctx, historyReader, &nirv1.PersonRef{PersonKey: survivor})
	if err != nil {
		t.Fatal(err)
	}
	copied := hist[len(hist)-1].Event.GetPersonsMerged().GetAbsorbedEvents()
	if len(copied) != 2 || copied[1].GetId() != offerA.GetEvent().GetId() {
		t.Fatalf("the merge copied %d events, want the absorbed registration and offer", len(copied))
	}
	// The absorbed person's id leads to the survivor, for reads and appends.
	key, _, err := svc.History(ctx, historyReader, &nirv1.PersonRef{NationalId: fnr})
	if err != nil || key != survivor {
		t.Fatalf("history by the absorbed person's id: %s, %v; want the survivor", key, err)
	}
	if p, err := svc.Append(ctx, oslo, []*nirv1.Registration{offer(fnr)}); err != nil || p[0].PersonKey != survivor {
		t.Fatalf("append by the absorbed person's id: %v, %v", p, err)
	}
	// A merged person is merged no more.
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{mergeReg(dnrC, absorbed)}); !errors.Is(err, ingest.ErrRefused) || !strings.Contains(err.Error(), "NIR-R053") {
		t.Fatalf("merging a merged person again: %v, want NIR-R053", err)
	}
	// Un-merge: the retraction of the merge retracts the absorbed person's closing with it.
	unmerge := &nirv1.Registration{Person: &nirv1.PersonRef{PersonKey: survivor}, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301",
		Payload: &nirv1.Event_EventRetracted{EventRetracted: &nirv1.EventRetracted{EventId: merged[0].EventId, Reason: "ikke samme person"}}}}
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{unmerge}); err != nil {
		t.Fatal(err)
	}
	key, ahist, err := svc.History(ctx, historyReader, &nirv1.PersonRef{NationalId: fnr})
	if err != nil || key != absorbed {
		t.Fatalf("history by the absorbed id after the un-merge: %s, %v; want the absorbed person again", key, err)
	}
	if last := ahist[len(ahist)-1].Event; last.GetEventRetracted() == nil {
		t.Fatalf("the absorbed person's last event is %v, want the retraction of its closing", last)
	}
	restore := &nirv1.Registration{Person: &nirv1.PersonRef{PersonKey: survivor}, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301",
		Payload: &nirv1.Event_EventRetracted{EventRetracted: &nirv1.EventRetracted{EventId: unmerge.GetEvent().GetId()}}}}
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{restore}); !errors.Is(err, ingest.ErrRefused) || !strings.Contains(err.Error(), "NIR-R054") {
		t.Fatalf("restoring a merge by retracting its retraction: %v, want NIR-R054", err)
	}
	// Merged again, with a new merge.
	if p, err := svc.Append(ctx, operator, []*nirv1.Registration{mergeReg(dnr, absorbed)}); err != nil || p[0].Duplicate {
		t.Fatalf("merging again after the un-merge: %v, %v", p, err)
	}
	if key, _, err := svc.History(ctx, historyReader, &nirv1.PersonRef{NationalId: fnr}); err != nil || key != survivor {
		t.Fatalf("history by the absorbed id after merging again: %s, %v", key, err)
	}
	_ = store
}

// TestService_MergeWithItsAbsorbedInOneRequest: a merge and a registration that reaches the
// absorbed person through an added id cannot share a request (each person is checked once in
// an atomic batch).
func TestService_MergeWithItsAbsorbedInOneRequest(t *testing.T) {
	ctx := context.Background()
	svc, _ := newService(t)
	dnr, fnr, regS := dnrPerson(41)
	dnrA, _, regA := dnrPerson(42)
	regA.GetEvent().GetPersonRegistered().BirthDate = regS.GetEvent().GetPersonRegistered().GetBirthDate()
	pos, err := svc.Append(ctx, oslo, []*nirv1.Registration{regS, regA, addID(dnrA, fnr, fnrType)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.Append(ctx, oslo, []*nirv1.Registration{mergeReg(dnr, pos[1].PersonKey), offer(fnr)})
	var ie *ingest.InvalidError
	if !errors.As(err, &ie) || !strings.Contains(ie.Reason, "merge") {
		t.Fatalf("a merge with a registration for the absorbed person: %v, want invalid", err)
	}
}

// historyReader reads histories in these tests: the system principal, which reaches every
// person.
var historyReader = access.System(&nirv1.Actor{Subject: "test", Role: nirv1.ActorRole_ACTOR_ROLE_SYSTEM})
