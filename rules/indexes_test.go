package rules

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math/rand"
	"reflect"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// anyEvent is an event of any kind the fold takes, for a person registered in k whose
// programme starts about start: those of settleEvent and lookupEvent (stans, moves,
// utdanningsbakgrunn flips, computed terminations, their deletions and retractions, merges,
// tildelinger that move a start, lookups among several programmes), and leave, training,
// un-merges, erasures and ids (everyKindEvent).
func (g *gen) anyEvent(k string, start Date, prior []*nirv1.Event) *nirv1.Event {
	switch g.r.Intn(10) {
	case 0, 1, 2, 3:
		return g.settleEvent(k, start, prior)
	case 4:
		return g.lookupEvent(k, start, prior)
	case 5, 6:
		return g.leaveEvent(k, start, prior)
	case 7:
		return g.trainingEvent(k, start)
	}
	return g.everyKindEvent(k, start, prior)
}

// leaveEvent is approved leave for a programme (a permisjon vedtak, or an absence of a
// permisjon type, some open-ended, some in another kommune or none), dated where a
// hostile kommune may put it: next to or overlapping a leave before it, in rising or
// falling order, before the programme's start, or with no start or an end before it.
func (g *gen) leaveEvent(k string, start Date, prior []*nirv1.Event) *nirv1.Event {
	e := g.ev(g.lookupKommune(k))
	from := g.date(start.AddDays(-30), 3*365)
	to := from.AddDays(g.r.Intn(60) - 1)
	var leave []Period
	for _, p := range prior {
		if v := p.GetProgrammeVedtakRegistered(); v.GetType() == nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_PERMISJON {
			leave = append(leave, Period{From: dateOf(v.GetFromDate()), To: dateOf(v.GetToDate())})
		} else if a := p.GetAbsenceRegistered(); a != nil {
			leave = append(leave, Period{From: dateOf(a.GetFromDate()), To: dateOf(a.GetToDate())})
		}
	}
	if len(leave) > 0 && g.r.Intn(4) > 0 {
		l := leave[g.r.Intn(len(leave))]
		switch g.r.Intn(3) {
		case 0: // after it: adjoining, overlapping or a day apart
			from = cmp.Or(l.To, l.From).AddDays(g.r.Intn(4) - 1)
			to = from.AddDays(g.r.Intn(30))
		case 1: // before it, ending the day before, on or after its start
			to = l.From.AddDays(g.r.Intn(4) - 2)
			from = to.AddDays(-g.r.Intn(30))
		default: // over it, from a day before or after its start
			from = l.From.AddDays(g.r.Intn(3) - 1)
		}
	}
	fromPB, toPB := from.Proto(), to.Proto()
	switch g.r.Intn(6) {
	case 0:
		toPB = nil // open-ended
	case 1:
		fromPB = nil
	}
	if g.r.Intn(2) == 0 {
		e.Payload = &nirv1.Event_ProgrammeVedtakRegistered{ProgrammeVedtakRegistered: &nirv1.ProgrammeVedtakRegistered{
			Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_PERMISJON, VedtakDate: from.Proto(), FromDate: fromPB, ToDate: toPB}}
		return e
	}
	types := []nirv1.AbsenceType{nirv1.AbsenceType_ABSENCE_TYPE_PERMISJON_FODSEL_ADOPSJON, nirv1.AbsenceType_ABSENCE_TYPE_PERMISJON_SYKDOM,
		nirv1.AbsenceType_ABSENCE_TYPE_PERMISJON_ANNET, nirv1.AbsenceType_ABSENCE_TYPE_FRAVAER_UGYLDIG}
	e.Payload = &nirv1.Event_AbsenceRegistered{AbsenceRegistered: &nirv1.AbsenceRegistered{
		Programme: nirv1.Programme_PROGRAMME_INTRO, Type: types[g.r.Intn(len(types))], FromDate: fromPB, ToDate: toPB, Hours: 1}}
	return e
}

// trainingEvent is a training vedtak of any type (tildeling, stans, permisjon, some without
// a start or with an end before it), a full-time upper secondary period or a month of
// hours: what the training periods and the training start are made of.
func (g *gen) trainingEvent(k string, start Date) *nirv1.Event {
	e := g.ev(g.lookupKommune(k))
	d := g.date(start, 2*365)
	switch g.r.Intn(4) {
	case 0:
		e.Payload = &nirv1.Event_FullTimeUpperSecondaryRegistered{FullTimeUpperSecondaryRegistered: &nirv1.FullTimeUpperSecondaryRegistered{
			FromDate: d.Proto(), ToDate: g.date(d, 200).Proto()}}
	case 1:
		e.Payload = &nirv1.Event_TrainingHoursRegistered{TrainingHoursRegistered: &nirv1.TrainingHoursRegistered{
			Type: nirv1.HoursType(1 + g.r.Intn(5)), Month: &nirv1.YearMonth{Year: int32(d.Y), Month: int32(d.M)}, Hours: float64(g.r.Intn(40))}}
	default:
		startPB := []*nirv1.Date{d.Proto(), d.Proto(), d.Proto(), nil}[g.r.Intn(4)]
		e.Payload = &nirv1.Event_TrainingVedtakRegistered{TrainingVedtakRegistered: &nirv1.TrainingVedtakRegistered{
			Scheme: nirv1.TrainingScheme(1 + g.r.Intn(4)), Type: nirv1.TrainingVedtakType(1 + g.r.Intn(5)),
			VedtakDate: d.Proto(), StartDate: startPB, EndDate: g.date(d.AddDays(-10), 300).Proto()}}
	}
	return e
}

// everyKindEvent is one of the events no other generator makes: an un-merge (a merge
// retracted), a retraction of a retraction or of a deletion, an erasure, an id added, a
// claim or a merge into another person, a merge copying a computed termination the person
// holds (its id then in two programmes, computedAt), an extension or an utdanningsbakgrunn
// after a FRIST_UTLOPT (what decides whether it holds, vgoDecides), or one of gen.event's.
func (g *gen) everyKindEvent(k string, start Date, prior []*nirv1.Event) *nirv1.Event {
	e := g.ev(k)
	var merges, undoes, computed, frist []*nirv1.Event
	for _, p := range prior {
		switch {
		case p.GetPersonsMerged() != nil:
			merges = append(merges, p)
		case p.GetEventRetracted() != nil, p.GetComputedTerminationDeleted() != nil:
			undoes = append(undoes, p)
		case p.GetTerminationComputed().GetRule() == nirv1.TerminationRule_TERMINATION_RULE_FRIST_UTLOPT:
			frist = append(frist, p)
			fallthrough
		case p.GetTerminationComputed() != nil:
			computed = append(computed, p)
		}
	}
	pick := func(evs []*nirv1.Event) *nirv1.Event { return evs[g.r.Intn(len(evs))] }
	switch n := g.r.Intn(10); {
	case n < 2 && len(merges) > 0:
		e.Payload = &nirv1.Event_EventRetracted{EventRetracted: &nirv1.EventRetracted{EventId: pick(merges).GetId()}}
	case n < 4 && len(undoes) > 0:
		e.Payload = &nirv1.Event_EventRetracted{EventRetracted: &nirv1.EventRetracted{EventId: pick(undoes).GetId()}}
	case n == 4:
		e.Payload = &nirv1.Event_PersonErased{PersonErased: &nirv1.PersonErased{}}
	case n == 5 && g.r.Intn(3) > 0:
		e.Payload = &nirv1.Event_IdentifierAdded{IdentifierAdded: &nirv1.IdentifierAdded{Type: nirv1.IdentifierType_IDENTIFIER_TYPE_D_NUMMER, NationalId: "41018012345"}}
	case n == 5:
		e.Payload = &nirv1.Event_PersonMergedInto{PersonMergedInto: &nirv1.PersonMergedInto{SurvivingPersonKey: "survivor"}}
	case n == 6 && len(computed) > 0:
		c := proto.Clone(pick(computed)).(*nirv1.Event)
		c.Kommune = g.lookupKommune(k)
		e.Payload = &nirv1.Event_PersonsMerged{PersonsMerged: &nirv1.PersonsMerged{AbsorbedPersonKey: "other", AbsorbedEvents: []*nirv1.Event{c}}}
	case n >= 7 && len(frist) > 0:
		f := pick(frist)
		d := f.GetTerminationComputed().GetDate()
		e.Kommune = f.GetKommune()
		if n == 7 {
			e.Payload = &nirv1.Event_ProgrammeVedtakRegistered{ProgrammeVedtakRegistered: &nirv1.ProgrammeVedtakRegistered{
				Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_UTVIDELSE, VedtakDate: d, FromDate: d, ExtensionMonths: int32(1 + g.r.Intn(12))}}
		} else {
			e.Payload = &nirv1.Event_UtdanningsbakgrunnRegistered{UtdanningsbakgrunnRegistered: &nirv1.UtdanningsbakgrunnRegistered{
				UpperSecondaryCompleted: g.r.Intn(2) == 0, Date: d}}
		}
	default:
		return g.event(k, start, prior)
	}
	return e
}

// TestProperty_IndexesAsPlain: on whole histories mixing every kind of event the fold takes
// (anyEvent, with the regelmotor's terminations computed among them), the state Apply keeps
// event by event (through copies now and then, with redeliveries, as the append path and
// the projections keep it) has, after EVERY event, each incremental index equal to what a
// plain computation from the state finds (indexesAsPlain), and reads as a fold of the log
// so far from scratch does: deadlines, statuses, due terminations, NextDue; and so does
// the state ApplyAll keeps of the same events in random pieces, after every piece.
func TestProperty_IndexesAsPlain(t *testing.T) {
	t.Parallel()
	g := &gen{r: rand.New(rand.NewSource(propertySeed + 61))}
	var seen indexesSeen
	for i := range 150 {
		seen.add(foldAsPlain(t, fmt.Sprintf("case %d", i), g, 20+g.r.Intn(40), false))
	}
	t.Logf("%+v", seen)
	if seen.programmes < 300 || seen.leave < 500 || seen.computed < 100 || seen.flyttet < 10 || seen.moves < 300 ||
		seen.copied < 20 || seen.erased < 10 || seen.unmerged < 10 || seen.training < 300 {
		t.Fatalf("%+v: the generator must make many of each", seen)
	}
}

// TestProperty_IndexesAsPlainFaults is TestProperty_IndexesAsPlain with the fold of one
// event in ten made to panic: a fault re-folds the person without the event
// (State.Faults), and the indexes that re-fold builds, and those built as the faulted
// event's retraction or a later one re-folds again, must be as plain as ever.
func TestProperty_IndexesAsPlainFaults(t *testing.T) {
	t.Cleanup(SetFaultForTest(func(ev *nirv1.Event) bool { id := ev.GetId(); return id != "" && id[len(id)-1] == '7' }))
	g := &gen{r: rand.New(rand.NewSource(propertySeed + 62))}
	faults := 0
	for i := range 60 {
		faults += len(foldAsPlain(t, fmt.Sprintf("case %d", i), g, 20+g.r.Intn(40), true).Faults)
	}
	if faults < 100 {
		t.Fatalf("%d faults: the test needs many", faults)
	}
}

// FuzzIndexesAsPlain is TestProperty_IndexesAsPlain on histories whose every choice the
// fuzzer's bytes make (byteSource), of up to 31 events after the registration's person:
// `go test ./rules -run '^$' -fuzz FuzzIndexesAsPlain -fuzztime 60s` (some 20 histories
// a second on one worker; each event is checked against a fold from scratch).
func FuzzIndexesAsPlain(f *testing.F) {
	for i := range 8 {
		f.Add(binary.LittleEndian.AppendUint64(nil, uint64(propertySeed+i)), uint8(20))
	}
	f.Fuzz(func(t *testing.T, data []byte, n uint8) {
		g := &gen{r: rand.New(&byteSource{data: data})}
		foldAsPlain(t, "fuzzed", g, int(n%32), false)
	})
}

// byteSource is a rand.Source whose every value is made from the next byte of data (a hash
// of it and of its position, so that each byte a fuzzer changes changes one choice), and
// of the position alone once data is spent.
type byteSource struct {
	data []byte
	n    uint64
}

func (s *byteSource) Int63() int64 { return int64(s.Uint64() >> 1) }

func (s *byteSource) Uint64() uint64 {
	s.n++
	z := s.n << 8
	if len(s.data) > 0 {
		z |= uint64(s.data[0])
		s.data = s.data[1:]
	}
	z += 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

func (s *byteSource) Seed(int64) {}

// foldAsPlain folds a person of g and n events more of anyEvent, with the regelmotor's
// terminations among them, event by event, and fails unless the state after every event
// is as plain (indexesAsPlain) and reads as a fold of its log from scratch; and, unless
// faults are asked for (SetFaultForTest), unless its fold found none. It returns the state.
func foldAsPlain(t *testing.T, what string, g *gen, n int, faults bool) *State {
	t.Helper()
	evs := g.person()
	k, start := evs[0].GetKommune(), dateOf(evs[0].GetPersonRegistered().GetSettlementDate())
	for _, e := range evs[1:] {
		if g.r.Intn(5) == 0 {
			e.Kommune = "" // the bostedskommune on the event's date (eventKommune)
		}
	}
	st, history := NewState("pk"), []*nirv1.Event(nil)
	pieces, piece := NewState("pk"), []LoggedEvent(nil) // read in pieces, as a projection catches up
	var memo, piecesMemo ResidenceMemo
	for j := range len(evs) + n {
		var ev *nirv1.Event
		if j < len(evs) {
			ev = evs[j]
		} else {
			ev = g.anyEvent(k, start, history)
		}
		for _, e := range g.regelmotorPass(st, ev) {
			if g.r.Intn(8) == 0 {
				st = st.Copy() // the append path checks a copy of the person's state
			}
			history = append(history, e)
			programmes := len(st.Programmes)
			st.Apply(uint64(len(history)), e)
			if g.r.Intn(10) == 0 {
				st.Apply(uint64(len(history)), e) // redelivered
			}
			at := fmt.Sprintf("%s event %d (%T)", what, len(history), e.GetPayload())
			if !faults && (st.Broken || len(st.Faults) > 0) {
				t.Fatalf("%s: the fold panicked: %+v", at, st.Faults)
			}
			indexesAsPlain(t, at, st, &memo)
			computedFound(t, at, st, e)
			if e.GetProgrammeVedtakRegistered().GetType() == nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING && len(st.Programmes) > programmes {
				waitingFindNoneOnTheirDate(t, at, st)
			}
			folded, now := Fold("pk", history), propertyNows[g.r.Intn(len(propertyNows))]
			readsAsFolded(t, at, st, folded, now)
			if piece = append(piece, LoggedEvent{Seq: uint64(len(history)), Event: e}); g.r.Intn(4) == 0 {
				pieces.ApplyAll(piece)
				piece = nil
				indexesAsPlain(t, at+", ApplyAll", pieces, &piecesMemo)
				readsAsFolded(t, at+", ApplyAll", pieces, folded, now)
			}
		}
	}
	return st
}

// indexesAsPlain fails unless every incremental index st keeps is what a plain computation
// from st finds: the settling of what an event touched, the vgoDecides it leaves, the
// moves' links, earlier and the lookups it serves, the waiting kommuner (settledAsAll);
// computedIn, flyttetOn and computedAt (indexedComputed); each programme's leave index
// (leaveAsPlain); the training periods and start (oldTrainingPeriods, oldTrainingStart);
// and the periods and reach memo keeps (ResidenceMemo).
func indexesAsPlain(t *testing.T, what string, st *State, memo *ResidenceMemo) {
	t.Helper()
	settledAsAll(t, what, st)
	indexedComputed(t, what, st)
	for pi, p := range st.Programmes {
		leaveAsPlain(t, fmt.Sprintf("%s programme %d", what, pi), p)
	}
	if got, want := TrainingPeriods(st), oldTrainingPeriods(st); !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: training periods %v, want %v", what, got, want)
	}
	if got, want := trainingStart(st), oldTrainingStart(st); got != want {
		t.Fatalf("%s: training started %s, want %s", what, got, want)
	}
	periods, reach := memo.Of(st)
	if want, wantReach := Residences(st), ReachOf(st); !reflect.DeepEqual(periods, want) || !reflect.DeepEqual(reach, wantReach) {
		t.Fatalf("%s: memo %v %+v, built %v %+v", what, periods, reach, want, wantReach)
	}
}

// waitingFindNoneOnTheirDate fails unless every waiting event that names no kommune finds
// no programme in the bostedskommune on its date, as applying it again would, right after
// a tildeling made a new programme: that retried every such event (retryPending), a new
// programme of any kommune may be theirs (mayFind). Later moves may give such an event a
// programme it has not looked for yet, so only then is it so.
func waitingFindNoneOnTheirDate(t *testing.T, what string, st *State) {
	t.Helper()
	for _, le := range st.pending {
		if le.Event.GetKommune() != "" {
			continue
		}
		d, _ := EffectiveDate(le.Event)
		if p := st.programmeFor(st.KommuneOn(d), d); p != nil {
			t.Fatalf("%s: event %s waits after a new programme, but finds the programme in %s started %s", what, le.Event.GetId(), p.Kommune, p.Start)
		}
	}
}

// indexedComputed fails unless computedIn names each programme with a computed termination
// resting on the person (restsOnPerson) and no other, flyttetOn each with a FLYTTET one by
// its date, and computedAt the programme of each computed termination's id (-1 for an id in
// several), as a look at every programme's computed terminations finds them.
func indexedComputed(t *testing.T, what string, st *State) {
	t.Helper()
	var in []int
	on := map[Date][]int{}
	at := map[string]int{}
	for i, p := range st.Programmes {
		for _, c := range p.ComputedTerminations {
			if restsOnPerson(c.Rule) && !slices.Contains(in, i) {
				in = append(in, i)
			}
			if c.Rule == nirv1.TerminationRule_TERMINATION_RULE_FLYTTET && !slices.Contains(on[c.Date], i) {
				on[c.Date] = append(on[c.Date], i)
			}
			if a, ok := at[c.EventID]; ok && a != i {
				at[c.EventID] = -1
			} else {
				at[c.EventID] = i
			}
		}
	}
	gotOn := map[Date][]int{}
	for d, is := range st.flyttetOn {
		if len(is) > 0 {
			gotOn[d] = sortedSet(is)
		}
	}
	if got := sortedSet(st.computedIn); !slices.Equal(got, in) {
		t.Fatalf("%s: computedIn %v, want %v", what, st.computedIn, in)
	}
	if !reflect.DeepEqual(gotOn, on) {
		t.Fatalf("%s: flyttetOn %v, want %v", what, st.flyttetOn, on)
	}
	if len(at) == 0 {
		at = nil
	}
	if !reflect.DeepEqual(st.computedAt, at) && (len(st.computedAt) > 0 || len(at) > 0) {
		t.Fatalf("%s: computedAt %v, want %v", what, st.computedAt, at)
	}
}

// sortedSet is is sorted, each index once.
func sortedSet(is []int) []int {
	return slices.Compact(slices.Sorted(slices.Values(is)))
}

// leaveAsPlain fails unless p's leave index holds all its leave, is the index built anew,
// and counts, for the programme's start and ends about its deadline (ProgrammeLatestEnd asks
// days(p.Start, end, now)), what leaveDaysOld counts sorting and merging the leave.
func leaveAsPlain(t *testing.T, what string, p *Programme) {
	t.Helper()
	if x := p.leaveIndex(); x != &p.leave {
		t.Fatalf("%s: the leave index holds %d of %d leaves", what, p.leave.n, len(p.Leave))
	}
	if built := newLeaveIndex(p.Leave); !reflect.DeepEqual(*built, p.leave) {
		t.Fatalf("%s: the leave index differs from one built anew of %v", what, p.Leave)
	}
	bases := []Date{{}, p.Start, p.PlannedEnd, p.Start.AddMonths(24), p.Start.AddMonths(36)}
	for _, l := range p.Leave {
		bases = append(bases, l.From.AddDays(-1), l.To)
	}
	for _, base := range bases {
		for _, now := range []Date{{}, base, base.AddDays(40)} {
			days, open := p.leave.days(p.Start, base, now)
			if wantDays, wantOpen := leaveDaysOld(p.Leave, p.Start, base, now); days != wantDays || open != wantOpen {
				t.Fatalf("%s: leave %v from %s base %s now %s: %d %v, want %d %v", what, p.Leave, p.Start, base, now, days, open, wantDays, wantOpen)
			}
		}
	}
}

// readsAsFolded fails unless st, kept event by event, reads at now as folded, the fold of
// its log from scratch: its status, deadlines and due terminations (snapshot, what the
// projections store), NextDue, and the programmes' latest ends and terminations.
func readsAsFolded(t *testing.T, what string, st, folded *State, now Date) {
	t.Helper()
	if a, b := snapshot(st, now), snapshot(folded, now); !proto.Equal(a, b) {
		t.Fatalf("%s: at %s, kept event by event\n%v\nfolded\n%v", what, now, a, b)
	}
	an, aok := NextDue(st)
	bn, bok := NextDue(folded)
	if an != bn || aok != bok {
		t.Fatalf("%s: next due %s %v, folded %s %v", what, an, aok, bn, bok)
	}
	if len(st.Programmes) != len(folded.Programmes) {
		t.Fatalf("%s: %d programmes, folded %d", what, len(st.Programmes), len(folded.Programmes))
	}
	for i, p := range st.Programmes {
		q := folded.Programmes[i]
		ae, _, _, _, aok := ProgrammeLatestEnd(st, p, now)
		be, _, _, _, bok := ProgrammeLatestEnd(folded, q, now)
		if ae != be || aok != bok || !reflect.DeepEqual(p.Termination, q.Termination) {
			t.Fatalf("%s: programme %d ends %s %v by %+v, folded %s %v by %+v", what, i, ae, aok, p.Termination, be, bok, q.Termination)
		}
	}
}

// indexesSeen counts what foldAsPlain's persons held, so that the test's log shows what its
// checks met.
type indexesSeen struct {
	programmes, leave, computed, flyttet, moves, copied, erased, unmerged, training int
}

func (c *indexesSeen) add(st *State) {
	c.programmes += len(st.Programmes)
	c.moves += len(st.Moves)
	c.training += len(st.Training.Vedtak)
	for _, p := range st.Programmes {
		c.leave += len(p.Leave)
		c.computed += len(p.ComputedTerminations)
		for _, t := range p.ComputedTerminations {
			if t.Rule == nirv1.TerminationRule_TERMINATION_RULE_FLYTTET {
				c.flyttet++
			}
		}
	}
	if st.Erased {
		c.erased++
	}
	for _, le := range st.log {
		if le.Event.GetPersonsMerged() != nil {
			c.copied++
			if st.Retracted[le.Event.GetId()] {
				c.unmerged++
			}
		}
	}
}
