package feed

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/projections"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestFeed_EachSequenceOnceInOrder: the feed hands the read models every stored event once,
// in stream order, over more events than one read of the stream takes, from the start and
// between bounds; a failed replay ends with its error; a sequence past the stream's end is
// not found; and Wait returns only once the stream holds more than it was told it has.
// Found on 2026-12-07 by mutation testing: TestFeed replays one event, so a feed that left
// out or repeated every seventh sequence, ended a failed replay as if complete, reported a
// sequence past the end as a failure, or whose Wait returned at once when the stream held
// exactly what the caller had (a read-model loop spinning on the stream), failed no test of
// this package.
func TestFeed_EachSequenceOnceInOrder(t *testing.T) {
	ctx := context.Background()
	store, f := openFeed(t)
	const n = 600
	ids := map[uint64]string{}
	for i := range n {
		key := strings.Repeat(fmt.Sprintf("%02x", i%40), 32)
		ev := &nirv1.Event{Id: ulid.Make().String(), PersonKey: key, Kommune: "0301", RecordedAt: timestamppb.Now(),
			Payload: &nirv1.Event_DemandRegistered{DemandRegistered: &nirv1.DemandRegistered{Programme: nirv1.Programme_PROGRAMME_INTRO, Date: &nirv1.Date{Year: 2024, Month: 1, Day: 2}}}}
		pos, err := store.Append(ctx, eventstore.PersonAppend{PersonKey: key, Events: []*nirv1.Event{ev}})
		if err != nil {
			t.Fatal(err)
		}
		ids[pos[0].Seq] = ev.GetId()
	}
	replay := func(from, to uint64) {
		t.Helper()
		want := from
		for r, err := range f.Replay(ctx, projections.ReplayOptions{From: from, To: to}) {
			if err != nil {
				t.Fatal(err)
			}
			if r.Seq != want || r.Event.GetId() != ids[r.Seq] {
				t.Fatalf("replay %d..%d: seq %d (event %s) where seq %d (event %s) was due", from, to, r.Seq, r.Event.GetId(), want, ids[want])
			}
			want++
		}
		if last := min(to, n); want != last+1 {
			t.Fatalf("replay %d..%d ended before seq %d", from, to, want)
		}
	}
	replay(1, n)
	replay(1, 1000) // past the end
	replay(257, 513)

	// A replay that fails says so: it never ends as if the stream were read to its end (a
	// rebuild would then serve read models without the events after the failure).
	failed := false
	for _, err := range f.Replay(ctx, projections.ReplayOptions{From: 1, To: n, Undecoded: true, RecordedUntil: time.Now()}) {
		if err != nil {
			failed = errors.Is(err, eventstore.ErrInvalid)
			break
		}
	}
	if !failed {
		t.Error("a replay the store refuses (Undecoded with RecordedUntil) ended without the store's error")
	}

	// A sequence the stream does not hold is projections.ErrNotFound, which the read models'
	// check takes as another stream (rebuilt, not served), not as a failure to start on.
	if raw, err := f.RawAt(ctx, n); err != nil || len(raw) == 0 {
		t.Errorf("RawAt(%d) on a stream of %d: %d bytes, %v", n, n, len(raw), err)
	}
	if _, err := f.RawAt(ctx, n+1); !errors.Is(err, projections.ErrNotFound) {
		t.Errorf("RawAt(%d) on a stream of %d: %v, want projections.ErrNotFound", n+1, n, err)
	}

	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := f.Wait(wctx, n); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait after seq %d on a stream of %d: %v, want it to wait until its context ended", n, n, err)
	}
	if err := f.Wait(ctx, n-1); err != nil {
		t.Errorf("Wait after seq %d on a stream of %d: %v, want at once", n-1, n, err)
	}
}
