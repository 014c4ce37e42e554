package rules

import (
	"errors"
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

// TestAudit_LawBoundaries: DOMAIN.md 0.1 and 1.1 (IL for a permit from 2021-01-01, or an
// earlier permit with arrival from 2021-01-01; 6A for § 34 permits granted from and including
// 2022-03-11, while chapter 6A is in force, currently until 2026-07-01), on the exact days.
func TestAudit_LawBoundaries(t *testing.T) {
	t.Parallel()
	asyl, k34 := nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, nirv1.PermitBasis_PERMIT_BASIS_KOLLEKTIV_BESKYTTELSE_34
	tests := []struct {
		permit, arrival string
		basis           nirv1.PermitBasis
		want            nirv1.Law
	}{
		{"2020-12-31", "2020-12-31", asyl, nirv1.Law_LAW_INTROL},
		{"2021-01-01", "2020-12-31", asyl, nirv1.Law_LAW_IL},
		{"2020-12-31", "2021-01-01", asyl, nirv1.Law_LAW_IL},
		{"2020-02-29", "2020-12-31", nirv1.PermitBasis_PERMIT_BASIS_OVERFORING_35, nirv1.Law_LAW_INTROL},
		{"2022-03-10", "2022-03-01", k34, nirv1.Law_LAW_IL},
		{"2022-03-11", "2022-03-01", k34, nirv1.Law_LAW_IL_6A},
		{"2022-03-11", "2022-03-01", asyl, nirv1.Law_LAW_IL},
		{"2026-06-30", "2026-06-01", k34, nirv1.Law_LAW_IL_6A},
		{"2026-07-01", "2026-06-01", k34, nirv1.Law_LAW_IL},
	}
	for _, tt := range tests {
		p := Person{PermitDate: md(tt.permit), ArrivalDate: md(tt.arrival), PermitBasis: tt.basis}
		if got, _ := LawOf(p); got != tt.want {
			t.Errorf("permit %s arrival %s %v: law %v, want %v", tt.permit, tt.arrival, tt.basis, got, tt.want)
		}
	}
}

// TestAudit_AgeBoundaries: DOMAIN.md 1.2, 1.3, 1.4: the age on the day the permit was granted
// decides (intro IL and IntroL 18–55, opplæring IL 18–67, IntroL 16–67), birthday included.
func TestAudit_AgeBoundaries(t *testing.T) {
	t.Parallel()
	const (
		rop  = nirv1.Scheme_SCHEME_RETT_OG_PLIKT
		kan  = nirv1.Scheme_SCHEME_KAN_TILBYS
		none = nirv1.Scheme_SCHEME_NONE
	)
	asyl := nirv1.PermitBasis_PERMIT_BASIS_ASYL_28
	tests := []struct {
		name, birth, permit string
		intro, training     nirv1.Scheme
	}{
		{"IL: 18 on the permit day", "2003-03-15", "2021-03-15", rop, rop},
		{"IL: 18 the day after the permit", "2003-03-16", "2021-03-15", none, none},
		{"IL: 56 on the permit day", "1965-03-15", "2021-03-15", kan, rop},
		{"IL: 55 until the day before 56", "1965-03-16", "2021-03-15", rop, rop},
		{"IL: 68 on the permit day", "1953-03-15", "2021-03-15", kan, none},
		{"IL: leap-day birth, 18 on 1 March", "2004-02-29", "2022-03-01", rop, rop},
		{"IntroL: 16 on the permit day", "2004-06-30", "2020-06-30", none, rop},
		{"IntroL: 15 on the permit day", "2004-07-01", "2020-06-30", none, none},
	}
	for _, tt := range tests {
		p := Person{BirthDate: md(tt.birth), PermitDate: md(tt.permit), ArrivalDate: md(tt.permit), PermitBasis: asyl, SettledByAgreement: true}
		law, _ := LawOf(p)
		if i, tr := IntroScheme(p, law).Scheme, TrainingScheme(p, law).Scheme; i != tt.intro || tr != tt.training {
			t.Errorf("%s: intro %v training %v, want %v %v", tt.name, i, tr, tt.intro, tt.training)
		}
	}
}

// TestAudit_NorskDeadlineCalendar: DOMAIN.md 3.2 and Product decisions 3 (IL: 18 months with
// vgo, else 36 months from when rett og plikt arose, before 2023-08-01; 6A: 12 months from the
// first vedtak start, plus 6 months per utvidet vedtak) on month ends, 29/30/31-day months and
// leap years: a month after the 31st is the last day of a shorter month.
func TestAudit_NorskDeadlineCalendar(t *testing.T) {
	t.Parallel()
	const (
		asyl = nirv1.PermitBasis_PERMIT_BASIS_ASYL_28
		k34  = nirv1.PermitBasis_PERMIT_BASIS_KOLLEKTIV_BESKYTTELSE_34
		rett = nirv1.TrainingScheme_TRAINING_SCHEME_RETT_6A
		utv  = nirv1.TrainingScheme_TRAINING_SCHEME_UTVIDET_6A
		tild = nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING
	)
	tests := []struct {
		name string
		s    *State
		want string
	}{
		{"IL vgo 18 months from 31 Aug: 28 Feb", personWith("2021-08-31", asyl, vgo(true)), "2023-02-28"},
		{"IL vgo 18 months from 31 Aug to a leap year: 29 Feb", personWith("2022-08-31", asyl, vgo(true)), "2024-02-29"},
		{"IL vgo 18 months from 31 Dec: 30 Jun", personWith("2021-12-31", asyl, vgo(true)), "2023-06-30"},
		{"IL no vgo 36 months from 28 Feb to a leap year: 28 Feb", personWith("2021-02-28", asyl, vgo(false)), "2024-02-28"},
		{"IL no vgo 36 months from 31 May", personWith("2021-05-31", asyl, vgo(false)), "2024-05-31"},
		{"IL from the offer on 2023-08-31, vgo: 28 Feb", personWith("2023-03-01", asyl, vgo(true), offer("2023-08-31")), "2025-02-28"},
		{"6A 12 months from 29 Feb 2024: 28 Feb", personWith("2023-06-01", k34, tv(rett, tild, "2024-02-01", "2024-02-29", "")), "2025-02-28"},
		{"6A 12 months from 31 Mar 2023", personWith("2022-04-01", k34, tv(rett, tild, "2023-03-01", "2023-03-31", "")), "2024-03-31"},
		{"6A plus one utvidet (vgo), from 31 Aug 2023: 28 Feb", personWith("2022-04-01", k34, tv(rett, tild, "2022-08-01", "2022-08-31", ""), vgo(true),
			tv(utv, tild, "2023-08-01", "2023-09-01", "")), "2024-02-29"},
	}
	for _, tt := range tests {
		d, ok := NorskDeadline(tt.s, md("2022-06-01"))
		if !ok || d.Date != md(tt.want) {
			t.Errorf("%s: %s, want %s", tt.name, DeadlineText(d), tt.want)
		}
	}
}

// TestAudit_ProgrammeEndCalendar: DOMAIN.md 2.2 and Product decisions 4 (IL: start + the
// sluttmål's ordinary maximum + registered extension; IntroL: 2 years + up to 1 year, at most
// 3 years, 1.4, 1.6), Product decisions 12 (approved leave moves the end), on month ends.
func TestAudit_ProgrammeEndCalendar(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		law      nirv1.Law
		start    string
		sluttmal nirv1.Sluttmal
		ext      []int
		leave    []Period
		want     string
	}{
		{"IL høyere utdanning 6 months from 31 Aug: 29 Feb", nirv1.Law_LAW_IL, "2023-08-31", nirv1.Sluttmal_SLUTTMAL_HOYERE_UTDANNING, nil, nil, "2024-02-29"},
		{"IL arbeid (vgo) 6 + 6 from 31 Aug: 31 Aug", nirv1.Law_LAW_IL, "2023-08-31", nirv1.Sluttmal_SLUTTMAL_ARBEID_VGO, []int{6}, nil, "2024-08-31"},
		{"IL fullført vgo 3 years from 29 Feb: 28 Feb", nirv1.Law_LAW_IL, "2024-02-29", nirv1.Sluttmal_SLUTTMAL_FULLFORT_VGO, nil, nil, "2027-02-28"},
		{"IL fullført vgo 3 + 1 years from 29 Feb: 29 Feb", nirv1.Law_LAW_IL, "2024-02-29", nirv1.Sluttmal_SLUTTMAL_FULLFORT_VGO, []int{12}, nil, "2028-02-29"},
		{"IL grunnskole 2 years + 1 day of leave", nirv1.Law_LAW_IL, "2022-01-31", nirv1.Sluttmal_SLUTTMAL_GRUNNSKOLE, nil, []Period{{md("2022-05-17"), md("2022-05-17")}}, "2024-02-01"},
		{"IntroL 2 years from 29 Feb", nirv1.Law_LAW_INTROL, "2020-02-29", 0, nil, nil, "2022-02-28"},
		{"IntroL 3 years at most, plus 28 days of leave", nirv1.Law_LAW_INTROL, "2020-01-31", 0, []int{12, 12}, []Period{{md("2021-02-01"), md("2021-02-28")}}, "2023-02-28"},
	}
	for _, tt := range tests {
		s := NewState("pk")
		s.Law = tt.law
		p := &Programme{Kommune: "0301", Start: md(tt.start), Sluttmal: tt.sluttmal}
		for _, e := range tt.ext {
			p.Extensions = append(p.Extensions, Extension{Months: e})
		}
		for _, l := range tt.leave {
			p.Leave = append(p.Leave, Leave{Period: l})
		}
		if end, _, nb, _, ok := ProgrammeLatestEnd(s, p, md("2022-06-01")); !ok || end != md(tt.want) {
			t.Errorf("%s: %s ok=%v %s, want %s", tt.name, end, ok, nb, tt.want)
		}
	}
}

// TestAudit_StartWithin3Months: DOMAIN.md 1.2, 3.5, Product decisions 6: start on or before
// max(settlement, krav) + 3 months; the last day is in time, the day after is late.
func TestAudit_StartWithin3Months(t *testing.T) {
	t.Parallel()
	tests := []struct {
		settled, demand, started string
		due                      string
		state                    nirv1.DeadlineState
	}{
		{"2023-11-30", "", "2024-02-29", "2024-02-29", nirv1.DeadlineState_DEADLINE_STATE_COMPLETED},
		{"2023-11-30", "", "2024-03-01", "2024-02-29", nirv1.DeadlineState_DEADLINE_STATE_OVERDUE},
		{"2022-11-30", "", "2023-02-28", "2023-02-28", nirv1.DeadlineState_DEADLINE_STATE_COMPLETED},
		{"2022-11-30", "2022-12-31", "2023-03-31", "2023-03-31", nirv1.DeadlineState_DEADLINE_STATE_COMPLETED},
		{"2022-12-31", "2022-11-30", "2023-04-01", "2023-03-31", nirv1.DeadlineState_DEADLINE_STATE_OVERDUE},
	}
	for _, tt := range tests {
		var demand, started Date
		if tt.demand != "" {
			demand = md(tt.demand)
		}
		started = md(tt.started)
		d := startDeadline(Deadline{}, trainingStartVersions, md(tt.settled), demand, started, md("2024-06-01"))
		if d.Date != md(tt.due) || d.State != tt.state {
			t.Errorf("settled %s krav %q started %s: %s, want %s %v", tt.settled, tt.demand, tt.started, DeadlineText(d), tt.due, tt.state)
		}
	}
}

// TestAudit_ComputedTerminationDays: Product decisions 5a (IKKE_REGISTRERT dated at the latest
// end date, "when that date has passed"), 5b (FLYTTET at the move date, IntroL only), 11 (a
// stans: IKKE_REGISTRERT dated on the stans date when no avslutningsårsak is registered within
// 30 days), and 5 (a deleted computed termination is never computed again for the programme
// and rule): what is due on the exact days.
func TestAudit_ComputedTerminationDays(t *testing.T) {
	t.Parallel()
	asyl := nirv1.PermitBasis_PERMIT_BASIS_ASYL_28
	tild := nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING
	sluttmal := withPayload("s1", "0301", &nirv1.SluttmalRegistered{Sluttmal: nirv1.Sluttmal_SLUTTMAL_HOYERE_UTDANNING, Date: dpb("2023-09-01")})
	stans := withPayload("s2", "0301", &nirv1.ProgrammeVedtakRegistered{Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_STANS,
		VedtakDate: dpb("2023-10-20"), FromDate: dpb("2023-10-31")})
	move := func(to, date string) *nirv1.Event {
		return &nirv1.Event{Id: "s3", Kommune: to, Payload: &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: to, Date: dpb(date)}}}
	}
	moved := move("0219", "2019-03-31")
	// IL, høyere utdanning: 6 months from 2023-08-31 is 2024-02-29.
	il := []*nirv1.Event{evPerson("e1", "0301", "1990-01-01", "2023-05-01", asyl), evProgramme("e2", "0301", tild, "2023-08-31"), sluttmal}
	ilStans := append(append([]*nirv1.Event(nil), il...), stans)
	// IntroL, 2 years from 2018-02-28; moved on 2019-03-31.
	// A tiltak to the end keeps the inactivity rule (5c) out of it.
	tiltak := withPayload("e3", "0301", &nirv1.TiltakRegistered{Code: nirv1.TiltakCode_TILTAK_CODE_KURS, FromDate: dpb("2018-03-01"), ToDate: dpb("2020-02-28"), HoursPerWeek: 30})
	introl := []*nirv1.Event{evPerson("e1", "0301", "1990-01-01", "2017-12-01", asyl), evProgramme("e2", "0301", tild, "2018-02-28"), tiltak}
	introlMoved := append(append([]*nirv1.Event(nil), introl...), moved)
	ilMoved := append(append([]*nirv1.Event(nil), il...), move("3201", "2024-01-15"))
	tests := []struct {
		name   string
		events []*nirv1.Event
		now    string
		want   string // "rule date", or "" for none due
	}{
		{"5a: not on the end date", il, "2024-02-29", ""},
		{"5a: the day after", il, "2024-03-01", "TERMINATION_RULE_FRIST_UTLOPT 2024-02-29"},
		{"11: not on the 30th day after the stans", ilStans, "2023-11-30", ""},
		{"11: on the 31st day", ilStans, "2023-12-01", "TERMINATION_RULE_STANS 2023-10-31"},
		{"5b: IntroL, on the move date", introlMoved, "2019-03-31", "TERMINATION_RULE_FLYTTET 2019-03-31"},
		{"5b: IntroL, not before the move", introlMoved, "2019-03-30", ""},
		{"5b: not under IL", ilMoved, "2024-01-20", ""},
		{"5a: IntroL 2 years from 28 Feb, the day after", introl, "2020-02-29", "TERMINATION_RULE_FRIST_UTLOPT 2020-02-28"},
	}
	for _, tt := range tests {
		s := Fold("pk", tt.events)
		got := ""
		if due := DueTerminations(s, md(tt.now)); len(due) > 0 {
			tc := due[0].GetTerminationComputed()
			got = tc.GetRule().String() + " " + dateOf(tc.GetDate()).String()
		}
		if got != tt.want {
			t.Errorf("%s: due %q, want %q", tt.name, got, tt.want)
		}
	}

	// Deleted, the FLYTTET termination is not computed again; the programme's end (5a) still
	// is, after its own date.
	s := Fold("pk", introlMoved)
	due := DueTerminations(s, md("2019-04-01"))
	if len(due) != 1 {
		t.Fatalf("due = %v, want FLYTTET", due)
	}
	s.Apply(s.LastSeq+1, due[0])
	s.Apply(s.LastSeq+1, withPayload("s4", "0301", &nirv1.ComputedTerminationDeleted{ComputedEventId: due[0].GetId()}))
	if again := DueTerminations(s, md("2019-04-02")); len(again) != 0 {
		t.Errorf("after deletion: due %v, want none", again)
	}
	if later := DueTerminations(s, md("2020-02-29")); len(later) != 1 || later[0].GetTerminationComputed().GetRule() != nirv1.TerminationRule_TERMINATION_RULE_FRIST_UTLOPT {
		t.Errorf("after the programme's end: due %v, want FRIST_UTLOPT", later)
	}
}

// TestAudit_NationalIDExamples: DOMAIN.md 7.1 (Skatteetaten's examples: 02013299997 and
// 30108299920 have K1 remainder 0 and are valid under both rules, 30108299939 remainder 1 and
// is valid only under the 2032 rule; D-nummer day + 40; H-nummer month + 40 refused;
// synthetic month + 80), 7.2 (DUF: weights 4,6,3,2,4,6,3,2,7,5, mod 11, two digits).
func TestAudit_NationalIDExamples(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id   string
		typ  nirv1.IdentifierType
		rule CheckRule
		ok   bool
	}{
		{"02013299997", nirv1.IdentifierType_IDENTIFIER_TYPE_FODSELSNUMMER, RuleClassic, true},
		{"30108299920", nirv1.IdentifierType_IDENTIFIER_TYPE_FODSELSNUMMER, RuleClassic, true},
		{"30108299939", nirv1.IdentifierType_IDENTIFIER_TYPE_FODSELSNUMMER, Rule2032, true},
		{"30108299938", 0, 0, false}, // K2 off by one
		{"30108299940", 0, 0, false}, // K1 remainder 4
		{"70108299920", 0, 0, false}, // day 30 + 40 = 70: D-nummer, but the check digits are the fødselsnummer's
		{"31029912345", 0, 0, false}, // 31 February
	}
	for _, tt := range tests {
		id, err := ParseNationalID(tt.id)
		if (err == nil) != tt.ok || (tt.ok && (id.Type() != tt.typ || id.Rule() != tt.rule)) {
			t.Errorf("%s: %v %v %v, want ok=%v %v %v", tt.id, id.Type(), id.Rule(), err, tt.ok, tt.typ, tt.rule)
		}
	}
	// A D-nummer is the fødselsnummer's date with 4 added to the first digit, check digits
	// computed anew; an H-nummer (month + 40) is refused; a synthetic number (month + 80) is
	// accepted and marked.
	d := SyntheticDNummer(md("1980-01-01"), 3)
	if d[0] != '4' {
		t.Fatalf("synthetic D-nummer %s does not start with 4", d)
	}
	if id, err := ParseNationalID(d); err != nil || id.Type() != nirv1.IdentifierType_IDENTIFIER_TYPE_D_NUMMER || !id.Synthetic() {
		t.Errorf("synthetic D-nummer: %v %v synthetic=%v", id.Type(), err, id.Synthetic())
	}
	if _, err := ParseNationalID("01418012345"); !errors.Is(err, ErrHNummer) { // month 01 + 40
		t.Errorf("H-nummer: err = %v, want ErrHNummer", err)
	}
	// DUF: 2014 000123 → Σ = 2·4+0·6+1·3+4·2+0·4+0·6+0·3+1·2+2·7+3·5 = 50, 50 mod 11 = 6 → "06".
	if err := ValidateDUF("201400012306"); err != nil {
		t.Errorf("DUF 201400012306: %v", err)
	}
	if err := ValidateDUF("201400012360"); err == nil {
		t.Error("DUF with swapped check digits accepted")
	}
}

// TestAudit_KommuneValidity: DOMAIN.md 7.3 and Product decisions 13: a kommunenummer is valid
// on the dates of its period (2020-01-01 to 2023-12-31 for the 2020 set, from 2024-01-01 for
// the 2024 set), the fylke is its first two digits, and a number and its successor are one
// kommune; the parts of a split are not.
func TestAudit_KommuneValidity(t *testing.T) {
	t.Parallel()
	tests := []struct {
		nr, on string
		ok     bool
	}{
		{"3001", "2023-12-31", true}, {"3001", "2024-01-01", false},
		{"3101", "2023-12-31", false}, {"3101", "2024-01-01", true},
		{"1507", "2023-12-31", true}, {"1508", "2024-01-01", true}, {"1580", "2024-01-01", true}, {"1580", "2023-12-31", false},
		{"5401", "2023-12-31", true}, {"5501", "2024-01-01", true},
		{"0101", "2019-12-31", true}, {"0101", "2020-01-01", false},
		{"0301", "2004-01-01", true}, {"0301", "2026-12-05", true},
		{"301", "2024-01-01", false}, {"9999", "2024-01-01", false},
	}
	for _, tt := range tests {
		k, err := LookupKommune(tt.nr, md(tt.on))
		if (err == nil) != tt.ok || (tt.ok && k.FylkeNr != tt.nr[:2]) {
			t.Errorf("LookupKommune(%s, %s) = %+v, %v; want ok=%v", tt.nr, tt.on, k, err, tt.ok)
		}
	}
	for _, tt := range []struct {
		a, b string
		same bool
	}{{"3001", "3101", true}, {"1507", "1508", true}, {"1507", "1580", true}, {"1508", "1580", false}, {"0301", "3101", false}} {
		if got := SameKommune(tt.a, tt.b); got != tt.same {
			t.Errorf("SameKommune(%s, %s) = %v, want %v", tt.a, tt.b, got, tt.same)
		}
	}
}

// TestAudit_HoursGoals: DOMAIN.md 1.4 (IntroL: 550 + 50 hours for a first permit from
// 2012-01-01, 250 + 50 before; plikt only 250 + 50), 3.4 (samfunnskunnskap 75 hours from
// 2022-01-01; IL plikt only 225 hours norsk; IL rett og plikt has a level, not an hour goal).
func TestAudit_HoursGoals(t *testing.T) {
	t.Parallel()
	tild := nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING
	rop := nirv1.TrainingScheme_TRAINING_SCHEME_RETT_OG_PLIKT
	tests := []struct {
		name        string
		s           *State
		samf, norsk float64 // 0: no goal
	}{
		{"IntroL permit 2011-12-31", personWith("2011-12-31", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28), 50, 250},
		{"IntroL permit 2012-01-01", personWith("2012-01-01", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28), 50, 550},
		{"IntroL plikt only", personWith("2015-01-01", nirv1.PermitBasis_PERMIT_BASIS_ARBEID), 50, 250},
		{"IL rett og plikt, start 2021-12-31", personWith("2021-06-01", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, tv(rop, tild, "2021-12-01", "2021-12-31", "")), 50, 0},
		{"IL rett og plikt, start 2022-01-01", personWith("2021-06-01", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, tv(rop, tild, "2021-12-01", "2022-01-01", "")), 75, 0},
		{"IL plikt only, start 2021-12-31", personWith("2021-06-01", nirv1.PermitBasis_PERMIT_BASIS_ARBEID, tv(nirv1.TrainingScheme_TRAINING_SCHEME_PLIKT, tild, "2021-12-01", "2021-12-31", "")), 50, 250},
		{"IL plikt only, start 2022-01-01", personWith("2021-06-01", nirv1.PermitBasis_PERMIT_BASIS_ARBEID, tv(nirv1.TrainingScheme_TRAINING_SCHEME_PLIKT, tild, "2021-12-01", "2022-01-01", "")), 75, 225},
	}
	for _, tt := range tests {
		var samf, norsk float64
		for _, g := range HoursGoals(tt.s, md("2022-06-01")) {
			switch g.Subject {
			case "samfunnskunnskap":
				samf = g.Goal
			case "norsk":
				norsk = g.Goal
			}
		}
		if samf != tt.samf || norsk != tt.norsk {
			t.Errorf("%s: samfunnskunnskap %v norsk %v, want %v %v", tt.name, samf, norsk, tt.samf, tt.norsk)
		}
	}
}

// TestAudit_IntroLPliktBefore2017: DOMAIN.md 1.4, «Opplæring: 16–55 rett og plikt; 55–67 rett
// (before 2017); from 1 Jan 2017 plikt extended to 55–67» (S53). Before 2017 the plikt ended at
// 55 for everyone, so a labour immigrant (plikt, no rett, 1.3) aged 55–67 at the permit date
// had neither; from 2017 the plikt reaches 67. The rett og plikt groups keep their rett.
func TestAudit_IntroLPliktBefore2017(t *testing.T) {
	t.Parallel()
	arbeid, asyl := nirv1.PermitBasis_PERMIT_BASIS_ARBEID, nirv1.PermitBasis_PERMIT_BASIS_ASYL_28
	tests := []struct {
		name, birth, permit string
		basis               nirv1.PermitBasis
		want                nirv1.Scheme
	}{
		{"labour, 55 in 2015: plikt", "1960-06-01", "2015-06-01", arbeid, nirv1.Scheme_SCHEME_PLIKT},
		{"labour, 56 in 2015: neither", "1959-06-01", "2015-06-01", arbeid, nirv1.Scheme_SCHEME_NONE},
		{"labour family, 60 in 2016-12-31: neither", "1956-12-31", "2016-12-31", nirv1.PermitBasis_PERMIT_BASIS_FAMILIE_ARBEID, nirv1.Scheme_SCHEME_NONE},
		{"labour, 60 in 2017-01-01: plikt", "1957-01-01", "2017-01-01", arbeid, nirv1.Scheme_SCHEME_PLIKT},
		{"labour, 67 in 2018: plikt", "1951-06-01", "2018-06-01", arbeid, nirv1.Scheme_SCHEME_PLIKT},
		{"asylum, 60 in 2015: rett", "1955-06-01", "2015-06-01", asyl, nirv1.Scheme_SCHEME_RETT},
		{"IL labour, 60 in 2022: plikt", "1962-06-01", "2022-06-01", arbeid, nirv1.Scheme_SCHEME_PLIKT},
	}
	for _, tt := range tests {
		p := Person{BirthDate: md(tt.birth), PermitDate: md(tt.permit), ArrivalDate: md(tt.permit), PermitBasis: tt.basis}
		law, _ := LawOf(p)
		r := TrainingScheme(p, law)
		if r.Scheme != tt.want || r.ReasonNB == "" {
			t.Errorf("%s: %v (%s), want %v", tt.name, r.Scheme, r.ReasonNB, tt.want)
		}
	}
}
