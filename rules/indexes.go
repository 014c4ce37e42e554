package rules

import (
	"cmp"
	"slices"
	"sort"
	"strings"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// The fold's incremental indexes, which keep its cost per event from growing with the
// person's history: what finds a programme among many (earlier), what a computed
// termination's deletion and a change of the person settle (computedAt, computedIn,
// flyttetOn, vgoDecides), which waiting events a new programme may take (waitingFirst,
// waitingIn), and what the events since the last finish touched. State's fields say what
// each holds; TestProperty_IndexesAsPlain checks each against a plain computation after
// every event of whole histories.

// startBound is what a programme's start must be to fit a lookup (latestIn): any, on or
// before a date, or on it.
type startBound int

const (
	anyStart startBound = iota
	startedBy
	startedAt
)

// fits reports whether start fits bound b of date d.
func (b startBound) fits(start, d Date) bool {
	switch b {
	case startedBy:
		return !start.After(d)
	case startedAt:
		return start == d
	}
	return true
}

// latestIn returns the index in Programmes of the latest programme in kommune k (SameKommune)
// whose start fits bound b of d; -1 if there is none. It looks at the latest programme
// first, as an event most often belongs to it, then in earlier, by each number of k's
// lineage. It looked from the latest programme back at every one: an event whose programme
// lay behind many, of another kommune or started after its date, looked past them all.
// 5 000 absences behind 2 500 programmes of another kommune folded in 178–199 ms on a
// quiet machine; now in 9.0–32.5 ms, where the build before took 170–886 ms, both in turns
// under a load of 7–9 (BenchmarkFold_EventsBehindProgrammes, 2026-12-07).
func (s *State) latestIn(k string, b startBound, d Date) int {
	n := len(s.Programmes)
	if n == 0 {
		return -1
	}
	if last := s.Programmes[n-1]; SameKommune(last.Kommune, k) && b.fits(last.Start, d) {
		return n - 1
	}
	found := -1
	for _, nr := range lineage(k) {
		found = max(found, s.earlierIn(nr, b, d))
	}
	return found
}

// programmeRef is a programme in earlier: its index in Programmes, and the latest (highest)
// index of the programmes of its kommune number from the first in earlier up to it.
type programmeRef struct{ at, latest int }

// earlierIn returns the index in Programmes of the latest programme in earlier of kommune
// number nr (exactly) whose start fits bound b of d; -1 if there is none.
func (s *State) earlierIn(nr string, b startBound, d Date) int {
	// The refs after every one of nr that fits: those are in order of start, and those of
	// one start in order of index.
	j := sort.Search(len(s.earlier), func(j int) bool {
		p := s.Programmes[s.earlier[j].at]
		if c := strings.Compare(p.Kommune, nr); c != 0 || b == anyStart {
			return c > 0
		}
		return p.Start.After(d)
	})
	if j == 0 {
		return -1
	}
	r := s.earlier[j-1]
	switch p := s.Programmes[r.at]; {
	case p.Kommune != nr, b == startedAt && p.Start != d:
		return -1
	case b == startedAt:
		return r.at
	}
	return r.latest
}

// addProgramme appends p to Programmes, and the one it follows as the latest to earlier.
func (s *State) addProgramme(p *Programme) {
	s.Programmes = append(s.Programmes, p)
	if n := len(s.Programmes); n > 1 {
		s.indexEarlier(n - 2)
	}
}

// setStart sets the start of the programme at index i in Programmes, moving it in earlier.
func (s *State) setStart(i int, start Date) {
	if i == len(s.Programmes)-1 {
		s.Programmes[i].Start = start
		return
	}
	j := s.earlierAt(i)
	if j >= len(s.earlier) || s.earlier[j].at != i {
		panic("rules: a programme missing from the index of earlier programmes")
	}
	s.earlier = slices.Delete(s.earlier, j, j+1)
	s.linkLatest(j)
	s.Programmes[i].Start = start
	s.indexEarlier(i)
}

// indexEarlier inserts the programme at index i in Programmes into earlier.
func (s *State) indexEarlier(i int) {
	j := s.earlierAt(i)
	s.earlier = slices.Insert(s.earlier, j, programmeRef{at: i})
	s.linkLatest(j)
}

// earlierAt returns where in earlier the programme at index i in Programmes is, or would be
// inserted: earlier is ordered by kommune number, start and index.
func (s *State) earlierAt(i int) int {
	p := s.Programmes[i]
	j, _ := slices.BinarySearchFunc(s.earlier, i, func(r programmeRef, i int) int {
		q := s.Programmes[r.at]
		return cmp.Or(strings.Compare(q.Kommune, p.Kommune), q.Start.Compare(p.Start), cmp.Compare(r.at, i))
	})
	return j
}

// linkLatest sets the latest of the refs in earlier from j to the last of j's kommune number.
func (s *State) linkLatest(j int) {
	if j >= len(s.earlier) {
		return
	}
	nr := s.Programmes[s.earlier[j].at].Kommune
	for ; j < len(s.earlier) && s.Programmes[s.earlier[j].at].Kommune == nr; j++ {
		r := &s.earlier[j]
		r.latest = r.at
		if j > 0 && s.Programmes[s.earlier[j-1].at].Kommune == nr {
			r.latest = max(r.at, s.earlier[j-1].latest)
		}
	}
}

// indexComputed lists the programme at index i in Programmes, whose last computed
// termination is new, in computedIn and flyttetOn as that termination asks (touchComputed,
// touchMoved).
func (s *State) indexComputed(i int) {
	ts := s.Programmes[i].ComputedTerminations
	t := ts[len(ts)-1]
	if !restsOnPerson(t.Rule) {
		return
	}
	if !slices.ContainsFunc(ts[:len(ts)-1], func(t *Termination) bool { return restsOnPerson(t.Rule) }) {
		s.computedIn = append(s.computedIn, i)
	}
	if t.Rule == nirv1.TerminationRule_TERMINATION_RULE_FLYTTET {
		if s.flyttetOn == nil {
			s.flyttetOn = map[Date][]int{}
		}
		if on := s.flyttetOn[t.Date]; len(on) == 0 || on[len(on)-1] != i {
			s.flyttetOn[t.Date] = append(on, i)
		}
	}
}

// indexComputedAt records in computedAt that a computed termination of the given id was
// attached to the programme at index i of Programmes.
func (s *State) indexComputedAt(id string, i int) {
	if s.computedAt == nil {
		s.computedAt = map[string]int{}
	}
	if at, ok := s.computedAt[id]; ok && at != i {
		i = -1
	}
	s.computedAt[id] = i
}

// deleteComputed marks deleted the computed terminations with the given id, and touches
// their programmes: only the one computedAt names (every one, if several hold the id). A
// deletion changes only its target's programme (settleTermination). Each deletion looked
// at every programme's computed terminations: 2 500 programmes ended by FRIST_UTLOPT, then
// 5 000 deletions, folded in 0.27–0.51 s (BenchmarkFold_ComputedThenPersonEvents).
func (s *State) deleteComputed(id string) {
	at, ok := s.computedAt[id]
	if !ok {
		return // not attached yet: attached deleted (deletedComputed)
	}
	ps := s.Programmes
	if at >= 0 {
		ps = ps[at : at+1]
	}
	for _, p := range ps {
		for _, t := range p.ComputedTerminations {
			if t.EventID == id {
				t.Deleted = true
				s.touch(p)
			}
		}
	}
}

// retryPending applies again, in stream order, the programme events that found no programme
// and may find p, the new one (mayFind); the others wait on. Each new programme applied every
// waiting event again, each looking at every programme: 1 000 events of a kommune where the
// person had no programme, then 500 programmes in another, folded in 1.61–1.64 s on a quiet
// machine, 4 000 then 2 000 in 538 s under load (BenchmarkFold_PendingThenProgrammes; now
// 1.9–2.8 ms, and about 11 ms under that load).
func (s *State) retryPending(p *Programme) {
	if len(s.pending) == 0 || !mayFind(s.waitingFirst, p) && !slices.ContainsFunc(s.waitingIn, func(k string) bool { return mayFind(k, p) }) {
		return
	}
	pending := s.pending
	s.pending, s.waitingFirst, s.waitingIn, s.Unattached = nil, "", nil, s.Unattached[:0]
	for _, le := range pending {
		if mayFind(le.Event.GetKommune(), p) {
			s.applyOne(le)
		} else {
			s.wait(le)
		}
	}
}

// mayFind reports whether a waiting event of kommune k may find programme p. An event that
// names its kommune finds only a programme of that kommune (programmeFor), and it found
// none when it was last applied; one that names none takes the bostedskommune on its date
// (eventKommune), which moves since may have changed, so it may find any.
func mayFind(k string, p *Programme) bool {
	return k == "" || SameKommune(p.Kommune, k)
}

// wait keeps le, a programme event that found no programme, until a new programme may take
// it (retryPending), and its kommune as waitingFirst or among waitingIn.
func (s *State) wait(le LoggedEvent) {
	switch k := le.Event.GetKommune(); {
	case len(s.pending) == 0:
		s.waitingFirst = k
	case k != s.waitingFirst && !slices.Contains(s.waitingIn, k):
		s.waitingIn = append(s.waitingIn, k)
	}
	s.pending = append(s.pending, le)
}

// settleTouched settles what the events since the last finish touched (touch,
// touchComputed).
func (s *State) settleTouched() {
	if s.touchedAll {
		for _, p := range s.Programmes {
			s.settle(p)
		}
		return
	}
	if s.touchedComputed || s.touchedVgo {
		for _, i := range s.computedIn {
			if p := s.Programmes[i]; p != s.touched && (s.touchedComputed || p.vgoDecides) {
				s.settle(p)
			}
		}
	} else {
		for _, d := range s.movedOn {
			for _, i := range s.flyttetOn[d] {
				s.settle(s.Programmes[i])
			}
		}
	}
	if s.touched != nil {
		s.settle(s.touched)
	}
}

// touch records that an event changed what settling programme p reads (its start,
// vedtak, sluttmål, leave or terminations), so that finish settles p (every programme, if
// one event changed several: a merge's copies, pending events attached to a new
// programme; TestProperty_SettleTouched). Settling every programme after every event made a
// fold's cost per event grow with the person's programmes: 327–376 ms for a fold of 5 000, now
// 18.8–23.3 ms (BenchmarkFold_Programmes).
func (s *State) touch(p *Programme) {
	switch {
	case s.touched == nil:
		s.touched = p
	case s.touched != p:
		s.touchedAll = true
	}
}

// touchComputed records that an event changed what every computed termination resting on
// the person's whole state reads (the person's law: computedHolds, programmeLatestEnd), so
// that finish settles every programme that has one (computedIn).
// A programme without such terminations ends by its registered ones and its own stans,
// which no such event changes.
func (s *State) touchComputed() { s.touchedComputed = true }

// touchVgo records that an event changed the utdanningsbakgrunn from was (nil: none) to vgo,
// so that finish settles the programmes it decides a computed termination of
// (Programme.vgoDecides): settling reads the utdanningsbakgrunn only in
// sluttmalContradiction, for a FRIST_UTLOPT whose programme would run on past its date, and
// only under LAW_IL. What else decides that (the programme's own events, the law) settles
// the programme when it changes, and so sets vgoDecides again. Registered again with the
// same value, it changes nothing. Every utdanningsbakgrunn settled every programme with a
// computed termination resting on the person: 2 500 ended by FRIST_UTLOPT, then 5 000
// utdanningsbakgrunn events, folded in 2.5–3.7 s (BenchmarkFold_ComputedThenPersonEvents).
func (s *State) touchVgo(was *bool, vgo bool) {
	if was == nil || *was != vgo {
		s.touchedVgo = true
	}
}

// touchMoved records that the moves of date d changed (a move inserted, or the kommune it
// moved from), so that finish settles the programmes with a FLYTTET termination of that
// date: computedHolds reads only those moves for it. Each move settled every programme with
// a computed termination, and each FLYTTET termination then looked at every move: 2 000
// programmes ended by FLYTTET, each moving out and back, folded in 7.7–7.8 s on a quiet machine
// (BenchmarkFold_MovedProgrammes). With no FLYTTET termination there is nothing to settle:
// one attached later is settled as its programme is touched.
func (s *State) touchMoved(d Date) {
	if len(s.flyttetOn) > 0 {
		s.movedOn = append(s.movedOn, d)
	}
}
