package rules

import (
	"math/rand"
	"reflect"
	"strings"
	"testing"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestResequence: a state that applied its last event at a provisional sequence and was then
// resequenced to the event's real one is the state that applied it there: for random persons
// (every event in turn the last, so moves, terminations and programme events waiting for
// their programme are among them) and for a merge, whose copied events take its sequence.
func TestResequence(t *testing.T) {
	t.Parallel()
	g := &gen{r: rand.New(rand.NewSource(propertySeed + 30))}
	check := func(what string, evs []*nirv1.Event) {
		t.Helper()
		want, got := NewState("pk"), NewState("pk")
		for j, ev := range evs {
			seq := uint64(10 * (j + 1)) // other persons' events in between
			want.Apply(seq, ev)
			if j < len(evs)-1 {
				got.Apply(seq, ev)
				continue
			}
			provisional := got.LastSeq + 1
			if _, faulted := got.ApplyNew(provisional, ev); faulted {
				t.Fatalf("%s: ApplyNew reports a fault with no fault hook", what)
			}
			got.Resequence(provisional, seq)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: resequenced state differs:\ngot  %+v\nwant %+v", what, got, want)
		}
	}
	for i := 0; i < 150; i++ {
		evs := g.person()
		for n := 2; n <= len(evs); n++ {
			check("random person", evs[:n])
		}
	}
	const k = "0301"
	absorbed := []*nirv1.Event{
		evPerson("ra1", k, "1990-01-01", "2022-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28),
		evProgramme("ra2", k, nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, "2022-03-01"),
		withPayload("ra3", k, &nirv1.PersonMoved{Date: dpb("2022-05-01"), ToKommune: "4601"}),
	}
	check("merge", []*nirv1.Event{
		evPerson("rs1", k, "1990-01-01", "2022-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28),
		withPayload("rm1", k, &nirv1.PersonsMerged{AbsorbedPersonKey: strings.Repeat("a", 64), AbsorbedEvents: absorbed}),
	})
}

// TestApplyNew_Fault: ApplyNew reports the fault of the event it applies (so that the append
// path refuses it), nothing for an event the fold takes, and a fault for every event once the
// state cannot be derived at all.
func TestApplyNew_Fault(t *testing.T) {
	evs := faultEvents()
	faultOn(t, "fault-boom")
	s := NewState("pk")
	for i, ev := range evs[:2] {
		if f, faulted := s.ApplyNew(uint64(i+1), ev); faulted {
			t.Fatalf("event %d: fault %+v on an event the fold takes", i, f)
		}
	}
	f, faulted := s.ApplyNew(3, evs[2])
	if !faulted || f.EventID != "fault-boom" || f.Seq != 3 || f.Panic == "" {
		t.Fatalf("ApplyNew of the faulting event = %+v, %v; want its fault", f, faulted)
	}
	if _, faulted := s.ApplyNew(4, evs[3]); faulted {
		t.Fatal("the event after a faulted one is reported faulted")
	}

	// A retraction re-folds the person and finds the faults anew: retracting the faulted
	// event drops its fault, and the re-fold panics on another event (made to, once the
	// retraction is logged), which is the new fault to report though the count is the same.
	restore := SetFaultForTest(func(ev *nirv1.Event) bool {
		return ev.GetId() == "fault-boom" || ev.GetId() == "f-2" && len(s.Events) > 4
	})
	f, faulted = s.ApplyNew(5, withPayload("f-5", "0301", &nirv1.EventRetracted{EventId: "fault-boom"}))
	if !faulted || f.EventID != "f-2" || len(s.Faults) != 1 {
		t.Fatalf("ApplyNew of a retraction that faults another event = %+v, %v (faults %+v); want f-2's fault", f, faulted, s.Faults)
	}
	restore()

	broken := NewState("pk")
	restore = SetFaultForTest(func(ev *nirv1.Event) bool { return ev == nil }) // finish panics with no event to blame
	defer restore()
	f, faulted = broken.ApplyNew(1, evs[0])
	if !faulted || f.EventID != evs[0].GetId() {
		t.Fatalf("ApplyNew on a state that cannot be derived = %+v, %v; want a fault", f, faulted)
	}
}
