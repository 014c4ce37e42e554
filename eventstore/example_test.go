package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/introreg/nir/eventstore"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// exampleStore opens a store with an embedded server in a temporary directory.
func exampleStore() (*eventstore.Store, func()) {
	dir, err := os.MkdirTemp("", "eventstore-example")
	if err != nil {
		log.Fatal(err)
	}
	s, err := eventstore.Open(context.Background(), eventstore.Config{Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	return s, func() { s.Close(); os.RemoveAll(dir) }
}

func moved(key, to string) *nirv1.Event {
	return &nirv1.Event{
		Id:         ulid.Make().String(),
		PersonKey:  key,
		Kommune:    "0301",
		RecordedAt: timestamppb.Now(),
		Payload:    &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: to}},
	}
}

// The append cycle of nird: read the person, fold and check the events (package rules),
// then append with the last sequence folded. A concurrent writer makes the append fail
// with ErrConflict; the caller starts the cycle again.
func ExampleStore_Append() {
	s, done := exampleStore()
	defer done()
	ctx := context.Background()
	key := "3f2a9c" // nird uses a keyed hash of the first national id

	for attempt := 0; attempt < 3; attempt++ {
		_, last, err := s.Read(ctx, key)
		if err != nil {
			log.Fatal(err)
		}
		// ... rules.Fold(history), rules.Check(state, new events, now) ...
		pos, err := s.Append(ctx, eventstore.PersonAppend{
			PersonKey:       key,
			ExpectedLastSeq: eventstore.Expect(last),
			Events:          []*nirv1.Event{moved(key, "4601"), moved(key, "5001")},
		})
		if errors.Is(err, eventstore.ErrConflict) {
			continue // somebody else appended: read again
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("stored at", pos[0].Seq, pos[1].Seq)
		break
	}
	// Output: stored at 1 2
}

// A retried Append (after a timeout, say) with the same event ids stores nothing new and
// returns the original positions, also long after the dedupe window.
func ExampleStore_Append_retry() {
	s, done := exampleStore()
	defer done()
	ctx := context.Background()
	key := "3f2a9c"
	req := eventstore.PersonAppend{PersonKey: key, ExpectedLastSeq: eventstore.Expect(0), Events: []*nirv1.Event{moved(key, "4601")}}

	first, _ := s.Append(ctx, req)
	again, err := s.Append(ctx, req)
	fmt.Println(first[0].Seq, again[0].Seq, again[0].Duplicate, err)
	// Output: 1 1 true <nil>
}

// Several persons in one atomic batch: a failed check of any of them stores nothing.
func ExampleStore_Append_batch() {
	s, done := exampleStore()
	defer done()
	ctx := context.Background()
	a, b := "aaaa01", "bbbb02"
	_, err := s.Append(ctx,
		eventstore.PersonAppend{PersonKey: a, ExpectedLastSeq: eventstore.Expect(0), Events: []*nirv1.Event{moved(a, "4601")}},
		eventstore.PersonAppend{PersonKey: b, ExpectedLastSeq: eventstore.Expect(7), Events: []*nirv1.Event{moved(b, "4601")}},
	)
	last, _ := s.LastSeq(ctx)
	fmt.Println(errors.Is(err, eventstore.ErrConflict), last)
	// Output: true 0
}

// An as-of replay: the events recorded up to a cut-off, in stream order, for example the
// statistics of a data year as they stood on the last day of February.
func ExampleStore_Replay() {
	s, done := exampleStore()
	defer done()
	ctx := context.Background()
	key := "3f2a9c"
	if _, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: key, Events: []*nirv1.Event{moved(key, "4601")}}); err != nil {
		log.Fatal(err)
	}
	cutoff := time.Now()

	for st, err := range s.Replay(ctx, eventstore.ReplayOptions{RecordedUntil: cutoff, ClockSkew: time.Second}) {
		if err != nil {
			log.Fatal(err) // a *eventstore.DecodeError names the sequence
		}
		fmt.Println(st.Seq, st.Event.GetPersonMoved().GetToKommune())
	}
	// Output: 1 4601
}
