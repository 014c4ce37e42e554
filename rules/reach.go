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
	out := []Residence{{Kommune: KommuneNow(firstKommune(st)), From: st.Person.SettlementDate}}
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

// firstKommune is the kommune of a registered person's first period: the settlement kommune.
func firstKommune(st *State) string {
	if k := st.Person.SettlementKommune; k != "" {
		return k
	}
	// A person in mottak is registered before settlement (DOMAIN.md 4: opplæring and
	// kvalifisering i mottak are registered in NIR; 6.5: persons in reception belong to
	// their vertskommune): the kommune that registered the person has it until a
	// settlement says otherwise (a move, or the registration corrected). Without this,
	// no kommune reached such a person, not even to retry or retract its registration.
	return st.Events[st.Person.EventID].Event.GetKommune()
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
	return reachOf(st, Residences(st))
}

// reachOf is ReachOf with the person's Residences.
func reachOf(st *State, periods []Residence) Reach {
	if periods == nil {
		// Not registered (any more): the kommune that wrote a registration may register the
		// person again, having retracted the first one to correct it.
		var r Reach
		r.addRegistrations(st.log)
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

// addRegistrations adds to Current the kommuner that wrote the registrations among les.
func (r *Reach) addRegistrations(les []LoggedEvent) {
	for _, le := range les {
		if le.Event.GetPersonRegistered() != nil && !slices.Contains(r.Current, le.Event.GetKommune()) {
			r.Current = append(r.Current, le.Event.GetKommune())
		}
	}
}

// ResidenceMemo keeps a person's Residences and Reach while the events applied to its state
// leave them as they are, for the access check of every event of an append, each judged on
// the state with the request's events before it applied: built for each, they cost the
// person's moves an event (a request of 1 000 events for a person of 5 000 moves, quadratic
// in them). The zero value is ready; the periods and reach it returns are shared, not to be
// changed.
//
// They depend on Registered, Person (and the registration it names, which Events keeps as
// it was applied: the first period's kommune, firstKommune) and the dates and kommuner of
// Moves. The fold only grows Moves by inserting a move (a new length),
// changes nothing of a stored move but its From and Seq, and starts it anew only from nil
// (reset): so Moves are as they were while their length and first element's address are,
// the memo holding the old array so that no new one may take its address. A person not
// registered is reached by the registrations in the log, which the fold only appends to,
// so only the log's events not seen yet are looked at.
type ResidenceMemo struct {
	st         *State
	registered bool
	person     Person
	moves      []Move
	periods    []Residence
	reach      Reach
	seen       int // the log's events looked at, for a person not registered
}

// Of returns Residences(st) and ReachOf(st).
func (m *ResidenceMemo) Of(st *State) ([]Residence, Reach) {
	switch {
	case st != m.st || st.Registered != m.registered:
		*m = ResidenceMemo{st: st, registered: st.Registered}
		if st.Registered {
			m.remember()
		}
	case st.Registered && !m.same():
		m.remember()
	}
	if !st.Registered {
		m.reach.addRegistrations(st.log[m.seen:])
		m.seen = len(st.log)
	}
	return m.periods, m.reach
}

// same reports whether the registered person's periods are those remembered.
func (m *ResidenceMemo) same() bool {
	st := m.st
	return st.Person == m.person && len(st.Moves) == len(m.moves) &&
		(len(st.Moves) == 0 || &st.Moves[0] == &m.moves[0])
}

// remember builds the registered person's periods and reach.
func (m *ResidenceMemo) remember() {
	st := m.st
	m.person, m.moves = st.Person, st.Moves
	m.periods = Residences(st)
	m.reach = reachOf(st, m.periods)
}
