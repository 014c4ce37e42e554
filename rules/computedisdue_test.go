package rules

import (
	"fmt"
	"math/rand"
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// oldComputedIsDue is ComputedIsDue as it was, computing every programme's candidates: the
// reference the faster one must agree with.
func oldComputedIsDue(s *State, ev *nirv1.Event, now Date) bool {
	want := ev.GetTerminationComputed()
	if want == nil {
		return false
	}
	if !s.lastRegValid {
		s = s.Copy()
	}
	for _, p := range s.Programmes {
		for _, c := range s.candidates(p, now) {
			if c.dueDate().After(now) {
				continue
			}
			got := s.terminationEvent(p, c)
			if got.GetId() == ev.GetId() && got.GetKommune() == ev.GetKommune() && proto.Equal(got.GetTerminationComputed(), want) {
				return true
			}
		}
	}
	return false
}

// TestProperty_ComputedIsDueAsBefore: looking only at the programmes of the event's kommune
// and start answers as looking at all: for the terminations due on generated persons (on
// their day, later, and earlier), and for them with another kommune, another programme's
// start, no start, or another date. It leaves the state as it was.
func TestProperty_ComputedIsDueAsBefore(t *testing.T) {
	g := &gen{r: rand.New(rand.NewSource(propertySeed + 29))}
	due, notDue := 0, 0
	for i := 0; i < 300; i++ {
		evs := g.person()
		for k := 1; k <= len(evs); k++ {
			s := Fold("pk", evs[:k])
			for _, now := range propertyNows {
				for _, ev := range DueTerminations(s, now.AddYears(3)) {
					// A check leaves the state it judges on exactly as it was (the
					// append path's cached state), LastRegistration's cache too.
					fresh, want := Fold("pk", evs[:k]), Fold("pk", evs[:k])
					if ComputedIsDue(fresh, ev, now.AddYears(3)); !reflect.DeepEqual(fresh, want) {
						t.Fatalf("seed %d case %d, %d events: ComputedIsDue changed the state", propertySeed+29, i, k)
					}
					for _, e := range computedVariants(g.r, s, ev) {
						for _, at := range []Date{now, now.AddYears(3), now.AddYears(-1)} {
							got, want := ComputedIsDue(s, e, at), oldComputedIsDue(s, e, at)
							if got != want {
								t.Fatalf("seed %d case %d, %d events, on %s: ComputedIsDue %t, was %t for %v", propertySeed+29, i, k, at, got, want, e)
							}
							if got {
								due++
							} else {
								notDue++
							}
						}
					}
				}
			}
		}
	}
	if due < 100 || notDue < 100 {
		t.Fatalf("%d due and %d not: the generator must make both", due, notDue)
	}
}

// computedVariants is ev and copies with another kommune, another programme's start, no
// start, or another date.
func computedVariants(r *rand.Rand, s *State, ev *nirv1.Event) []*nirv1.Event {
	out := []*nirv1.Event{ev}
	other := proto.Clone(ev).(*nirv1.Event)
	other.Kommune = genKommuner[r.Intn(len(genKommuner))]
	out = append(out, other)
	if len(s.Programmes) > 0 {
		e := proto.Clone(ev).(*nirv1.Event)
		e.GetTerminationComputed().ProgrammeStart = s.Programmes[r.Intn(len(s.Programmes))].Start.Proto()
		out = append(out, e)
	}
	e := proto.Clone(ev).(*nirv1.Event)
	e.GetTerminationComputed().ProgrammeStart = nil
	out = append(out, e)
	e = proto.Clone(ev).(*nirv1.Event)
	e.GetTerminationComputed().Date = dateOf(ev.GetTerminationComputed().GetDate()).AddDays(1).Proto()
	return append(out, e)
}

// BenchmarkCheck_ComputedTerminations checks the regelmotor's append of the terminations due
// for a person of n programmes, each stopped by a stans (at most 1 000 in one request). Each
// event copied the whole state (for LastRegistration's cache) and computed every programme's
// candidates: 0.9-3.1, 4.6-11.5 and 7.4-28.7 s for 500, 1 000 and 2 000 programmes under a
// load of 14 (`go test -run '^$' -bench BenchmarkCheck_ComputedTerminations -benchtime 1x
// ./rules`, 2026-12-07 20:25 UTC); with a shallow copy and only the programmes of the
// event's kommune and start, 14-33 ms.
func BenchmarkCheck_ComputedTerminations(b *testing.B) {
	for _, n := range []int{500, 1000, 2000} {
		evs := []*nirv1.Event{evPerson("reg", "0301", "1990-05-01", "2010-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28)}
		d := md("2010-02-01")
		for i := range n {
			evs = append(evs, evProgramme(fmt.Sprintf("t%d", i), "0301", nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, d.String()),
				evProgramme(fmt.Sprintf("s%d", i), "0301", nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_STANS, d.AddDays(1).String()))
			d = d.AddDays(2)
		}
		s := Fold("pk", evs)
		now := md("2030-01-01")
		due := DueTerminations(s, now)
		due = due[:min(len(due), 1000)]
		b.Run(fmt.Sprintf("programmes=%d", n), func(b *testing.B) {
			for b.Loop() {
				if rs := Check(s, due, now); len(rs) != 0 {
					b.Fatalf("refused: %v", rs[0])
				}
			}
		})
	}
}
