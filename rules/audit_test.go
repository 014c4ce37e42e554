package rules

import (
	"testing"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestNorskDeadline_OpenLeaveWithoutClock: DOMAIN.md 3.2 «Approved leave (godkjent permisjon)
// is added to the deadline» (S17; 6A: S1, S16). The read models compute the deadline without a
// clock (a zero now); an open-ended leave cannot be counted then, so the deadline is not
// computable rather than the date without the leave, which would show a person on approved
// leave as overdue. With a clock the leave counts up to now; a fritak still completes it.
func TestNorskDeadline_OpenLeaveWithoutClock(t *testing.T) {
	t.Parallel()
	const (
		asyl = nirv1.PermitBasis_PERMIT_BASIS_ASYL_28
		k34  = nirv1.PermitBasis_PERMIT_BASIS_KOLLEKTIV_BESKYTTELSE_34
	)
	openLeave := &nirv1.AbsenceRegistered{Programme: nirv1.Programme_PROGRAMME_OPPLAERING,
		Type: nirv1.AbsenceType_ABSENCE_TYPE_PERMISJON_FODSEL_ADOPSJON, FromDate: dpb("2022-11-01")}
	fritak := &nirv1.ExemptionRegistered{Type: nirv1.ExemptionType_EXEMPTION_TYPE_OPPLAERING, Date: dpb("2023-01-01")}
	sixA := tv(nirv1.TrainingScheme_TRAINING_SCHEME_RETT_6A, nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING, "2022-08-01", "2022-09-01", "")
	tests := []struct {
		name  string
		s     *State
		now   Date
		state nirv1.DeadlineState
		date  string
	}{
		{"IL, no clock: not computable", personWith("2022-01-10", asyl, vgo(true), openLeave), Date{}, nirv1.DeadlineState_DEADLINE_STATE_CANNOT_COMPUTE, ""},
		// 18 months from 2022-01-10 is 2023-07-10; 2022-11-01..2023-09-01 is 305 days.
		{"IL, clock: counted to now", personWith("2022-01-10", asyl, vgo(true), openLeave), md("2023-09-01"), nirv1.DeadlineState_DEADLINE_STATE_OK, "2024-05-10"},
		{"IL, clock before the leave: not counted yet", personWith("2022-01-10", asyl, vgo(true), openLeave), md("2022-10-01"), nirv1.DeadlineState_DEADLINE_STATE_OK, "2023-07-10"},
		{"IL, no clock, fritak: completed", personWith("2022-01-10", asyl, vgo(true), openLeave, fritak), Date{}, nirv1.DeadlineState_DEADLINE_STATE_COMPLETED, "2023-07-10"},
		{"6A, no clock: not computable", personWith("2022-04-01", k34, sixA, openLeave), Date{}, nirv1.DeadlineState_DEADLINE_STATE_CANNOT_COMPUTE, ""},
		{"6A, no leave, no clock: computed", personWith("2022-04-01", k34, sixA), Date{}, nirv1.DeadlineState_DEADLINE_STATE_OK, "2023-09-01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, ok := NorskDeadline(tt.s, tt.now)
			if !ok {
				t.Fatal("no norsk deadline")
			}
			want := Date{}
			if tt.date != "" {
				want = md(tt.date)
			}
			if d.State != tt.state || d.Date != want {
				t.Errorf("got %s, want %v %s", DeadlineText(d), tt.state, want)
			}
			if d.State == nirv1.DeadlineState_DEADLINE_STATE_CANNOT_COMPUTE && d.ReasonNB != "permisjon uten sluttdato" {
				t.Errorf("reason %q, want «permisjon uten sluttdato»", d.ReasonNB)
			}
		})
	}
}
