package rules

import nirv1 "github.com/introreg/nir/proto/nir/v1"

// LastActivity returns the last day the register knows the person took part in anything
// (DOMAIN.md Product decisions 15, retention): the latest date of any of the person's effective
// events, those of merges in force included (a vedtak's dates, a period's start and end, a
// month of hours, a termination; not the birth date), and open reports whether an
// introduction programme has started and is neither terminated nor stopped. The retention
// rule counts its years from that day; a person with an open programme is never due.
//
// The copies of a merge no longer in force (retracted, at any level of nested merges: an
// un-merge) are not the person's: before 2026-12-06 they counted, and an un-merged survivor
// was kept for as long as the other person was active.
func LastActivity(s *State) (last Date, open bool) {
	for _, p := range s.Programmes {
		if !p.Start.IsZero() && p.Termination == nil && p.Stopped.IsZero() {
			open = true
		}
	}
	var count func(ev *nirv1.Event)
	count = func(ev *nirv1.Event) {
		if ev == nil || ev.GetId() != "" && s.Retracted[ev.GetId()] {
			return
		}
		for _, f := range payloadDates(ev) {
			if f.name == "birth_date" {
				continue
			}
			if d, ok := DateOf(f.p); ok && d.After(last) {
				last = d
			}
		}
		for _, c := range ev.GetPersonsMerged().GetAbsorbedEvents() {
			count(c)
		}
	}
	for _, le := range s.log {
		if s.Faulted(le.Event.GetId()) {
			continue
		}
		count(le.Event)
	}
	return last, open
}

// ErasureDue reports whether the retention rule of years makes the person due for erasure on
// now: a registered person of its own (not an id's claim, not merged into another), not
// erased already, with no open programme and nothing it took part in for years whole years.
// years < 1 means no rule: nobody is due.
func ErasureDue(s *State, years int, now Date) (last Date, due bool) {
	if years < 1 || !s.Registered || s.Erased || s.Successor() != "" {
		return Date{}, false
	}
	last, open := LastActivity(s)
	if open || last.IsZero() {
		return last, false
	}
	return last, !last.AddYears(years).After(now)
}
