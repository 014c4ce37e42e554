package rules

import (
	"fmt"
	"math/rand"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// faultEvents are a person whose third event, a termination no other test uses the id of,
// the fault tests make the fold panic on; the fourth is a tiltak.
func faultEvents() []*nirv1.Event {
	return []*nirv1.Event{
		evPerson("f-1", "0301", "1990-05-01", "2022-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28),
		evProgramme("f-2", "0301", nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, "2022-03-01"),
		evTermination("fault-boom", "0301", nirv1.TerminationReason_TERMINATION_REASON_ARBEID, "2023-01-31"),
		withPayload("f-4", "0301", &nirv1.TiltakRegistered{FromDate: dpb("2022-04-01"), ToDate: dpb("2022-06-30")}),
	}
}

// faultOn makes the fold panic on the events with the ids (SetFaultForTest) until the test
// ends. The ids are the fault tests' own, so that tests running alongside never meet them.
func faultOn(t *testing.T, ids ...string) {
	t.Helper()
	restore := SetFaultForTest(func(ev *nirv1.Event) bool {
		for _, id := range ids {
			if ev.GetId() == id {
				return true
			}
		}
		return false
	})
	t.Cleanup(restore)
}

// foldSkipping applies evs at sequences 1.. with the events of the ids left out.
func foldSkipping(evs []*nirv1.Event, ids ...string) *State {
	s := NewState("pk")
	for i, ev := range evs {
		skip := false
		for _, id := range ids {
			skip = skip || ev.GetId() == id
		}
		if !skip {
			s.Apply(uint64(i+1), ev)
		}
	}
	return s
}

// sameDerived fails t unless got's derived state is want's: want with got's log, events,
// last sequence and faults (what a faulted event still leaves).
func sameDerived(t *testing.T, what string, got, want *State) {
	t.Helper()
	w := want.Copy()
	w.log, w.Events, w.LastSeq, w.Faults, w.Retracted = got.log, got.Events, got.LastSeq, got.Faults, got.Retracted
	if !reflect.DeepEqual(got, w) {
		t.Fatalf("%s: the derived state differs from the fold without the faulted event:\ngot  %+v\nwant %+v", what, got, w)
	}
}

// TestApply_Fault: a panic while an event is folded does not escape Apply; the event stays in
// the log and the id set but is left out of the derived state, recorded in Faults; Fold,
// Apply one by one and a Copy taken at any point agree; a redelivery changes nothing.
func TestApply_Fault(t *testing.T) {
	faultOn(t, "fault-boom")
	evs := faultEvents()
	got := Fold("pk", evs)
	if len(got.Faults) != 1 || got.Faults[0].Seq != 3 || got.Faults[0].EventID != "fault-boom" {
		t.Fatalf("faults = %+v, want the event at seq 3", got.Faults)
	}
	if got.Broken {
		t.Fatal("broken")
	}
	if got.Faults[0].Panic != "panic(rules.errFaultForTest)" {
		t.Errorf("panic text = %q", got.Faults[0].Panic)
	}
	if _, ok := got.Events["fault-boom"]; !ok || len(got.Log()) != 4 || got.LastSeq != 4 {
		t.Fatalf("the faulted event left the log: %d events, last seq %d", len(got.Log()), got.LastSeq)
	}
	if !got.Faulted("fault-boom") || got.Faulted("f-4") {
		t.Error("Faulted does not name the faulted event alone")
	}
	if p := got.Programmes; len(p) != 1 || p[0].Termination != nil || len(p[0].Tiltak) != 1 {
		t.Fatalf("programmes = %+v, want one, not terminated, with its tiltak", p)
	}
	sameDerived(t, "fold", got, foldSkipping(evs, "fault-boom"))

	// One by one, through a copy at every step.
	inc := NewState("pk")
	for i, ev := range evs {
		inc.Apply(uint64(i+1), ev)
		inc = inc.Copy()
	}
	if !reflect.DeepEqual(inc, got) {
		t.Fatal("Apply one by one through copies differs from Fold")
	}

	// A redelivery of the faulted event is ignored, as of any other.
	again := got.Copy()
	again.Apply(5, evs[2])
	if !reflect.DeepEqual(again, got) {
		t.Fatal("a redelivery of the faulted event changed the state")
	}
}

// foldEachWay is sameEachWay's fold of evs, which fault tests make panic on purpose.
func foldEachWay(t *testing.T, evs []*nirv1.Event) *State {
	t.Helper()
	return sameEachWay(t, "fold", &gen{r: rand.New(rand.NewSource(propertySeed))}, evs, false)
}

// TestApply_FaultRetracted: a retracted event is not folded, so it does not fault; it
// faults again when its retraction is retracted. A faulted retraction retracts nothing.
// Fold, Apply one by one and ApplyAll agree on each.
func TestApply_FaultRetracted(t *testing.T) {
	faultOn(t, "fault-boom", "fault-retraction")
	evs := append(faultEvents(), withPayload("f-5", "0301", &nirv1.EventRetracted{EventId: "fault-boom"}))
	s := foldEachWay(t, evs)
	if !s.Retracted["fault-boom"] || len(s.Faults) != 0 || s.Faulted("fault-boom") {
		t.Fatalf("retracted = %v, faults = %+v", s.Retracted, s.Faults)
	}
	sameDerived(t, "retracted", s, foldSkipping(evs, "fault-boom"))

	evs = append(evs, withPayload("f-6", "0301", &nirv1.EventRetracted{EventId: "f-5"}))
	s = foldEachWay(t, evs)
	if s.Retracted["fault-boom"] || len(s.Faults) != 1 || s.Faults[0].EventID != "fault-boom" || s.Faults[0].Seq != 3 {
		t.Fatalf("retraction retracted: retracted = %v, faults = %+v", s.Retracted, s.Faults)
	}
	if p := s.Programmes; len(p) != 1 || p[0].Termination != nil {
		t.Fatalf("the faulted event counts once its retraction is retracted: %+v", p)
	}
	sameDerived(t, "retraction retracted", s, foldSkipping(evs, "fault-boom", "f-5", "f-6"))

	// A faulted retraction: its target keeps counting.
	evs = append(faultEvents(), withPayload("fault-retraction", "0301", &nirv1.EventRetracted{EventId: "f-4"}))
	s = foldEachWay(t, evs)
	if s.Retracted["f-4"] || len(s.Faults) != 2 || s.Faults[1].EventID != "fault-retraction" || s.Faults[1].Seq != 5 {
		t.Fatalf("retracted = %v, faults = %+v", s.Retracted, s.Faults)
	}
	if p := s.Programmes; len(p) != 1 || len(p[0].Tiltak) != 1 {
		t.Fatalf("the faulted retraction took effect: %+v", p)
	}
}

// TestApply_FaultInRefold: an event that folded fine, and panics when a retraction refolds
// the person, is faulted there and left out. A later retraction finds the faults anew, as
// a fold of the whole log would: the event counts again once it folds. Every event faulted
// leaves the empty state.
func TestApply_FaultInRefold(t *testing.T) {
	var armed atomic.Bool
	t.Cleanup(SetFaultForTest(func(ev *nirv1.Event) bool {
		return armed.Load() && ev.GetId() == "fault-late"
	}))
	evs := []*nirv1.Event{
		evPerson("g-1", "0301", "1990-05-01", "2022-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28),
		evProgramme("g-2", "0301", nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, "2022-03-01"),
		withPayload("fault-late", "0301", &nirv1.TiltakRegistered{FromDate: dpb("2022-04-01"), ToDate: dpb("2022-06-30")}),
		withPayload("g-4", "0301", &nirv1.TiltakRegistered{FromDate: dpb("2022-07-01"), ToDate: dpb("2022-09-30")}),
	}
	s := Fold("pk", evs)
	armed.Store(true)
	s.Apply(5, withPayload("g-5", "0301", &nirv1.EventRetracted{EventId: "g-4"}))
	if len(s.Faults) != 1 || s.Faults[0].Seq != 3 || s.Faults[0].EventID != "fault-late" {
		t.Fatalf("faults = %+v", s.Faults)
	}
	if p := s.Programmes; len(p) != 1 || len(p[0].Tiltak) != 0 {
		t.Fatalf("programmes = %+v, want one without tiltak", p)
	}
	// The next retraction re-folds the log, and the event no longer panics.
	armed.Store(false)
	s.Apply(6, withPayload("g-6", "0301", &nirv1.EventRetracted{EventId: "g-5"}))
	if p := s.Programmes; len(s.Faults) != 0 || len(p) != 1 || len(p[0].Tiltak) != 2 {
		t.Fatalf("faults = %+v, programmes = %+v, want one with both tiltak", s.Faults, p)
	}
	all := append(evs, withPayload("g-5", "0301", &nirv1.EventRetracted{EventId: "g-4"}), withPayload("g-6", "0301", &nirv1.EventRetracted{EventId: "g-5"}))
	if f := Fold("pk", all); !reflect.DeepEqual(f, s) {
		t.Fatal("the state differs from a fold of its log")
	}

	t.Run("EveryEvent", func(t *testing.T) {
		restore := SetFaultForTest(func(ev *nirv1.Event) bool { return ev != nil })
		defer restore()
		s := foldEachWay(t, append(evs, withPayload("g-5", "0301", &nirv1.EventRetracted{EventId: "g-4"})))
		if len(s.Faults) != 5 || s.Broken || s.Registered || len(s.Programmes) != 0 || len(s.Retracted) != 0 {
			t.Fatalf("faults %d, broken %v, registered %v, programmes %d, retracted %v", len(s.Faults), s.Broken, s.Registered, len(s.Programmes), s.Retracted)
		}
	})

	// A panic no event is to blame for (settling the state) once every event is left out:
	// the state is Broken, with nothing derived. A later event is folded into the empty
	// state, as a fold of the log would: every earlier event stays faulted.
	t.Run("Broken", func(t *testing.T) {
		var onFinish atomic.Bool
		restore := SetFaultForTest(func(ev *nirv1.Event) bool { return ev == nil && onFinish.Load() })
		defer restore()
		s := Fold("pk", evs)
		onFinish.Store(true)
		s.Apply(5, withPayload("g-5", "0301", &nirv1.EventRetracted{EventId: "g-4"}))
		if !s.Broken || len(s.Faults) != 5 || s.Registered || len(s.Programmes) != 0 || len(s.Retracted) != 0 || s.LastSeq != 5 {
			t.Fatalf("broken %v, faults %d, registered %v, programmes %d, retracted %v, last seq %d", s.Broken, len(s.Faults), s.Registered, len(s.Programmes), s.Retracted, s.LastSeq)
		}
		if c := s.Copy(); !reflect.DeepEqual(c, s) {
			t.Fatal("a copy of a broken state differs")
		}
		again := s.Copy()
		again.Apply(7, evs[0]) // a redelivery
		if !reflect.DeepEqual(again, s) {
			t.Fatal("a redelivery changed a broken state")
		}
		onFinish.Store(false)
		g6 := evProgramme("g-6", "0301", nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, "2023-03-01")
		s.Apply(6, g6)
		if s.Broken || len(s.Faults) != 5 || len(s.Programmes) != 1 || len(s.Log()) != 6 || s.LastSeq != 6 {
			t.Fatalf("after Broken: broken %v, faults %d, programmes %d, %d logged, last seq %d", s.Broken, len(s.Faults), len(s.Programmes), len(s.Log()), s.LastSeq)
		}
		alone := NewState("pk")
		alone.Apply(6, g6)
		sameDerived(t, "after Broken", s, alone)
	})
}

// TestProperty_ApplyAllIsApply: on random histories rich in retractions (of retractions
// too), with random events made to panic, and the state made to panic when settled after
// random events, Fold, ApplyAll in random pieces and Apply one by
// one (through copies) give the same State, and the state after each event is the fold of
// the log up to it. So the faults are the log's, however it was read: catching up, a
// rebuild and an as-of replay leave out the same events (README, Guarantees).
func TestProperty_ApplyAllIsApply(t *testing.T) {
	faults := foldFaults(t)
	g := &gen{r: rand.New(rand.NewSource(propertySeed))}
	for i := range 300 {
		evs := g.person()
		for range g.r.Intn(10) {
			at := 1 + g.r.Intn(len(evs))
			e := g.ev("0301")
			e.Payload = &nirv1.Event_EventRetracted{EventRetracted: &nirv1.EventRetracted{EventId: evs[g.r.Intn(at)].GetId()}}
			evs = slices.Insert(evs, at, e)
		}
		faults.pick(g, evs)
		sameEachWay(t, fmt.Sprintf("seed %d case %d", propertySeed, i), g, evs, false)
	}
}

// foldFaultHook makes the fold panic on the events in faulty, and the state panic when it is
// settled (finish) right after an event in unsettled is folded.
type foldFaultHook struct {
	faulty, unsettled map[*nirv1.Event]bool
	last              *nirv1.Event
}

// foldFaults installs a foldFaultHook until t ends; the test must not be parallel.
func foldFaults(t *testing.T) *foldFaultHook {
	h := &foldFaultHook{}
	t.Cleanup(SetFaultForTest(func(ev *nirv1.Event) bool {
		if ev == nil {
			return h.unsettled[h.last]
		}
		h.last = ev
		return h.faulty[ev]
	}))
	return h
}

// pick chooses at random the events of evs that fault (1 in 6) and after which the state
// cannot be settled (1 in 12).
func (h *foldFaultHook) pick(g *gen, evs []*nirv1.Event) {
	h.faulty, h.unsettled, h.last = map[*nirv1.Event]bool{}, map[*nirv1.Event]bool{}, nil
	for _, ev := range evs {
		h.faulty[ev] = g.r.Intn(6) == 0
		h.unsettled[ev] = g.r.Intn(12) == 0
	}
}

// sameEachWay fails t unless Apply one by one (through copies, a copy's apply leaving the
// state it was copied from as it was), ApplyAll in random pieces and Fold give the same State
// for evs at sequences 1.., the state after each event is the fold of the log up to it, and
// Unattached is the ids of the events waiting for a programme; and, when no fault was asked
// for (faultFree), unless the fold found none: the paths agreeing on a panic would hide a
// bug. It returns the fold.
func sameEachWay(t *testing.T, what string, g *gen, evs []*nirv1.Event, faultFree bool) *State {
	t.Helper()
	whole := Fold("pk", evs)
	if faultFree && (len(whole.Faults) > 0 || whole.Broken) {
		t.Fatalf("%s: the fold panicked with no fault asked for: %+v", what, whole.Faults)
	}
	inc, pieces := NewState("pk"), NewState("pk")
	var piece []LoggedEvent
	for k, ev := range evs {
		inc.Copy().Apply(uint64(k+1), ev)
		inc = inc.Copy()
		inc.Apply(uint64(k+1), ev)
		if prefix := Fold("pk", evs[:k+1]); !reflect.DeepEqual(inc, prefix) {
			t.Fatalf("%s: after event %d, Apply one by one differs from a fold of the log so far (faults %+v, folded %+v)", what, k, inc.Faults, prefix.Faults)
		}
		piece = append(piece, LoggedEvent{Seq: uint64(k + 1), Event: ev})
		if g.r.Intn(3) == 0 || k == len(evs)-1 {
			pieces.ApplyAll(piece)
			piece = nil
		}
	}
	var waiting []string
	for _, le := range whole.pending {
		waiting = append(waiting, le.Event.GetId())
	}
	if !slices.Equal(whole.Unattached, waiting) {
		t.Fatalf("%s: Unattached %v, want the ids of the events waiting for a programme %v", what, whole.Unattached, waiting)
	}
	if !reflect.DeepEqual(inc, whole) || !reflect.DeepEqual(pieces, whole) {
		t.Fatalf("%s: Apply one by one (same %v, retracted %v) or ApplyAll in pieces (same %v, retracted %v) differs from Fold (retracted %v)",
			what, reflect.DeepEqual(inc, whole), inc.Retracted, reflect.DeepEqual(pieces, whole), pieces.Retracted, whole.Retracted)
	}
	return whole
}

// TestFold_LinearInRetractions: a fold applies each event of a history a bounded number of
// times however many retractions it holds (counted through the fault hook, which every
// event's fold asks), where re-folding the log at every retraction applies the events of
// retractionPairs(n) about n² times. A kommune could otherwise make every read of its own
// person slow (helper-121's audit; BenchmarkFold_RetractionPairs times it).
func TestFold_LinearInRetractions(t *testing.T) {
	var applied atomic.Int64
	t.Cleanup(SetFaultForTest(func(ev *nirv1.Event) bool {
		if ev != nil {
			applied.Add(1)
		}
		return false
	}))
	events := retractionPairs(2000)
	s := Fold("pk", events)
	if n := applied.Load(); n > int64(len(events)) { // 2003: two before the first retraction, one re-fold
		t.Fatalf("%d events applied %d times", len(events), n)
	}
	if len(s.Retracted) != 2000 || len(s.Training.Absence) != 0 {
		t.Fatalf("%d retracted, %d absences left", len(s.Retracted), len(s.Training.Absence))
	}
}

// TestPanicText: a fault records a runtime error's text, else only the panic value's type,
// never its content (it could hold a national id).
func TestPanicText(t *testing.T) {
	t.Parallel()
	var rt any
	func() {
		defer func() { rt = recover() }()
		_ = rt.(string) // rt is nil yet: a runtime error
	}()
	if got := panicText(rt); !strings.Contains(got, "interface conversion") {
		t.Errorf("runtime error: %q", got)
	}
	if got := panicText("person 01019012345 is odd"); got != "panic(string)" {
		t.Errorf("string: %q", got)
	}
}
