package rules

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

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

// TestRegistrationDate: the date in Norway (Europe/Oslo, DOMAIN.md 0) of recorded_at, or a
// registered period's end when later, or the effective date without a recorded time; the
// regelmotor's events count for nothing (DOMAIN.md Product decisions 5c).
func TestRegistrationDate(t *testing.T) {
	t.Parallel()
	at := func(s string) *timestamppb.Timestamp {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return timestamppb.New(tm)
	}
	tiltak := &nirv1.Event{Id: "a", RecordedAt: at("2024-03-01T23:30:00Z"), Payload: &nirv1.Event_TiltakRegistered{TiltakRegistered: &nirv1.TiltakRegistered{
		FromDate: &nirv1.Date{Year: 2024, Month: 1, Day: 1}, ToDate: &nirv1.Date{Year: 2024, Month: 2, Day: 1}}}}
	ahead := &nirv1.Event{Id: "b", RecordedAt: at("1969-12-31T12:00:00Z"), Payload: &nirv1.Event_TiltakRegistered{TiltakRegistered: &nirv1.TiltakRegistered{
		FromDate: &nirv1.Date{Year: 1969, Month: 12, Day: 1}, ToDate: &nirv1.Date{Year: 1970, Month: 6, Day: 30}}}}
	offline := &nirv1.Event{Id: "c", Payload: &nirv1.Event_SluttmalRegistered{SluttmalRegistered: &nirv1.SluttmalRegistered{Date: &nirv1.Date{Year: 2022, Month: 5, Day: 5}}}}
	computed := &nirv1.Event{Id: "d", RecordedAt: at("2024-03-01T10:00:00Z"), Payload: &nirv1.Event_TerminationComputed{TerminationComputed: &nirv1.TerminationComputed{}}}
	// 23:30 UTC is 00:30 the next day in Oslo in winter (CET), 22:30 UTC is 00:30 in summer (CEST).
	summer := &nirv1.Event{Id: "e", RecordedAt: at("2024-06-30T22:30:00Z"), Payload: &nirv1.Event_SluttmalRegistered{SluttmalRegistered: &nirv1.SluttmalRegistered{Date: &nirv1.Date{Year: 2024, Month: 6, Day: 1}}}}
	for ev, want := range map[*nirv1.Event]Date{tiltak: md("2024-03-02"), ahead: md("1970-06-30"), offline: md("2022-05-05"), computed: {}, summer: md("2024-07-01")} {
		if got := RegistrationDate(ev); got != want {
			t.Errorf("RegistrationDate(%s) = %s, want %s", ev.GetId(), got, want)
		}
	}
	if got := RegistrationDate(&nirv1.Event{RecordedAt: at("1969-12-31T22:59:59Z")}); got != md("1969-12-31") {
		t.Errorf("before the epoch: %s", got)
	}
	if got := RegistrationDate(&nirv1.Event{RecordedAt: at("1969-12-31T23:59:59Z")}); got != md("1970-01-01") {
		t.Errorf("before the epoch in UTC, after it in Oslo: %s", got)
	}
}
