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
)

// TestService_RetryAfterUnmerge: once a merge is retracted (an un-merge), each person is its
// own again (README "Two persons found to be one"): a re-send of an event the merge had copied
// from the absorbed person is its duplicate on that person's stream when it names the absorbed
// person, and an id of another person's when it names the survivor, whose fold still knows the
// id from the retracted merge's copy; never a duplicate on the other person's stream, which
// told the caller the event was stored for the person it named and gave it the key of a
// person it did not name. On this nird and on another one (no cached history). Found by
// mutation testing (2026-12-07, M55): absorberOf ignoring a merge's retraction failed no test
// of the package.
func TestService_RetryAfterUnmerge(t *testing.T) {
	ctx := context.Background()
	svc, store := newService(t)
	dnr, fnr, _, pos := registeredTwice(t, svc, 33)
	survivor, absorbed := pos[0].PersonKey, pos[1].PersonKey
	rp := &nirv1.Registration{Person: &nirv1.PersonRef{NationalId: fnr}, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301",
		Payload: &nirv1.Event_ReceptionParticipationRegistered{ReceptionParticipationRegistered: &nirv1.ReceptionParticipationRegistered{
			Activity: nirv1.ReceptionActivity_RECEPTION_ACTIVITY_NORSK, FromDate: d(2024, 1, 15), ToDate: d(2024, 1, 31), Hours: 40}}}}
	first, err := svc.Append(ctx, oslo, []*nirv1.Registration{rp})
	if err != nil {
		t.Fatal(err)
	}
	operator := access.For(auth.Principal{Name: "drift", Role: auth.RoleOperator})
	merge := mergeReg(dnr, absorbed)
	if _, err := svc.Append(ctx, operator, []*nirv1.Registration{merge}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Append(ctx, operator, []*nirv1.Registration{retractOn(survivor, merge.Event.Id)}); err != nil {
		t.Fatalf("the un-merge: %v", err)
	}
	for _, c := range []struct {
		name string
		svc  *ingest.Service
	}{{"this nird", svc}, {"another nird", serviceOn(t, store)}} {
		again := proto.Clone(rp).(*nirv1.Registration)
		got, err := c.svc.Append(ctx, oslo, []*nirv1.Registration{again})
		if err != nil || !got[0].Duplicate || got[0].Sequence != first[0].Sequence || got[0].PersonKey != absorbed {
			t.Errorf("%s: the re-send naming the absorbed person after the un-merge: %v, %v; want its duplicate at %d", c.name, got, err, first[0].Sequence)
		}
		again = proto.Clone(rp).(*nirv1.Registration)
		again.Person = &nirv1.PersonRef{NationalId: dnr}
		got, err = c.svc.Append(ctx, oslo, []*nirv1.Registration{again})
		if !errors.Is(err, ingest.ErrIDInUse) {
			t.Errorf("%s: the re-send naming the survivor after the un-merge: %v, %v; want ErrIDInUse, the id the other person's", c.name, got, err)
		}
	}
	if hist, _, err := store.Read(ctx, survivor); err != nil || len(hist) != 3 {
		t.Errorf("the survivor's stream holds %d events (%v); want its registration, the merge and its retraction", len(hist), err)
	}
}
