package ingest_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/oklog/ulid/v2"

	"github.com/introreg/nir/internal/access"
	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/ingest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestService_ImpossibleValuesRefused: the write path refuses a date before the person's birth
// date (NIR-R032, DOMAIN.md 2.1, 1.2) and more hours for an open-ended period than 8 a day of
// the days it has run (NIR-R040, DOMAIN.md 2.6, 3.4, 4). A settlement dated before the permit
// is accepted: DOMAIN.md does not make it impossible (rett og plikt may arise on arrival, on
// settlement by agreement or on a demand, 1.3; persons may be settled without agreement, 1.2).
// A request that sends a new person's event before its registration is told the order, naming
// the field and NIR-R001, the same for another kommune's person.
//
// Found on 2026-12-06 (review of the write path): before, an offer dated 1960 and a demand
// dated 1955 for a person born 1990, a programme tildeling from 1960, 1e300 hours in mottak
// and 744 hours of absence from today, both open-ended, were stored, and [offer,
// registration] answered "person not found" naming neither field nor rule. Now each is
// refused with its rule, and the order error names registrations[0].event and
// registrations[1].
func TestService_ImpossibleValuesRefused(t *testing.T) {
	ctx := context.Background()
	svc, store := newService(t)
	id, reg := person(41, false)
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{reg}); err != nil {
		t.Fatal(err)
	}
	on := func(ev *nirv1.Event) *nirv1.Registration {
		ev.Id, ev.Kommune = ulid.Make().String(), "0301"
		return &nirv1.Registration{Person: &nirv1.PersonRef{NationalId: id}, Event: ev}
	}
	cases := []struct {
		name, code string
		reg        *nirv1.Registration
	}{
		{"reception participation of 1e300 hours, open-ended", "NIR-R040", on(&nirv1.Event{Payload: &nirv1.Event_ReceptionParticipationRegistered{ReceptionParticipationRegistered: &nirv1.ReceptionParticipationRegistered{
			Activity: nirv1.ReceptionActivity_RECEPTION_ACTIVITY_NORSK, FromDate: d(2024, 1, 15), Hours: 1e300}}})},
		{"absence of 744 hours starting today, open-ended", "NIR-R040", on(&nirv1.Event{Payload: &nirv1.Event_AbsenceRegistered{AbsenceRegistered: &nirv1.AbsenceRegistered{
			Programme: nirv1.Programme_PROGRAMME_OPPLAERING, Type: nirv1.AbsenceType(1), FromDate: d(2024, 6, 3), Hours: 744}}})},
		{"an offer dated 1960, before the person was born (1990)", "NIR-R032", on(&nirv1.Event{Payload: &nirv1.Event_OfferRegistered{OfferRegistered: &nirv1.OfferRegistered{
			Programme: nirv1.Programme_PROGRAMME_INTRO, Date: d(1960, 3, 1)}}})},
		{"a demand dated 1955", "NIR-R032", on(&nirv1.Event{Payload: &nirv1.Event_DemandRegistered{DemandRegistered: &nirv1.DemandRegistered{
			Programme: nirv1.Programme_PROGRAMME_INTRO, Date: d(1955, 3, 1)}}})},
		{"a programme tildeling from 1960", "NIR-R032", on(&nirv1.Event{Payload: &nirv1.Event_ProgrammeVedtakRegistered{ProgrammeVedtakRegistered: &nirv1.ProgrammeVedtakRegistered{
			Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, VedtakDate: d(1960, 1, 1), FromDate: d(1960, 1, 1)}}})},
	}
	was, _ := store.LastSeq(ctx)
	for _, c := range cases {
		_, err := svc.Append(ctx, oslo, []*nirv1.Registration{c.reg})
		if !errors.Is(err, ingest.ErrRefused) || !strings.Contains(err.Error(), c.code) {
			t.Errorf("%s: %v; want refused by %s", c.name, err, c.code)
		}
	}
	if n, _ := store.LastSeq(ctx); n != was {
		t.Errorf("the refused registrations stored %d events", n-was)
	}
	// Settled before the permit: accepted (see above).
	_, reg2 := person(42, false)
	pr := reg2.Event.GetPersonRegistered()
	pr.PermitDate, pr.ArrivalDate, pr.SettlementDate = d(2024, 5, 1), d(2023, 12, 1), d(2024, 1, 2)
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{reg2}); err != nil {
		t.Errorf("settlement_date 2024-01-02 before permit_date 2024-05-01: %v; want accepted", err)
	}

	// The registration after the person's first event: the same answer for a new person and
	// for another kommune's (Oslo's person 41, named by Bergen).
	bergen := access.For(auth.Principal{Name: "bergen-fagsystem", Role: auth.RoleKommune, Kommune: "4601"})
	inBergen := func(r *nirv1.Registration) *nirv1.Registration {
		r.Event.Kommune = "4601"
		if p := r.Event.GetPersonRegistered(); p != nil {
			p.SettlementKommune = "4601"
		}
		return r
	}
	newID, newReg := person(43, false)
	_, oldReg := person(41, false)
	var answers []string
	for _, c := range []struct {
		id  string
		reg *nirv1.Registration
	}{{newID, newReg}, {id, oldReg}} {
		first := inBergen(offer(c.id))
		first.Event.GetOfferRegistered().Date = d(2024, 6, 1)
		_, err := svc.Append(ctx, bergen, []*nirv1.Registration{first, inBergen(c.reg)})
		var ie *ingest.InvalidError
		if !errors.As(err, &ie) || ie.Field != "registrations[0].event" || !strings.Contains(err.Error(), "NIR-R001") || !strings.Contains(err.Error(), "registrations[1]") {
			t.Errorf("[offer, registration]: %v; want invalid registrations[0].event naming NIR-R001 and registrations[1]", err)
		}
		if err != nil {
			answers = append(answers, err.Error())
		}
	}
	if len(answers) == 2 && answers[0] != answers[1] {
		t.Errorf("a new person and another kommune's are told apart: %q, %q", answers[0], answers[1])
	}
}
