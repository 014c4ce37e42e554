package rules

import (
	"cmp"
	"fmt"
	"math/rand"
	"reflect"
	"slices"
	"testing"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// settleEvent is gen.event, with more of what decides whether a computed termination holds
// (computedHolds): stans vedtak, moves, utdanningsbakgrunn, the kommune's deletion of a
// computed termination, retractions of them, a registration retracted or registered again,
// and merges whose copies fall in several programmes.
func (g *gen) settleEvent(k string, start Date, prior []*nirv1.Event) *nirv1.Event {
	e := g.ev(k)
	d := g.date(start, 3*365)
	switch g.r.Intn(12) {
	case 0:
		e.Payload = &nirv1.Event_ProgrammeVedtakRegistered{ProgrammeVedtakRegistered: &nirv1.ProgrammeVedtakRegistered{
			Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_STANS, VedtakDate: d.Proto(), FromDate: d.Proto()}}
	case 1:
		e.Payload = &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: genKommuner[g.r.Intn(len(genKommuner))], Date: d.Proto()}}
	case 2:
		e.Payload = &nirv1.Event_UtdanningsbakgrunnRegistered{UtdanningsbakgrunnRegistered: &nirv1.UtdanningsbakgrunnRegistered{
			UpperSecondaryCompleted: g.r.Intn(2) == 0, Date: d.Proto()}}
	case 3, 4:
		var computed []string
		for _, p := range prior {
			if p.GetTerminationComputed() != nil {
				computed = append(computed, p.GetId())
			}
		}
		if len(computed) == 0 {
			return g.event(k, start, prior)
		}
		target := computed[g.r.Intn(len(computed))]
		if g.r.Intn(2) == 0 {
			e.Payload = &nirv1.Event_ComputedTerminationDeleted{ComputedTerminationDeleted: &nirv1.ComputedTerminationDeleted{ComputedEventId: target}}
		} else {
			e.Payload = &nirv1.Event_EventRetracted{EventRetracted: &nirv1.EventRetracted{EventId: target}}
		}
	case 5: // the registration retracted, or registered again: the law may change
		e.Payload = &nirv1.Event_EventRetracted{EventRetracted: &nirv1.EventRetracted{EventId: prior[0].GetId()}}
	case 6:
		e = g.person()[0]
	case 7: // a merge, its copies in both kommuner; it may end a programme and start another
		var copied []*nirv1.Event
		for range g.r.Intn(4) {
			copied = append(copied, g.event([]string{k, genKommuner[g.r.Intn(len(genKommuner))]}[g.r.Intn(2)], start, prior))
		}
		if g.r.Intn(2) == 0 {
			end, next := g.ev(k), g.ev(k)
			end.Payload = &nirv1.Event_TerminationRegistered{TerminationRegistered: &nirv1.TerminationRegistered{
				Kind: nirv1.TerminationKind_TERMINATION_KIND_AVBRUTT, Reason: nirv1.TerminationReason_TERMINATION_REASON_ARBEID, Date: d.Proto()}}
			next.Payload = &nirv1.Event_ProgrammeVedtakRegistered{ProgrammeVedtakRegistered: &nirv1.ProgrammeVedtakRegistered{
				Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, VedtakDate: d.AddDays(1).Proto(), FromDate: d.AddDays(1).Proto()}}
			copied = append(copied, end, next)
		}
		e.Payload = &nirv1.Event_PersonsMerged{PersonsMerged: &nirv1.PersonsMerged{AbsorbedPersonKey: "other", AbsorbedEvents: copied}}
	case 8: // a tildeling that may move a programme's start
		from := g.date(start.AddDays(-200), 400)
		e.Payload = &nirv1.Event_ProgrammeVedtakRegistered{ProgrammeVedtakRegistered: &nirv1.ProgrammeVedtakRegistered{
			Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, VedtakDate: from.Proto(), FromDate: from.Proto()}}
	default:
		return g.event(k, start, prior)
	}
	return e
}

// TestProperty_SettleTouched: after each event, finish settles only the programmes the event
// changed (State.touch), and every programme when it changed what all of them read: the
// law, the moves, the utdanningsbakgrunn, a deletion; and addMove links only the moves it
// changes. So the state after every event of random histories, with the regelmotor's
// terminations computed on random days among them, must equal that state with every
// programme settled and every move linked again.
func TestProperty_SettleTouched(t *testing.T) {
	t.Parallel()
	g := &gen{r: rand.New(rand.NewSource(propertySeed + 7))}
	var computed, lapsed, several int
	for i := range 300 {
		evs := g.person()
		k, start := evs[0].GetKommune(), dateOf(evs[0].GetPersonRegistered().GetSettlementDate())
		st, history := NewState("pk"), []*nirv1.Event(nil)
		for j := range len(evs) + 10 + g.r.Intn(30) {
			var ev *nirv1.Event
			if j < len(evs) {
				ev = evs[j]
			} else {
				ev = g.settleEvent(k, start, history)
			}
			for _, e := range g.regelmotorPass(st, ev) {
				history = append(history, e)
				st.Apply(uint64(len(history)), e)
				settledAsAll(t, fmt.Sprintf("case %d event %d (%T)", i, len(history), e.GetPayload()), st)
			}
		}
		for _, p := range st.Programmes {
			for _, c := range p.ComputedTerminations {
				computed++
				if c.Lapsed {
					lapsed++
				}
			}
		}
		if len(st.Programmes) > 1 {
			several++
		}
	}
	t.Logf("%d computed terminations, %d lapsed; %d persons of several programmes", computed, lapsed, several)
}

// regelmotorPass returns ev, and after it, one time in three, the terminations due for st
// with ev applied on a random day (nird's regelmotor writes them).
func (g *gen) regelmotorPass(st *State, ev *nirv1.Event) []*nirv1.Event {
	if g.r.Intn(3) != 0 {
		return []*nirv1.Event{ev}
	}
	c := st.Copy()
	c.Apply(c.LastSeq+1, ev)
	return append([]*nirv1.Event{ev}, DueTerminations(c, propertyNows[g.r.Intn(len(propertyNows))])...)
}

// settledAsAll fails unless st equals itself with every programme settled again and every
// move linked again, its moves are in date order (those of one date in stream order), and
// its kommune on the days around each move is the one after the moves up to that day.
func settledAsAll(t *testing.T, what string, st *State) {
	t.Helper()
	if !slices.IsSortedFunc(st.Moves, func(a, b Move) int { return cmp.Or(a.Date.Compare(b.Date), cmp.Compare(a.Seq, b.Seq)) }) {
		t.Fatalf("%s: moves out of order: %+v", what, st.Moves)
	}
	if k := kommuneAfterMoves(st, Date{}); st.Kommune != k {
		t.Fatalf("%s: kommune %s, want %s, the kommune after every move", what, st.Kommune, k)
	}
	for _, m := range st.Moves {
		for _, d := range []Date{m.Date.AddDays(-1), m.Date, m.Date.AddDays(1), {}} {
			if got, want := st.KommuneOn(d), kommuneAfterMoves(st, d); got != want {
				t.Fatalf("%s: kommune on %s is %s, want %s", what, d, got, want)
			}
		}
	}
	all := st.Copy()
	all.relinkMoves()
	for _, p := range all.Programmes {
		all.settle(p)
	}
	if !reflect.DeepEqual(st, all) {
		for pi, p := range st.Programmes {
			if !reflect.DeepEqual(p, all.Programmes[pi]) {
				t.Fatalf("%s: programme %d settled differs from settling all:\n%+v\n%+v", what, pi, p, all.Programmes[pi])
			}
		}
		t.Fatalf("%s: state differs from settling every programme", what)
	}
}

// kommuneAfterMoves is KommuneOn as a walk through every move: the settlement kommune,
// replaced by each move dated on or before d (any move, for a zero d).
func kommuneAfterMoves(st *State, d Date) string {
	k := st.Person.SettlementKommune
	for _, m := range st.Moves {
		if !d.IsZero() && m.Date.After(d) {
			break
		}
		k = m.To
	}
	return k
}

// movePairs is a person who moves n times between two numbers of one kommune (a renumbering
// registered as a move changes nothing, Product decisions 13), each move a day after the last.
func movePairs(n int) []*nirv1.Event {
	evs := []*nirv1.Event{evPerson("reg", "0301", "1990-05-01", "2010-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28)}
	d := md("2010-02-01")
	for i := range n {
		m := newEv(fmt.Sprintf("m%d", i), "0301")
		m.Payload = &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: "0301", Date: d.Proto()}}
		evs = append(evs, m)
		d = d.AddDays(1)
	}
	return evs
}

// BenchmarkFold_Moves folds movePairs: sorting and linking every move after each one took
// 9, 30, 120 and 460 ms for 1 250 to 10 000 moves; inserting and linking one, 0.3–1.7,
// 1.1–2.7, 1.8–4.1 and 9–12 ms (BenchmarkFold_Programmes says how it was measured).
func BenchmarkFold_Moves(b *testing.B) {
	for _, n := range []int{1250, 2500, 5000, 10000} {
		events := movePairs(n)
		b.Run(fmt.Sprintf("moves=%d", n), func(b *testing.B) {
			for b.Loop() {
				if s := Fold("pk", events); len(s.Moves) != n {
					b.Fatalf("%d moves, want %d", len(s.Moves), n)
				}
			}
		})
	}
}

// BenchmarkFold_MovesBackwards folds moves each dated a day before the last: every move is
// inserted first, and the moves after it are moved along (54 ms for 10 000; 1.15 s when
// every move sorted and relinked them all).
func BenchmarkFold_MovesBackwards(b *testing.B) {
	events := movePairs(10000)
	slices.Reverse(events[1:])
	for b.Loop() {
		if s := Fold("pk", events); len(s.Moves) != 10000 {
			b.Fatalf("%d moves", len(s.Moves))
		}
	}
}

// BenchmarkFold_ProgrammesThenMoves folds 2 500 programmes, then 5 000 moves: each move
// settles every programme again (State.touch), 52–54 ms (200 ms before).
func BenchmarkFold_ProgrammesThenMoves(b *testing.B) {
	events := append(programmePairs(2500)[:5001], movePairs(5000)[1:]...)
	for b.Loop() {
		if s := Fold("pk", events); len(s.Moves) != 5000 || len(s.Programmes) != 2500 {
			b.Fatalf("%d moves, %d programmes", len(s.Moves), len(s.Programmes))
		}
	}
}
