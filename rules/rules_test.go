package rules

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

func md(s string) Date { return MustParseDate(s) }

// TestLawOf: DOMAIN.md 1.1 and Product decisions 2.
func TestLawOf(t *testing.T) {
	t.Parallel()
	asyl, k34 := nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, nirv1.PermitBasis_PERMIT_BASIS_KOLLEKTIV_BESKYTTELSE_34
	tests := []struct {
		name            string
		permit, arrival string
		basis           nirv1.PermitBasis
		want            nirv1.Law
		version         string
	}{
		{"permit and arrival before 2021 is IntroL (1.1)", "2020-12-31", "2020-06-01", asyl, nirv1.Law_LAW_INTROL, "lovvalg/1900-01-01"},
		{"unknown arrival counts as before", "2020-12-31", "", asyl, nirv1.Law_LAW_INTROL, "lovvalg/1900-01-01"},
		{"permit before 2021, arrival after is IL (1.1)", "2020-06-01", "2021-01-01", asyl, nirv1.Law_LAW_IL, "lovvalg/1900-01-01"},
		{"permit from 2021-01-01 is IL", "2021-01-01", "2020-12-01", asyl, nirv1.Law_LAW_IL, "lovvalg/1900-01-01"},
		{"§ 34 from 2022-03-11 is 6A (1.5)", "2022-03-11", "2022-03-01", k34, nirv1.Law_LAW_IL_6A, "lovvalg/2022-03-11"},
		{"§ 34 before 2022-03-11 is IL (1.1 note)", "2022-03-10", "2022-03-01", k34, nirv1.Law_LAW_IL, "lovvalg/1900-01-01"},
		{"§ 34 after 6A expires is IL (1.5, until 2026-07-01)", "2026-07-01", "2026-06-01", k34, nirv1.Law_LAW_IL, "lovvalg/2022-03-11"},
		{"asylum permit in 2022 is IL, not 6A (1.5)", "2022-05-01", "2022-01-01", asyl, nirv1.Law_LAW_IL, "lovvalg/2022-03-11"},
		{"§ 34 before 2021 is IntroL", "2019-01-01", "2018-12-01", k34, nirv1.Law_LAW_INTROL, "lovvalg/1900-01-01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := Person{PermitDate: md(tt.permit), PermitBasis: tt.basis}
			if tt.arrival != "" {
				p.ArrivalDate = md(tt.arrival)
			}
			law, v := LawOf(p)
			if law != tt.want || v != tt.version {
				t.Errorf("LawOf = %v %q, want %v %q", law, v, tt.want, tt.version)
			}
		})
	}
	if law, v := LawOf(Person{}); law != nirv1.Law_LAW_UNSPECIFIED || v != "" {
		t.Errorf("LawOf(no permit) = %v %q, want unspecified", law, v)
	}
}

// TestSchemes: DOMAIN.md 1.2 (intro 18–55, kan tilbys over 55 or without agreement), 1.3 (IL
// training 18–67, § 28 plikt only), 1.4 (IntroL training 16–67, 55–67 rett before 2017), 1.5
// (6A rett to both). Age at the permit date decides.
func TestSchemes(t *testing.T) {
	t.Parallel()
	const (
		rop  = nirv1.Scheme_SCHEME_RETT_OG_PLIKT
		rett = nirv1.Scheme_SCHEME_RETT
		kan  = nirv1.Scheme_SCHEME_KAN_TILBYS
		none = nirv1.Scheme_SCHEME_NONE
		pl   = nirv1.Scheme_SCHEME_PLIKT
	)
	tests := []struct {
		name            string
		birth, permit   string
		basis           nirv1.PermitBasis
		agreement       bool
		intro, training nirv1.Scheme
	}{
		{"IL 17 at permit: neither", "2004-06-02", "2022-06-01", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, true, none, none},
		{"IL 18 at permit", "2004-06-01", "2022-06-01", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, true, rop, rop},
		{"IL 55 at permit", "1967-06-01", "2022-06-01", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, true, rop, rop},
		{"IL 56 at permit: kan tilbys", "1966-06-01", "2022-06-01", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, true, kan, rop},
		{"IL 67 at permit", "1955-06-01", "2022-06-01", nirv1.PermitBasis_PERMIT_BASIS_OVERFORING_35, true, kan, rop},
		{"IL 68 at permit", "1954-06-01", "2022-06-01", nirv1.PermitBasis_PERMIT_BASIS_OVERFORING_35, true, kan, none},
		{"IL settled without agreement: kan tilbys", "1990-01-01", "2022-06-01", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, false, kan, rop},
		{"IL family reunification needs no agreement", "1990-01-01", "2022-06-01", nirv1.PermitBasis_PERMIT_BASIS_FAMILIE_FLYKTNING, false, rop, rop},
		{"IL labour immigrant: plikt only (IL § 28)", "1990-01-01", "2022-06-01", nirv1.PermitBasis_PERMIT_BASIS_ARBEID, false, none, pl},
		{"IL other permanent basis: training only", "1990-01-01", "2022-06-01", nirv1.PermitBasis_PERMIT_BASIS_ANNET_PERMANENT, false, none, rop},
		{"6A: rett to both (IL § 37 d)", "1990-01-01", "2022-06-01", nirv1.PermitBasis_PERMIT_BASIS_KOLLEKTIV_BESKYTTELSE_34, true, rett, rett},
		{"IntroL 16 at permit: training only", "2003-06-01", "2019-06-01", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, true, none, rop},
		{"IntroL 56 at permit: no programme", "1963-06-01", "2019-06-01", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, true, none, rop},
		{"IntroL 60 at permit before 2017: rett only", "1955-06-01", "2015-06-01", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, true, none, rett},
		{"IntroL 60 at permit from 2017: rett og plikt", "1957-06-01", "2017-06-01", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, true, none, rop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := Person{BirthDate: md(tt.birth), PermitDate: md(tt.permit), ArrivalDate: md(tt.permit), PermitBasis: tt.basis, SettledByAgreement: tt.agreement}
			law, _ := LawOf(p)
			intro, training := IntroScheme(p, law), TrainingScheme(p, law)
			if intro.Scheme != tt.intro || training.Scheme != tt.training {
				t.Errorf("schemes = %v / %v, want %v / %v", intro.Scheme, training.Scheme, tt.intro, tt.training)
			}
			for _, r := range []SchemeResult{intro, training} {
				if !strings.HasPrefix(r.Section, "DOMAIN.md ") || r.Version == "" || r.Kategori == "" || r.ReasonNB == "" {
					t.Errorf("scheme result lacks rule, section, version or text: %+v", r)
				}
			}
		})
	}
}

// TestReportingDeadline: DOMAIN.md 6.3, Product decisions 7 (last day of February of Y+1 from
// data year 2018; 15 January before).
func TestReportingDeadline(t *testing.T) {
	t.Parallel()
	tests := []struct {
		year int
		want string
	}{{2016, "2017-01-15"}, {2017, "2018-01-15"}, {2018, "2019-02-28"}, {2022, "2023-02-28"}, {2023, "2024-02-29"}, {2027, "2028-02-29"}}
	for _, tt := range tests {
		if got, v := ReportingDeadline(tt.year); got != md(tt.want) || v.ID == "" {
			t.Errorf("ReportingDeadline(%d) = %s %q, want %s", tt.year, got, v.ID, tt.want)
		}
	}
	// ReportingDeadlineAt: the previous year's deadline until it has passed.
	for now, year := range map[string]int{"2023-02-28": 2022, "2023-03-01": 2023, "2024-02-29": 2023, "2024-01-01": 2023} {
		if d := ReportingDeadlineAt(md(now)); d.DataYear != year {
			t.Errorf("ReportingDeadlineAt(%s).DataYear = %d, want %d", now, d.DataYear, year)
		}
	}
}

// TestProgrammeLatestEnd: DOMAIN.md 2.2 (IL sluttmål table), 1.4 and 1.6 (IntroL 2 + 1 years,
// at most 3), Product decisions 4, and 2.6 [I] (leave extends).
func TestProgrammeLatestEnd(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		law      nirv1.Law
		sluttmal nirv1.Sluttmal
		ext      []int
		leave    []Period
		want     string // "" = cannot compute
	}{
		{"IL høyere utdanning 6 months", nirv1.Law_LAW_IL, nirv1.Sluttmal_SLUTTMAL_HOYERE_UTDANNING, nil, nil, "2022-07-03"},
		{"IL arbeid (vgo) 6 + 6", nirv1.Law_LAW_IL, nirv1.Sluttmal_SLUTTMAL_ARBEID_VGO, []int{6}, nil, "2023-01-03"},
		{"IL arbeid (vgo) extension capped at 6", nirv1.Law_LAW_IL, nirv1.Sluttmal_SLUTTMAL_ARBEID_VGO, []int{12}, nil, "2023-01-03"},
		{"IL fullført vgo 3 years + 1", nirv1.Law_LAW_IL, nirv1.Sluttmal_SLUTTMAL_FULLFORT_VGO, []int{12}, nil, "2026-01-03"},
		{"IL arbeid 2 years", nirv1.Law_LAW_IL, nirv1.Sluttmal_SLUTTMAL_ARBEID, nil, nil, "2024-01-03"},
		{"IL a negative extension shortens nothing", nirv1.Law_LAW_IL, nirv1.Sluttmal_SLUTTMAL_ARBEID, []int{-6, 12}, nil, "2025-01-03"},
		{"IL grunnskole 2 years + leave 10 days", nirv1.Law_LAW_IL, nirv1.Sluttmal_SLUTTMAL_GRUNNSKOLE, nil, []Period{{md("2022-03-01"), md("2022-03-10")}}, "2024-01-13"},
		{"IL without sluttmål", nirv1.Law_LAW_IL, nirv1.Sluttmal_SLUTTMAL_UNSPECIFIED, nil, nil, ""},
		{"6A follows the IL table (1.5 [G])", nirv1.Law_LAW_IL_6A, nirv1.Sluttmal_SLUTTMAL_ARBEID, nil, nil, "2024-01-03"},
		{"IntroL 2 years", nirv1.Law_LAW_INTROL, nirv1.Sluttmal_SLUTTMAL_UNSPECIFIED, nil, nil, "2024-01-03"},
		{"IntroL 2 + 1 years", nirv1.Law_LAW_INTROL, nirv1.Sluttmal_SLUTTMAL_UNSPECIFIED, []int{6, 6}, nil, "2025-01-03"},
		{"IntroL at most 3 years (covid, 1.6)", nirv1.Law_LAW_INTROL, nirv1.Sluttmal_SLUTTMAL_UNSPECIFIED, []int{12, 4}, nil, "2025-01-03"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := NewState("pk")
			s.Law = tt.law
			p := &Programme{Kommune: "0301", Start: md("2022-01-03"), Sluttmal: tt.sluttmal}
			for _, e := range tt.ext {
				p.Extensions = append(p.Extensions, Extension{Months: e})
			}
			for _, l := range tt.leave {
				p.Leave = append(p.Leave, Leave{Period: l})
			}
			end, v, nb, _, ok := ProgrammeLatestEnd(s, p, md("2022-06-01"))
			switch {
			case tt.want == "" && (ok || nb == ""):
				t.Errorf("want cannot compute with a reason, got %s ok=%v reason=%q", end, ok, nb)
			case tt.want != "" && (!ok || end != md(tt.want)):
				t.Errorf("ProgrammeLatestEnd = %s ok=%v (%s), want %s", end, ok, nb, tt.want)
			}
			if v.ID == "" || !strings.HasPrefix(v.Section, "DOMAIN.md") {
				t.Errorf("version %+v lacks id or section", v)
			}
		})
	}
}

// TestTerminationID: DOMAIN.md Product decisions 5 (deterministic ids: ULID time part = the
// termination date, entropy = hash of person key, kommune, programme start and rule).
func TestTerminationID(t *testing.T) {
	t.Parallel()
	start, date := md("2020-04-15"), md("2022-04-15")
	id := TerminationID("pk", "0301", start, nirv1.TerminationRule_TERMINATION_RULE_FRIST_UTLOPT, date)
	if len(id) != 26 || !ValidULID(id) {
		t.Fatalf("TerminationID = %q, not a valid ULID", id)
	}
	if again := TerminationID("pk", "0301", start, nirv1.TerminationRule_TERMINATION_RULE_FRIST_UTLOPT, date); again != id {
		t.Errorf("not deterministic: %s then %s", id, again)
	}
	// The time part decodes to midnight UTC of the termination date.
	var ms uint64
	for _, c := range id[:10] {
		ms = ms<<5 | uint64(strings.IndexRune(crockford, c))
	}
	if got := time.UnixMilli(int64(ms)).UTC(); !got.Equal(date.Time()) {
		t.Errorf("time part = %v, want %v", got, date.Time())
	}
	others := []string{
		TerminationID("pk2", "0301", start, nirv1.TerminationRule_TERMINATION_RULE_FRIST_UTLOPT, date),
		TerminationID("pk", "0302", start, nirv1.TerminationRule_TERMINATION_RULE_FRIST_UTLOPT, date),
		TerminationID("pk", "0301", md("2020-04-16"), nirv1.TerminationRule_TERMINATION_RULE_FRIST_UTLOPT, date),
		TerminationID("pk", "0301", start, nirv1.TerminationRule_TERMINATION_RULE_FLYTTET, date),
		// Length-prefixed parts: moving a character between parts changes the id.
		TerminationID("pk0", "301", start, nirv1.TerminationRule_TERMINATION_RULE_FRIST_UTLOPT, date),
	}
	for i, o := range others {
		if o[10:] == id[10:] {
			t.Errorf("variant %d has the same entropy as the original: %s", i, o)
		}
	}
}

// TestCodes: every refusal code is unique and names a rule, a DOMAIN.md section and a version.
func TestCodes(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, r := range Codes() {
		if seen[r.Code] {
			t.Errorf("code %s used twice", r.Code)
		}
		seen[r.Code] = true
		if !strings.HasPrefix(r.Code, "NIR-R") || r.Rule == "" || r.Version == "" || !strings.HasPrefix(r.Section, "DOMAIN.md ") {
			t.Errorf("incomplete rule %+v", r)
		}
	}
	ids := map[string]bool{}
	for _, v := range Versions() {
		if ids[v.ID] {
			t.Errorf("version %s listed twice", v.ID)
		}
		ids[v.ID] = true
		if !strings.HasPrefix(v.Section, "DOMAIN.md ") || v.Rule == "" || !strings.HasPrefix(v.ID, v.Rule+"/") {
			t.Errorf("incomplete version %+v", v)
		}
		if !v.ValidTo.IsZero() && !v.ValidFrom.Before(v.ValidTo) {
			t.Errorf("version %s: empty validity", v.ID)
		}
	}
}

// TestVersionSelection: a law change is a new version chosen by the effective date, so replaying
// 2022 applies 2022's rules (issue 3.7; DOMAIN.md 3.2 the 2023-08-01 change, 3.4 the 2022
// samfunnskunnskap 75-hour change).
func TestVersionSelection(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"norsk IL before the change", pick(norskILVersions, md("2023-07-31")).ID, "norskfrist-il/2021-01-01"},
		{"norsk IL from the change", pick(norskILVersions, md("2023-08-01")).ID, "norskfrist-il/2023-08-01"},
		{"samfunnskunnskap 2021: 50 hours", pick(samfunnskunnskapVersions, md("2021-12-31")).ID, "timer-samfunnskunnskap/2005-09-01"},
		{"samfunnskunnskap 2022: 75 hours", pick(samfunnskunnskapVersions, md("2022-01-01")).ID, "timer-samfunnskunnskap/2022-01-01"},
		{"6A before utvidet", pick(norsk6AVersions, md("2023-06-30")).ID, "norskfrist-6a/2022-06-15"},
		{"6A with utvidet", pick(norsk6AVersions, md("2023-07-01")).ID, "norskfrist-6a/2023-07-01"},
		{"a date before the first version gets the oldest", pick(norskILVersions, md("2010-01-01")).ID, "norskfrist-il/2021-01-01"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, tt.got, tt.want)
		}
	}
	if h := pick(samfunnskunnskapVersions, md("2022-03-01")).Hours; h != 75 {
		t.Errorf("samfunnskunnskap hours 2022 = %v, want 75", h)
	}
}

// TestRefusal_NoNationalID: no national id ever appears in a refusal (issue 3.4; DOMAIN.md
// Product decisions 8), and every refusal matches ErrRefused and names its rule and section.
func TestRefusal_NoNationalID(t *testing.T) {
	t.Parallel()
	fnr := SyntheticFodselsnummer(md("1990-05-01"), 1)
	reg := newEv("e1", "0301")
	reg.Payload = &nirv1.Event_PersonRegistered{PersonRegistered: &nirv1.PersonRegistered{
		Fodselsnummer: fnr, BirthDate: dpb("1990-05-01"), PermitDate: dpb("2019-01-01"), ArrivalDate: dpb("2018-01-01"),
		PermitBasis: nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, SettlementKommune: "0301",
	}}
	again := newEv("e2", "0301")
	again.Payload = reg.Payload
	sm := newEv("e3", "0301")
	sm.Payload = &nirv1.Event_SluttmalRegistered{SluttmalRegistered: &nirv1.SluttmalRegistered{Sluttmal: nirv1.Sluttmal_SLUTTMAL_ARBEID, Date: dpb("2019-02-01")}}
	rs := Check(NewState("pk"), []*nirv1.Event{reg, again, sm}, md("2019-03-01"))
	codes := map[string]bool{}
	for _, r := range rs {
		codes[r.Code] = true
		for _, msg := range []string{r.MessageNB, r.MessageEN, r.Error()} {
			if strings.Contains(msg, fnr) || strings.Contains(msg, fnr[:6]) && strings.Contains(msg, fnr[6:]) {
				t.Errorf("refusal %s leaks the national id: %s", r.Code, msg)
			}
		}
		if !errors.Is(r, ErrRefused) {
			t.Errorf("refusal %s does not match ErrRefused", r.Code)
		}
		if !strings.Contains(r.MessageNB, r.Rule) || !strings.Contains(r.MessageNB, r.Section) || !strings.Contains(r.MessageEN, r.Section) {
			t.Errorf("message does not name rule and section: %s", r.MessageNB)
		}
	}
	if !codes["NIR-R002"] || !codes["NIR-R010"] {
		t.Errorf("codes = %v, want NIR-R002 (registered twice) and NIR-R010 (IntroL sluttmål)", codes)
	}
}

// TestCheck_DoesNotModifyState: Check works on a copy (the caller folds only accepted events).
func TestCheck_DoesNotModifyState(t *testing.T) {
	t.Parallel()
	s := Fold("pk", []*nirv1.Event{evPerson("e1", "0301", "1990-05-01", "2022-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28)})
	before := Explain(s.Log2Events(), md("2022-06-01")).Text()
	_ = Check(s, []*nirv1.Event{evProgramme("e2", "0301", nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, "2022-03-01")}, md("2022-06-01"))
	if len(s.Programmes) != 0 || s.LastSeq != 1 {
		t.Fatalf("Check modified the state: %d programmes, last seq %d", len(s.Programmes), s.LastSeq)
	}
	if after := Explain(s.Log2Events(), md("2022-06-01")).Text(); after != before {
		t.Errorf("explanation changed:\n%s\nvs\n%s", before, after)
	}
}

// Log2Events returns the logged events (test helper).
func (s *State) Log2Events() []*nirv1.Event {
	var out []*nirv1.Event
	for _, le := range s.log {
		out = append(out, le.Event)
	}
	return out
}

// TestCheckApply_SameAsCheck: CheckApply refuses exactly what Check refuses (here a second
// registration and an IntroL sluttmål among accepted events) and leaves the state folded
// with the events, as Fold would.
func TestCheckApply_SameAsCheck(t *testing.T) {
	t.Parallel()
	base := []*nirv1.Event{evPerson("e1", "0301", "1990-05-01", "2022-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28)}
	fresh := []*nirv1.Event{
		evProgramme("e2", "0301", nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, "2022-03-01"),
		evPerson("e3", "0301", "1990-05-01", "2022-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28),
	}
	now := md("2022-06-01")
	want := Check(Fold("pk", base), fresh, now)
	s := Fold("pk", base)
	got := CheckApply(s, fresh, now)
	if len(want) == 0 {
		t.Fatal("the case must be refused by Check")
	}
	if len(got) != len(want) {
		t.Fatalf("CheckApply gave %d refusals, Check %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Code != want[i].Code || got[i].MessageEN != want[i].MessageEN {
			t.Errorf("refusal %d: CheckApply %s %q, Check %s %q", i, got[i].Code, got[i].MessageEN, want[i].Code, want[i].MessageEN)
		}
	}
	all := Fold("pk", append(slices.Clone(base), fresh...))
	if s.LastSeq != all.LastSeq || len(s.Programmes) != len(all.Programmes) {
		t.Errorf("state after CheckApply: last seq %d, %d programmes; Fold of all: %d, %d", s.LastSeq, len(s.Programmes), all.LastSeq, len(all.Programmes))
	}
	if a, b := Explain(s.Log2Events(), now).Text(), Explain(all.Log2Events(), now).Text(); a != b {
		t.Errorf("explanation after CheckApply differs from Fold of all:\n%s\nvs\n%s", a, b)
	}
}

// TestTrainingStartDue: the 3 months count from settlement in the kommune where training
// started, or the current one while it has not (DOMAIN.md 3.5), or from a later krav.
func TestTrainingStartDue(t *testing.T) {
	t.Parallel()
	person := evPerson("e1", "0301", "1990-05-01", "2022-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28)
	person.GetPersonRegistered().SettlementDate = md("2022-02-01").Proto()
	moved := &nirv1.Event{Id: "e2", Kommune: "4601", Payload: &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: "4601", Date: md("2022-09-15").Proto()}}}
	hours := func(id string, y, m int) *nirv1.Event {
		return &nirv1.Event{Id: id, Kommune: "0301", Payload: &nirv1.Event_TrainingHoursRegistered{TrainingHoursRegistered: &nirv1.TrainingHoursRegistered{
			Type: nirv1.HoursType_HOURS_TYPE_NORSK, Month: &nirv1.YearMonth{Year: int32(y), Month: int32(m)}, Hours: 20}}}
	}
	demand := &nirv1.Event{Id: "e9", Kommune: "0301", Payload: &nirv1.Event_DemandRegistered{DemandRegistered: &nirv1.DemandRegistered{
		Programme: nirv1.Programme_PROGRAMME_OPPLAERING, Date: md("2022-03-20").Proto()}}}
	tests := []struct {
		name       string
		events     []*nirv1.Event
		due, start string
	}{
		{"NotStarted", []*nirv1.Event{person}, "2022-05-01", ""},
		{"StartedBeforeMove", []*nirv1.Event{person, hours("e3", 2022, 4), moved}, "2022-05-01", "2022-04-01"},
		{"NotStartedAfterMove", []*nirv1.Event{person, moved}, "2022-12-15", ""},
		{"LaterKrav", []*nirv1.Event{person, demand}, "2022-06-20", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			due, start := TrainingStartDue(Fold("pk", tt.events))
			if due.String() != tt.due || (tt.start == "" && !start.IsZero()) || (tt.start != "" && start.String() != tt.start) {
				t.Errorf("TrainingStartDue = %v, %v; want %s, %q", due, start, tt.due, tt.start)
			}
		})
	}
}
