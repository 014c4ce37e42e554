package rules

import (
	"strings"
	"testing"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

func withPayload(id, kommune string, p any) *nirv1.Event {
	e := newEv(id, kommune)
	switch x := p.(type) {
	case *nirv1.PersonRegistered:
		e.Payload = &nirv1.Event_PersonRegistered{PersonRegistered: x}
	case *nirv1.SluttmalRegistered:
		e.Payload = &nirv1.Event_SluttmalRegistered{SluttmalRegistered: x}
	case *nirv1.IntegreringskontraktRegistered:
		e.Payload = &nirv1.Event_IntegreringskontraktRegistered{IntegreringskontraktRegistered: x}
	case *nirv1.UtdanningsbakgrunnRegistered:
		e.Payload = &nirv1.Event_UtdanningsbakgrunnRegistered{UtdanningsbakgrunnRegistered: x}
	case *nirv1.NorskmalRegistered:
		e.Payload = &nirv1.Event_NorskmalRegistered{NorskmalRegistered: x}
	case *nirv1.FullTimeUpperSecondaryRegistered:
		e.Payload = &nirv1.Event_FullTimeUpperSecondaryRegistered{FullTimeUpperSecondaryRegistered: x}
	case *nirv1.TrainingVedtakRegistered:
		e.Payload = &nirv1.Event_TrainingVedtakRegistered{TrainingVedtakRegistered: x}
	case *nirv1.TiltakRegistered:
		e.Payload = &nirv1.Event_TiltakRegistered{TiltakRegistered: x}
	case *nirv1.TrainingHoursRegistered:
		e.Payload = &nirv1.Event_TrainingHoursRegistered{TrainingHoursRegistered: x}
	case *nirv1.ProgrammeVedtakRegistered:
		e.Payload = &nirv1.Event_ProgrammeVedtakRegistered{ProgrammeVedtakRegistered: x}
	case *nirv1.TerminationRegistered:
		e.Payload = &nirv1.Event_TerminationRegistered{TerminationRegistered: x}
	case *nirv1.TerminationComputed:
		e.Payload = &nirv1.Event_TerminationComputed{TerminationComputed: x}
	case *nirv1.ComputedTerminationDeleted:
		e.Payload = &nirv1.Event_ComputedTerminationDeleted{ComputedTerminationDeleted: x}
	case *nirv1.EventRetracted:
		e.Payload = &nirv1.Event_EventRetracted{EventRetracted: x}
	case *nirv1.AbsenceRegistered:
		e.Payload = &nirv1.Event_AbsenceRegistered{AbsenceRegistered: x}
	case *nirv1.IdentifierAdded:
		e.Payload = &nirv1.Event_IdentifierAdded{IdentifierAdded: x}
	case *nirv1.PersonsMerged:
		e.Payload = &nirv1.Event_PersonsMerged{PersonsMerged: x}
	case *nirv1.PersonErased:
		e.Payload = &nirv1.Event_PersonErased{PersonErased: x}
	case *nirv1.PersonMergedInto:
		e.Payload = &nirv1.Event_PersonMergedInto{PersonMergedInto: x}
	case *nirv1.OfferRegistered:
		e.Payload = &nirv1.Event_OfferRegistered{OfferRegistered: x}
	}
	return e
}

// TestCheck_Matrix has one case per refusal code (issue 3.4), each against a small history, and
// fails if a code of Codes() has no case. The cases cite the DOMAIN.md section of the rule.
func TestCheck_Matrix(t *testing.T) {
	addedFnr := &nirv1.IdentifierAdded{Type: nirv1.IdentifierType_IDENTIFIER_TYPE_FODSELSNUMMER,
		NationalId: SyntheticFodselsnummer(MustDate(1990, 1, 1), 3), Date: dpb("2023-01-01"), Source: "folkeregisteret"}
	t.Parallel()
	const (
		k   = "0301"
		now = "2024-06-01"
	)
	il := evPerson("h1", k, "1990-01-01", "2022-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28)
	introl := evPerson("h1", k, "1990-01-01", "2019-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28)
	sixA := evPerson("h1", k, "1990-01-01", "2022-04-01", nirv1.PermitBasis_PERMIT_BASIS_KOLLEKTIV_BESKYTTELSE_34)
	prog := evProgramme("h2", k, nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, "2022-03-01")
	sluttmal := withPayload("h3", k, &nirv1.SluttmalRegistered{Sluttmal: nirv1.Sluttmal_SLUTTMAL_ARBEID, Date: dpb("2022-03-01")})
	training := withPayload("h4", k, &nirv1.TrainingVedtakRegistered{Scheme: nirv1.TrainingScheme_TRAINING_SCHEME_RETT_OG_PLIKT,
		Type: nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING, VedtakDate: dpb("2022-03-01"), StartDate: dpb("2022-03-01")})
	computed := withPayload("h5", k, &nirv1.TerminationComputed{Rule: nirv1.TerminationRule_TERMINATION_RULE_FRIST_UTLOPT,
		Reason: nirv1.TerminationReason_TERMINATION_REASON_IKKE_REGISTRERT, Date: dpb("2024-03-01"), ProgrammeStart: dpb("2022-03-01")})
	term := func(reason nirv1.TerminationReason) *nirv1.Event {
		return withPayload("n1", k, &nirv1.TerminationRegistered{Kind: nirv1.TerminationKind_TERMINATION_KIND_FULLFORT, Reason: reason, Date: dpb("2024-02-01")})
	}
	tests := []struct {
		code    string
		section string
		history []*nirv1.Event
		ev      *nirv1.Event
	}{
		{"NIR-R001", "Product decisions 8", nil, withPayload("n1", k, &nirv1.SluttmalRegistered{Sluttmal: nirv1.Sluttmal_SLUTTMAL_ARBEID})},
		{"NIR-R002", "Product decisions 8", []*nirv1.Event{il}, evPerson("n1", k, "1990-01-01", "2022-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28)},
		{"NIR-R003", "5", []*nirv1.Event{il}, withPayload("n1", k, &nirv1.EventRetracted{EventId: "nope"})},
		{"NIR-R004", "Product decisions 5", []*nirv1.Event{il, prog}, withPayload("n1", k, &nirv1.ComputedTerminationDeleted{ComputedEventId: "h2"})},
		{"NIR-R050", "Product decisions 15", []*nirv1.Event{il, withPayload("h8", k, addedFnr)}, withPayload("n1", k, addedFnr)},
		{"NIR-R051", "Product decisions 15", []*nirv1.Event{il, withPayload("h8", k, addedFnr)}, withPayload("n1", k, &nirv1.EventRetracted{EventId: "h8"})},
		// Found on 2026-12-06 (review of the identity lifecycle): before, a fødselsnummer of
		// another birth date than the person's was added; now NIR-R059 refuses it.
		{"NIR-R059", "Product decisions 15", []*nirv1.Event{il}, withPayload("n1", k, &nirv1.IdentifierAdded{Type: nirv1.IdentifierType_IDENTIFIER_TYPE_FODSELSNUMMER,
			NationalId: SyntheticFodselsnummer(MustDate(1990, 1, 2), 3), Date: dpb("2023-01-01"), Source: "folkeregisteret"})},
		{"NIR-R054", "Product decisions 15", []*nirv1.Event{il, withPayload("h8", k, &nirv1.PersonsMerged{AbsorbedPersonKey: strings.Repeat("a", 64)}),
			withPayload("h9", k, &nirv1.EventRetracted{EventId: "h8"})}, withPayload("n1", k, &nirv1.EventRetracted{EventId: "h9"})},
		// Found on 2026-12-06 (review of the identity lifecycle): before, a merge that came
		// with a later merge (h7, copied by h8) could be retracted on the survivor of the later
		// one, reopening its absorbed person while the person that recorded it still held its
		// events; now NIR-R057 refuses it.
		{"NIR-R057", "Product decisions 15", []*nirv1.Event{il, withPayload("h8", k, &nirv1.PersonsMerged{AbsorbedPersonKey: strings.Repeat("b", 64),
			AbsorbedEvents: []*nirv1.Event{withPayload("h7", k, &nirv1.PersonsMerged{AbsorbedPersonKey: strings.Repeat("a", 64)})}})},
			withPayload("n1", k, &nirv1.EventRetracted{EventId: "h7"})},
		{"NIR-R055", "Product decisions 15", []*nirv1.Event{il, withPayload("h8", k, &nirv1.PersonErased{Reason: "r"})}, withPayload("n1", k, &nirv1.SluttmalRegistered{Sluttmal: nirv1.Sluttmal_SLUTTMAL_ARBEID})},
		{"NIR-R056", "Product decisions 15", []*nirv1.Event{il, withPayload("h8", k, &nirv1.PersonErased{Reason: "r"})}, withPayload("n1", k, &nirv1.EventRetracted{EventId: "h8"})},
		{"NIR-R005", "5", []*nirv1.Event{il, prog, withPayload("h9", k, &nirv1.EventRetracted{EventId: "h2"})}, withPayload("n1", k, &nirv1.EventRetracted{EventId: "h2"})},
		{"NIR-R010", "1.4", []*nirv1.Event{introl, prog}, withPayload("n1", k, &nirv1.SluttmalRegistered{Sluttmal: nirv1.Sluttmal_SLUTTMAL_ARBEID})},
		{"NIR-R011", "1.4", []*nirv1.Event{introl, prog}, withPayload("n1", k, &nirv1.IntegreringskontraktRegistered{})},
		{"NIR-R012", "1.4", []*nirv1.Event{introl}, withPayload("n1", k, &nirv1.UtdanningsbakgrunnRegistered{UpperSecondaryCompleted: true})},
		{"NIR-R013", "1.4", []*nirv1.Event{introl}, withPayload("n1", k, &nirv1.NorskmalRegistered{Listening: nirv1.CefrLevel_CEFR_LEVEL_B1})},
		{"NIR-R014", "1.4", []*nirv1.Event{introl}, withPayload("n1", k, &nirv1.FullTimeUpperSecondaryRegistered{FromDate: dpb("2022-01-01")})},
		{"NIR-R015", "3.2", []*nirv1.Event{sixA}, withPayload("n1", k, &nirv1.UtdanningsbakgrunnRegistered{UpperSecondaryCompleted: true, Date: dpb("2024-01-01")})},
		{"NIR-R016", "3.2", []*nirv1.Event{sixA}, withPayload("n1", k, &nirv1.TrainingVedtakRegistered{Scheme: nirv1.TrainingScheme_TRAINING_SCHEME_UTVIDET_6A,
			Type: nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING, VedtakDate: dpb("2024-01-01"), StartDate: dpb("2024-01-01")})},
		{"NIR-R017", "1.5", []*nirv1.Event{il}, withPayload("n1", k, &nirv1.TrainingVedtakRegistered{Scheme: nirv1.TrainingScheme_TRAINING_SCHEME_RETT_6A,
			Type: nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING, VedtakDate: dpb("2024-01-01"), StartDate: dpb("2024-01-01")})},
		{"NIR-R020", "2.1", []*nirv1.Event{il, prog, sluttmal}, withPayload("n1", k, &nirv1.TiltakRegistered{Code: nirv1.TiltakCode_TILTAK_CODE_KURS,
			FromDate: dpb("2024-03-01"), ToDate: dpb("2024-04-01")})},
		{"NIR-R021", "3.1", []*nirv1.Event{il}, withPayload("n1", k, &nirv1.TrainingHoursRegistered{Type: nirv1.HoursType_HOURS_TYPE_NORSK,
			Month: &nirv1.YearMonth{Year: 2023, Month: 1}, Hours: 10})},
		{"NIR-R022", "2.2", []*nirv1.Event{il, prog, sluttmal}, withPayload("n1", k, &nirv1.ProgrammeVedtakRegistered{Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_UTVIDELSE,
			VedtakDate: dpb("2024-01-01"), FromDate: dpb("2024-03-01"), ExtensionMonths: 13})},
		{"NIR-R023", "Product decisions 5", []*nirv1.Event{introl, prog, computed}, term(nirv1.TerminationReason_TERMINATION_REASON_ARBEID)},
		{"NIR-R024", "2.1", []*nirv1.Event{il}, term(nirv1.TerminationReason_TERMINATION_REASON_ARBEID)},
		// Computed from a state the person's history has moved past: the kommune registered
		// the actual reason first.
		{"NIR-R027", "Product decisions 5", []*nirv1.Event{introl, prog, withPayload("h6", k, &nirv1.TerminationRegistered{
			Kind: nirv1.TerminationKind_TERMINATION_KIND_FULLFORT, Reason: nirv1.TerminationReason_TERMINATION_REASON_ARBEID, Date: dpb("2024-02-01")})},
			dueOn(Fold("pk", []*nirv1.Event{introl, prog}), md(now), "n1")},
		{"NIR-R025", "Product decisions 5a", []*nirv1.Event{il, prog}, term(nirv1.TerminationReason_TERMINATION_REASON_IKKE_REGISTRERT)},
		{"NIR-R026", "Product decisions 10", []*nirv1.Event{il, prog, withPayload("h6", k, &nirv1.UtdanningsbakgrunnRegistered{UpperSecondaryCompleted: true, Date: dpb("2022-02-01")})},
			withPayload("n1", k, &nirv1.SluttmalRegistered{Sluttmal: nirv1.Sluttmal_SLUTTMAL_FULLFORT_VGO, Date: dpb("2022-03-01")})},
		{"NIR-R030", "2.1", []*nirv1.Event{il, prog, sluttmal}, withPayload("n1", k, &nirv1.IntegreringskontraktRegistered{Date: dpb("2030-01-01")})},
		// Found on 2026-12-06 (review of the write path): before, an offer dated thirty years
		// before the person was born was accepted; now NIR-R032 refuses it.
		{"NIR-R032", "2.1", []*nirv1.Event{il}, withPayload("n1", k, &nirv1.OfferRegistered{Programme: nirv1.Programme_PROGRAMME_INTRO, Date: dpb("1960-03-01")})},
		{"NIR-R031", "2.1", []*nirv1.Event{il, prog, sluttmal}, withPayload("n1", k, &nirv1.AbsenceRegistered{Programme: nirv1.Programme_PROGRAMME_INTRO,
			Type: nirv1.AbsenceType_ABSENCE_TYPE_FRAVAER_GYLDIG, FromDate: dpb("2023-03-10"), ToDate: dpb("2023-03-01")})},
		{"NIR-R040", "3.4", []*nirv1.Event{il, training}, withPayload("n1", k, &nirv1.TrainingHoursRegistered{Type: nirv1.HoursType_HOURS_TYPE_NORSK,
			Month: &nirv1.YearMonth{Year: 2023, Month: 2}, Hours: 230})},
		{"NIR-R041", "3.4", []*nirv1.Event{il, training}, withPayload("n1", k, &nirv1.TrainingHoursRegistered{Type: nirv1.HoursType_HOURS_TYPE_SAMFUNNSKUNNSKAP_MODUL_2,
			Month: &nirv1.YearMonth{Year: 2021, Month: 12}, Hours: 10})},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.code] = true
		t.Run(tt.code, func(t *testing.T) {
			t.Parallel()
			rs := Check(Fold("pk", tt.history), []*nirv1.Event{tt.ev}, md(now))
			found := false
			for _, r := range rs {
				if r.Code == tt.code {
					found = true
					if r.EventID != "n1" || !strings.Contains(r.Section, tt.section) || r.Version == "" {
						t.Errorf("refusal %+v: want event n1, section with %q, a version", r, tt.section)
					}
				}
			}
			if !found {
				t.Errorf("DOMAIN.md %s: want %s, got %v", tt.section, tt.code, rs)
			}
		})
	}
	// CheckMerge's rules (DOMAIN.md Product decisions 15), with the absorbed person's history.
	merge := withPayload("n1", k, &nirv1.PersonsMerged{AbsorbedPersonKey: strings.Repeat("a", 64)})
	survivor := Fold("pk", []*nirv1.Event{il})
	// A chain of merges into the absorbed person: x1 into x2 into x3 into it (depth 3).
	regOf := func(id string) *nirv1.Event {
		return evPerson(id, k, "1990-01-01", "2023-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28)
	}
	m1 := withPayload("m1", k, &nirv1.PersonsMerged{AbsorbedPersonKey: "p1", AbsorbedEvents: []*nirv1.Event{regOf("x1")}})
	m2 := withPayload("m2", k, &nirv1.PersonsMerged{AbsorbedPersonKey: "p2", AbsorbedEvents: []*nirv1.Event{regOf("x2"), m1}})
	m3 := withPayload("m3", k, &nirv1.PersonsMerged{AbsorbedPersonKey: "p3", AbsorbedEvents: []*nirv1.Event{regOf("x3"), m2}})
	for _, m := range []struct {
		code, detail string
		absorbed     *State
	}{
		{"NIR-R052", "birth date", Fold("pa", []*nirv1.Event{evPerson("a1", k, "1990-01-02", "2023-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28)})},
		{"NIR-R053", "", Fold("pa", nil)},
		// Found on 2026-12-06 (review of the identity lifecycle): before, merges were nested
		// without bound, and an id claimed by x1 (claim, x1, x2, x3, absorbed, survivor: five
		// links) found nobody; now NIR-R058 refuses the merge that makes such a chain.
		{"NIR-R058", "3 merges into the absorbed person", Fold("pa", []*nirv1.Event{regOf("a1"), m3})},
		{"NIR-R053", "", Fold("pk", []*nirv1.Event{il})},
	} {
		covered[m.code] = true
		rs := CheckMerge(survivor, m.absorbed, merge)
		if len(rs) != 1 || rs[0].Code != m.code || rs[0].EventID != "n1" || !strings.Contains(rs[0].Section, "Product decisions 15") || !strings.Contains(rs[0].MessageEN, m.detail) {
			t.Errorf("CheckMerge: %v, want %s naming %q", rs, m.code, m.detail)
		}
	}
	if rs := CheckMerge(survivor, Fold("pa", []*nirv1.Event{evPerson("a1", k, "1990-01-01", "2023-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28)}), merge); len(rs) != 0 {
		t.Errorf("CheckMerge of the same birth date and sex: %v, want accepted", rs)
	}
	for name, absorbed := range map[string]*State{
		"a chain of two merges (four links from x1's claim)": Fold("pa", []*nirv1.Event{regOf("a1"), m2}),
		"a chain of three with the nested x2 un-merged":      Fold("pa", []*nirv1.Event{regOf("a1"), m3, withPayload("r1", k, &nirv1.EventRetracted{EventId: "m2"})}),
		"a chain of three un-merged":                         Fold("pa", []*nirv1.Event{regOf("a1"), m3, withPayload("r1", k, &nirv1.EventRetracted{EventId: "m3"})}),
	} {
		if rs := CheckMerge(survivor, absorbed, merge); len(rs) != 0 {
			t.Errorf("CheckMerge of %s: %v, want accepted", name, rs)
		}
	}
	for _, c := range Codes() {
		if !covered[c.Code] {
			t.Errorf("no test case for %s (%s)", c.Code, c.Rule)
		}
	}
	// The accepted counterparts: the same kinds of events where the law allows them.
	ok := []struct {
		name    string
		history []*nirv1.Event
		ev      *nirv1.Event
	}{
		{"IL sluttmål (2.2)", []*nirv1.Event{il, prog}, withPayload("n1", k, &nirv1.SluttmalRegistered{Sluttmal: nirv1.Sluttmal_SLUTTMAL_ARBEID, Date: dpb("2022-03-01")})},
		{"IL sluttmål of the deltakergruppe of the utdanningsbakgrunn (Product decisions 10)", []*nirv1.Event{il, prog,
			withPayload("h6", k, &nirv1.UtdanningsbakgrunnRegistered{UpperSecondaryCompleted: true, Date: dpb("2022-02-01")})},
			withPayload("n1", k, &nirv1.SluttmalRegistered{Sluttmal: nirv1.Sluttmal_SLUTTMAL_HOYERE_UTDANNING, Date: dpb("2022-03-01")})},
		{"IL Legg til over a computed termination (Product decisions 5)", []*nirv1.Event{il, prog, sluttmal, computed}, term(nirv1.TerminationReason_TERMINATION_REASON_ARBEID)},
		{"hours inside the training vedtak (3.1)", []*nirv1.Event{il, training}, withPayload("n1", k, &nirv1.TrainingHoursRegistered{Type: nirv1.HoursType_HOURS_TYPE_SAMFUNNSKUNNSKAP_MODUL_1,
			Month: &nirv1.YearMonth{Year: 2023, Month: 2}, Hours: 20})},
		{"retraction of a known event (5)", []*nirv1.Event{il, prog}, withPayload("n1", k, &nirv1.EventRetracted{EventId: "h2"})},
		{"a fødselsnummer of the person's birth date (Product decisions 15)", []*nirv1.Event{il}, withPayload("n1", k, addedFnr)},
		{"a computed termination due (Product decisions 5)", []*nirv1.Event{introl, prog}, DueTerminations(Fold("pk", []*nirv1.Event{introl, prog}), md(now))[0]},
	}
	for _, tt := range ok {
		if rs := Check(Fold("pk", tt.history), []*nirv1.Event{tt.ev}, md(now)); len(rs) != 0 {
			t.Errorf("%s: refused %v", tt.name, rs)
		}
	}
}

// dueOn is the termination due for s on now, under the event id id (the matrix names the
// refused event n1; the refusal is for content the rules no longer compute, whatever its id).
func dueOn(s *State, now Date, id string) *nirv1.Event {
	ev := DueTerminations(s, now)[0]
	ev.Id = id
	return ev
}
