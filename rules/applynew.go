package rules

import nirv1 "github.com/introreg/nir/proto/nir/v1"

// BrokenPanic is a Fault's Panic when the person's state could not be derived at all with
// the event (State.Broken).
const BrokenPanic = "the person's state cannot be derived (State.Broken)"

// ApplyNew is Apply for an event not yet stored: it applies ev at seq and reports the fault
// when the fold failed with it, so that the event can be refused instead of stored (an event
// the rules panic on would be left out of every read model; README, Guarantees). The fault is
// the first one found while applying it that was not one before (ev's own, or another
// event's that the fold with ev panicked on), or BrokenPanic when the state is Broken after
// it. ev stays applied either way: a state it faulted is not to be kept.
func (s *State) ApplyNew(seq uint64, ev *nirv1.Event) (Fault, bool) {
	before := make(map[int]bool, len(s.Faults))
	for _, f := range s.Faults {
		before[f.at] = true
	}
	s.Apply(seq, ev)
	for _, f := range s.Faults {
		if !before[f.at] {
			return f, true
		}
	}
	if s.Broken && ev != nil {
		return Fault{Seq: seq, EventID: ev.GetId(), Panic: BrokenPanic}, true
	}
	return Fault{}, false
}

// Resequence moves the events s applied at stream sequence from to sequence to: the last
// event applied, and the events a merge it was copied in. It is for an event applied at a
// provisional sequence (the append path folds a new event before the stream gives it its
// sequence, ApplyNew): from must be above every other sequence s applied, and to not below
// it. s is then as if the event had been applied at to.
func (s *State) Resequence(from, to uint64) {
	if from == to || len(s.log) == 0 {
		return
	}
	for i := len(s.log) - 1; i >= 0 && s.log[i].Seq >= from; i-- {
		if s.log[i].Seq != from {
			continue
		}
		s.log[i].Seq = to
		s.resequenceEvents(s.log[i].Event, from, to)
	}
	if s.LastSeq == from {
		s.LastSeq = to
	}
	for i := range s.pending {
		if s.pending[i].Seq == from {
			s.pending[i].Seq = to
		}
	}
	for i := range s.Moves {
		if s.Moves[i].Seq == from {
			s.Moves[i].Seq = to
		}
	}
	for _, p := range s.Programmes {
		for _, ts := range [][]*Termination{p.RegisteredTerminations, p.ComputedTerminations} {
			for _, t := range ts {
				if t.Seq == from {
					t.Seq = to
				}
			}
		}
	}
	for i := range s.Faults {
		if s.Faults[i].Seq == from {
			s.Faults[i].Seq = to
		}
	}
}

// resequenceEvents moves ev's entry in Events, and those of the events a merge in it copied,
// from sequence from to sequence to (see indexAbsorbed).
func (s *State) resequenceEvents(ev *nirv1.Event, from, to uint64) {
	if id := ev.GetId(); id != "" {
		if le, ok := s.Events[id]; ok && le.Seq == from {
			le.Seq = to
			s.Events[id] = le
		}
	}
	for _, e := range ev.GetPersonsMerged().GetAbsorbedEvents() {
		s.resequenceEvents(e, from, to)
	}
}
