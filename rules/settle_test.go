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
	switch g.r.Intn(14) {
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
	case 9, 10: // a move retracted, or one dated as a computed termination or a move before
		var moves, dates []*nirv1.Event
		for _, p := range prior {
			switch {
			case p.GetPersonMoved() != nil:
				moves, dates = append(moves, p), append(dates, p)
			case p.GetTerminationComputed() != nil:
				dates = append(dates, p)
			}
		}
		switch {
		case len(moves) > 0 && g.r.Intn(2) == 0:
			e.Payload = &nirv1.Event_EventRetracted{EventRetracted: &nirv1.EventRetracted{EventId: moves[g.r.Intn(len(moves))].GetId()}}
		case len(dates) > 0:
			p := dates[g.r.Intn(len(dates))]
			on := cmp.Or(p.GetPersonMoved().GetDate(), p.GetTerminationComputed().GetDate())
			e.Payload = &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: genKommuner[g.r.Intn(len(genKommuner))], Date: on}}
		default:
			return g.event(k, start, prior)
		}
	default:
		return g.event(k, start, prior)
	}
	return e
}

// lineageKommuner are numbers of the generator's kommuner before a reform (SameKommune):
// 1201 Bergen, 1601 Trondheim, 0219 and 3024 Bærum, 1141 Finnøy (now Stavanger).
var lineageKommuner = []string{"1201", "1601", "0219", "3024", "1141"}

// lookupKommune is k, a number of its lineage or another's, or none (the bostedskommune).
func (g *gen) lookupKommune(k string) string {
	ks := append([]string{k, k, ""}, append(genKommuner, lineageKommuner...)...)
	return ks[g.r.Intn(len(ks))]
}

// lookupEvent is an event whose programme is looked up among several: a computed
// termination naming any programme start (or none) in any kommune, a stint ended and
// started again on the first stint's start (programmes of equal starts), or a merge of moves
// on one date (moves of one sequence, in copy order).
func (g *gen) lookupEvent(k string, start Date, prior []*nirv1.Event) *nirv1.Event {
	e := g.ev(g.lookupKommune(k))
	d := g.date(start, 3*365)
	switch g.r.Intn(3) {
	case 0:
		starts := []Date{start, start.AddDays(1), {}, d}
		for _, p := range prior {
			if v := p.GetProgrammeVedtakRegistered(); v.GetType() == nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING {
				starts = append(starts, dateOf(v.GetFromDate()))
			}
		}
		e.Payload = &nirv1.Event_TerminationComputed{TerminationComputed: &nirv1.TerminationComputed{
			Rule: nirv1.TerminationRule(1 + g.r.Intn(4)), Reason: nirv1.TerminationReason_TERMINATION_REASON_ANNET,
			Date: d.Proto(), ProgrammeStart: starts[g.r.Intn(len(starts))].Proto(), RuleVersion: "gen"}}
	case 1:
		end, next := g.ev(e.GetKommune()), g.ev(e.GetKommune())
		end.Payload = &nirv1.Event_TerminationRegistered{TerminationRegistered: &nirv1.TerminationRegistered{
			Kind: nirv1.TerminationKind_TERMINATION_KIND_AVBRUTT, Reason: nirv1.TerminationReason_TERMINATION_REASON_ARBEID, Date: d.Proto()}}
		from := []Date{start, start, {}, start.AddDays(-1)}[g.r.Intn(4)]
		next.Payload = &nirv1.Event_ProgrammeVedtakRegistered{ProgrammeVedtakRegistered: &nirv1.ProgrammeVedtakRegistered{
			Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, VedtakDate: from.Proto(), FromDate: from.Proto()}}
		e.Payload = &nirv1.Event_PersonsMerged{PersonsMerged: &nirv1.PersonsMerged{AbsorbedPersonKey: "other", AbsorbedEvents: []*nirv1.Event{end, next}}}
	default:
		var moves []*nirv1.Event
		for range 2 + g.r.Intn(3) {
			m := g.ev(k)
			m.Payload = &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: g.lookupKommune(k), Date: d.Proto()}}
			moves = append(moves, m)
		}
		e.Payload = &nirv1.Event_PersonsMerged{PersonsMerged: &nirv1.PersonsMerged{AbsorbedPersonKey: "other", AbsorbedEvents: moves}}
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
	foldSettled(t, &gen{r: rand.New(rand.NewSource(propertySeed + 7))}, func(g *gen, k string, start Date, prior []*nirv1.Event) *nirv1.Event {
		return g.settleEvent(k, start, prior)
	})
}

// TestProperty_SettleTouchedLookups is TestProperty_SettleTouched with, among its events,
// events whose programme is looked up among several (lookupEvent): computed terminations
// naming any start in any kommune of a lineage, programmes of equal starts, and merges of
// moves of one date, so that programmeFor and latestIn, which look at the latest programme
// and then search the others (State.earlier), and the order of moves addMove inserts are
// checked where they could go wrong.
func TestProperty_SettleTouchedLookups(t *testing.T) {
	t.Parallel()
	foldSettled(t, &gen{r: rand.New(rand.NewSource(propertySeed + 8))}, func(g *gen, k string, start Date, prior []*nirv1.Event) *nirv1.Event {
		if g.r.Intn(3) == 0 {
			return g.lookupEvent(k, start, prior)
		}
		return g.settleEvent(k, start, prior)
	})
}

// TestProperty_SettleTouchedFaults is TestProperty_SettleTouched with random events made to
// panic, and the state made to panic when settled after random events: a fault re-folds the
// person without the event (State.Faults), as a retraction does, and that re-fold too must
// settle what each event touched. The fault tests' histories have no computed terminations,
// so there settling every programme or only the touched ones gave the same states.
func TestProperty_SettleTouchedFaults(t *testing.T) {
	faults := foldFaults(t)
	faults.pick(nil, nil)
	foldSettled(t, &gen{r: rand.New(rand.NewSource(propertySeed + 9))}, func(g *gen, k string, start Date, prior []*nirv1.Event) *nirv1.Event {
		ev := g.settleEvent(k, start, prior)
		faults.faulty[ev], faults.unsettled[ev] = g.r.Intn(10) == 0, g.r.Intn(20) == 0
		return ev
	})
}

// foldSettled folds 300 random persons, each event after the generated ones made by next,
// and fails unless the state after every event is settled as a settling of all would
// (settledAsAll) and a computed termination goes to the programme it names (computedFound).
func foldSettled(t *testing.T, g *gen, next func(g *gen, k string, start Date, prior []*nirv1.Event) *nirv1.Event) {
	t.Helper()
	var seen settledSeen
	for i := range 300 {
		evs := g.person()
		k, start := evs[0].GetKommune(), dateOf(evs[0].GetPersonRegistered().GetSettlementDate())
		st, history := NewState("pk"), []*nirv1.Event(nil)
		for j := range len(evs) + 10 + g.r.Intn(30) {
			var ev *nirv1.Event
			if j < len(evs) {
				ev = evs[j]
			} else {
				ev = next(g, k, start, history)
			}
			for _, e := range g.regelmotorPass(st, ev) {
				history = append(history, e)
				st.Apply(uint64(len(history)), e)
				what := fmt.Sprintf("case %d event %d (%T)", i, len(history), e.GetPayload())
				settledAsAll(t, what, st)
				computedFound(t, what, st, e)
			}
		}
		seen.add(st)
	}
	t.Logf("%d computed terminations, %d lapsed; %d persons of several programmes, %d programmes starting with one before them in their kommune; %d moves after one of the same date and sequence; %d faults",
		seen.computed, seen.lapsed, seen.several, seen.equalStarts, seen.sameSeqMoves, seen.faults)
}

// settledSeen counts what the persons foldSettled folded hold, so that its log shows what
// its checks met.
type settledSeen struct{ computed, lapsed, several, equalStarts, sameSeqMoves, faults int }

func (c *settledSeen) add(st *State) {
	c.faults += len(st.Faults)
	for pi, p := range st.Programmes {
		for _, t := range p.ComputedTerminations {
			c.computed++
			if t.Lapsed {
				c.lapsed++
			}
		}
		if slices.ContainsFunc(st.Programmes[:pi], func(q *Programme) bool { return q.Start == p.Start && SameKommune(q.Kommune, p.Kommune) }) {
			c.equalStarts++
		}
	}
	if len(st.Programmes) > 1 {
		c.several++
	}
	for mi := 1; mi < len(st.Moves); mi++ {
		if st.Moves[mi].Seq == st.Moves[mi-1].Seq && st.Moves[mi].Date == st.Moves[mi-1].Date {
			c.sameSeqMoves++
		}
	}
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
// move linked again, its moves are in date order (those of one date in stream order, a
// merge's copies in their order in it), its kommune on the days around each move is the one
// after the moves up to that day, and its programmes are looked up as a look at every one
// from the first would find them.
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
	if st.touched != nil || st.touchedAll || st.touchedComputed || len(st.movedOn) > 0 {
		t.Fatalf("%s: what the event touched is left for the next: %v %v %v %v", what, st.touched, st.touchedAll, st.touchedComputed, st.movedOn)
	}
	movesInStreamOrder(t, what, st)
	programmesLookedUpAsForward(t, what, st)
	waitingFindNone(t, what, st)
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

// movesInStreamOrder fails unless st's moves of one date are in the order of their events
// in the stream, a merge's copies in their order in it: a merge gives its copies its own
// sequence, so sorting by sequence does not tell them apart.
func movesInStreamOrder(t *testing.T, what string, st *State) {
	t.Helper()
	at := map[string]int{}
	var walk func(ev *nirv1.Event)
	walk = func(ev *nirv1.Event) {
		if _, seen := at[ev.GetId()]; !seen {
			at[ev.GetId()] = len(at)
		}
		for _, c := range ev.GetPersonsMerged().GetAbsorbedEvents() {
			walk(c)
		}
	}
	for _, le := range st.log {
		walk(le.Event)
	}
	for i := 1; i < len(st.Moves); i++ {
		a, b := st.Moves[i-1], st.Moves[i]
		if a.Date == b.Date && a.EventID != "" && b.EventID != "" && at[a.EventID] > at[b.EventID] {
			t.Fatalf("%s: move %s before %s of the same date, which comes before it in the stream: %+v", what, a.EventID, b.EventID, st.Moves)
		}
	}
}

// programmesLookedUpAsForward fails unless programmeFor, and latestIn for the latest
// programme and for the latest started on a date, which look at the latest programme and
// then search earlier, find what a look at every programme
// from the first finds, and what the look from the latest programme back that they replace
// found (scanProgrammeFor, scanLastProgramme): the latest one created of those that fit,
// among kommuner of one lineage (SameKommune), programmes of equal starts and zero dates.
// And earlier must be the index of the programmes before the latest, as built anew.
func programmesLookedUpAsForward(t *testing.T, what string, st *State) {
	t.Helper()
	if want := earlierBuilt(st); !reflect.DeepEqual(st.earlier, want) {
		t.Fatalf("%s: earlier is %v, want %v", what, st.earlier, want)
	}
	ks := append(slices.Clone(genKommuner), append(lineageKommuner, "", "0220", "3025", "1508", "1507", "1580")...)
	ds := []Date{{}}
	for _, p := range st.Programmes {
		ks = append(ks, p.Kommune)
		ds = append(ds, p.Start, p.Start.AddDays(-1), p.Start.AddDays(1))
	}
	for _, k := range ks {
		if got, want := programmeAtIndex(st, st.latestIn(k, anyStart, Date{})), scanLastProgramme(st, k, nil); got != want || got != forwardProgrammeFor(st, k, Date{}) {
			t.Fatalf("%s: the last programme in %q is %+v, want %+v", what, k, got, want)
		}
		for _, d := range ds {
			if got, want := st.programmeFor(k, d), forwardProgrammeFor(st, k, d); got != want || got != scanProgrammeFor(st, k, d) {
				t.Fatalf("%s: programmeFor(%q, %s) is %+v, want %+v", what, k, d, got, want)
			}
			started := func(p *Programme) bool { return p.Start == d }
			if got, want := programmeAtIndex(st, st.latestIn(k, startedAt, d)), forwardStarted(st, k, d); got != want || got != scanLastProgramme(st, k, started) {
				t.Fatalf("%s: the last programme in %q started %s is %+v, want %+v", what, k, d, got, want)
			}
		}
	}
}

// forwardProgrammeFor is programmeFor looking at every programme from the first: the latest
// in k started on or before d, else the latest in k.
func forwardProgrammeFor(st *State, k string, d Date) *Programme {
	var latest, started *Programme
	for _, p := range st.Programmes {
		if SameKommune(p.Kommune, k) {
			latest = p
			if !d.IsZero() && !p.Start.After(d) {
				started = p
			}
		}
	}
	return cmp.Or(started, latest)
}

// forwardStarted is the latest programme in k started on start, looking at every one.
func forwardStarted(st *State, k string, start Date) *Programme {
	var found *Programme
	for _, p := range st.Programmes {
		if SameKommune(p.Kommune, k) && p.Start == start {
			found = p
		}
	}
	return found
}

// computedFound fails unless e, when it is a computed termination st has just applied (and
// not left out as a fault), went
// to the latest programme in its kommune with the start it names, else to the programme
// programmeFor finds on its date, and waits in pending when there is none.
func computedFound(t *testing.T, what string, st *State, e *nirv1.Event) {
	t.Helper()
	c := e.GetTerminationComputed()
	if le, ok := st.Events[e.GetId()]; c == nil || !ok || le.Event != e || st.Faulted(e.GetId()) || st.Broken {
		return
	}
	d := dateOf(c.GetDate())
	k := st.eventKommune(e, d)
	want := cmp.Or(forwardStarted(st, k, dateOf(c.GetProgrammeStart())), forwardProgrammeFor(st, k, d))
	var got *Programme
	for _, p := range st.Programmes {
		if slices.ContainsFunc(p.ComputedTerminations, func(t *Termination) bool { return t.EventID == e.GetId() }) {
			got = p
		}
	}
	if got != want {
		t.Fatalf("%s: computed termination for the programme started %s in %q went to %+v, want %+v", what, dateOf(c.GetProgrammeStart()), k, got, want)
	}
	if waits := slices.ContainsFunc(st.pending, func(le LoggedEvent) bool { return le.Event == e }); waits != (want == nil) {
		t.Fatalf("%s: computed termination waiting %v, with a programme %+v", what, waits, want)
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
// 10–16, 34–59, 119–204 and 486–794 ms for 1 250 to 10 000 moves; inserting and linking one,
// 0.3–0.5, 1.5–1.9, 4.3–5.3 and 4.6–12.6 ms (BenchmarkFold_Programmes says how it was
// measured).
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
// inserted first, and the moves after it are moved along (56–61 ms for 10 000; 1.18–1.89 s when
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

// BenchmarkFold_ProgrammesThenMoves folds 2 500 programmes, then 5 000 moves. Each move
// settled every programme again until moves settled only the programmes with computed
// terminations (touchComputed): 210–270 ms before this stop, 52–54 ms with every programme
// settled on a move, 11.4–14.3 ms now (BenchmarkFold_Programmes says how it was measured).
func BenchmarkFold_ProgrammesThenMoves(b *testing.B) {
	events := append(programmePairs(2500)[:5001], movePairs(5000)[1:]...)
	for b.Loop() {
		if s := Fold("pk", events); len(s.Moves) != 5000 || len(s.Programmes) != 2500 {
			b.Fatalf("%d moves, %d programmes", len(s.Moves), len(s.Programmes))
		}
	}
}

// TestCopy_ComputedInShared: two copies of a state whose programmes with FLYTTET
// terminations of one date fill part of their lists' capacity (three of four, in computedIn
// and in flyttetOn) each get one more; neither may write over the other's (Copy clones
// both), or a registration or a move would settle the wrong programme's terminations.
func TestCopy_ComputedInShared(t *testing.T) {
	const out = "2018-06-01"
	programme := func(i int, kommune string) []*nirv1.Event {
		return []*nirv1.Event{evProgramme(fmt.Sprintf("t%d", i), kommune, nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, "2018-02-01"),
			withPayload(fmt.Sprintf("c%d", i), kommune, &nirv1.TerminationComputed{Rule: nirv1.TerminationRule_TERMINATION_RULE_FLYTTET,
				Reason: nirv1.TerminationReason_TERMINATION_REASON_FLYTTET, Date: dpb(out), ProgrammeStart: dpb("2018-02-01")})}
	}
	evs := []*nirv1.Event{evPerson("reg", "0301", "1990-05-01", "2018-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28)}
	for i, k := range []string{"0301", "1103", "4601", "5001", "1506"} {
		evs = append(evs, programme(i, k)...)
	}
	base := Fold("pk", evs[:7]) // three programmes with a FLYTTET termination of one date
	on := base.flyttetOn[md(out)]
	if len(base.computedIn) != 3 || cap(base.computedIn) <= 3 || len(on) != 3 || cap(on) <= 3 {
		t.Fatalf("computedIn %v (cap %d), flyttetOn %v (cap %d): the test needs 3 and more capacity", base.computedIn, cap(base.computedIn), on, cap(on))
	}
	a, b := base.Copy(), base.Copy()
	for i, ev := range evs[7:9] {
		a.Apply(uint64(8+i), ev)
	}
	bEvs := append(evs[9:10:10], evs[7:9]...) // one programme more first: its index differs
	for i, ev := range bEvs {
		b.Apply(uint64(8+i), ev)
	}
	if want := Fold("pk", evs[:9]); !reflect.DeepEqual(a, want) {
		t.Errorf("the first copy differs from its fold: computedIn %v, flyttetOn %v, want %v, %v", a.computedIn, a.flyttetOn, want.computedIn, want.flyttetOn)
	}
	if want := Fold("pk", append(evs[:7:7], bEvs...)); !reflect.DeepEqual(b, want) {
		t.Errorf("the second copy differs from its fold: computedIn %v, flyttetOn %v, want %v, %v", b.computedIn, b.flyttetOn, want.computedIn, want.flyttetOn)
	}
}

// BenchmarkFold_StoppedProgrammesThenMoves folds 2 500 programmes, each stopped by a stans
// and ended by the regelmotor's computed termination, then 2 500 moves: a kommune can make
// every programme have one. Each move settled them all: 201–231 ms at c6cf971, 78–82 ms at
// 69704da, on a quiet machine; a STANS termination rests on its programme alone, and moves
// now settle none of them (restsOnPerson): 10.5–11.0 ms.
func BenchmarkFold_StoppedProgrammesThenMoves(b *testing.B) {
	evs := []*nirv1.Event{evPerson("reg", "0301", "1990-05-01", "2010-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28)}
	d := md("2010-02-01")
	for i := range 2500 {
		start, stop := d.String(), d.AddDays(1)
		evs = append(evs, evProgramme(fmt.Sprintf("t%d", i), "0301", nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, start),
			evProgramme(fmt.Sprintf("s%d", i), "0301", nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_STANS, stop.String()),
			withPayload(fmt.Sprintf("c%d", i), "0301", &nirv1.TerminationComputed{Rule: nirv1.TerminationRule_TERMINATION_RULE_STANS,
				Reason: nirv1.TerminationReason_TERMINATION_REASON_STANSET, Date: stop.Proto(), ProgrammeStart: d.Proto()}))
		d = d.AddDays(2)
	}
	evs = append(evs, movePairs(2500)[1:]...)
	for b.Loop() {
		if s := Fold("pk", evs); s.Programmes[2499].Termination == nil || len(s.Moves) != 2500 {
			b.Fatalf("%d programmes, the last ended %v, %d moves", len(s.Programmes), s.Programmes[2499].Termination, len(s.Moves))
		}
	}
}

// BenchmarkFold_MovedProgrammes folds n programmes in one kommune, each ended by the
// regelmotor's FLYTTET when the person moves out the next day, and moves back the day
// after. Every move settled every such programme, each looking at every move: 2 000
// programmes (8 001 events) folded in 7.7–7.8 s on a quiet machine. A move now settles only
// the FLYTTET terminations of its date and the next move's (touchMoved), each finding its
// moves by date: 10.5–11.1 ms (README "Running nird", --max-person-events, says how it was
// measured).
func BenchmarkFold_MovedProgrammes(b *testing.B) {
	for _, n := range []int{500, 1000, 2000} {
		b.Run(fmt.Sprintf("programmes=%d", n), func(b *testing.B) {
			evs := movedProgrammes(n)
			for b.Loop() {
				if s := Fold("pk", evs); len(s.Programmes) != n || len(s.Moves) != 2*n || s.Programmes[n-1].Termination == nil {
					b.Fatalf("%d programmes, %d moves", len(s.Programmes), len(s.Moves))
				}
			}
		})
	}
}

// movedProgrammes is BenchmarkFold_MovedProgrammes's history of n programmes.
func movedProgrammes(n int) []*nirv1.Event {
	evs := []*nirv1.Event{evPerson("reg", "0301", "1990-05-01", "2010-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28)}
	d := md("2010-02-01")
	move := func(id, to string, on Date) *nirv1.Event {
		m := newEv(id, to)
		m.Payload = &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: to, Date: on.Proto()}}
		return m
	}
	for i := range n {
		out := d.AddDays(1)
		evs = append(evs, evProgramme(fmt.Sprintf("t%d", i), "0301", nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, d.String()),
			move(fmt.Sprintf("o%d", i), "1103", out),
			withPayload(fmt.Sprintf("c%d", i), "0301", &nirv1.TerminationComputed{Rule: nirv1.TerminationRule_TERMINATION_RULE_FLYTTET,
				Reason: nirv1.TerminationReason_TERMINATION_REASON_FLYTTET, Date: out.Proto(), ProgrammeStart: d.Proto()}),
			move(fmt.Sprintf("b%d", i), "0301", out.AddDays(1)))
		d = d.AddDays(2)
	}
	return evs
}

// BenchmarkFold_PendingThenProgrammes folds n sluttmål of a kommune where the person has
// no programme, which wait for one (pending), then n/2 programmes, each ended, in another:
// each new programme applied every waiting event again, 1.61–1.64 s for 1 000 and 12.1–13.1 s
// for 2 000 on a quiet machine; now only those of its kommune, 1.9–2.8 and 5.4–5.6 ms.
func BenchmarkFold_PendingThenProgrammes(b *testing.B) {
	for _, n := range []int{1000, 2000, 4000} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			evs := []*nirv1.Event{evPerson("reg", "0301", "1990-05-01", "2010-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28)}
			for i := range n {
				evs = append(evs, withPayload(fmt.Sprintf("w%d", i), "1103", &nirv1.SluttmalRegistered{
					Sluttmal: nirv1.Sluttmal_SLUTTMAL_ARBEID_VGO, Date: dpb("2010-03-01")}))
			}
			d := md("2010-02-01")
			for i := range n / 2 {
				evs = append(evs, evProgramme(fmt.Sprintf("t%d", i), "0301", nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, d.String()),
					evTermination(fmt.Sprintf("e%d", i), "0301", nirv1.TerminationReason_TERMINATION_REASON_ARBEID, d.AddDays(1).String()))
				d = d.AddDays(2)
			}
			for b.Loop() {
				if s := Fold("pk", evs); len(s.Programmes) != n/2 || len(s.Unattached) != n {
					b.Fatalf("%d programmes, %d unattached", len(s.Programmes), len(s.Unattached))
				}
			}
		})
	}
}

// waitingFindNone fails unless every waiting event that names its kommune finds no
// programme there, as applying it again would (retryPending skips those that cannot find
// the new programme), and waitingFirst and waitingIn name the kommuner of the waiting
// events.
func waitingFindNone(t *testing.T, what string, st *State) {
	t.Helper()
	var in []string
	for _, le := range st.pending {
		k := le.Event.GetKommune()
		if k != "" && st.programmeFor(k, Date{}) != nil {
			t.Fatalf("%s: event %s waits, but finds a programme of %s", what, le.Event.GetId(), k)
		}
		if !slices.Contains(in, k) {
			in = append(in, k)
		}
	}
	if got := waitingKommuner(st); !reflect.DeepEqual(in, got) {
		t.Fatalf("%s: waiting in %q, want %q", what, got, in)
	}
}

// waitingKommuner are the kommuner st's waiting events name (State.waitingFirst, waitingIn),
// nil for none.
func waitingKommuner(st *State) []string {
	if len(st.pending) == 0 {
		return nil
	}
	return append([]string{st.waitingFirst}, st.waitingIn...)
}

// TestFold_WaitingFindTheirProgramme: events that wait for a programme find it when one of
// their kommune comes, however many programmes of other kommuner came first, and an event
// naming no kommune (the bostedskommune on its date) finds the first of the bostedskommune.
func TestFold_WaitingFindTheirProgramme(t *testing.T) {
	sluttmal := func(id, kommune string) *nirv1.Event {
		return withPayload(id, kommune, &nirv1.SluttmalRegistered{Sluttmal: nirv1.Sluttmal_SLUTTMAL_ARBEID_VGO, Date: dpb("2018-03-01")})
	}
	evs := []*nirv1.Event{evPerson("reg", "0301", "1990-05-01", "2018-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28),
		sluttmal("w-oslo", "0301"), sluttmal("w-none", ""), sluttmal("w-bergen", "4601"),
		evProgramme("t-tromso", "5501", nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, "2018-02-01"),
		evProgramme("t-bergen", "1201", nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, "2018-02-01"),
		evProgramme("t-oslo", "0301", nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, "2018-02-01")}
	s := Fold("pk", evs)
	if len(s.Programmes) != 3 || len(s.Unattached) != 0 || len(s.pending) != 0 || s.waitingFirst != "" || len(s.waitingIn) != 0 {
		t.Fatalf("%d programmes, unattached %v, waiting in %q and %q", len(s.Programmes), s.Unattached, s.waitingFirst, s.waitingIn)
	}
	for i, want := range []nirv1.Sluttmal{nirv1.Sluttmal_SLUTTMAL_UNSPECIFIED, nirv1.Sluttmal_SLUTTMAL_ARBEID_VGO, nirv1.Sluttmal_SLUTTMAL_ARBEID_VGO} {
		if p := s.Programmes[i]; p.Sluttmal != want {
			t.Errorf("programme %d in %s: sluttmål %v, want %v", i, p.Kommune, p.Sluttmal, want)
		}
	}
	if mid := Fold("pk", evs[:6]); !reflect.DeepEqual(mid.Unattached, []string{"w-oslo", "w-none"}) || !reflect.DeepEqual(waitingKommuner(mid), []string{"0301", ""}) {
		t.Errorf("before Oslo's programme: unattached %v, waiting in %q; want the two of Oslo", mid.Unattached, waitingKommuner(mid))
	}
}

// TestCopy_WaitingInShared: two copies of a state whose waiting events name four kommuner
// each get one of a fifth; neither may write over the other's kommuner (Copy clones
// waitingIn), or a new programme would leave waiting an event that could find it.
func TestCopy_WaitingInShared(t *testing.T) {
	sluttmal := func(id, kommune string) *nirv1.Event {
		return withPayload(id, kommune, &nirv1.SluttmalRegistered{Sluttmal: nirv1.Sluttmal_SLUTTMAL_ARBEID_VGO, Date: dpb("2018-03-01")})
	}
	base := Fold("pk", []*nirv1.Event{evPerson("reg", "0301", "1990-05-01", "2018-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28),
		sluttmal("w0", "0301"), sluttmal("w1", "4601"), sluttmal("w2", "5501"), sluttmal("w3", "1506")})
	if len(base.waitingIn) != 3 || cap(base.waitingIn) <= 3 {
		t.Fatalf("waitingIn %q (cap %d): the test needs 3 and more capacity", base.waitingIn, cap(base.waitingIn))
	}
	a, b := base.Copy(), base.Copy()
	a.Apply(6, sluttmal("a", "1103"))
	b.Apply(6, sluttmal("b", "3403"))
	b.Apply(7, evProgramme("t", "1103", nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, "2018-02-01"))
	a.Apply(7, evProgramme("t", "1103", nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, "2018-02-01"))
	if p := a.Programmes[0]; p.Sluttmal != nirv1.Sluttmal_SLUTTMAL_ARBEID_VGO || !reflect.DeepEqual(waitingKommuner(a), []string{"0301", "4601", "5501", "1506"}) {
		t.Errorf("the first copy's programme in 1103 took sluttmål %v; waiting in %q", p.Sluttmal, waitingKommuner(a))
	}
	if got := waitingKommuner(b); !reflect.DeepEqual(got, []string{"0301", "4601", "5501", "1506", "3403"}) {
		t.Errorf("the second copy waits in %q", got)
	}
}

// BenchmarkFold_EventsBehindProgrammes folds a programme in one kommune, 2 500 ended in
// another, then 5 000 absences for the first: each absence looked back past every programme
// of the other kommune to find its own (programmeFor): 178–199 ms on a quiet machine. Found
// by binary search in State.earlier: 9.0–32.5 ms, against 170–886 ms for the build before,
// in turns under a load of 7–9 (latestIn).
func BenchmarkFold_EventsBehindProgrammes(b *testing.B) {
	evs := []*nirv1.Event{evPerson("reg", "0301", "1990-05-01", "2010-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28),
		evProgramme("first", "1103", nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, "2010-01-20")}
	d := md("2010-02-01")
	for i := range 2500 {
		evs = append(evs, evProgramme(fmt.Sprintf("t%d", i), "0301", nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, d.String()),
			evTermination(fmt.Sprintf("e%d", i), "0301", nirv1.TerminationReason_TERMINATION_REASON_ARBEID, d.AddDays(1).String()))
		d = d.AddDays(2)
	}
	for i := range 5000 {
		a := newEv(fmt.Sprintf("a%d", i), "1103")
		a.Payload = &nirv1.Event_AbsenceRegistered{AbsenceRegistered: &nirv1.AbsenceRegistered{
			Type: nirv1.AbsenceType_ABSENCE_TYPE_FRAVAER_UGYLDIG, FromDate: dpb("2010-01-25"), ToDate: dpb("2010-01-25"), Hours: 1}}
		evs = append(evs, a)
	}
	for b.Loop() {
		if s := Fold("pk", evs); len(s.Programmes[0].Absence) != 5000 {
			b.Fatalf("%d absences in the first programme", len(s.Programmes[0].Absence))
		}
	}
}

// BenchmarkFold_ComputedThenPersonEvents folds 2 500 programmes in one kommune, each ended
// by a FRIST_UTLOPT termination the regelmotor computed, then 5 000 events that settled
// every programme or looked at every computed termination: utdanningsbakgrunn, alternating
// (touchVgo), or deletions of computed terminations (deleteComputed). 2.5–3.7 s and
// 0.27–0.51 s under a load of 6–8 (2026-12-07), some 250–370 and 54–100 µs an event, where
// refoldProgrammes in ingest counts 11 events for 2 500 programmes. The person is under
// introduksjonsloven, whose deadline does not read the utdanningsbakgrunn;
// "utdanningsbakgrunn-il" is one under integreringsloven with a sluttmål for every
// programme, where it is read, but decides none of the terminations (each programme's end
// comes before its termination's date: Programme.vgoDecides). Now 28–57 ms, 17–31 ms and
// 34–42 ms, against 1.2–1.4 s, 96–102 ms and 0.97–1.27 s for the build before, in turns
// under a load of 5.5–6.3 (2026-12-07).
func BenchmarkFold_ComputedThenPersonEvents(b *testing.B) {
	for _, kind := range []string{"utdanningsbakgrunn", "deleted", "utdanningsbakgrunn-il"} {
		permit, d := "2010-01-10", md("2010-02-01")
		if kind == "utdanningsbakgrunn-il" {
			permit, d = "2022-01-10", md("2022-02-01")
		}
		evs := []*nirv1.Event{evPerson("reg", "0301", "1990-05-01", permit, nirv1.PermitBasis_PERMIT_BASIS_ASYL_28)}
		for i := range 2500 {
			evs = append(evs, evProgramme(fmt.Sprintf("t%d", i), "0301", nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, d.String()))
			if kind == "utdanningsbakgrunn-il" {
				evs = append(evs, withPayload(fmt.Sprintf("s%d", i), "0301", &nirv1.SluttmalRegistered{Sluttmal: nirv1.Sluttmal_SLUTTMAL_ARBEID, Date: d.Proto()}))
			}
			evs = append(evs, withPayload(fmt.Sprintf("c%d", i), "0301", &nirv1.TerminationComputed{Rule: nirv1.TerminationRule_TERMINATION_RULE_FRIST_UTLOPT,
				Reason: nirv1.TerminationReason_TERMINATION_REASON_ANNET, Date: d.AddDays(5 * 365).Proto(), ProgrammeStart: d.Proto()}))
			d = d.AddDays(2)
		}
		for i := range 5000 {
			if kind == "deleted" {
				evs = append(evs, withPayload(fmt.Sprintf("x%d", i), "0301", &nirv1.ComputedTerminationDeleted{ComputedEventId: fmt.Sprintf("c%d", i%2500)}))
				continue
			}
			evs = append(evs, withPayload(fmt.Sprintf("u%d", i), "0301", &nirv1.UtdanningsbakgrunnRegistered{UpperSecondaryCompleted: i%2 == 0, Date: d.Proto()}))
		}
		b.Run(kind, func(b *testing.B) {
			for b.Loop() {
				if s := Fold("pk", evs); len(s.Programmes) != 2500 {
					b.Fatalf("%d programmes", len(s.Programmes))
				}
			}
		})
	}
}

// TestFold_DeletionMarksEveryCopyOfItsTarget: a merge's copy of a computed termination keeps
// its id, and may name another programme than the person's own termination of that id
// (here one in Bergen); a deletion of the id marks both deleted and settles both programmes
// (deleteComputed: computedAt knows the id is in several), as it did when every
// programme's terminations were looked at.
func TestFold_DeletionMarksEveryCopyOfItsTarget(t *testing.T) {
	frist := func(kommune, start string) *nirv1.Event {
		return withPayload("c", kommune, &nirv1.TerminationComputed{Rule: nirv1.TerminationRule_TERMINATION_RULE_FRIST_UTLOPT,
			Reason: nirv1.TerminationReason_TERMINATION_REASON_IKKE_REGISTRERT, Date: dpb("2016-01-01"), ProgrammeStart: dpb(start)})
	}
	for _, order := range [][2]string{{"0301", "4601"}, {"4601", "0301"}} {
		starts := map[string]string{"0301": "2010-02-01", "4601": "2010-03-01"}
		own, copied := order[0], order[1]
		evs := []*nirv1.Event{evPerson("reg", "0301", "1990-05-01", "2010-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28),
			evProgramme("t-oslo", "0301", nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, starts["0301"]),
			evProgramme("t-bergen", "4601", nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, starts["4601"]),
			frist(own, starts[own]),
			withPayload("m", "", &nirv1.PersonsMerged{AbsorbedPersonKey: "other", AbsorbedEvents: []*nirv1.Event{frist(copied, starts[copied])}})}
		for _, p := range Fold("pk", evs).Programmes {
			if p.Termination == nil {
				t.Fatalf("own termination in %s: the programme in %s is not ended by its copy; the test needs both ended", own, p.Kommune)
			}
		}
		s := Fold("pk", append(evs, withPayload("x", own, &nirv1.ComputedTerminationDeleted{ComputedEventId: "c"})))
		for _, p := range s.Programmes {
			if p.Termination != nil || len(p.ComputedTerminations) != 1 || !p.ComputedTerminations[0].Deleted {
				t.Errorf("own termination in %s: the programme in %s ended by %+v after the deletion", own, p.Kommune, p.Termination)
			}
		}
	}
}
