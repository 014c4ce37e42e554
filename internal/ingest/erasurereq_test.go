package ingest_test

import (
	"context"
	"testing"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/proto"

	"github.com/introreg/nir/internal/access"
	"github.com/introreg/nir/internal/auth"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestService_ErasureLeavesTheRequestAlone: an erasure's registration is the caller's, as
// every registration is (stamp copies the event), and the data keys nird names in the stored
// erasure are not written into it: the same registration sent again is the duplicate of the
// stored erasure, as the README promises of a re-sent erasure (it completes the key
// destruction). Found by mutation testing (2026-12-07): the keys were set on the payload the
// stamped event shares with the request, and the request sent again was refused as invalid
// ("destroyed_keys are set by nird").
func TestService_ErasureLeavesTheRequestAlone(t *testing.T) {
	ctx := context.Background()
	store, ks, _ := storeWithKeys(t)
	svc := serviceOn(t, store, sealed(ks))
	_, reg := person(33, false)
	pos, err := svc.Append(ctx, oslo, []*nirv1.Registration{reg})
	if err != nil {
		t.Fatal(err)
	}
	operator := access.For(auth.Principal{Name: "drift", Role: auth.RoleOperator})
	erasure := &nirv1.Registration{Person: &nirv1.PersonRef{PersonKey: pos[0].GetPersonKey()}, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301",
		Payload: &nirv1.Event_PersonErased{PersonErased: &nirv1.PersonErased{Reason: "oppbevaringstiden er ute"}}}}
	sent := proto.Clone(erasure)
	first, err := svc.Append(ctx, operator, []*nirv1.Registration{erasure})
	if err != nil || first[0].GetDuplicate() {
		t.Fatalf("the erasure: %v, %v", first, err)
	}
	if !proto.Equal(erasure, sent) {
		t.Errorf("the erasure's registration after the append:\n%v\nwant it as sent:\n%v", erasure, sent)
	}
	again, err := svc.Append(ctx, operator, []*nirv1.Registration{erasure})
	if err != nil || !again[0].GetDuplicate() || again[0].GetSequence() != first[0].GetSequence() {
		t.Errorf("the same registration sent again: %v, %v; want the stored erasure, a duplicate", again, err)
	}
}
