package ingest_test

import (
	"context"
	"errors"
	"testing"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/proto"

	"github.com/introreg/nir/internal/access"
	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/ingest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// TestService_RetryAfterMerge: a re-sent event returns the original position with duplicate
// set (README Idempotent), also when an operator has merged the event's person into another in
// between (DOMAIN.md Product decisions 15): the event, copied into the survivor by the merge,
// is found there and answered with its position on the absorbed person's stream, by either id
// of the merged person, on this nird and on another one. Other content under its id is a new
// event that needs an id of its own.
//
// Found on 2026-12-06 (review of the write path): before, the identical re-send was refused
// as "already stored for another person" (AlreadyExists), and a case system that re-sent it
// under a new id, as the error told it to, had the survivor hold the event twice. Now the
// re-send is a duplicate.
func TestService_RetryAfterMerge(t *testing.T) {
	ctx := context.Background()
	svc, store := newService(t)
	dnr, fnr, _, pos := registeredTwice(t, svc, 31)
	survivor, absorbed := pos[0].PersonKey, pos[1].PersonKey
	rp := &nirv1.Registration{Person: &nirv1.PersonRef{NationalId: fnr}, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301",
		Payload: &nirv1.Event_ReceptionParticipationRegistered{ReceptionParticipationRegistered: &nirv1.ReceptionParticipationRegistered{
			Activity: nirv1.ReceptionActivity_RECEPTION_ACTIVITY_NORSK, FromDate: d(2024, 1, 15), ToDate: d(2024, 1, 31), Hours: 40}}}}
	first, err := svc.Append(ctx, oslo, []*nirv1.Registration{rp})
	if err != nil {
		t.Fatal(err)
	}
	if first[0].PersonKey != absorbed {
		t.Fatalf("the participation went to %s, want the fødselsnummer's person", first[0].PersonKey)
	}
	operator := access.For(auth.Principal{Name: "drift", Role: auth.RoleOperator})
	if _, err := svc.Append(ctx, operator, []*nirv1.Registration{mergeReg(dnr, absorbed)}); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name string
		svc  *ingest.Service
		id   string
	}{{"by the absorbed person's id", svc, fnr}, {"by the survivor's id", svc, dnr}, {"on another nird", serviceOn(t, store), fnr}} {
		again := proto.Clone(rp).(*nirv1.Registration)
		again.Person = &nirv1.PersonRef{NationalId: c.id}
		got, err := c.svc.Append(ctx, oslo, []*nirv1.Registration{again})
		if err != nil {
			t.Errorf("%s: the identical re-send after the merge: %v; want a duplicate", c.name, err)
			continue
		}
		if !got[0].Duplicate || got[0].Sequence != first[0].Sequence || got[0].PersonKey != absorbed {
			t.Errorf("%s: the re-send answered %v; want duplicate at %d on the absorbed person's stream", c.name, got[0], first[0].Sequence)
		}
	}
	other := proto.Clone(rp).(*nirv1.Registration)
	other.Event.GetReceptionParticipationRegistered().Hours = 41
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{other}); !errors.Is(err, ingest.ErrIDReused) {
		t.Errorf("other content under the merged event's id: %v; want ErrIDReused", err)
	}

	events, _, err := store.Read(ctx, survivor)
	if err != nil {
		t.Fatal(err)
	}
	st := rules.NewState(survivor)
	for _, e := range events {
		st.Apply(e.Seq, e.Event)
	}
	if n := len(st.Reception); n != 1 {
		t.Errorf("the survivor holds the reception participation %d times, want once", n)
	}
}
