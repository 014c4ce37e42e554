package rules

import (
	"maps"
	"slices"
)

// Copy returns a deep copy of s: applying events to either leaves the other as it was. The
// events themselves (LoggedEvent.Event) are shared, as a fold never changes them. It costs
// a copy of the state's maps and slices, where a refold applies every event again: the
// append path keeps a person's folded state and copies it for each request's checks, which
// change the state they check against.
func (s *State) Copy() *State {
	c := *s
	c.Moves = slices.Clone(s.Moves)
	c.Programmes = copyProgrammes(s.Programmes)
	c.ProgrammeRefusals = slices.Clone(s.ProgrammeRefusals)
	c.Training = s.Training.copy()
	c.Offers = slices.Clone(s.Offers)
	c.Demands = slices.Clone(s.Demands)
	c.Reception = slices.Clone(s.Reception)
	c.Unattached = slices.Clone(s.Unattached)
	c.Events = maps.Clone(s.Events)
	c.Retracted = maps.Clone(s.Retracted)
	c.IDEvents = slices.Clone(s.IDEvents)
	c.Absorbed = slices.Clone(s.Absorbed)
	c.mergedRegs = slices.Clone(s.mergedRegs)
	c.log = slices.Clone(s.log)
	c.pending = slices.Clone(s.pending)
	c.waitingIn = slices.Clone(s.waitingIn)
	c.deletedComputed = maps.Clone(s.deletedComputed)
	c.Faults = slices.Clone(s.Faults)
	c.computedIn = slices.Clone(s.computedIn)
	c.computedAt = maps.Clone(s.computedAt)
	c.flyttetOn = maps.Clone(s.flyttetOn)
	for d, on := range c.flyttetOn {
		c.flyttetOn[d] = slices.Clone(on)
	}
	// touched points into s's programmes; finish leaves it nil, so this is only for safety.
	c.touched, c.touchedAll, c.touchedComputed, c.touchedVgo = nil, s.touchedAll || s.touched != nil, s.touchedComputed, s.touchedVgo
	c.movedOn = slices.Clone(s.movedOn)
	c.earlier = slices.Clone(s.earlier)
	return &c
}

// copy returns a deep copy of t. Utdanningsbakgrunn and Norskmal are replaced whole by a
// fold, never changed in place, so their pointers are shared.
func (t Training) copy() Training {
	c := t
	c.Vedtak = slices.Clone(t.Vedtak)
	c.Hours = maps.Clone(t.Hours)
	c.AbsenceHours = maps.Clone(t.AbsenceHours)
	c.FullTimeUpperSecondary = slices.Clone(t.FullTimeUpperSecondary)
	c.Exemptions = slices.Clone(t.Exemptions)
	c.Leave = slices.Clone(t.Leave)
	c.Absence = slices.Clone(t.Absence)
	return c
}

// copyProgrammes copies the programmes and their terminations, keeping a programme's
// Termination pointing into its own copied lists (a deletion marks the listed termination,
// and settleTermination picks one of them).
func copyProgrammes(ps []*Programme) []*Programme {
	if ps == nil {
		return nil
	}
	out := make([]*Programme, len(ps))
	for i, p := range ps {
		c := *p
		c.Vedtak = slices.Clone(p.Vedtak)
		c.Extensions = slices.Clone(p.Extensions)
		c.Leave = slices.Clone(p.Leave)
		c.leave = p.leave.copy()
		c.Tiltak = slices.Clone(p.Tiltak)
		c.Absence = slices.Clone(p.Absence)
		moved := map[*Termination]*Termination{}
		copyTerms := func(ts []*Termination) []*Termination {
			if ts == nil {
				return nil
			}
			out := make([]*Termination, len(ts))
			for j, t := range ts {
				n := *t
				out[j], moved[t] = &n, &n
			}
			return out
		}
		c.RegisteredTerminations = copyTerms(p.RegisteredTerminations)
		c.ComputedTerminations = copyTerms(p.ComputedTerminations)
		if p.Termination != nil {
			if t, ok := moved[p.Termination]; ok {
				c.Termination = t
			} else {
				n := *p.Termination
				c.Termination = &n
			}
		}
		out[i] = &c
	}
	return out
}
