package projections

import (
	"testing"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// TestProjector_QuarantinesNewOrFoundAgain: the quarantines a new pod's catch-up finds in
// the stream (a file that started empty, up to the stream's end when it began) and those a
// rebuild finds again are counted apart from new ones, which alone the alert
// NirReadModelsQuarantined watches (deploy/monitoring). Before, both raised the one counter
// from 0, and the alert fired at every start of a pod over a stream that held an old foreign
// message. New are: a message that arrives afterwards, one a kept file meets on catching up
// after a restart, and an event a rebuild's rules now panic on where the live models folded
// it; a rebuild's swap does not reset the count. A repair's are found again.
func TestProjector_QuarantinesNewOrFoundAgain(t *testing.T) {
	var recs []Record
	var want []uint64
	for i, r := range population(7, 40, testKommuner) {
		if i%10 == 3 {
			recs = append(recs, Record{Seq: uint64(len(recs) + 1), Quarantine: QuarantineUndecodable})
			want = append(want, uint64(len(recs)))
		}
		r.Seq = uint64(len(recs) + 1)
		recs = append(recs, r)
	}
	feed := NewSliceFeed(recs)
	dir := t.TempDir()
	p, err := New(feed, Options{Dir: dir, BatchSize: 7})
	if err != nil {
		t.Fatal(err)
	}
	check := func(step string, wantNew, wantAgain int) {
		t.Helper()
		if s := p.Stats(); s.QuarantinesNew != uint64(wantNew) || s.QuarantinesFoundAgain != uint64(wantAgain) {
			t.Fatalf("%s: %d quarantines new and %d found again, want %d and %d", step, s.QuarantinesNew, s.QuarantinesFoundAgain, wantNew, wantAgain)
		}
	}
	if _, err := p.CatchUp(bg); err != nil {
		t.Fatal(err)
	}
	check("a new file's catch-up", 0, len(want))
	last, _ := feed.LastSeq(bg)
	feed.Add(Record{Seq: last + 1, Quarantine: QuarantineUndecodable})
	if _, err := p.CatchUp(bg); err != nil {
		t.Fatal(err)
	}
	check("a foreign message that arrived", 1, len(want))
	if err := p.Rebuild(bg, nil); err != nil {
		t.Fatal(err)
	}
	check("a rebuild", 1, 2*len(want)+1)

	// The rules now panic on an event the live models folded: the rebuild's quarantine of
	// it is new.
	var faulty string
	for r, err := range feed.Replay(bg, ReplayOptions{From: 1, To: last}) {
		if err != nil {
			t.Fatal(err)
		}
		if _, reg := r.Event.GetPayload().(*nirv1.Event_PersonRegistered); r.Event != nil && !reg && faulty == "" {
			faulty = r.Event.GetId()
		}
	}
	if faulty == "" {
		t.Fatal("the population holds no event but registrations")
	}
	restore := rules.SetFaultForTest(func(ev *nirv1.Event) bool { return ev.GetId() == faulty })
	err = p.Rebuild(bg, nil)
	restore()
	if err != nil {
		t.Fatal(err)
	}
	check("a rebuild whose rules panic", 2, 3*len(want)+2)

	// A kept file that catches up after a restart meets what arrived meanwhile as new.
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	feed.Add(Record{Seq: last + 2, Quarantine: QuarantineNoID})
	if p, err = New(feed, Options{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.CatchUp(bg); err != nil {
		t.Fatal(err)
	}
	check("a kept file's catch-up after a restart", 1, 0)
	// A repair's file replaces one that is not read (damaged, another stream's): what it
	// quarantines up to the live checkpoint was met before.
	p.requestRepair("a test's", false)
	if err := p.Rebuild(bg, nil); err != nil {
		t.Fatal(err)
	}
	check("a repair", 1, len(want)+2)
}
