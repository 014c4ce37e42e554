package feed

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/projections"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

func TestFeed(t *testing.T) {
	ctx := context.Background()
	store, err := eventstore.Open(ctx, eventstore.Config{Dir: filepath.Join(t.TempDir(), "js")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	f, err := New(store)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

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
