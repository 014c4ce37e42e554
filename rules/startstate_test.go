package rules

import (
	"testing"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestProgrammeStartDue_IsEvaluatesDeadline: the programme starts no later than 3 months after
// settlement or krav (DOMAIN.md 1.2). Found on 2026-12-06 (review of the read models): the
// person list had no such deadline and judged a late start by its own rule; now it takes the
// date from ProgrammeStartDue and the state from StartState, which Evaluate uses: the same
// date, and a late start overdue on every later day, for both.
func TestProgrammeStartDue_IsEvaluatesDeadline(t *testing.T) {
	settled := Date{Y: 2024, M: 2, D: 1}
	for _, tc := range []struct {
		name    string
		from    string // programme start, "" for none
		now     Date
		state   nirv1.DeadlineState
		started nirv1.DeadlineState // StartState
	}{
		{"not started, due soon", "", Date{Y: 2024, M: 4, D: 10}, nirv1.DeadlineState_DEADLINE_STATE_DUE_SOON, nirv1.DeadlineState_DEADLINE_STATE_UNSPECIFIED},
		{"not started, passed", "", Date{Y: 2024, M: 8, D: 1}, nirv1.DeadlineState_DEADLINE_STATE_OVERDUE, nirv1.DeadlineState_DEADLINE_STATE_UNSPECIFIED},
		{"started on the deadline", "2024-05-01", Date{Y: 2024, M: 8, D: 1}, nirv1.DeadlineState_DEADLINE_STATE_COMPLETED, nirv1.DeadlineState_DEADLINE_STATE_COMPLETED},
		{"started a day late", "2024-05-02", Date{Y: 2025, M: 8, D: 1}, nirv1.DeadlineState_DEADLINE_STATE_OVERDUE, nirv1.DeadlineState_DEADLINE_STATE_OVERDUE},
	} {
		evs := []*nirv1.Event{evPerson("p0", "0301", "1990-01-01", settled.String(), nirv1.PermitBasis_PERMIT_BASIS_ASYL_28)}
		if tc.from != "" {
			evs = append(evs, evProgramme("p1", "0301", nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, tc.from))
		}
		s := Fold("pk", evs)
		due, started, applies := ProgrammeStartDue(s)
		if !applies || due != (Date{Y: 2024, M: 5, D: 1}) {
			t.Fatalf("%s: ProgrammeStartDue = %s, applies %v; want 2024-05-01 (settled %s + 3 months)", tc.name, due, applies, settled)
		}
		var got *Deadline
		for _, d := range Evaluate(s, tc.now).Deadlines {
			if d.Kind == nirv1.DeadlineKind_DEADLINE_KIND_PROGRAMME_START {
				got = &d
			}
		}
		if got == nil || got.Date != due || got.State != tc.state {
			t.Fatalf("%s: Evaluate's programme start = %+v, want %s %v", tc.name, got, due, tc.state)
		}
		if st := StartState(due, started); st != tc.started {
			t.Errorf("%s: StartState(%s, %s) = %v, want %v", tc.name, due, started, st, tc.started)
		}
	}
	// A labour immigrant has no right to the programme: no deadline in either.
	s := Fold("pk", []*nirv1.Event{evPerson("p0", "0301", "1990-01-01", "2024-02-01", nirv1.PermitBasis_PERMIT_BASIS_ARBEID)})
	if _, _, applies := ProgrammeStartDue(s); applies {
		t.Errorf("ProgrammeStartDue applies to a labour immigrant")
	}
	for _, d := range Evaluate(s, settled).Deadlines {
		if d.Kind == nirv1.DeadlineKind_DEADLINE_KIND_PROGRAMME_START {
			t.Errorf("Evaluate shows a programme start deadline for a labour immigrant: %+v", d)
		}
	}
}
