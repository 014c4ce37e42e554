package ingest_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/access"
	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/ingest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// The review of the identity lifecycle on 2026-12-06 found three ways merges, retractions and
// un-merges did not compose (README, "Two persons found to be one: merge and un-merge"). Each
// test below failed before its fix. The states are folded from the stream with rules.Fold, as
// a rebuild and an as-of replay fold them.

// streamFold is the person's state folded from its stored stream alone.
func streamFold(t *testing.T, store *eventstore.Store, key string) *rules.State {
	t.Helper()
	hist, _, err := store.Read(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	evs := make([]*nirv1.Event, len(hist))
	for i, h := range hist {
		evs[i] = h.Event
	}
	return rules.Fold(key, evs)
}

// retractOn retracts the event id for the person with key personKey, as Oslo.
func retractOn(personKey, id string) *nirv1.Registration {
	return &nirv1.Registration{Person: &nirv1.PersonRef{PersonKey: personKey}, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301",
		Payload: &nirv1.Event_EventRetracted{EventRetracted: &nirv1.EventRetracted{EventId: id, Reason: "ikke samme person"}}}}
}

// mergeChain merges A into B (m1), then B into C, named by its D-nummer (m2), and returns the
// two merges' event ids.
func mergeChain(t *testing.T, svc *ingest.Service, keyA, keyB, dnrC string) (m1, m2 string) {
	t.Helper()
	ctx := context.Background()
	r := mergeReg("", keyA)
	r.Person = &nirv1.PersonRef{PersonKey: keyB}
	p1, err := svc.Append(ctx, oslo, []*nirv1.Registration{r})
	if err != nil {
		t.Fatalf("merge A into B: %v", err)
	}
	p2, err := svc.Append(ctx, oslo, []*nirv1.Registration{mergeReg(dnrC, keyB)})
	if err != nil {
		t.Fatalf("merge B into C: %v", err)
	}
	return p1[0].EventId, p2[0].EventId
}

// offersOf counts the offers with event id in force on the person with key.
func offersOf(t *testing.T, store *eventstore.Store, key, id string) int {
	t.Helper()
	n := 0
	for _, o := range streamFold(t, store, key).Offers {
		if o.EventID == id {
			n++
		}
	}
	return n
}

// threePersons registers C and B (the same person twice, registeredTwice) and A, a third
// registration of that person by another D-nummer with an offer. It returns the keys and the
// offer's id.
func threePersons(t *testing.T, svc *ingest.Service, i int) (dnrC, keyC, keyB, keyA, offerA string) {
	t.Helper()
	dnrC, keyC, keyB, _, pa := personsABC(t, svc, i, offer)
	return dnrC, keyC, keyB, pa[0].PersonKey, pa[1].EventId
}

// personsABC registers C and B, one human under two numbers (registeredTwice), and A, a
// D-nummer of a birth date of its own, with with(dnrA)'s registrations of A in the same
// request, and returns C's D-nummer, the keys of C and B, A's D-nummer and A's positions.
func personsABC(t *testing.T, svc *ingest.Service, i int, with func(dnrA string) *nirv1.Registration) (dnrC, keyC, keyB, dnrA string, posA []*nirv1.Position) {
	t.Helper()
	dnrC, _, _, pos := registeredTwice(t, svc, i)
	keyC, keyB = pos[0].PersonKey, pos[1].PersonKey
	birth := rules.Date{Y: 1991, M: time.Month(1 + i%12), D: 1 + i%28}
	dnrA = rules.SyntheticDNummer(birth, i+7)
	_, _, regA := dnrPerson(i)
	regA.GetEvent().GetPersonRegistered().DNummer = dnrA
	regs := []*nirv1.Registration{regA}
	if with != nil {
		regs = append(regs, with(dnrA))
	}
	pa, err := svc.Append(context.Background(), oslo, regs)
	if err != nil {
		t.Fatal(err)
	}
	return dnrC, keyC, keyB, dnrA, pa
}

// TestService_UnmergeNestedMergeRefused: a merge copied into a later merge is un-merged only
// after that later merge, on the person that recorded it (DOMAIN.md Product decisions 15,
// NIR-R057).
//
// Found on 2026-12-06 (review of the identity lifecycle): before, after A merged into B (m1)
// and B into C (m2), m1 could be retracted on C: A was reopened while B's own subject kept m1
// in force, and retracting m2 then gave A's events to both A and B; now retracting m1 on C is
// refused with NIR-R057, before and after m2 is retracted, and m1 is retracted on B once B is
// its own again: A's offer is in force on exactly one person.
func TestService_UnmergeNestedMergeRefused(t *testing.T) {
	ctx := context.Background()
	svc, store := newService(t)
	dnrC, keyC, keyB, keyA, offerA := threePersons(t, svc, 61)
	m1, m2 := mergeChain(t, svc, keyA, keyB, dnrC)
	refusedNested := func(step string) {
		t.Helper()
		_, err := svc.Append(ctx, oslo, []*nirv1.Registration{retractOn(keyC, m1)})
		if !errors.Is(err, ingest.ErrRefused) || !strings.Contains(err.Error(), "NIR-R057") || !strings.Contains(err.Error(), m2) {
			t.Fatalf("%s: retracting A→B on C: %v, want NIR-R057 naming the merge B→C", step, err)
		}
		if st := streamFold(t, store, keyA); st.Successor() != keyB {
			t.Fatalf("%s: A leads to %q after the refusal, want B", step, st.Successor())
		}
	}
	refusedNested("B merged into C")
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{retractOn(keyC, m2)}); err != nil {
		t.Fatalf("un-merge B from C: %v", err)
	}
	// The copy on C is no merge in force any more: retracted there, it would reopen A while B
	// holds its events.
	refusedNested("B un-merged from C")
	if n := offersOf(t, store, keyB, offerA); n != 1 {
		t.Fatalf("B holds A's offer %d times after the un-merge of B, want 1", n)
	}
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{retractOn(keyB, m1)}); err != nil {
		t.Fatalf("un-merge A from B: %v", err)
	}
	holders := 0
	for name, k := range map[string]string{"A": keyA, "B": keyB, "C": keyC} {
		st := streamFold(t, store, k)
		if st.Successor() != "" {
			t.Errorf("%s leads to %q after both un-merges, want a person of its own", name, st.Successor())
		}
		holders += offersOf(t, store, k, offerA)
	}
	if holders != 1 || offersOf(t, store, keyA, offerA) != 1 {
		t.Errorf("A's offer is held %d times after both un-merges (%d on A), want once, on A", holders, offersOf(t, store, keyA, offerA))
	}
}

// TestService_MergeKeepsAbsorbedRetractions: what a merge copies is what was in force on the
// absorbed person, also of the persons merged into it before (DOMAIN.md Product decisions 15).
//
// Found on 2026-12-06 (review of the identity lifecycle): before, after X merged into A, Oslo
// retracted X's offer on A, and merging A into B copied A's merge of X whole but not the
// retraction: on B the retracted offer was in force again; now the merge copies the earlier
// merge without the events retracted on A, and the offer is in force on nobody.
func TestService_MergeKeepsAbsorbedRetractions(t *testing.T) {
	ctx := context.Background()
	svc, store := newService(t)
	dnrB, keyB, keyA, keyX, offerX := threePersons(t, svc, 65)
	mx := mergeReg("", keyX)
	mx.Person = &nirv1.PersonRef{PersonKey: keyA}
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{mx}); err != nil {
		t.Fatalf("merge X into A: %v", err)
	}
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{retractOn(keyA, offerX)}); err != nil {
		t.Fatalf("retract X's offer on A: %v", err)
	}
	if n := offersOf(t, store, keyA, offerX); n != 0 {
		t.Fatalf("A holds the retracted offer %d times before the second merge", n)
	}
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{mergeReg(dnrB, keyA)}); err != nil {
		t.Fatalf("merge A into B: %v", err)
	}
	if n := offersOf(t, store, keyB, offerX); n != 0 {
		t.Errorf("after merging A into B, B holds X's offer, retracted on A, %d time(s)", n)
	}
	// The person's own events are there, as before.
	st := streamFold(t, store, keyB)
	if !st.Registered || !slices.Contains(st.Absorbed, keyA) || !slices.Contains(st.Absorbed, keyX) {
		t.Errorf("B after the merge: registered %v, %d persons absorbed, want A and X", st.Registered, len(st.Absorbed))
	}
}

// TestService_UnmergeCarriesNoRetraction: a retraction made on the survivor while merged stays
// with the survivor (README "Two persons found to be one", Left). Bergen registered A with an
// offer in its period, A moved to Oslo; Oslo registered B, merged A into B, retracted Bergen's
// offer on B (B's residences say Oslo always had the person) and un-merged.
//
// Found on 2026-12-06 (review of the fixes of the identity lifecycle): a fix of the same day
// carried such retractions to A on the un-merge, written as Oslo's, and so retracted Bergen's
// offer on A, which Oslo could not do on A itself, and Bergen could not undo it. The fix was
// reverted; A's offer is in force on A after the un-merge.
func TestService_UnmergeCarriesNoRetraction(t *testing.T) {
	ctx := context.Background()
	svc, store := newService(t)
	bergen := access.For(auth.Principal{Name: "bergen", Role: auth.RoleKommune, Kommune: "4601"})
	dnr, fnr, regA := dnrPerson(90)
	pa := regA.GetEvent().GetPersonRegistered()
	regA.GetEvent().Kommune = "4601"
	pa.SettlementKommune = "4601"
	pa.SettlementDate = d(2024, 2, 1)
	of := offer(dnr)
	of.GetEvent().Kommune = "4601"
	of.GetEvent().GetOfferRegistered().Date = d(2024, 3, 1)
	mv := &nirv1.Registration{Person: &nirv1.PersonRef{NationalId: dnr}, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "4601",
		Payload: &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: "0301", Date: d(2024, 5, 1)}}}}
	posA, err := svc.Append(ctx, bergen, []*nirv1.Registration{regA, of, mv})
	if err != nil {
		t.Fatalf("bergen registers A: %v", err)
	}
	keyA, offerID := posA[0].PersonKey, posA[1].EventId
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{retractOn(keyA, offerID)}); err == nil {
		t.Fatalf("precondition: Oslo retracted Bergen's offer on A directly")
	}
	_, regB := person(90, false)
	regB.GetEvent().GetPersonRegistered().Fodselsnummer = fnr
	regB.GetEvent().GetPersonRegistered().BirthDate = pa.GetBirthDate()
	posB, err := svc.Append(ctx, oslo, []*nirv1.Registration{regB})
	if err != nil {
		t.Fatalf("oslo registers B: %v", err)
	}
	keyB := posB[0].PersonKey
	m := mergeReg(fnr, keyA)
	pm, err := svc.Append(ctx, oslo, []*nirv1.Registration{m})
	if err != nil {
		t.Fatalf("merge A into B: %v", err)
	}
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{retractOn(keyB, offerID)}); err != nil {
		t.Fatalf("retract Bergen's offer on B: %v", err)
	}
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{retractOn(keyB, pm[0].EventId)}); err != nil {
		t.Fatalf("un-merge: %v", err)
	}
	st := streamFold(t, store, keyA)
	if st.Successor() != "" {
		t.Fatalf("A still merged")
	}
	if st.Retracted[offerID] {
		t.Errorf("after the un-merge Bergen's offer on A is retracted, which Oslo could not do on A")
	}
	if n := offersOf(t, store, keyA, offerID); n != 1 {
		t.Errorf("after the un-merge Bergen's offer is in force on A %d time(s), want 1", n)
	}
}
