package rules

// LastActivity returns the last day the register knows the person took part in anything
// (DOMAIN.md Product decisions 15, retention): the latest date of any of the person's effective
// events, merged persons' included (a vedtak's dates, a period's start and end, a month of
// hours, a termination; not the birth date), and open reports whether an introduction
// programme has started and is neither terminated nor stopped. The retention rule counts
// its years from that day; a person with an open programme is never due.
func LastActivity(s *State) (last Date, open bool) {
	for _, p := range s.Programmes {
		if !p.Start.IsZero() && p.Termination == nil && p.Stopped.IsZero() {
			open = true
		}
	}
	for id, le := range s.Events {
		if s.Retracted[id] || s.Faulted(id) {
			continue
		}
		for _, f := range payloadDates(le.Event) {
			if f.name == "birth_date" {
				continue
			}
			if d, ok := DateOf(f.p); ok && d.After(last) {
				last = d
			}
		}
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
