package rules

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestCheck_Boundaries checks the append rules on the day or hour each limit begins to refuse,
// and the one before, where TestCheck_Matrix has one case well past the limit: a rule moved
// by a day, or dropped, fails here (mutation testing of the rule engine, 2026-12-07). Each case
// cites the DOMAIN.md section of its rule; want is the refusal code ("" accepted) and what the
// English message must name.
func TestCheck_Boundaries(t *testing.T) {
	t.Parallel()
	const (
		k   = "0301"
		now = "2024-06-01"
	)
	il := evPerson("h1", k, "1990-01-01", "2022-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28)
	// Born 1940, so that a date before 1950 is not also before the birth (NIR-R032).
	old := evPerson("h1", k, "1940-01-01", "2022-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28)
	prog := evProgramme("h2", k, nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, "2022-03-01")
	sluttmal := withPayload("h3", k, &nirv1.SluttmalRegistered{Sluttmal: nirv1.Sluttmal_SLUTTMAL_ARBEID, Date: dpb("2022-03-01")})
	// A programme planned for two years, 2022-03-01 to 2024-03-01: SLUTTMAL_ARBEID's ordinary
	// maximum (DOMAIN.md 2.2), so its latest end is its planned end.
	planned := withPayload("h2", k, &nirv1.ProgrammeVedtakRegistered{Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING,
		VedtakDate: dpb("2022-02-15"), FromDate: dpb("2022-03-01"), ToDate: dpb("2024-03-01")})
	training := withPayload("h4", k, &nirv1.TrainingVedtakRegistered{Scheme: nirv1.TrainingScheme_TRAINING_SCHEME_RETT_OG_PLIKT,
		Type: nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING, VedtakDate: dpb("2023-01-01"), StartDate: dpb("2023-01-01")})
	stansOnStart := withPayload("h5", k, &nirv1.TrainingVedtakRegistered{Scheme: nirv1.TrainingScheme_TRAINING_SCHEME_RETT_OG_PLIKT,
		Type: nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_STANS, VedtakDate: dpb("2023-01-01"), StartDate: dpb("2023-01-01")})
	futurePermit := evPerson("n1", k, "1990-01-01", "2024-06-02", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28)
	futurePermit.GetPersonRegistered().ArrivalDate = dpb("2024-05-01")
	futurePermit.GetPersonRegistered().SettlementDate = dpb("2024-05-15")
	tiltak := func(hoursPerWeek float64) *nirv1.Event {
		return withPayload("n1", k, &nirv1.TiltakRegistered{Code: nirv1.TiltakCode_TILTAK_CODE_KURS,
			FromDate: dpb("2022-04-01"), ToDate: dpb("2022-04-30"), HoursPerWeek: hoursPerWeek})
	}
	tests := []struct {
		name, section string
		history       []*nirv1.Event
		ev            *nirv1.Event
		code, names   string
	}{
		// NIR-R030: facts (a permit granted) lie not after today; the check let a permit
		// date a year ahead through when it was judged as a start.
		{"permit date tomorrow", "2.1", nil, futurePermit, "NIR-R030", "permit_date 2024-06-02 is after 2024-06-01"},
		{"permit date today", "2.1", nil, evPerson("n1", k, "1990-01-01", now, nirv1.PermitBasis_PERMIT_BASIS_ASYL_28), "", ""},
		// NIR-R030: other dates than the birth date from 1950.
		{"offer on 1949-12-31", "2.1", []*nirv1.Event{old}, withPayload("n1", k, &nirv1.OfferRegistered{Programme: nirv1.Programme_PROGRAMME_INTRO, Date: dpb("1949-12-31")}),
			"NIR-R030", "date 1949-12-31 is before 1950-01-01"},
		{"offer on 1950-01-01", "2.1", []*nirv1.Event{old}, withPayload("n1", k, &nirv1.OfferRegistered{Programme: nirv1.Programme_PROGRAMME_INTRO, Date: dpb("1950-01-01")}), "", ""},
		// NIR-R031: a termination before the start of the programme it ends.
		{"termination the day before the programme start", "2.5", []*nirv1.Event{il, prog, sluttmal},
			evTermination("n1", k, nirv1.TerminationReason_TERMINATION_REASON_ARBEID, "2022-02-28"), "NIR-R031", "termination 2022-02-28 before the programme start 2022-03-01"},
		{"termination on the programme start", "2.5", []*nirv1.Event{il, prog, sluttmal},
			evTermination("n1", k, nirv1.TerminationReason_TERMINATION_REASON_ARBEID, "2022-03-01"), "", ""},
		// NIR-R031: a one-day period ends on the day it starts; only an end before the
		// start is refused.
		{"absence of one day", "2.6", []*nirv1.Event{il, prog, sluttmal}, withPayload("n1", k, &nirv1.AbsenceRegistered{Programme: nirv1.Programme_PROGRAMME_INTRO,
			Type: nirv1.AbsenceType_ABSENCE_TYPE_FRAVAER_GYLDIG, FromDate: dpb("2023-03-10"), ToDate: dpb("2023-03-10")}), "", ""},
		// NIR-R040: a tiltak of more than 40 hours a week (full time is 37.5, DOMAIN.md 2.3).
		{"tiltak of 40.5 hours a week", "2.3", []*nirv1.Event{il, prog, sluttmal}, tiltak(40.5), "NIR-R040", "40.5 hours a week"},
		{"tiltak of 40 hours a week", "2.3", []*nirv1.Event{il, prog, sluttmal}, tiltak(40), "", ""},
		// NIR-R020: the programme runs through its latest end date (2024-03-01 for
		// SLUTTMAL_ARBEID from 2022-03-01, DOMAIN.md 2.2): a tiltak may end on it, not after.
		{"tiltak ending on the latest end", "2.1, 2.2", []*nirv1.Event{il, prog, sluttmal}, withPayload("n1", k, &nirv1.TiltakRegistered{Code: nirv1.TiltakCode_TILTAK_CODE_KURS,
			FromDate: dpb("2024-02-01"), ToDate: dpb("2024-03-01"), HoursPerWeek: 10}), "", ""},
		{"tiltak ending a day after the latest end", "2.1, 2.2", []*nirv1.Event{il, prog, sluttmal}, withPayload("n1", k, &nirv1.TiltakRegistered{Code: nirv1.TiltakCode_TILTAK_CODE_KURS,
			FromDate: dpb("2024-02-01"), ToDate: dpb("2024-03-02"), HoursPerWeek: 10}), "NIR-R020", "vedtak period 2022-03-01–2024-03-01"},
		// NIR-R022: an extension vedtak extends by at least a month.
		{"extension of 0 months", "2.2", []*nirv1.Event{il, prog, sluttmal}, withPayload("n1", k, &nirv1.ProgrammeVedtakRegistered{
			Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_UTVIDELSE, VedtakDate: dpb("2024-01-01"), FromDate: dpb("2024-01-01")}),
			"NIR-R022", "the extension must be at least one month"},
		// NIR-R022: a planned end on the latest end date is within the programme time; one
		// day later is not (Product decisions 4).
		{"planned end on the latest end", "2.2, Product decisions 4", []*nirv1.Event{il, planned}, sluttmal, "", ""},
		{"planned end a day after the latest end", "2.2, Product decisions 4", []*nirv1.Event{il, withPayload("h2", k, &nirv1.ProgrammeVedtakRegistered{
			Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, VedtakDate: dpb("2022-02-15"), FromDate: dpb("2022-03-01"), ToDate: dpb("2024-03-02")})},
			sluttmal, "NIR-R022", "planned end 2024-03-02 is after the latest end date 2024-03-01"},
		// NIR-R021: a stans on the training vedtak's start day ends its period that day
		// (DOMAIN.md 3.1: tildeling, start og stans): hours the month after lie outside it.
		{"hours after a stans on the start day", "3.1", []*nirv1.Event{il, training, stansOnStart}, withPayload("n1", k, &nirv1.TrainingHoursRegistered{
			Type: nirv1.HoursType_HOURS_TYPE_NORSK, Month: &nirv1.YearMonth{Year: 2023, Month: 2}, Hours: 10}), "NIR-R021", "month 2023-02"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rs := Check(Fold("pk", tt.history), []*nirv1.Event{tt.ev}, md(now))
			if tt.code == "" {
				if len(rs) != 0 {
					t.Errorf("DOMAIN.md %s: want accepted, got %v", tt.section, rs)
				}
				return
			}
			for _, r := range rs {
				if r.Code == tt.code && strings.Contains(r.MessageEN, tt.names) {
					return
				}
			}
			t.Errorf("DOMAIN.md %s: want %s naming %q, got %v", tt.section, tt.code, tt.names, rs)
		})
	}
}

// TestInactiveFrom_CountsFromTheStart: the inactivity threshold counts from the later of the
// programme's start and the last registration (DOMAIN.md Product decisions 5c: nothing
// registered for 12 months for an open programme). A tildeling recorded months before the
// programme starts does not make the programme inactive a year after it was recorded; a
// programme on leave without an end date is not open.
func TestInactiveFrom_CountsFromTheStart(t *testing.T) {
	t.Parallel()
	at := func(s string) *timestamppb.Timestamp {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return timestamppb.New(tm)
	}
	person := evPerson("h1", "0301", "1990-01-01", "2022-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28)
	person.RecordedAt = at("2022-01-10T10:00:00Z")
	prog := withPayload("h2", "0301", &nirv1.ProgrammeVedtakRegistered{Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING,
		VedtakDate: dpb("2022-01-20"), FromDate: dpb("2022-06-01")})
	prog.RecordedAt = at("2022-01-20T10:00:00Z")
	s := Fold("pk", []*nirv1.Event{person, prog})
	if len(s.Programmes) != 1 {
		t.Fatalf("programmes: %d", len(s.Programmes))
	}
	from, v, ok := InactiveFrom(s, s.Programmes[0])
	if !ok || from != md("2023-06-01") || v.ID != RuleTerminationInactive+"/2004-09-01" {
		t.Errorf("InactiveFrom = %s %q %v, want 2023-06-01 (12 months after the start 2022-06-01, not after the registration 2022-01-20)", from, v.ID, ok)
	}
	// On leave without an end date the programme is not open: nothing to count (the leave
	// keeps extending the programme, DOMAIN.md 2.6, Product decisions 12).
	leave := withPayload("h3", "0301", &nirv1.AbsenceRegistered{Programme: nirv1.Programme_PROGRAMME_INTRO,
		Type: nirv1.AbsenceType_ABSENCE_TYPE_PERMISJON_FODSEL_ADOPSJON, FromDate: dpb("2022-09-01")})
	leave.RecordedAt = at("2022-08-20T10:00:00Z")
	s = Fold("pk", []*nirv1.Event{person, prog, leave})
	if from, _, ok := InactiveFrom(s, s.Programmes[0]); ok {
		t.Errorf("InactiveFrom on open-ended leave = %s, want none", from)
	}
}
