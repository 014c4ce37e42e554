package feed

import (
	"context"
	"crypto/ed25519"
	"strings"
	"testing"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/storetest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestAttest_CheckpointOfAnotherStream: a checkpoint signed by the trusted key that names
// another stream (a stream replaced or restored over, whose checkpoints stay behind) never
// attests this stream's copy; the last one naming this stream does. Found on 2026-12-07 by
// mutation testing: the stream id check of Attest could be dropped without a test failing.
func TestAttest_CheckpointOfAnotherStream(t *testing.T) {
	ctx := context.Background()
	store, js := openStore(t)
	key := strings.Repeat("cd", 32)
	appendOne := func() {
		t.Helper()
		ev := &nirv1.Event{Id: ulid.Make().String(), PersonKey: key, Kommune: "0301", RecordedAt: timestamppb.Now(),
			Payload: &nirv1.Event_DemandRegistered{DemandRegistered: &nirv1.DemandRegistered{Programme: nirv1.Programme_PROGRAMME_INTRO, Date: &nirv1.Date{Year: 2024, Month: 1, Day: 2}}}}
		if _, err := store.Append(ctx, eventstore.PersonAppend{PersonKey: key, Events: []*nirv1.Event{ev}}); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		appendOne()
	}
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	cp := storetest.CheckpointThrough(t, store, 3, priv)
	appendOne()
	appendOne()
	// The next checkpoint in the chain, through seq 5, signed by the trusted key, but naming
	// another stream.
	prev, err := proto.MarshalOptions{Deterministic: true}.Marshal(cp)
	if err != nil {
		t.Fatal(err)
	}
	other := proto.Clone(cp).(*nirv1.Checkpoint)
	other.StreamSeq, other.StreamId, other.Previous = 5, "another stream", eventstore.HashOf(prev)
	if err := eventstore.SignCheckpoint(other, priv); err != nil {
		t.Fatal(err)
	}
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, eventstore.CheckpointSubject, data); err != nil {
		t.Fatal(err)
	}
	f, err := New(store)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.TrustCheckpoints(pub)
	a, err := f.Attest(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	var through uint64 // 0: no attestation
	if a != nil {
		through = a.Seq()
	}
	if through != cp.GetStreamSeq() {
		t.Fatalf("Attest(5) = checkpoint through %d, want this stream's through %d (not another stream's through 5)", through, cp.GetStreamSeq())
	}
}
