package rules

import "slices"

// Residence is a stint of a person's bostedskommune history: the person lived in Kommune from
// From until To, the date of the move away (zero To: still there). The first period starts at
// the settlement date (for a person registered before settlement, in mottak: the registering
// kommune's, from the start).
type Residence struct {
	Kommune string
	From    Date
	To      Date
}

// Residences returns the person's bostedskommune history, folded by the regelmotor: the
// settlement kommune from the settlement date (none yet: the kommune that registered the
// person), then each move in the order of its date
// (State.Moves, retracted moves left out). The last period is the current one
// (st.Kommune). A person who is not registered (or whose registration was retracted) has
// none. Kommuner are named by their number in the newest structure (KommuneNow), so a
// kommune renumbered at a reform (3001 → 3101 Halden) has its persons under the number its
// principal holds, and a renumbering recorded as a move changes nothing (DOMAIN.md Product
// decisions 13).
func Residences(st *State) []Residence {
	if st == nil || !st.Registered {
		return nil
	}
	k := st.Person.SettlementKommune
	if k == "" {
		// A person in mottak is registered before settlement (DOMAIN.md 4: opplæring and
		// kvalifisering i mottak are registered in NIR; 6.5: persons in reception belong to
		// their vertskommune): the kommune that registered the person has it until a
		// settlement says otherwise (a move, or the registration corrected). Without this,
		// no kommune reached such a person, not even to retry or retract its registration.
		k = st.Events[st.Person.EventID].Event.GetKommune()
	}
	out := []Residence{{Kommune: KommuneNow(k), From: st.Person.SettlementDate}}
	for _, m := range st.Moves {
		last := &out[len(out)-1]
		to := KommuneNow(m.To)
		if to == last.Kommune {
			continue // a move to where the person lives already changes nothing
		}
		last.To = m.Date
		out = append(out, Residence{Kommune: to, From: m.Date})
	}
	return out
}

// Reach is which kommuner reach a person, as its folded state says: the kommuner it lives in
// now and those it lived in before (DOMAIN.md Product decisions 8 and 16). It is all a
// kommune's relation to the person (access.Scope.Relation) depends on, small enough to be kept per person (the read
// models' persons bucket), so that a kommune out of reach is answered before the person's
// history is read and folded: in the time an unknown person takes (access.Scope.Hidden).
type Reach struct {
	// Current are the kommuner the person lives in: the last period's, or, for a person not
	// registered (any more), every kommune that wrote a registration of it.
	Current []string
	// Former are the kommuner of the person's earlier periods, not current ones.
	Former []string
}

// ReachOf returns the kommuner that reach the person folded in st.
func ReachOf(st *State) Reach {
	periods := Residences(st)
	if periods == nil {
		// Not registered (any more): the kommune that wrote a registration may register the
		// person again, having retracted the first one to correct it.
		var r Reach
		for _, le := range st.Log() {
			if le.Event.GetPersonRegistered() != nil && !slices.Contains(r.Current, le.Event.GetKommune()) {
				r.Current = append(r.Current, le.Event.GetKommune())
			}
		}
		return r
	}
	cur := periods[len(periods)-1].Kommune
	r := Reach{Current: []string{cur}}
	for _, p := range periods {
		if p.Kommune != cur && !slices.Contains(r.Former, p.Kommune) {
			r.Former = append(r.Former, p.Kommune)
		}
	}
	return r
}
