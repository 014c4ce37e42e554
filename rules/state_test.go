package rules

import (
	"testing"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestFold_Programme folds a registration, a programme and its termination (DOMAIN.md 2.1,
// 2.5) and checks the state that projections read.
func TestFold_Programme(t *testing.T) {
	t.Parallel()
	evs := []*nirv1.Event{
		evPerson("01", "0301", "1990-05-01", "2022-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28),
		evProgramme("02", "0301", nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, "2022-03-01"),
		evTermination("03", "0301", nirv1.TerminationReason_TERMINATION_REASON_ARBEID, "2023-01-31"),
	}
	s := Fold("pk", evs)
	if !s.Registered || s.Law != nirv1.Law_LAW_IL || s.Kommune != "0301" || s.LastSeq != 3 {
		t.Fatalf("registered=%v law=%v kommune=%q lastSeq=%d", s.Registered, s.Law, s.Kommune, s.LastSeq)
	}
	if len(s.Programmes) != 1 {
		t.Fatalf("programmes = %d, want 1", len(s.Programmes))
	}
	p := s.Programmes[0]
	if p.Start != MustParseDate("2022-03-01") || p.Termination == nil || p.Termination.Reason != nirv1.TerminationReason_TERMINATION_REASON_ARBEID {
		t.Fatalf("programme = %+v", p)
	}
}

func newEv(id, kommune string) *nirv1.Event {
	return &nirv1.Event{Id: id, Kommune: kommune}
}

func dpb(s string) *nirv1.Date { return MustParseDate(s).Proto() }

func evPerson(id, kommune, birth, permit string, basis nirv1.PermitBasis) *nirv1.Event {
	e := newEv(id, kommune)
	e.Payload = &nirv1.Event_PersonRegistered{PersonRegistered: &nirv1.PersonRegistered{
		BirthDate: dpb(birth), PermitDate: dpb(permit), ArrivalDate: dpb(permit), PermitBasis: basis,
		SettlementDate: dpb(permit), SettlementKommune: kommune, SettledByAgreement: true,
	}}
	return e
}

func evProgramme(id, kommune string, typ nirv1.ProgrammeVedtakType, from string) *nirv1.Event {
	e := newEv(id, kommune)
	e.Payload = &nirv1.Event_ProgrammeVedtakRegistered{ProgrammeVedtakRegistered: &nirv1.ProgrammeVedtakRegistered{
		Type: typ, VedtakDate: dpb(from), FromDate: dpb(from),
	}}
	return e
}

func evTermination(id, kommune string, reason nirv1.TerminationReason, date string) *nirv1.Event {
	e := newEv(id, kommune)
	e.Payload = &nirv1.Event_TerminationRegistered{TerminationRegistered: &nirv1.TerminationRegistered{
		Kind: nirv1.TerminationKind_TERMINATION_KIND_FULLFORT, Reason: reason, Date: dpb(date),
	}}
	return e
}
