package rules

import (
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

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

// TestReachOf_Merged: the kommuner that had a person merged into another keep their own
// period of the merged person (State.Merges, ReachOf's Former), the period ending when the
// survivor's history has the person arrive elsewhere, or on the day of the merge; a merge
// the absorbed person had itself made counts too; the retraction of the merge takes it all
// back; and an incremental fold equals Fold (README "Kommune boundaries").
func TestReachOf_Merged(t *testing.T) {
	t.Parallel()
	on := func(day string) *timestamppb.Timestamp {
		return timestamppb.New(MustParseDate(day).Time())
	}
	const oslo, bergen, stavanger = "0301", "4601", "1103"
	survivor := evPerson("s1", oslo, "1990-01-01", "2022-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28)
	regA := evPerson("a1", bergen, "1990-01-01", "2020-06-01", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28)
	regB := evPerson("b1", stavanger, "1990-01-01", "2019-03-01", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28)
	// A had absorbed B (Stavanger's) in 2020; the operator merges A into S in 2024.
	inner := withPayload("n1", bergen, &nirv1.PersonsMerged{AbsorbedPersonKey: strings.Repeat("b", 64), AbsorbedEvents: []*nirv1.Event{regB}})
	inner.RecordedAt = on("2020-09-01")
	merge := withPayload("m1", oslo, &nirv1.PersonsMerged{AbsorbedPersonKey: strings.Repeat("a", 64),
		AbsorbedEvents: []*nirv1.Event{regA, evProgramme("a2", bergen, nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, "2020-07-01"), inner}})
	merge.RecordedAt = on("2024-10-01")
	evs := []*nirv1.Event{survivor, merge}

	st := Fold("pk", evs)
	want := []Merged{
		{EventID: "m1", PersonKey: strings.Repeat("a", 64), Residences: []Residence{{Kommune: bergen, From: md("2020-06-01"), To: md("2022-01-10")}}},
		{EventID: "n1", PersonKey: strings.Repeat("b", 64), Residences: []Residence{{Kommune: stavanger, From: md("2019-03-01"), To: md("2020-06-01")}}},
	}
	if !reflect.DeepEqual(st.Merges, want) {
		t.Errorf("Merges = %+v\nwant %+v", st.Merges, want)
	}
	if r := ReachOf(st); !reflect.DeepEqual(r, Reach{Current: []string{oslo}, Former: []string{bergen, stavanger}}) {
		t.Errorf("ReachOf = %+v; want Oslo current, Bergen and Stavanger former", r)
	}
	inc := NewState("pk")
	for i, ev := range evs {
		inc.Copy().Apply(uint64(i+1), ev)
		inc.Apply(uint64(i+1), ev)
	}
	if !reflect.DeepEqual(inc, st) {
		t.Error("the incremental fold differs from Fold")
	}

	// A survivor settled before the absorbed person, and never moved since: the period ends
	// on the day of the merge.
	early := evPerson("s2", oslo, "1990-01-01", "2018-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28)
	if got := Fold("pk2", []*nirv1.Event{early, merge}).Merges[0].Residences; !reflect.DeepEqual(got, []Residence{{Kommune: bergen, From: md("2020-06-01"), To: md("2024-10-01")}}) {
		t.Errorf("the absorbed person's periods under an earlier survivor: %+v; want Bergen until the merge", got)
	}

	// Un-merged: nobody keeps anything of the merge.
	st.Apply(3, withPayload("r1", oslo, &nirv1.EventRetracted{EventId: "m1"}))
	if len(st.Merges) != 0 || len(ReachOf(st).Former) != 0 {
		t.Errorf("after the un-merge: Merges %+v, Reach %+v; want none", st.Merges, ReachOf(st))
	}
}
