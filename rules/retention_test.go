package rules

import (
	"testing"

	"google.golang.org/protobuf/proto"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestErasureDue: the retention rule (DOMAIN.md Product decisions 15) counts its years from the
// last date of anything the person took part in; an open programme, an erased person, a
// merged one and a missing rule are never due.
func TestErasureDue(t *testing.T) {
	const k = "0301"
	reg := evPerson("p1", k, "1980-01-01", "2015-03-01", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28)
	start := evProgramme("v1", k, nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, "2015-05-01")
	end := evTermination("t1", k, nirv1.TerminationReason_TERMINATION_REASON_ARBEID, "2017-06-30")
	ended := Fold("pk", []*nirv1.Event{reg, start, end})
	open := Fold("pk", []*nirv1.Event{reg, start})
	erased := Fold("pk", []*nirv1.Event{reg, start, end, withPayload("e1", k, &nirv1.PersonErased{Reason: "r"})})
	for _, tt := range []struct {
		name  string
		st    *State
		years int
		now   string
		due   bool
	}{
		{"ten years after the termination", ended, 5, "2022-06-30", true},
		{"a day short", ended, 5, "2022-06-29", false},
		{"no rule", ended, 0, "2040-01-01", false},
		{"an open programme", open, 1, "2040-01-01", false},
		{"erased already", erased, 1, "2040-01-01", false},
		{"not registered", Fold("pk", nil), 1, "2040-01-01", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			last, due := ErasureDue(tt.st, tt.years, MustParseDate(tt.now))
			if due != tt.due {
				t.Fatalf("due = %v (last activity %v), want %v", due, last, tt.due)
			}
		})
	}
	if last, _ := LastActivity(ended); last != MustParseDate("2017-06-30") {
		t.Fatalf("last activity %v, want the termination's date 2017-06-30", last)
	}
}

// TestAgeAtPermit_Kept: a registration whose birth date was sealed and can no longer be read
// (an erased person) keeps the age on the permit date nird stored in clear, so the law and
// the schemes stay what they were (DOMAIN.md 1.2, Product decisions 15).
func TestAgeAtPermit_Kept(t *testing.T) {
	clear := evPerson("p1", "0301", "1990-06-15", "2022-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28)
	sealed := proto.Clone(clear).(*nirv1.Event)
	p := sealed.GetPersonRegistered()
	p.BirthDate, p.AgeAtPermitDate = nil, proto.Int32(31)
	a, b := Fold("pk", []*nirv1.Event{clear}), Fold("pk", []*nirv1.Event{sealed})
	if a.Person.AgeAtPermit() != 31 || b.Person.AgeAtPermit() != 31 {
		t.Fatalf("age at permit %d (clear), %d (kept); want 31", a.Person.AgeAtPermit(), b.Person.AgeAtPermit())
	}
	if IntroScheme(a.Person, a.Law) != IntroScheme(b.Person, b.Law) || TrainingScheme(a.Person, a.Law) != TrainingScheme(b.Person, b.Law) {
		t.Fatal("the schemes differ once the birth date cannot be read")
	}
	none := proto.Clone(sealed).(*nirv1.Event)
	none.GetPersonRegistered().AgeAtPermitDate = nil
	if c := Fold("pk", []*nirv1.Event{none}); c.Person.AgeAtPermit() != -1 {
		t.Fatalf("no birth date and no kept age: %d, want -1", c.Person.AgeAtPermit())
	}
}

// TestLastActivity_UnmergedCopiesLeftOut: the retention rule counts a person's own effective
// events and those of merges in force (DOMAIN.md Product decisions 15, retention, and "Two
// persons found to be one"); the copies of a merge retracted on the survivor, or of a nested
// merge whose copy is retracted there, are the other person's again.
//
// Found on 2026-12-06 (review of the identity lifecycle): before, LastActivity read every event
// the fold knew, the copies of a retracted merge included, and an un-merged survivor was kept
// for as long as the other person was active; now only merges in force count, at every level.
func TestLastActivity_UnmergedCopiesLeftOut(t *testing.T) {
	const k = "0301"
	own := evPerson("s1", k, "1980-01-01", "2015-03-01", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28)
	offerOf := func(id, date string) *nirv1.Event {
		return withPayload(id, k, &nirv1.OfferRegistered{Programme: nirv1.Programme_PROGRAMME_INTRO, Date: dpb(date)})
	}
	regB := evPerson("b1", k, "1980-01-01", "2015-03-01", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28)
	regA := evPerson("a1", k, "1980-01-01", "2015-03-01", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28)
	// A merged into B (A's offer in 2023), B merged into the survivor (B's offer in 2019).
	mergeAB := withPayload("mab", k, &nirv1.PersonsMerged{AbsorbedPersonKey: "pa", AbsorbedEvents: []*nirv1.Event{regA, offerOf("a2", "2023-05-01")}})
	mergeBS := withPayload("mbs", k, &nirv1.PersonsMerged{AbsorbedPersonKey: "pb", AbsorbedEvents: []*nirv1.Event{regB, offerOf("b2", "2019-05-01"), mergeAB}})
	ownLast := MustParseDate("2015-03-01") // the dates evPerson gives: permit, arrival, settlement
	if last, _ := LastActivity(Fold("pk", []*nirv1.Event{own})); last != ownLast {
		t.Fatalf("the survivor alone: last activity %v, want %v", last, ownLast)
	}
	for _, tt := range []struct {
		name string
		evs  []*nirv1.Event
		want string
	}{
		{"both merges in force", []*nirv1.Event{own, mergeBS}, "2023-05-01"},
		{"the nested merge undone", []*nirv1.Event{own, mergeBS, withPayload("r1", k, &nirv1.EventRetracted{EventId: "mab"})}, "2019-05-01"},
		{"the merge undone", []*nirv1.Event{own, mergeBS, withPayload("r1", k, &nirv1.EventRetracted{EventId: "mbs"})}, "2015-03-01"},
		{"the undoing retracted", []*nirv1.Event{own, mergeBS, withPayload("r1", k, &nirv1.EventRetracted{EventId: "mbs"}),
			withPayload("r2", k, &nirv1.EventRetracted{EventId: "r1"})}, "2023-05-01"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if last, _ := LastActivity(Fold("pk", tt.evs)); last != MustParseDate(tt.want) {
				t.Fatalf("last activity %v, want %s", last, tt.want)
			}
		})
	}
}
