package ingest_test

import (
	"context"
	"testing"

	"github.com/oklog/ulid/v2"

	"github.com/introreg/nir/internal/ingest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// unsettled returns the registration of person i as a person in mottak: no settlement yet
// (no settlement_date, settlement_kommune or agreement), registered by its vertskommune, Oslo.
func unsettled(i int) (string, *nirv1.Registration) {
	id, reg := person(i, false)
	pr := reg.Event.GetPersonRegistered()
	pr.SettlementDate, pr.SettlementKommune, pr.SettledByAgreement = nil, "", false
	return id, reg
}

// TestService_UnsettledPersonReachedByRegisteringKommune: a person in mottak is registered
// before settlement (DOMAIN.md 4, opplæring and kvalifisering i mottak are registered in NIR;
// 6.5, persons in reception belong to the vertskommune), so the kommune that registered the
// person reaches it until a settlement says otherwise.
//
// Found on 2026-12-06 (review of the write path): before, such a registration was accepted and
// then no kommune reached the person (its current kommune was ""): the identical retry, the
// kommune's next event, its retraction of the registration and History all answered NotFound.
// Now the registering kommune has the person: the retry is a duplicate, the rest succeed.
func TestService_UnsettledPersonReachedByRegisteringKommune(t *testing.T) {
	ctx := context.Background()
	svc, store := newService(t)
	id, reg := unsettled(7)
	pos, err := svc.Append(ctx, oslo, []*nirv1.Registration{reg})
	if err != nil {
		t.Fatalf("registration of a person in mottak: %v", err)
	}
	// The identical retry, on this nird and on another one (whose cache does not hold the
	// person), is a duplicate answered with the original position.
	for name, s := range map[string]*ingest.Service{"same nird": svc, "another nird": serviceOn(t, store)} {
		again, err := s.Append(ctx, oslo, []*nirv1.Registration{reg})
		if err != nil {
			t.Fatalf("%s: identical retry: %v (want a duplicate)", name, err)
		}
		if !again[0].Duplicate || again[0].Sequence != pos[0].Sequence {
			t.Errorf("%s: identical retry answered %v, want duplicate at %d", name, again[0], pos[0].Sequence)
		}
	}
	rp := &nirv1.Registration{Person: &nirv1.PersonRef{NationalId: id}, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301",
		Payload: &nirv1.Event_ReceptionParticipationRegistered{ReceptionParticipationRegistered: &nirv1.ReceptionParticipationRegistered{
			Activity: nirv1.ReceptionActivity_RECEPTION_ACTIVITY_NORSK, FromDate: d(2024, 2, 1), Hours: 10}}}}
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{rp}); err != nil {
		t.Errorf("the registering kommune's participation in mottak: %v", err)
	}
	if _, _, err := svc.History(ctx, oslo, &nirv1.PersonRef{NationalId: id}); err != nil {
		t.Errorf("History for the registering kommune: %v", err)
	}
	rt := &nirv1.Registration{Person: &nirv1.PersonRef{NationalId: id}, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301",
		Payload: &nirv1.Event_EventRetracted{EventRetracted: &nirv1.EventRetracted{EventId: reg.Event.Id}}}}
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{rt}); err != nil {
		t.Errorf("the registering kommune's retraction of its own registration: %v", err)
	}
}
