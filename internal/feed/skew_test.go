package feed

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/projections"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// Found on 2026-12-06: nird stamps recorded_at before the append reaches the stream (group
// commit, retries across a leader election, nird's clock behind the NATS server's), and the
// feed resolved an as-of cut-off with no clock skew: an event recorded before the cut-off
// but received by the stream after it was left out of the snapshot. Now the feed allows
// DefaultClockSkew, and keeps exactly the events recorded at or before the cut-off: one
// received within the skew after it but recorded after it is left out.
func TestReplay_CutOffKeepsEventReceivedAfterIt(t *testing.T) {
	ctx := context.Background()
	store, f := openFeed(t)
	appendAt := func(key string, recorded time.Time) {
		t.Helper()
		ev := &nirv1.Event{Id: ulid.Make().String(), PersonKey: key, Kommune: "0301", RecordedAt: timestamppb.New(recorded),
			Payload: &nirv1.Event_DemandRegistered{DemandRegistered: &nirv1.DemandRegistered{Programme: nirv1.Programme_PROGRAMME_INTRO, Date: &nirv1.Date{Year: 2024, Month: 1, Day: 2}}}}
		if _, err := store.Append(ctx, eventstore.PersonAppend{PersonKey: key, ExpectedLastSeq: eventstore.Expect(0), Events: []*nirv1.Event{ev}}); err != nil {
			t.Fatal(err)
		}
	}
	// Stamped a minute before the stream receives it (now); the cut-off lies between.
	stamped := time.Now().Add(-time.Minute)
	cut := stamped.Add(time.Second)
	before, after := strings.Repeat("ab", 32), strings.Repeat("cd", 32)
	appendAt(before, stamped)
	appendAt(after, cut.Add(time.Millisecond)) // recorded after the cut-off, received within the skew
	replay := func() []string {
		var keys []string
		for r, err := range f.Replay(ctx, projections.ReplayOptions{RecordedUntil: cut}) {
			if err != nil {
				t.Fatal(err)
			}
			if r.Event != nil {
				keys = append(keys, r.Event.GetPersonKey())
			}
		}
		return keys
	}
	if got := replay(); len(got) != 1 || got[0] != before {
		bound, _, _ := f.CutOff(ctx, cut)
		t.Fatalf("replay as of %s = %v (bound %d); want only the event recorded at %s", cut.Format(time.RFC3339Nano), got, bound, stamped.Format(time.RFC3339Nano))
	}
	bound, settled, err := f.CutOff(ctx, cut)
	if err != nil || bound != 2 {
		t.Errorf("cut-off bound = %d, %v; want 2 (what the stream received by cut-off + skew)", bound, err)
	}
	if want := cut.Add(DefaultClockSkew); !settled.Equal(want) {
		t.Errorf("cut-off settles at %s, want %s (cut-off + skew)", settled, want)
	}
	// Without the skew the event is left out, as before.
	if err := f.SetClockSkew(0); err != nil {
		t.Fatal(err)
	}
	if got := replay(); len(got) != 0 {
		t.Errorf("replay with no skew = %v, want none (the stream received both after the cut-off)", got)
	}
	for _, bad := range []time.Duration{-time.Second, MaxClockSkew + time.Second} {
		if err := f.SetClockSkew(bad); err == nil || !strings.Contains(err.Error(), "clock skew") {
			t.Errorf("SetClockSkew(%v) = %v, want an error naming the clock skew", bad, err)
		}
	}
}
