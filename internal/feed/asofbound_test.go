package feed

import (
	"context"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/projections"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestAsOf_StopsAtTheCutOffsBound checks that an as-of replay reads the stream only to its
// cut-off's sequence bound (what the stream received by cut-off + skew; README "as-of cut-off
// ... resolved to a stream sequence"), and keeps an event recorded at or before the cut-off
// that the stream received after that bound out of the figures as known then, without
// failing. Found by mutation testing on 2026-12-07: an as-of replay that took the stream's
// last sequence for its bound passed every test; it counted such an event as missing from
// the replay and refused the as-of figures (ErrShortReplay).
func TestAsOf_StopsAtTheCutOffsBound(t *testing.T) {
	ctx := context.Background()
	store, f := openFeed(t)
	if err := f.SetClockSkew(0); err != nil {
		t.Fatal(err)
	}
	appendAt := func(key string, recorded time.Time) uint64 {
		t.Helper()
		ev := &nirv1.Event{Id: ulid.Make().String(), PersonKey: key, Kommune: "0301", RecordedAt: timestamppb.New(recorded),
			Payload: &nirv1.Event_DemandRegistered{DemandRegistered: &nirv1.DemandRegistered{Programme: nirv1.Programme_PROGRAMME_INTRO, Date: &nirv1.Date{Year: 2024, Month: 1, Day: 2}}}}
		pos, err := store.Append(ctx, eventstore.PersonAppend{PersonKey: key, ExpectedLastSeq: eventstore.Expect(0), Events: []*nirv1.Event{ev}})
		if err != nil {
			t.Fatal(err)
		}
		return pos[0].Seq
	}
	kept, late := strings.Repeat("ab", 32), strings.Repeat("cd", 32)
	appendAt(kept, time.Now())
	cut := time.Now()
	for !time.Now().After(cut.Add(10 * time.Millisecond)) {
		time.Sleep(time.Millisecond) // the stream receives the next event after the cut-off
	}
	// Recorded before the cut-off (a nird clock behind the stream's), received after its bound.
	lateSeq := appendAt(late, cut.Add(-time.Millisecond))
	bound, _, err := f.CutOff(ctx, cut)
	if err != nil || bound != lateSeq-1 {
		t.Fatalf("cut-off bound = %d, %v; want %d (the stream received seq %d after the cut-off)", bound, err, lateSeq-1, lateSeq)
	}
	p, err := projections.New(f, projections.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	db, err := p.AsOf(ctx, projections.AsOfOptions{RecordedUntil: cut, FromStream: true})
	if err != nil {
		t.Fatalf("as-of replay to the cut-off: %v", err)
	}
	defer db.Close()
	if ckpt, err := db.Checkpoint(); err != nil || ckpt != bound {
		t.Errorf("as-of checkpoint = %d, %v; want the cut-off's bound %d", ckpt, err, bound)
	}
	var dump strings.Builder
	if err := db.Dump(&dump); err != nil {
		t.Fatal(err)
	}
	// Dump writes the keys in hex: the persons bucket's keys are the person keys.
	if !strings.Contains(dump.String(), hex.EncodeToString([]byte(kept))) || strings.Contains(dump.String(), hex.EncodeToString([]byte(late))) {
		t.Errorf("as-of replay holds the persons of:\n%s\nwant %s only (the stream received %s after the cut-off's bound)", dump.String(), kept, late)
	}
}
