package feed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/demo"
	"github.com/introreg/nir/projections"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

func TestFeed(t *testing.T) {
	ctx := context.Background()
	store, f := openFeed(t)

	waited := make(chan error, 1)
	go func() {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		waited <- f.Wait(wctx, 0)
	}()
	key := strings.Repeat("ab", 32)
	ev := &nirv1.Event{Id: ulid.Make().String(), PersonKey: key, Kommune: "0301", RecordedAt: timestamppb.Now(),
		Payload: &nirv1.Event_DemandRegistered{DemandRegistered: &nirv1.DemandRegistered{Programme: nirv1.Programme_PROGRAMME_INTRO, Date: &nirv1.Date{Year: 2024, Month: 1, Day: 2}}}}
	if _, err := store.Append(ctx, eventstore.PersonAppend{PersonKey: key, ExpectedLastSeq: eventstore.Expect(0), Events: []*nirv1.Event{ev}}); err != nil {
		t.Fatal(err)
	}
	if err := <-waited; err != nil {
		t.Fatalf("Wait after an append: %v", err)
	}
	var got []projections.Record
	for r, err := range f.Replay(ctx, projections.ReplayOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if len(got) != 1 || got[0].Seq != 1 || got[0].Event.GetId() != ev.GetId() {
		t.Fatalf("replay = %v", got)
	}
	last, err := f.LastSeq(ctx)
	if err != nil || last != 1 {
		t.Fatalf("LastSeq = %d, %v", last, err)
	}
	// A cancelled wait returns the context's error.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := f.Wait(cctx, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait on a cancelled context = %v", err)
	}
}

// TestReasons: the event store's quarantine reasons are passed to the read models as they
// are, so a rebuild (which checks with projections' words) records what catching up does.
func TestReasons(t *testing.T) {
	pairs := [][2]string{
		{eventstore.ReasonBadSubject, projections.QuarantineBadSubject},
		{eventstore.ReasonUndecodable, projections.QuarantineUndecodable},
		{eventstore.ReasonNoID, projections.QuarantineNoID},
		{eventstore.ReasonBadKey, projections.QuarantineBadKey},
		{eventstore.ReasonOtherPerson, projections.QuarantineOtherPerson},
		{eventstore.ReasonNoPayload, projections.QuarantineNoPayload},
		{eventstore.ReasonMissing, projections.QuarantineMissing},
	}
	for _, p := range pairs {
		if p[0] != p[1] {
			t.Errorf("eventstore reason %q differs from projections' %q", p[0], p[1])
		}
		// The fold's own reason (the rules failed on the event) is never the store's.
		if p[0] == projections.QuarantineFoldFault {
			t.Errorf("the fold fault's reason %q is also an event store reason", p[0])
		}
	}
}

// openStore opens an event store on an embedded server of its own, closed when the test ends,
// and a JetStream client on its connection (to publish what nird never would).
func openStore(t *testing.T) (*eventstore.Store, jetstream.JetStream) {
	t.Helper()
	store, err := eventstore.Open(context.Background(), eventstore.Config{Dir: filepath.Join(t.TempDir(), "js")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	js, err := jetstream.New(store.Conn())
	if err != nil {
		t.Fatal(err)
	}
	return store, js
}

// openFeed opens an event store as openStore does and a feed over it, both closed when the
// test ends.
func openFeed(t *testing.T) (*eventstore.Store, *Feed) {
	t.Helper()
	store, _ := openStore(t)
	f, err := New(store)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return store, f
}

// TestFeed_Quarantine: with messages on the stream that are not usable events, the read
// models caught up from the event store and rebuilt from it are the same file, and both list
// the same quarantined sequences.
func TestFeed_Quarantine(t *testing.T) {
	ctx := context.Background()
	store, js := openStore(t)
	var poison []uint64
	publish := func(subject string, data []byte) {
		ack, err := js.Publish(ctx, subject, data)
		if err != nil {
			t.Fatal(err)
		}
		poison = append(poison, ack.Sequence)
	}
	i := 0
	for evs := range demo.Generate(3, 30, rules.Date{Y: 2024, M: 6, D: 1}) {
		h := sha256.Sum256([]byte{byte(i)})
		key := hex.EncodeToString(h[:])
		for _, ev := range evs {
			ev.PersonKey, ev.RecordedAt = key, timestamppb.Now()
		}
		if _, err := store.Append(ctx, eventstore.PersonAppend{PersonKey: key, Events: evs}); err != nil {
			t.Fatal(err)
		}
		switch i % 5 {
		case 1:
			publish("nir.ev."+key, []byte{0xff, 0xff, 0xff})
		case 3:
			other := proto.Clone(evs[0]).(*nirv1.Event)
			other.PersonKey = strings.Repeat("ab", 32)
			b, _ := proto.Marshal(other)
			publish("nir.ev."+key, b)
		}
		i++
	}
	f, err := New(store)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := projections.New(f, projections.Options{Dir: t.TempDir(), BatchSize: 50})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.CatchUp(ctx); err != nil {
		t.Fatalf("catch-up over poison: %v", err)
	}
	dump := func() (string, []uint64) {
		var b strings.Builder
		var seqs []uint64
		err := p.Use("", func(db *projections.DB) error {
			q, err := db.Quarantined(0)
			for _, e := range q {
				seqs = append(seqs, e.Seq)
			}
			return errors.Join(err, db.Dump(&b))
		})
		if err != nil {
			t.Fatal(err)
		}
		return b.String(), seqs
	}
	caught, q1 := dump()
	if err := p.Rebuild(ctx, nil); err != nil {
		t.Fatalf("rebuild over poison: %v", err)
	}
	rebuilt, q2 := dump()
	if !slices.Equal(q1, poison) || !slices.Equal(q2, poison) {
		t.Fatalf("quarantined: caught up %v, rebuilt %v; want %v", q1, q2, poison)
	}
	if caught != rebuilt {
		t.Errorf("the rebuilt models differ from the ones caught up")
	}
}
