package rules

import (
	"strings"
	"testing"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestState_Merge: a merged person folds the absorbed person's effective events as its own
// from the merge on, holds its ids, and loses them again when the merge is retracted (DOMAIN.md
// Product decisions 15).
func TestState_Merge(t *testing.T) {
	t.Parallel()
	const k = "0301"
	dnr := SyntheticDNummer(MustDate(1990, 1, 1), 4)
	fnr := SyntheticFodselsnummer(MustDate(1990, 1, 1), 4)
	survivor := evPerson("s1", k, "1990-01-01", "2022-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28)
	survivor.GetPersonRegistered().DNummer = dnr
	absorbedReg := evPerson("a1", k, "1990-01-01", "2022-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28)
	absorbedReg.GetPersonRegistered().Fodselsnummer = fnr
	vedtak := evProgramme("a2", k, nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, "2022-03-01")
	offer := withPayload("a3", k, &nirv1.OfferRegistered{Programme: nirv1.Programme_PROGRAMME_INTRO, Date: dpb("2022-02-01")})
	merge := withPayload("m1", k, &nirv1.PersonsMerged{AbsorbedPersonKey: strings.Repeat("a", 64),
		AbsorbedEvents: []*nirv1.Event{absorbedReg, vedtak, offer}})

	st := Fold("pk", []*nirv1.Event{survivor})
	if len(st.Programmes) != 0 || Holds(HeldIDs(st), fnr) {
		t.Fatal("the survivor has the programme or the id before the merge")
	}
	st.Apply(2, merge)
	if len(st.Programmes) != 1 || st.Programmes[0].Start != md("2022-03-01") || len(st.Offers) != 1 {
		t.Fatalf("after the merge: %d programmes, %d offers; want the absorbed person's", len(st.Programmes), len(st.Offers))
	}
	if !Holds(HeldIDs(st), fnr) || !Holds(HeldIDs(st), dnr) || PreferredID(st) != fnr {
		t.Fatal("the merged person does not hold both ids, shown by the fødselsnummer")
	}
	if st.Person.EventID != "s1" || len(st.Absorbed) != 1 {
		t.Fatalf("the surviving registration must decide: %+v", st.Person)
	}
	// A copied event is retracted on the surviving person like its own.
	st.Apply(3, withPayload("r1", k, &nirv1.EventRetracted{EventId: "a3"}))
	if len(st.Offers) != 0 || len(st.Programmes) != 1 {
		t.Fatalf("after retracting a copied offer: %d offers, %d programmes", len(st.Offers), len(st.Programmes))
	}
	// Un-merge.
	st.Apply(4, withPayload("r2", k, &nirv1.EventRetracted{EventId: "m1"}))
	if len(st.Programmes) != 0 || len(st.Absorbed) != 0 || Holds(HeldIDs(st), fnr) {
		t.Fatal("the retracted merge still counts")
	}

	// The absorbed person, closed, leads to the survivor until the closing is retracted.
	ab := Fold("pa", []*nirv1.Event{absorbedReg, vedtak, withPayload("c1", k, &nirv1.PersonMergedInto{SurvivingPersonKey: "pk", MergeEventId: "m1"})})
	if ab.Successor() != "pk" {
		t.Fatalf("successor %q, want pk", ab.Successor())
	}
	ab.Apply(5, withPayload("c2", k, &nirv1.EventRetracted{EventId: "c1"}))
	if ab.Successor() != "" {
		t.Fatal("the un-merged person still leads elsewhere")
	}
}
