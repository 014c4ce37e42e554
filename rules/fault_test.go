package rules

import (
	"reflect"
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

// TestApply_FaultRetracted: a retraction of a faulted event retracts nothing that counted; the
// event stays left out when the retraction is retracted, and when other retractions refold.
// A faulted retraction retracts nothing.
func TestApply_FaultRetracted(t *testing.T) {
	faultOn(t, "fault-boom", "fault-retraction")
	evs := append(faultEvents(), withPayload("f-5", "0301", &nirv1.EventRetracted{EventId: "fault-boom"}))
	s := Fold("pk", evs)
	if !s.Retracted["fault-boom"] || len(s.Faults) != 1 {
		t.Fatalf("retracted = %v, faults = %+v", s.Retracted, s.Faults)
	}
	sameDerived(t, "retracted", s, foldSkipping(evs, "fault-boom"))

	evs = append(evs, withPayload("f-6", "0301", &nirv1.EventRetracted{EventId: "f-5"}))
	s = Fold("pk", evs)
	if s.Retracted["fault-boom"] || len(s.Faults) != 1 {
		t.Fatalf("retraction retracted: retracted = %v, faults = %+v", s.Retracted, s.Faults)
	}
	if p := s.Programmes; len(p) != 1 || p[0].Termination != nil {
		t.Fatalf("the faulted event counts again once its retraction is retracted: %+v", p)
	}
	sameDerived(t, "retraction retracted", s, foldSkipping(evs, "fault-boom", "f-5", "f-6"))

	// A faulted retraction: its target keeps counting.
	evs = append(faultEvents(), withPayload("fault-retraction", "0301", &nirv1.EventRetracted{EventId: "f-4"}))
	s = Fold("pk", evs)
	if s.Retracted["f-4"] || len(s.Faults) != 2 || s.Faults[1].EventID != "fault-retraction" || s.Faults[1].Seq != 5 {
		t.Fatalf("retracted = %v, faults = %+v", s.Retracted, s.Faults)
	}
	if p := s.Programmes; len(p) != 1 || len(p[0].Tiltak) != 1 {
		t.Fatalf("the faulted retraction took effect: %+v", p)
	}
	inc := NewState("pk")
	for i, ev := range evs {
		inc.Copy().Apply(uint64(i+1), ev) // a copy's apply leaves inc as it was
		inc.Apply(uint64(i+1), ev)
	}
	if !reflect.DeepEqual(inc, s) {
		t.Fatal("Apply one by one differs from Fold")
	}
}

// TestApply_FaultInRefold: an event that folded fine, and panics when a retraction refolds
// the person, is faulted there and left out; every event faulted leaves the empty state.
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
	// Later folds leave it out too, whether it would panic or not.
	armed.Store(false)
	s.Apply(6, withPayload("g-6", "0301", &nirv1.EventRetracted{EventId: "g-5"}))
	if p := s.Programmes; len(p) != 1 || len(p[0].Tiltak) != 1 || p[0].Tiltak[0].EventID != "g-4" {
		t.Fatalf("programmes = %+v, want one with tiltak g-4 alone", p)
	}

	t.Run("EveryEvent", func(t *testing.T) {
		restore := SetFaultForTest(func(ev *nirv1.Event) bool { return ev != nil })
		defer restore()
		s := Fold("pk", append(evs, withPayload("g-5", "0301", &nirv1.EventRetracted{EventId: "g-4"})))
		if len(s.Faults) != 5 || s.Broken || s.Registered || len(s.Programmes) != 0 || len(s.Retracted) != 0 {
			t.Fatalf("faults %d, broken %v, registered %v, programmes %d, retracted %v", len(s.Faults), s.Broken, s.Registered, len(s.Programmes), s.Retracted)
		}
	})

	// A panic no event is to blame for (settling the state) once every event is left out:
	// the state is Broken, with nothing derived, and later events are only logged.
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
		onFinish.Store(false)
		s.Apply(6, evProgramme("g-6", "0301", nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, "2023-03-01"))
		if !s.Broken || len(s.Programmes) != 0 || len(s.Log()) != 6 || s.LastSeq != 6 {
			t.Fatalf("after Broken: broken %v, programmes %d, %d logged, last seq %d", s.Broken, len(s.Programmes), len(s.Log()), s.LastSeq)
		}
		if c := s.Copy(); !reflect.DeepEqual(c, s) {
			t.Fatal("a copy of a broken state differs")
		}
		s.Apply(7, evs[0]) // a redelivery
		if len(s.Log()) != 6 {
			t.Fatal("a redelivery was logged")
		}
	})
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
