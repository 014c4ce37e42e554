package access

import (
	"context"
	"fmt"
	"slices"

	"github.com/introreg/nir/internal/auth"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// Scope is what one caller may reach. It is built once at the edge, from the principal that
// authenticated ([For], [FromContext]), or by nird itself for its own writers ([System]), and
// passed down to every decision. The zero Scope reaches nothing.
type Scope struct {
	role    auth.Role
	kommune string // the kommune of a kommune scope; "" for every other role
	actor   *nirv1.Actor
	name    string
}

// For returns the scope of an authenticated principal. A kommune principal without a
// kommune reaches nothing.
func For(p auth.Principal) Scope {
	s := Scope{role: p.Role, actor: p.Actor(), name: p.String()}
	switch p.Role {
	case auth.RoleKommune:
		if p.Kommune == "" {
			return Scope{name: p.String()}
		}
		s.kommune = p.Kommune
	case auth.RoleAnalyst, auth.RoleOperator, auth.RoleSystem:
	default:
		return Scope{name: p.String()}
	}
	return s
}

// System returns the scope of one of nird's own writers (the regelmotor, the demo loader, a
// benchmark): the system role, recording actor in the events it writes.
func System(actor *nirv1.Actor) Scope {
	return Scope{role: auth.RoleSystem, actor: actor, name: "system:" + actor.GetSubject()}
}

// FromContext returns the scope of the principal the guard put in ctx, or ErrUnauthenticated.
func FromContext(ctx context.Context) (Scope, error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return Scope{}, ErrUnauthenticated
	}
	return For(p), nil
}

// Role is the scope's role ("" for the zero Scope).
func (s Scope) Role() auth.Role { return s.role }

// OwnKommune is the kommune of a kommune scope, "" for any other.
func (s Scope) OwnKommune() string { return s.kommune }

// IsSystem reports whether the scope is the system principal's.
func (s Scope) IsSystem() bool { return s.role == auth.RoleSystem }

// Actor is the actor written into the events the scope records.
func (s Scope) Actor() *nirv1.Actor { return s.actor }

// SeesNationalIDs reports whether national ids may be shown to the scope: kommune (for the
// persons it may read) and system. Analysts and operators work on pseudonymous data only.
func (s Scope) SeesNationalIDs() bool {
	return s.role == auth.RoleKommune || s.role == auth.RoleSystem
}

// String is a form safe for logs: role, name and kommune.
func (s Scope) String() string { return s.name }

// Relation is how a kommune stands to a person (see the package doc).
type Relation int

// The relations, from none to all.
const (
	// None: the kommune never had the person; the person is hidden from it.
	None Relation = iota
	// Former: the person lived in the kommune and moved on; it keeps its own period.
	Former
	// Current: the person lives in the kommune (or the kommune registered a person whose
	// registration is now retracted, so that it can register the person again).
	Current
	// All: the system principal, which reaches every person.
	All
)

func (r Relation) String() string {
	switch r {
	case Former:
		return "former"
	case Current:
		return "current"
	case All:
		return "all"
	}
	return "none"
}

// Relation returns how the scope stands to the person folded in st. Analysts and operators
// have None: they never reach a person's identifying data.
func (s Scope) Relation(st *rules.State) Relation {
	return s.RelationTo(ReachOf(st))
}

// Reach is rules.Reach: which kommuner reach a person. It is all a kommune's Relation to the
// person depends on, small enough to be kept per person (the read models' persons bucket),
// so that a kommune out of reach is answered before the person's history is read and folded
// (Scope.Hidden). It lives in package rules, which the read models may import.
type Reach = rules.Reach

// ReachOf returns the kommuner that reach the person folded in st (rules.ReachOf).
func ReachOf(st *rules.State) Reach { return rules.ReachOf(st) }

// RelationTo returns how the scope stands to a person the kommuner of r reach (ReachOf).
// Analysts and operators have None: they never reach a person's identifying data.
func (s Scope) RelationTo(r Reach) Relation {
	switch s.role {
	case auth.RoleSystem:
		return All
	case auth.RoleKommune:
	default:
		return None
	}
	switch {
	case slices.ContainsFunc(r.Current, s.own):
		return Current
	case slices.ContainsFunc(r.Former, s.own):
		return Former
	}
	return None
}

// own reports whether kommunenummer k names the scope's kommune: its number, or a number it
// had before a reform (3001 for 3101 Halden; 0627 Røyken, 0220 and 3025 Asker for 3203 Asker),
// compared in the newest structure (rules.KommuneNow), as the fold names a person's kommuner
// (rules.Residences; DOMAIN.md Product decisions 13). A split kommune's number is the part's
// that continues it (1507 Ålesund is 1508 Ålesund's, never 1580 Haram's), since the fold gives
// a person settled under it to that part; rules.SameKommune, which counts 1507 as Haram's too,
// would let Haram write for Ålesund's persons.
func (s Scope) own(k string) bool {
	return k != "" && s.kommune != "" && rules.KommuneNow(k) == rules.KommuneNow(s.kommune)
}

// CheckNewEvent refuses what a kommune may not write in a new event, though it may re-send it
// when stored already: a number that went to several kommuner at a split (split), and a
// number the kommune had before a reform (own) for events, and settlements, dated after that
// number's time; after the reform the kommune's number is its own
// (TestScope_OldNumberOnlyInItsTime, TestScope_SplitNumberNoOnesToWrite). The caller applies it
// to new events only, so an event stored before the rules is still answered as its duplicate.
func (s Scope) CheckNewEvent(ev *nirv1.Event, field string) error {
	if s.role != auth.RoleKommune {
		return nil
	}
	if k := ev.GetKommune(); split(k, s.kommune) {
		return denied(field+".kommune", splitReason(k))
	} else if k != "" {
		if d, ok := rules.EffectiveDate(ev); ok && !s.inItsTime(k, d) {
			return denied(field+".kommune", "kommunenummer "+k+", which the kommune had before a reform, is written only for events dated while it was valid; use "+s.kommune)
		}
	}
	if pr := ev.GetPersonRegistered(); pr != nil && split(pr.GetSettlementKommune(), s.kommune) {
		return denied(field+".person_registered.settlement_kommune", splitReason(pr.GetSettlementKommune()))
	} else if pr != nil {
		if d, ok := rules.DateOf(pr.GetSettlementDate()); ok && !s.inItsTime(pr.GetSettlementKommune(), d) {
			return denied(field+".person_registered.settlement_kommune",
				"kommunenummer "+pr.GetSettlementKommune()+", which the kommune had before a reform, is written only for a settlement dated while it was valid; use "+s.kommune)
		}
	}
	return nil
}

// split reports whether kommunenummer k, not the scope's own number own, went to several
// kommuner at a split (1507 Ålesund to 1508 Ålesund and 1580 Haram in 2024; 1534 Haram
// through it): the fold counts such a number for every part (rules.SameKommune), so an event
// written under it by one part, in its own period and the number's own time, landed on the
// other part's programme (a stans, an extension, a sluttmål on Haram's programme from
// Ålesund), which the other part could not retract (found by a review after merging;
// TestScope_SplitNumberNoOnesToWrite). Such numbers are written by the system principal alone.
func split(k, own string) bool {
	if k == "" || k == own {
		return false
	}
	_, _, ok := rules.KommuneIn(k, rules.NewestStructure)
	return !ok
}

// splitReason is the refusal of a new event under a split number. Events of the number's own
// time are the part's that continues it to read, but the fold counts them for every part, so
// until a rule for splits exists they are written by the register's system principal (an
// operator's load), not by a kommune: the kommune's own number is not valid on their dates.
func splitReason(k string) string {
	return "kommunenummer " + k + " went to several kommuner at a split and the register counts it for each of them, so no kommune writes under it; ask the register's operators to record events of its time"
}

// inItsTime reports whether kommunenummer k may be written for an event dated d: the scope's
// own number always, a number it had before a reform (own) only while that number was valid.
func (s Scope) inItsTime(k string, d rules.Date) bool {
	if k == "" || k == s.kommune {
		return true
	}
	_, err := rules.LookupKommune(k, d)
	return err == nil
}

// Hidden reports whether the person the kommuner of r reach is hidden from the scope: a
// kommune scope without a relation to it, which every call answers as it answers a person
// nobody registered. Other roles are never hidden here: their calls are refused, or reach
// every person, by role.
func (s Scope) Hidden(r Reach) bool {
	return s.role == auth.RoleKommune && s.RelationTo(r) == None
}

// Reaches reports whether the scope may append to the person folded in st at all: a person
// it has a relation to, or, for an operator, any person (an operator records only merges,
// CheckRegistration). A person out of reach is answered as not found.
func (s Scope) Reaches(st *rules.State) bool {
	return s.role == auth.RoleOperator || s.Relation(st) != None
}

// CheckMerge decides whether the scope may merge the person folded in absorbed into another
// (PersonsMerged): the kommune that has the person now, an operator or the system principal.
// A person the scope cannot see is ErrNotFound.
func (s Scope) CheckMerge(absorbed *rules.State, field string) error {
	switch s.role {
	case auth.RoleSystem, auth.RoleOperator:
		return nil
	}
	switch s.Relation(absorbed) {
	case None:
		return ErrNotFound
	case Current:
		return nil
	}
	return denied(field, "persons are merged by the kommune that has both, or by an operator")
}

// CanWrite returns nil if the scope's role may record events at all, and a *DeniedError
// otherwise (analysts and operators never write).
func (s Scope) CanWrite() error {
	switch s.role {
	case auth.RoleKommune, auth.RoleSystem, auth.RoleOperator:
		// An operator records merges of persons, their retraction and erasures only
		// (CheckRegistration, CheckEvent; DOMAIN.md Product decisions 15).
		return nil
	}
	return denied("", fmt.Sprintf("role %s may not record events", s.roleName()))
}

func (s Scope) roleName() string {
	if s.role == "" {
		return "(none)"
	}
	return string(s.role)
}

// CheckRegistration applies the rules that need no history to one event the scope wants to
// record; field is the event's path in the request ("registrations[3].event"). It returns a
// *DeniedError, or nil.
func (s Scope) CheckRegistration(ev *nirv1.Event, field string) error {
	if err := s.CanWrite(); err != nil {
		return err
	}
	if ev.GetIdentifierClaimed() != nil {
		// DOMAIN.md Product decisions 15: the claim is nird's own message on an id's subject;
		// a client's would take the id for any person it names.
		return denied(field+".identifier_claimed", "is written by nird alone; a further id is registered with identifier_added")
	}
	if ev.GetPersonMergedInto() != nil {
		return denied(field+".person_merged_into", "is written by nird alone; persons are merged with persons_merged")
	}
	if ev.GetPersonErased() != nil && s.role != auth.RoleOperator {
		// DOMAIN.md Product decisions 15: erasure destroys what nothing can restore; it is an
		// operator's decision, with a reason, never a case system's or the regelmotor's.
		return denied(field+".person_erased", "a person is erased by an operator alone (nirctl person erase)")
	}
	if s.role == auth.RoleOperator {
		if ev.GetPersonsMerged() == nil && ev.GetEventRetracted() == nil && ev.GetPersonErased() == nil {
			return denied(field, "an operator records only the merge of two persons (persons_merged), its retraction, and the erasure of a person (person_erased)")
		}
		return nil
	}
	if s.role == auth.RoleSystem {
		return nil
	}
	if k := ev.GetKommune(); k != "" && !s.own(k) {
		return denied(field+".kommune", "a kommune may only register for its own kommune ("+s.kommune+", or the number it had before a reform)")
	}
	if pr := ev.GetPersonRegistered(); pr != nil && pr.GetSettlementKommune() != "" && !s.own(pr.GetSettlementKommune()) {
		return denied(field+".person_registered.settlement_kommune",
			"a kommune registers only persons settled in itself ("+s.kommune+"); a person settled elsewhere is registered by that kommune")
	}
	if ev.GetTerminationComputed() != nil {
		return denied(field+".termination_computed", "only the regelmotor records computed terminations")
	}
	return nil
}

// CheckEvent decides whether the scope may record ev for the person folded in st, which holds
// the person's stored history and the request's events before ev. It returns ErrNotFound for a
// person hidden from the scope, a *DeniedError naming the field (under field, the event's path)
// and the rule, or nil. The rules that need no history are CheckRegistration's.
func (s Scope) CheckEvent(st *rules.State, ev *nirv1.Event, field string) error {
	return s.EventChecker().Check(st, ev, field)
}

// EventChecker is Scope.CheckEvent for the events of one request, each judged on the state
// with the request's events before it applied: it builds the person's periods and reach
// again only when an event changed them (rules.ResidenceMemo), where CheckEvent builds them
// for each event (time linear in the person's moves an event).
type EventChecker struct {
	scope Scope
	memo  rules.ResidenceMemo
}

// EventChecker returns a checker of the scope's events for one person's state.
func (s Scope) EventChecker() *EventChecker { return &EventChecker{scope: s} }

// Check is Scope.CheckEvent.
func (c *EventChecker) Check(st *rules.State, ev *nirv1.Event, field string) error {
	s := c.scope
	switch s.role {
	case auth.RoleSystem:
		return nil
	case auth.RoleOperator:
		if r := ev.GetEventRetracted(); r != nil {
			if t, ok := st.Events[r.GetEventId()]; ok && t.Event.GetPersonsMerged() == nil {
				return denied(field+".event_retracted.event_id", "an operator retracts only a merge of two persons")
			}
		}
		return nil
	case auth.RoleKommune:
	default:
		return s.CanWrite()
	}
	periods, reach := c.memo.Of(st)
	rel := s.RelationTo(reach)
	if ev.GetPersonRegistered() != nil {
		if rel == None && len(st.Events) > 0 {
			return ErrNotFound // somebody else's person
		}
		return nil // a new person (or the same kommune's correction): the rules decide
	}
	if rel == None {
		return ErrNotFound
	}
	switch {
	case ev.GetPersonMoved() != nil:
		m := ev.GetPersonMoved()
		if rel != Current {
			return denied(field+".person_moved", "a move is recorded by the kommune the person lives in, or by the population register; never by another kommune")
		}
		if s.own(m.GetToKommune()) {
			return denied(field+".person_moved.to_kommune", "the person lives in "+s.kommune+" already")
		}
		if len(periods) > 0 {
			since := periods[len(periods)-1].From
			if d, ok := rules.DateOf(m.GetDate()); ok && d.Before(since) {
				return denied(field+".person_moved.date", fmt.Sprintf("lies before the person came to %s (%s): an earlier move is recorded by the kommune the person lived in then, or by the population register", s.kommune, since))
			}
		}
		return nil
	case ev.GetPersonsMerged() != nil:
		if rel != Current {
			return denied(field+".persons_merged", "persons are merged by the kommune that has both, or by an operator")
		}
		return nil
	case ev.GetIdentifierAdded() != nil:
		if rel != Current {
			return denied(field+".identifier_added", "an id is added by the kommune the person lives in, or by the population register")
		}
		return nil
	case ev.GetEventRetracted() != nil:
		return s.mayCorrect(st, periods, rel, ev.GetEventRetracted().GetEventId(), field+".event_retracted.event_id")
	case ev.GetComputedTerminationDeleted() != nil:
		return s.mayCorrect(st, periods, rel, ev.GetComputedTerminationDeleted().GetComputedEventId(), field+".computed_termination_deleted.computed_event_id")
	}
	if rel == Current {
		return nil
	}
	// A former kommune keeps its own period.
	if d, ok := effectiveDate(ev); ok && lived(periods, s.kommune, d) {
		return nil
	}
	return denied(field, "the person has moved away from "+s.kommune+": a former kommune registers only what took effect while the person lived there")
}

// mayCorrect decides whether the scope may retract, or delete, the event with id.
func (s Scope) mayCorrect(st *rules.State, periods []Period, rel Relation, id, field string) error {
	target, ok := st.Events[id]
	if !ok {
		return nil // not the person's event: the rules refuse it (NIR-R003, NIR-R004)
	}
	ev := target.Event
	if s.own(ev.GetKommune()) {
		if ev.GetPersonRegistered() != nil && rel != Current {
			// The registration is the person's identity: a kommune the person has left
			// would, by retracting it, take the person from the kommune that has it now.
			return denied(field, "the registration is corrected by the kommune the person lives in, or by the population register")
		}
		if ev.GetPersonMoved() != nil && !st.Retracted[id] && !st.Faulted(id) {
			date := dateOf(ev.GetPersonMoved().GetDate())
			for _, m := range st.Moves {
				if m.EventID != id && (m.Date.After(date) || (m.Date == date && m.Seq > target.Seq)) {
					return denied(field, "a later move follows this one: it is corrected by the kommune the person lives in now, or by the population register")
				}
			}
		}
		return nil
	}
	if rel == Current {
		switch {
		case ev.GetPersonRegistered() != nil, ev.GetPersonMoved() != nil, ev.GetEventRetracted() != nil, ev.GetComputedTerminationDeleted() != nil:
		default:
			if d, ok := effectiveDate(ev); ok && lived(periods, s.kommune, d) && !lived(periods, ev.GetKommune(), d) {
				return nil
			}
		}
	}
	return denied(field, "an event is retracted by the kommune that wrote it; after a move, the kommune that has the person corrects only what was registered for its own period")
}

func dateOf(p *nirv1.Date) rules.Date {
	d, _ := rules.DateOf(p)
	return d
}

// Visible returns which of the person's events the scope may read in the person's history
// (History, AuditHistory): every one for the Current kommune and the system principal, the
// own period for a Former kommune (see the package doc). It returns ErrNotFound for a
// person hidden from a kommune, and a *DeniedError for roles that never read identifying data.
func (s Scope) Visible(st *rules.State) (func(ev *nirv1.Event) bool, error) {
	if err := s.CanReadHistory(); err != nil {
		return nil, err
	}
	if s.role == auth.RoleSystem {
		return all, nil
	}
	switch s.Relation(st) {
	case None:
		return nil, ErrNotFound
	case Current:
		return all, nil
	}
	from := map[string]string{} // move event id → the kommune it moved the person from
	for _, m := range st.Moves {
		from[m.EventID] = m.From
	}
	var visible func(ev *nirv1.Event, depth int) bool
	visible = func(ev *nirv1.Event, depth int) bool {
		switch {
		case s.own(ev.GetKommune()), ev.GetPersonRegistered() != nil:
			return true
		case ev.GetPersonMoved() != nil:
			return s.own(ev.GetPersonMoved().GetToKommune()) || s.own(from[ev.GetId()])
		}
		// A correction made by another kommune is visible when what it corrects is.
		var target string
		switch {
		case ev.GetEventRetracted() != nil:
			target = ev.GetEventRetracted().GetEventId()
		case ev.GetComputedTerminationDeleted() != nil:
			target = ev.GetComputedTerminationDeleted().GetComputedEventId()
		default:
			return false
		}
		t, ok := st.Events[target]
		return ok && depth < 8 && visible(t.Event, depth+1)
	}
	return func(ev *nirv1.Event) bool { return visible(ev, 0) }, nil
}

func all(*nirv1.Event) bool { return true }

// CanReadHistory returns nil if the scope's role may read persons' histories at all (kommune,
// system), and a *DeniedError otherwise: the events hold national ids. Edges call it before
// looking the person up, so that a refused role learns nothing about the person.
func (s Scope) CanReadHistory() error {
	switch s.role {
	case auth.RoleKommune, auth.RoleSystem:
		return nil
	}
	return denied("", fmt.Sprintf("role %s may not read a person's history: it holds national ids", s.roleName()))
}

// CheckStatus decides whether the scope may read the person's current status (the person
// row, its deadlines): the Current kommune, analysts (pseudonymous) and the system principal.
// It returns ErrNotFound for a person the kommune does not have now, and a *DeniedError for
// roles that read no person data.
func (s Scope) CheckStatus(st *rules.State) error {
	return s.CheckStatusOf(ReachOf(st))
}

// CheckStatusOf is CheckStatus for the person the kommuner of r reach (ReachOf).
func (s Scope) CheckStatusOf(r Reach) error {
	switch s.role {
	case auth.RoleSystem, auth.RoleAnalyst:
		return nil
	case auth.RoleKommune:
		if s.RelationTo(r) == Current {
			return nil
		}
		return ErrNotFound
	}
	return denied("", fmt.Sprintf("role %s may not read person data", s.roleName()))
}

// CanQuery returns nil if the scope's role may read the read models at all (kommune, analyst,
// system), and a *DeniedError otherwise.
func (s Scope) CanQuery() error {
	switch s.role {
	case auth.RoleKommune, auth.RoleAnalyst, auth.RoleSystem:
		return nil
	}
	return denied("", fmt.Sprintf("role %s may not query the read models", s.roleName()))
}

// Kommune returns the kommune a list, export, report or kommune-level statistic may cover for
// the scope, given the requested one (field names it in errors): a kommune scope its own
// (requested empty or its own), other roles what they asked for ("" = every kommune). A kommune
// asking for another kommune gets a *DeniedError.
func (s Scope) Kommune(field, requested string) (string, error) {
	if err := s.CanQuery(); err != nil {
		return "", err
	}
	if s.role != auth.RoleKommune {
		return requested, nil
	}
	if requested != "" && requested != s.kommune {
		return "", denied(field, "a kommune may only read its own kommune ("+s.kommune+")")
	}
	return s.kommune, nil
}

// Fylke is Kommune for a fylke (two digits): a kommune scope gets its own kommune's fylke.
func (s Scope) Fylke(field, requested string) (string, error) {
	if err := s.CanQuery(); err != nil {
		return "", err
	}
	if s.role != auth.RoleKommune {
		return requested, nil
	}
	own := s.kommune[:2]
	if requested != "" && requested != own {
		return "", denied(field, "a kommune may only read its own fylke ("+own+")")
	}
	return own, nil
}
