package ingest_test

import (
	"context"
	"errors"
	"testing"

	"github.com/oklog/ulid/v2"

	"github.com/introreg/nir/internal/access"
	"github.com/introreg/nir/internal/auth"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// TestService_CurrentKommuneCorrectsPersonWideFacts: after a move, the former kommune still
// registers facts dated in its own period (README, Kommune boundaries), but a fact the fold
// keeps for the whole person (utdanningsbakgrunn and norskmål: last registered wins; an
// exemption counts everywhere) is corrected by the kommune that has the person now, whoever
// registered it and whatever its date (DOMAIN.md Product decisions 16 says a retraction is the
// writer's; 7.4 leaves which kommune edits history after a move open).
//
// Found on 2026-12-06 (review of the write path): before, Oslo, which the person had left for
// Bergen, registered "vgo not completed" backdated into its period over Bergen's newer
// "completed" (the person's norsk deadline follows it), and an exemption, and Bergen's
// retraction of either was denied; now Bergen retracts both and the person's state is Bergen's.
func TestService_CurrentKommuneCorrectsPersonWideFacts(t *testing.T) {
	ctx := context.Background()
	svc, store := newService(t)
	bergen := access.For(auth.Principal{Name: "bergen-fagsystem", Role: auth.RoleKommune, Kommune: "4601"})
	id, reg := person(11, false)
	reg.Event.GetPersonRegistered().SettlementDate = d(2024, 2, 1)
	on := func(k string, p any) *nirv1.Registration {
		ev := &nirv1.Event{Id: ulid.Make().String(), Kommune: k}
		switch p := p.(type) {
		case *nirv1.PersonMoved:
			ev.Payload = &nirv1.Event_PersonMoved{PersonMoved: p}
		case *nirv1.UtdanningsbakgrunnRegistered:
			ev.Payload = &nirv1.Event_UtdanningsbakgrunnRegistered{UtdanningsbakgrunnRegistered: p}
		case *nirv1.ExemptionRegistered:
			ev.Payload = &nirv1.Event_ExemptionRegistered{ExemptionRegistered: p}
		case *nirv1.EventRetracted:
			ev.Payload = &nirv1.Event_EventRetracted{EventRetracted: p}
		default:
			t.Fatalf("payload %T", p)
		}
		return &nirv1.Registration{Person: &nirv1.PersonRef{NationalId: id}, Event: ev}
	}
	pos, err := svc.Append(ctx, oslo, []*nirv1.Registration{reg, on("0301", &nirv1.PersonMoved{ToKommune: "4601", Date: d(2024, 4, 1)})})
	if err != nil {
		t.Fatal(err)
	}
	key := pos[0].PersonKey
	state := func() *rules.State {
		t.Helper()
		events, _, err := store.Read(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		st := rules.NewState(key)
		for _, e := range events {
			st.Apply(e.Seq, e.Event)
		}
		return st
	}

	// Bergen, where the person lives, registers the education background as known now.
	bergenUtd := on("4601", &nirv1.UtdanningsbakgrunnRegistered{UpperSecondaryCompleted: true, Date: d(2024, 5, 15)})
	if _, err := svc.Append(ctx, bergen, []*nirv1.Registration{bergenUtd}); err != nil {
		t.Fatal(err)
	}
	// Oslo, which the person left, registers the opposite dated in its own period (as before)
	// and an exemption; the fold takes them (it is not changed).
	old := on("0301", &nirv1.UtdanningsbakgrunnRegistered{UpperSecondaryCompleted: false, Date: d(2024, 3, 1)})
	ex := on("0301", &nirv1.ExemptionRegistered{Type: nirv1.ExemptionType_EXEMPTION_TYPE_OPPLAERING, LegalBasis: "integreringsloven § 29", Date: d(2024, 3, 1)})
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{old, ex}); err != nil {
		t.Fatalf("Oslo registers facts dated in its own period: %v", err)
	}
	if st := state(); st.Training.Utdanningsbakgrunn == nil || *st.Training.Utdanningsbakgrunn || len(st.Training.Exemptions) != 1 {
		t.Fatalf("setup: utdanningsbakgrunn %v, exemptions %d; want Oslo's (false) and 1", st.Training.Utdanningsbakgrunn, len(st.Training.Exemptions))
	}

	// Oslo may not retract Bergen's registration.
	var de *access.DeniedError
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{on("0301", &nirv1.EventRetracted{EventId: bergenUtd.Event.Id})}); !errors.As(err, &de) || de.Field != "registrations[0].event.event_retracted.event_id" {
		t.Errorf("Oslo retracts Bergen's utdanningsbakgrunn: %v, want denied", err)
	}
	// Bergen retracts both of Oslo's.
	if _, err := svc.Append(ctx, bergen, []*nirv1.Registration{
		on("4601", &nirv1.EventRetracted{EventId: old.Event.Id}), on("4601", &nirv1.EventRetracted{EventId: ex.Event.Id})}); err != nil {
		t.Fatalf("Bergen, where the person lives, retracts Oslo's backdated utdanningsbakgrunn and exemption: %v", err)
	}
	st := state()
	if u := st.Training.Utdanningsbakgrunn; u == nil || !*u {
		t.Errorf("utdanningsbakgrunn %v after Bergen's correction, want Bergen's (true)", u)
	}
	if len(st.Training.Exemptions) != 0 {
		t.Errorf("exemptions %+v after Bergen's retraction, want none", st.Training.Exemptions)
	}
}
