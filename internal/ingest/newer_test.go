package ingest_test

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/access"
	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/ingest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestService_MergeKeepsWhatItCannotRead: in a rolling upgrade a newer nird stores, on the
// person this build then merges away, an event of a kind this build does not know and an
// offer with a field it does not know. The merge copies both as stored, their unknown fields
// byte for byte, so that the newer nird folds the survivor's copies whole. (A mutant that
// copies them without their unknown fields fails it.)
func TestService_MergeKeepsWhatItCannotRead(t *testing.T) {
	ctx := context.Background()
	svc, store := newService(t)
	dnr, fnr, _, pos := registeredTwice(t, svc, 23)
	survivor, absorbed := pos[0].PersonKey, pos[1].PersonKey
	newer := func(m proto.Message, num protowire.Number) {
		r := m.ProtoReflect()
		r.SetUnknown(protowire.AppendString(protowire.AppendTag(r.GetUnknown(), num, protowire.BytesType), "a newer nird's"))
	}
	kind := &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301"}
	newer(kind, 45)
	field := offer(fnr).GetEvent()
	newer(field.GetOfferRegistered(), 99)
	for _, ev := range []*nirv1.Event{kind, field} {
		ev.PersonKey, ev.RecordedAt, ev.Actor = absorbed, timestamppb.New(fixedNow), &nirv1.Actor{Subject: "newer", Role: nirv1.ActorRole_ACTOR_ROLE_KOMMUNE}
	}
	for _, ev := range []*nirv1.Event{kind, field} {
		storeNewer(t, store, ev)
	}
	stored := map[string]*nirv1.Event{}
	hist, _, err := store.Read(ctx, absorbed)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range hist {
		stored[s.Event.GetId()] = s.Event
	}

	operator := access.For(auth.Principal{Name: "drift", Role: auth.RoleOperator})
	if _, err := svc.Append(ctx, operator, []*nirv1.Registration{mergeReg(dnr, absorbed)}); err != nil {
		t.Fatalf("merging a person with events this build cannot wholly read: %v", err)
	}
	hist, _, err = store.Read(ctx, survivor)
	if err != nil {
		t.Fatal(err)
	}
	copies := hist[len(hist)-1].Event.GetPersonsMerged().GetAbsorbedEvents()
	for _, want := range []*nirv1.Event{kind, field} {
		var got *nirv1.Event
		for _, c := range copies {
			if c.GetId() == want.GetId() {
				got = c
			}
		}
		if got == nil || !proto.Equal(got, stored[want.GetId()]) || len(got.ProtoReflect().GetUnknown())+len(got.GetOfferRegistered().ProtoReflect().GetUnknown()) == 0 {
			t.Errorf("the merge's copy of event %s is %v, want it as stored: %v", want.GetId(), got, stored[want.GetId()])
		}
	}
}

// storeNewer stores ev on its person's subject as a newer nird would, linked into the
// person's chain, encoded with its unknown fields: this build's append path stores no event
// it cannot wholly read.
func storeNewer(t *testing.T, store *eventstore.Store, ev *nirv1.Event) {
	t.Helper()
	ctx := context.Background()
	_, last, err := store.Read(ctx, ev.GetPersonKey())
	if err != nil {
		t.Fatal(err)
	}
	_, prev, err := store.MsgAt(ctx, last)
	if err != nil {
		t.Fatal(err)
	}
	ev.PrevHash = eventstore.HashOf(prev)
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	subject, err := eventstore.Subject(ev.GetPersonKey())
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(store.Conn())
	if err != nil {
		t.Fatal(err)
	}
	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	msg.Header.Set(nats.MsgIdHdr, ev.GetId())
	msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(last, 10))
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
}

// TestService_ComputedTerminationRefusedOnWhatItCannotRead: the regelmotor's read models may
// lag the stream (a restart's catch-up), so a pass may compute a termination for a person on
// whom a newer nird has stored what this build cannot read. The append path, which folds the
// person from the stream, refuses it (ErrNewerEvents) and stores nothing: this build folds
// the person without the newer event, and a newer build may compute another termination, or
// none. Before, it was stored.
func TestService_ComputedTerminationRefusedOnWhatItCannotRead(t *testing.T) {
	ctx := context.Background()
	svc, store := newService(t)
	id, key, due := terminationDue(t, svc, store, 8)
	newer := on(id, &nirv1.TiltakRegistered{Code: nirv1.TiltakCode_TILTAK_CODE_KURS, FromDate: d(2023, 3, 1), ToDate: d(2024, 5, 31)}).GetEvent()
	newer.GetTiltakRegistered().ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 1))
	newer.PersonKey, newer.RecordedAt, newer.Actor = key, timestamppb.New(fixedNow), &nirv1.Actor{Subject: "newer", Role: nirv1.ActorRole_ACTOR_ROLE_KOMMUNE}
	storeNewer(t, store, newer)
	_, before, _ := store.Read(ctx, key)
	if _, err := svc.Append(ctx, regelmotor, []*nirv1.Registration{{Person: &nirv1.PersonRef{PersonKey: key}, Event: due[0]}}); !errors.Is(err, ingest.ErrNewerEvents) {
		t.Errorf("a computed termination on a person with a newer nird's field: %v, want ErrNewerEvents", err)
	}
	if _, after, _ := store.Read(ctx, key); after != before {
		t.Errorf("the termination was stored (person at seq %d, was %d)", after, before)
	}
}
