package rules

import (
	"slices"
	"sort"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// Residence is a stint of a person's bostedskommune history: the person lived in Kommune from
// From until To, the date of the move away (zero To: still there). The first period starts at
// the settlement date.
type Residence struct {
	Kommune string
	From    Date
	To      Date
}

// Residences returns the person's bostedskommune history, folded by the regelmotor: the
// settlement kommune from the settlement date, then each move in the order of its date
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
	return residences(st.Person.SettlementKommune, st.Person.SettlementDate, st.Moves)
}

// residences is the bostedskommune history of a person settled in kommune on date and moved
// by moves (ordered by date).
func residences(kommune string, date Date, moves []Move) []Residence {
	out := []Residence{{Kommune: KommuneNow(kommune), From: date}}
	for _, m := range moves {
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

// Merged is a person merged into this one (a PersonsMerged in force), with the
// bostedskommune history it had: the kommuner that had it keep their own period of the
// merged person, as after a move (README "Kommune boundaries", a product decision taken in
// the code: DOMAIN.md Product decisions 15 and 16 are silent on it).
type Merged struct {
	// EventID is the PersonsMerged's id.
	EventID string
	// PersonKey is the absorbed person's key.
	PersonKey string
	// Residences is the absorbed person's bostedskommune history as the events the merge
	// copied say (its registration, then its moves, none of them retracted), named as
	// Residences names them. Its last period ends, as by a move, when the person came to
	// the kommune the survivor's history has it in next: the start of the first of the
	// survivor's periods (as the survivor was folded when the merge was applied) that starts
	// on or after it, or else the day of the merge (its recorded time). So a kommune that
	// had the absorbed person keeps what it had then and nothing of the survivor's later
	// years, and the merge gives no kommune a longer period than it had. Nil for an
	// absorbed person without a registration.
	Residences []Residence
}

// mergedResidences is Merged.Residences of the person whose effective events evs a merge
// recorded on day copied into a person whose bostedskommune history then was host.
// retracted are the ids of events retracted since.
func mergedResidences(evs []*nirv1.Event, retracted map[string]bool, host []Residence, day Date) []Residence {
	var (
		reg   *nirv1.PersonRegistered
		moves []Move
	)
	for _, e := range evs {
		if e == nil || e.GetId() != "" && retracted[e.GetId()] {
			continue
		}
		switch {
		case e.GetPersonRegistered() != nil && reg == nil:
			reg = e.GetPersonRegistered()
		case e.GetPersonMoved() != nil:
			moves = append(moves, Move{EventID: e.GetId(), Date: dateOf(e.GetPersonMoved().GetDate()), To: e.GetPersonMoved().GetToKommune()})
		}
	}
	if reg == nil {
		return nil
	}
	sort.SliceStable(moves, func(i, j int) bool { return moves[i].Date.Before(moves[j].Date) })
	out := residences(reg.GetSettlementKommune(), dateOf(reg.GetSettlementDate()), moves)
	last := &out[len(out)-1]
	end := day
	for _, p := range host {
		if !p.From.IsZero() && !p.From.Before(last.From) && (end.IsZero() || p.From.Before(end)) {
			end = p.From
		}
	}
	if !end.IsZero() && end.Before(last.From) {
		end = last.From
	}
	last.To = end
	return out
}

// Reach is which kommuner reach a person, as its folded state says: the kommuner it lives in
// now and those it lived in before (DOMAIN.md Product decisions 8 and 16), the persons merged
// into it included (State.Merges). It is all a
// kommune's relation to the person (access.Scope.Relation) depends on, small enough to be kept per person (the read
// models' persons bucket), so that a kommune out of reach is answered before the person's
// history is read and folded: in the time an unknown person takes (access.Scope.Hidden).
type Reach struct {
	// Current are the kommuner the person lives in: the last period's, or, for a person not
	// registered (any more), every kommune that wrote a registration of it.
	Current []string
	// Former are the kommuner of the person's earlier periods, and of the periods of the
	// persons merged into it (State.Merges), not current ones.
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
		r.addFormer(st)
		return r
	}
	r := Reach{Current: []string{periods[len(periods)-1].Kommune}}
	r.addFormer(st, periods)
	return r
}

// addFormer adds to r.Former the kommuner of periods and of the persons merged into st's
// person that are not in it yet, nor current.
func (r *Reach) addFormer(st *State, periods ...[]Residence) {
	for _, m := range st.Merges {
		periods = append(periods, m.Residences)
	}
	for _, ps := range periods {
		for _, p := range ps {
			if !slices.Contains(r.Current, p.Kommune) && !slices.Contains(r.Former, p.Kommune) {
				r.Former = append(r.Former, p.Kommune)
			}
		}
	}
}
