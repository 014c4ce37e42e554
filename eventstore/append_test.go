package eventstore_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/natstest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

func TestStore_Append(t *testing.T) {
	s, _ := openStore(t, nil)
	ctx := context.Background()
	a, b := personKey("append-a"), personKey("append-b")
	// Give a some history.
	if _, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: a, ExpectedLastSeq: eventstore.Expect(0), Events: events(a, 1)}); err != nil {
		t.Fatalf("seed: %v", err)
	}
	_, aLast := mustRead(t, s, a)

	noID := newEvent(a)
	noID.Id = ""
	noPayload := newEvent(a)
	noPayload.Payload = nil
	otherKey := newEvent(b)
	twice := newEvent(a)
	big := newEvent(a)
	big.CorrelationId = strings.Repeat("x", 2<<20)

	tests := []struct {
		name    string
		batch   func() []eventstore.PersonAppend
		wantErr error
	}{
		{"OK/Single", func() []eventstore.PersonAppend {
			return []eventstore.PersonAppend{{PersonKey: b, ExpectedLastSeq: eventstore.Expect(0), Events: events(b, 1)}}
		}, nil},
		{"OK/NoCheck", func() []eventstore.PersonAppend {
			return []eventstore.PersonAppend{{PersonKey: a, Events: events(a, 3)}}
		}, nil},
		{"OK/MultiPerson", func() []eventstore.PersonAppend {
			_, la := mustRead(t, s, a)
			_, lb := mustRead(t, s, b)
			return []eventstore.PersonAppend{
				{PersonKey: a, ExpectedLastSeq: eventstore.Expect(la), Events: events(a, 2)},
				{PersonKey: b, ExpectedLastSeq: eventstore.Expect(lb), Events: events(b, 3)},
			}
		}, nil},
		{"ErrConflict/Stale", func() []eventstore.PersonAppend {
			return []eventstore.PersonAppend{{PersonKey: a, ExpectedLastSeq: eventstore.Expect(aLast), Events: events(a, 1)}}
		}, eventstore.ErrConflict},
		{"ErrConflict/StaleBatch", func() []eventstore.PersonAppend {
			return []eventstore.PersonAppend{{PersonKey: a, ExpectedLastSeq: eventstore.Expect(aLast), Events: events(a, 4)}}
		}, eventstore.ErrConflict},
		{"ErrConflict/NewPersonExpected", func() []eventstore.PersonAppend {
			return []eventstore.PersonAppend{{PersonKey: a, ExpectedLastSeq: eventstore.Expect(0), Events: events(a, 1)}}
		}, eventstore.ErrConflict},
		{"ErrConflict/FutureSeq", func() []eventstore.PersonAppend {
			return []eventstore.PersonAppend{{PersonKey: personKey("nobody"), ExpectedLastSeq: eventstore.Expect(99), Events: events(personKey("nobody"), 1)}}
		}, eventstore.ErrConflict},
		{"ErrInvalid/NoPersons", func() []eventstore.PersonAppend { return nil }, eventstore.ErrInvalid},
		{"ErrInvalid/NoEvents", func() []eventstore.PersonAppend {
			return []eventstore.PersonAppend{{PersonKey: a}}
		}, eventstore.ErrInvalid},
		{"ErrInvalid/NoID", func() []eventstore.PersonAppend {
			return []eventstore.PersonAppend{{PersonKey: a, Events: []*nirv1.Event{noID}}}
		}, eventstore.ErrInvalid},
		{"ErrInvalid/NoPayload", func() []eventstore.PersonAppend {
			return []eventstore.PersonAppend{{PersonKey: a, Events: []*nirv1.Event{noPayload}}}
		}, eventstore.ErrInvalid},
		{"ErrInvalid/MismatchedKey", func() []eventstore.PersonAppend {
			return []eventstore.PersonAppend{{PersonKey: a, Events: []*nirv1.Event{otherKey}}}
		}, eventstore.ErrInvalid},
		{"ErrInvalid/UnsafeKey", func() []eventstore.PersonAppend {
			ev := newEvent("a.b")
			return []eventstore.PersonAppend{{PersonKey: "a.b", Events: []*nirv1.Event{ev}}}
		}, eventstore.ErrInvalid},
		{"ErrInvalid/WildcardKey", func() []eventstore.PersonAppend {
			ev := newEvent(">")
			return []eventstore.PersonAppend{{PersonKey: ">", Events: []*nirv1.Event{ev}}}
		}, eventstore.ErrInvalid},
		{"ErrInvalid/NationalIDAsKey", func() []eventstore.PersonAppend {
			ev := newEvent("01017012345")
			return []eventstore.PersonAppend{{PersonKey: "01017012345", Events: []*nirv1.Event{ev}}}
		}, eventstore.ErrInvalid},
		{"ErrInvalid/IDTwice", func() []eventstore.PersonAppend {
			return []eventstore.PersonAppend{{PersonKey: a, Events: []*nirv1.Event{twice, twice}}}
		}, eventstore.ErrInvalid},
		{"ErrInvalid/PersonTwice", func() []eventstore.PersonAppend {
			return []eventstore.PersonAppend{{PersonKey: a, Events: events(a, 1)}, {PersonKey: a, Events: events(a, 1)}}
		}, eventstore.ErrInvalid},
		{"ErrTooLarge/Event", func() []eventstore.PersonAppend {
			return []eventstore.PersonAppend{{PersonKey: a, Events: []*nirv1.Event{big}}}
		}, eventstore.ErrTooLarge},
		{"ErrTooLarge/Batch", func() []eventstore.PersonAppend {
			return []eventstore.PersonAppend{{PersonKey: a, Events: events(a, eventstore.MaxBatchEvents+1)}}
		}, eventstore.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			batch := tt.batch()
			before := mustLastSeq(t, s)
			pos, err := s.Append(ctx, batch...)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Append error = %v, want %v", err, tt.wantErr)
			}
			after := mustLastSeq(t, s)
			if tt.wantErr != nil {
				if after != before {
					t.Fatalf("failed Append moved the stream from %d to %d", before, after)
				}
				return
			}
			var want []*nirv1.Event
			for _, pa := range batch {
				want = append(want, pa.Events...)
			}
			if len(pos) != len(want) || after != before+uint64(len(want)) {
				t.Fatalf("got %d positions, stream %d -> %d, want %d new events", len(pos), before, after, len(want))
			}
			for i, p := range pos {
				if p.EventID != want[i].GetId() || p.PersonKey != want[i].GetPersonKey() || p.Duplicate {
					t.Fatalf("position %d = %+v, want event %s of %s, not duplicate", i, p, want[i].GetId(), want[i].GetPersonKey())
				}
				if p.Seq <= before || p.Seq > after {
					t.Fatalf("position %d seq %d outside the new range (%d, %d]", i, p.Seq, before, after)
				}
			}
			// Each person's events are readable at their positions, in order.
			for _, pa := range batch {
				evs, last := mustRead(t, s, pa.PersonKey)
				got := evs[len(evs)-len(pa.Events):]
				for i, e := range got {
					if e.Event.GetId() != pa.Events[i].GetId() {
						t.Fatalf("person event %d = %s, want %s", i, e.Event.GetId(), pa.Events[i].GetId())
					}
				}
				if last != got[len(got)-1].Seq {
					t.Fatalf("Read lastSeq %d, want %d", last, got[len(got)-1].Seq)
				}
			}
		})
	}
}

// TestStore_Append_ConcurrentWriters races writers that folded the same history: per
// round exactly one wins, the others get ErrConflict, and after retrying every event is
// stored exactly once.
func TestStore_Append_ConcurrentWriters(t *testing.T) {
	s, _ := openStore(t, nil)
	ctx := context.Background()
	key := personKey("race")
	const writers, rounds = 2, 20
	var all []string
	for round := range rounds {
		_, last := mustRead(t, s, key)
		var wg sync.WaitGroup
		errs := make([]error, writers)
		batches := make([][]*nirv1.Event, writers)
		for w := range writers {
			batches[w] = events(key, 1+round%3)
			wg.Go(func() {
				_, errs[w] = s.Append(ctx, eventstore.PersonAppend{PersonKey: key, ExpectedLastSeq: eventstore.Expect(last), Events: batches[w]})
			})
		}
		wg.Wait()
		winners, losers := 0, []int{}
		for w, err := range errs {
			switch {
			case err == nil:
				winners++
				for _, e := range batches[w] {
					all = append(all, e.GetId())
				}
			case errors.Is(err, eventstore.ErrConflict):
				losers = append(losers, w)
			default:
				t.Fatalf("round %d writer %d: %v", round, w, err)
			}
		}
		// The losers re-read and retry: nothing is lost.
		for _, w := range losers {
			_, l := mustRead(t, s, key)
			if _, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: key, ExpectedLastSeq: eventstore.Expect(l), Events: batches[w]}); err != nil {
				t.Fatalf("round %d: retry after conflict: %v", round, err)
			}
			for _, e := range batches[w] {
				all = append(all, e.GetId())
			}
		}
		if winners != 1 {
			t.Fatalf("round %d: %d winners, want exactly 1", round, winners)
		}
	}
	evs, _ := mustRead(t, s, key)
	if got := ids(evs); !slices.Equal(got, all) {
		t.Fatalf("stored %d events, want %d in ack order", len(got), len(all))
	}
}

// TestStore_Append_MultiPersonConflictStoresNothing checks that one person's failed check
// refuses the whole batch.
func TestStore_Append_MultiPersonConflictStoresNothing(t *testing.T) {
	s, _ := openStore(t, nil)
	ctx := context.Background()
	a, b, c := personKey("m-a"), personKey("m-b"), personKey("m-c")
	for _, k := range []string{a, b} {
		if _, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: k, ExpectedLastSeq: eventstore.Expect(0), Events: events(k, 2)}); err != nil {
			t.Fatal(err)
		}
	}
	aEvs, aLast := mustRead(t, s, a)
	bEvs, bLast := mustRead(t, s, b)
	before := mustLastSeq(t, s)
	tests := []struct {
		name  string
		batch []eventstore.PersonAppend
	}{
		{"SecondPersonStale", []eventstore.PersonAppend{
			{PersonKey: a, ExpectedLastSeq: eventstore.Expect(aLast), Events: events(a, 2)},
			{PersonKey: b, ExpectedLastSeq: eventstore.Expect(bLast - 1), Events: events(b, 2)},
			{PersonKey: c, Events: events(c, 1)},
		}},
		{"FirstPersonStale", []eventstore.PersonAppend{
			{PersonKey: a, ExpectedLastSeq: eventstore.Expect(aLast - 1), Events: events(a, 1)},
			{PersonKey: b, ExpectedLastSeq: eventstore.Expect(bLast), Events: events(b, 1)},
		}},
		{"NewPersonAlreadyExists", []eventstore.PersonAppend{
			{PersonKey: c, ExpectedLastSeq: eventstore.Expect(0), Events: events(c, 1)},
			{PersonKey: b, ExpectedLastSeq: eventstore.Expect(0), Events: events(b, 3)},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Append(ctx, tt.batch...); !errors.Is(err, eventstore.ErrConflict) {
				t.Fatalf("Append = %v, want ErrConflict", err)
			}
			if got := mustLastSeq(t, s); got != before {
				t.Fatalf("stream moved from %d to %d", before, got)
			}
			if evs, _ := mustRead(t, s, a); !slices.Equal(ids(evs), ids(aEvs)) {
				t.Fatalf("person a changed")
			}
			if evs, _ := mustRead(t, s, b); !slices.Equal(ids(evs), ids(bEvs)) {
				t.Fatalf("person b changed")
			}
			if evs, _ := mustRead(t, s, c); len(evs) != 0 {
				t.Fatalf("person c got %d events", len(evs))
			}
		})
	}
}

// TestStore_Append_Idempotent retries appends inside the dedupe window and after it: the
// original positions come back, marked Duplicate, and nothing is stored twice.
func TestStore_Append_Idempotent(t *testing.T) {
	const window = time.Second
	s, srv := openStore(t, func(c *eventstore.Config) { c.DuplicateWindow = window })
	ctx := context.Background()
	a, b := personKey("idem-a"), personKey("idem-b")

	type call struct {
		name  string
		batch []eventstore.PersonAppend
		pos   []eventstore.Position
	}
	calls := []*call{
		{name: "Single", batch: []eventstore.PersonAppend{{PersonKey: a, ExpectedLastSeq: eventstore.Expect(0), Events: events(a, 1)}}},
		{name: "Batch", batch: []eventstore.PersonAppend{{PersonKey: a, ExpectedLastSeq: nil, Events: events(a, 3)}}},
		{name: "MultiPerson", batch: []eventstore.PersonAppend{
			{PersonKey: b, ExpectedLastSeq: eventstore.Expect(0), Events: events(b, 2)},
			{PersonKey: a, Events: events(a, 1)},
		}},
	}
	for _, c := range calls {
		// Resolve the checks against the current history (like a caller that folded it).
		for i := range c.batch {
			if c.batch[i].ExpectedLastSeq != nil {
				_, last := mustRead(t, s, c.batch[i].PersonKey)
				c.batch[i].ExpectedLastSeq = eventstore.Expect(last)
			}
		}
		pos, err := s.Append(ctx, c.batch...)
		if err != nil {
			t.Fatalf("%s: first Append: %v", c.name, err)
		}
		c.pos = pos
	}
	stored := mustLastSeq(t, s)

	retryAll := func(t *testing.T, phase string) {
		for _, c := range calls {
			t.Run(phase+"/"+c.name, func(t *testing.T) {
				pos, err := s.Append(ctx, c.batch...)
				if err != nil {
					t.Fatalf("retry: %v", err)
				}
				for i, p := range pos {
					if p.Seq != c.pos[i].Seq || p.EventID != c.pos[i].EventID || !p.Duplicate {
						t.Fatalf("retry position %d = %+v, want seq %d duplicate", i, p, c.pos[i].Seq)
					}
				}
				// Without the check too: the history decides.
				noCheck := slices.Clone(c.batch)
				for i := range noCheck {
					noCheck[i].ExpectedLastSeq = nil
				}
				if pos, err := s.Append(ctx, noCheck...); err != nil || pos[0].Seq != c.pos[0].Seq || !pos[0].Duplicate {
					t.Fatalf("retry without check: %v, %+v", err, pos)
				}
			})
		}
	}
	retryAll(t, "InsideWindow")
	if got := mustLastSeq(t, s); got != stored {
		t.Fatalf("retries inside the window moved the stream from %d to %d", stored, got)
	}

	// Wait until the server has forgotten ids: a probe message with a fixed id is stored
	// a second time once its id has left the dedupe window.
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	probe := &nats.Msg{Subject: "nir.ev.probe", Header: nats.Header{nats.MsgIdHdr: []string{"probe-id"}}, Data: []byte{}}
	if _, err := js.PublishMsg(ctx, probe); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*window, "dedupe window expiry", func() bool {
		probe.Header = nats.Header{nats.MsgIdHdr: []string{"probe-id"}}
		ack, err := js.PublishMsg(ctx, probe)
		return err == nil && !ack.Duplicate
	})
	stored = mustLastSeq(t, s) // the two probes

	retryAll(t, "AfterWindow")
	if got := mustLastSeq(t, s); got != stored {
		t.Fatalf("retries after the window moved the stream from %d to %d", stored, got)
	}
	for _, k := range []string{a, b} {
		evs, _ := mustRead(t, s, k)
		seen := map[string]bool{}
		for _, e := range evs {
			if seen[e.Event.GetId()] {
				t.Fatalf("event %s stored twice", e.Event.GetId())
			}
			seen[e.Event.GetId()] = true
		}
	}
}

// TestStore_Append_PartialRetry retries a call whose first part is already stored (the
// caller added an event): the stored ones keep their positions, the new one is appended.
func TestStore_Append_PartialRetry(t *testing.T) {
	s, _ := openStore(t, nil)
	ctx := context.Background()
	a := personKey("partial")
	first := events(a, 2)
	pos1, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: a, ExpectedLastSeq: eventstore.Expect(0), Events: first})
	if err != nil {
		t.Fatal(err)
	}
	more := append(slices.Clone(first), newEvent(a))
	pos2, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: a, ExpectedLastSeq: eventstore.Expect(0), Events: more})
	if err != nil {
		t.Fatalf("partial retry: %v", err)
	}
	if pos2[0] != pos1[0] || pos2[1] != (eventstore.Position{EventID: first[1].Id, PersonKey: a, Seq: pos1[1].Seq, Duplicate: true}) {
		if !pos2[0].Duplicate || pos2[0].Seq != pos1[0].Seq || !pos2[1].Duplicate || pos2[1].Seq != pos1[1].Seq {
			t.Fatalf("stored events: %+v, want originals %+v", pos2[:2], pos1)
		}
	}
	if pos2[2].Duplicate || pos2[2].Seq != pos1[1].Seq+1 {
		t.Fatalf("new event position %+v, want seq %d", pos2[2], pos1[1].Seq+1)
	}
	// A foreign event after the expected sequence is a real conflict.
	if _, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: a, Events: events(a, 1)}); err != nil {
		t.Fatal(err)
	}
	again := append(slices.Clone(more), newEvent(a))
	if _, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: a, ExpectedLastSeq: eventstore.Expect(0), Events: again}); !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("Append after a foreign event = %v, want ErrConflict", err)
	}
}

// TestStore_Append_IDOfAnotherPerson reuses a stored event id for another person inside the
// dedupe window: refused (ErrIDInUse, naming the id when the server does), never reported as
// that other person's position.
func TestStore_Append_IDOfAnotherPerson(t *testing.T) {
	s, _ := openStore(t, nil)
	ctx := context.Background()
	a, b := personKey("id-a"), personKey("id-b")
	ev := newEvent(a)
	if _, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: a, Events: []*nirv1.Event{ev}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		events func() []*nirv1.Event
		id     string // the id the error names
	}{
		{"Single", func() []*nirv1.Event {
			reused := newEvent(b)
			reused.Id = ev.Id
			return []*nirv1.Event{reused}
		}, ev.Id},
		{"Batch", func() []*nirv1.Event {
			reused := newEvent(b)
			reused.Id = ev.Id
			return []*nirv1.Event{newEvent(b), reused}
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := mustLastSeq(t, s)
			_, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: b, ExpectedLastSeq: eventstore.Expect(0), Events: tt.events()})
			var ie *eventstore.IDError
			if !errors.Is(err, eventstore.ErrIDInUse) || !errors.As(err, &ie) || ie.EventID != tt.id {
				t.Fatalf("Append = %v, want ErrIDInUse naming %q", err, tt.id)
			}
			if got := mustLastSeq(t, s); got != before {
				t.Fatalf("stream moved from %d to %d", before, got)
			}
		})
	}
}

// TestStore_Append_IDOtherContent re-sends a stored event's id for the same person with
// other content, inside the dedupe window (a lone message the server acks as a duplicate,
// and a batch it refuses) and after it (the person's history): refused with ErrIDReused,
// never a Duplicate position.
func TestStore_Append_IDOtherContent(t *testing.T) {
	const window = time.Second
	s, srv := openStore(t, func(c *eventstore.Config) { c.DuplicateWindow = window })
	ctx := context.Background()
	a := personKey("content")
	ev := newEvent(a)
	if _, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: a, Events: []*nirv1.Event{ev}}); err != nil {
		t.Fatal(err)
	}
	other := func() *nirv1.Event {
		o := newEvent(a)
		o.Id = ev.Id
		o.GetPersonMoved().ToKommune = "5001"
		return o
	}
	try := func(t *testing.T, name string, pa eventstore.PersonAppend) {
		t.Run(name, func(t *testing.T) {
			before := mustLastSeq(t, s)
			pos, err := s.Append(ctx, pa)
			var ie *eventstore.IDError
			if !errors.Is(err, eventstore.ErrIDReused) || !errors.As(err, &ie) || ie.EventID != ev.Id {
				t.Fatalf("Append = %v %+v, want ErrIDReused naming %s", err, pos, ev.Id)
			}
			if got := mustLastSeq(t, s); got != before {
				t.Fatalf("stream moved from %d to %d", before, got)
			}
		})
	}
	_, last := mustRead(t, s, a)
	try(t, "InsideWindow/Single", eventstore.PersonAppend{PersonKey: a, Events: []*nirv1.Event{other()}})
	try(t, "InsideWindow/SingleChecked", eventstore.PersonAppend{PersonKey: a, ExpectedLastSeq: eventstore.Expect(last), Events: []*nirv1.Event{other()}})
	try(t, "InsideWindow/Batch", eventstore.PersonAppend{PersonKey: a, ExpectedLastSeq: eventstore.Expect(last), Events: []*nirv1.Event{newEvent(a), other()}})

	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	probe := &nats.Msg{Subject: "nir.ev.probe", Header: nats.Header{nats.MsgIdHdr: []string{"probe-content"}}, Data: []byte{}}
	if _, err := js.PublishMsg(ctx, probe); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*window, "dedupe window expiry", func() bool {
		probe.Header = nats.Header{nats.MsgIdHdr: []string{"probe-content"}}
		ack, err := js.PublishMsg(ctx, probe)
		return err == nil && !ack.Duplicate
	})
	try(t, "AfterWindow", eventstore.PersonAppend{PersonKey: a, Events: []*nirv1.Event{other()}})
	// The same event, recorded anew by another actor: a retry.
	same := proto.Clone(ev).(*nirv1.Event)
	same.RecordedAt, same.Actor = timestamppb.Now(), &nirv1.Actor{Subject: "another token"}
	if pos, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: a, Events: []*nirv1.Event{same}}); err != nil || !pos[0].Duplicate {
		t.Fatalf("identical re-send: %v %+v, want a duplicate", err, pos)
	}
}

// TestStore_Append_ForgedMsgIDHeader: a message stored on a person's subject behind nird's
// back, whose Nats-Msg-Id header names an event id that its data does not hold, is not taken
// for that event once the dedupe window has forgotten it: the event is appended, not refused
// as an id reused nor answered as a duplicate. Mutation testing (2026-12-07) found that
// nothing failed when the history was searched by the header alone.
func TestStore_Append_ForgedMsgIDHeader(t *testing.T) {
	const window = time.Second
	s, srv := openStore(t, func(c *eventstore.Config) { c.DuplicateWindow = window })
	ctx := context.Background()
	a := personKey("forged-header")
	ev, decoy := newEvent(a), newEvent(a)
	data, err := eventstore.Encode(decoy)
	if err != nil {
		t.Fatal(err)
	}
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	forged := &nats.Msg{Subject: "nir.ev." + a, Header: nats.Header{nats.MsgIdHdr: []string{ev.Id}}, Data: data}
	ack, err := js.PublishMsg(ctx, forged)
	if err != nil {
		t.Fatal(err)
	}
	probe := &nats.Msg{Subject: "nir.ev.probe", Header: nats.Header{nats.MsgIdHdr: []string{"probe-forged"}}, Data: []byte{}}
	if _, err := js.PublishMsg(ctx, probe); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*window, "dedupe window expiry", func() bool {
		probe.Header = nats.Header{nats.MsgIdHdr: []string{"probe-forged"}}
		ack, err := js.PublishMsg(ctx, probe)
		return err == nil && !ack.Duplicate
	})
	pos, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: a, Events: []*nirv1.Event{ev}})
	if err != nil || len(pos) != 1 || pos[0].Duplicate || pos[0].Seq == ack.Sequence {
		t.Fatalf("Append after a forged header = %+v, %v; want stored anew (the forged message is at %d)", pos, err, ack.Sequence)
	}
	evs, _ := mustRead(t, s, a)
	if got := ids(evs); !slices.Equal(got, []string{decoy.Id, ev.Id}) {
		t.Fatalf("person's events %v, want the decoy then %s", got, ev.Id)
	}
}
