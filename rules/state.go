package rules

import (
	"fmt"
	"runtime"
	"slices"
	"sort"
	"time"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// State is one person's events folded into what the rules need (DOMAIN.md 8: the Person
// aggregate with its programmes per kommune stint and its training). It is built by Fold or
// by NewState and Apply, and is deterministic: the same events in the same stream order give
// the same State.
//
// A State is not safe for concurrent use. Callers must treat the exported fields as read-only;
// they are rebuilt by Apply.
type State struct {
	// PersonKey is the person's pseudonymous key.
	PersonKey string
	// Registered is true once a (non-retracted) PersonRegistered has been applied.
	Registered bool
	// Person holds what the PersonRegistered event said.
	Person Person
	// Law is the act that covers the person (DOMAIN.md 1.1), LAW_UNSPECIFIED if it cannot be
	// decided (no permit date).
	Law nirv1.Law
	// LawVersion names the rule version that decided Law.
	LawVersion string
	// Moves are the bostedskommune changes, ordered by effective date (then stream order).
	Moves []Move
	// Kommune is the current bostedskommune: the settlement kommune, or the destination of the
	// move with the latest effective date.
	Kommune string
	// Programmes are the introduction programmes, one per kommune stint, in order of creation.
	Programmes []*Programme
	// ProgrammeRefusals are avslag vedtak on the introduction programme.
	ProgrammeRefusals []ProgrammeVedtak
	// Training is the opplæring i norsk og samfunnskunnskap.
	Training Training
	// Offers are the tilbud registered (programme or training), in stream order.
	Offers []Offer
	// Demands are the krav registered (programme or training), in stream order.
	Demands []Offer
	// Reception is opplæring and kvalifisering i mottak (DOMAIN.md 4).
	Reception []ReceptionParticipation
	// Unattached lists ids of programme events that found no programme in their kommune
	// (for example a tiltak whose tildeling was retracted). They have no effect.
	Unattached []string
	// Events holds every applied event by id, retracted ones included.
	Events map[string]LoggedEvent
	// Retracted is the set of event ids whose effect is removed by an EventRetracted that is
	// itself not retracted.
	Retracted map[string]bool
	// LastSeq is the highest stream sequence applied.
	LastSeq uint64
	// IDEvents are the ids of the IdentifierAdded events applied, in stream order (the ids
	// themselves stay in the payloads; HeldIDs reads them).
	IDEvents []string
	// AliasOf is, for the subject of a national id claimed by a person (IdentifierClaimed,
	// DOMAIN.md Product decisions 15), the key of that person; "" for a person.
	AliasOf string
	// MergedInto is the key of the person this one was merged into (PersonMergedInto not
	// retracted, DOMAIN.md Product decisions 15); "" if none.
	MergedInto string
	// Absorbed are the keys of the persons merged into this one (PersonsMerged not retracted).
	Absorbed []string
	// mergedRegs are the ids of the absorbed persons' registrations (for HeldIDs).
	mergedRegs []string
	// Erased is true once a PersonErased was applied (DOMAIN.md Product decisions 15): the
	// person's identifying fields read as «slettet» (ErasedText) and lookups by its ids find
	// nothing; everything else counts as before. An erasure is never retracted (NIR-R056).
	Erased bool
	// Faults are the events whose fold panicked, in the order found: a bug in the rules,
	// never something an input may cause. Such an event is treated as quarantined: it stays
	// in the log and in Events (a redelivery is still ignored), but the derived state is
	// re-derived without it, as without a retracted event (README, Guarantees: a product
	// decision of this register, not of the law). It stays left out until a retraction
	// re-folds the person: that finds the faults of the log as it stands, as a fold of the
	// whole log does, so a faulted event the retraction retracts, or one that no longer
	// panics after it, is no longer in Faults.
	Faults []Fault
	// Broken is true when even the state without every event could not be derived (a panic
	// on no event at all): the derived state is left empty. A later event is folded into the
	// empty state, and a retraction re-folds the whole log.
	Broken bool

	log []LoggedEvent
	// lastReg caches LastRegistration until the next Apply.
	lastReg      Date
	lastRegValid bool
	// pending are programme events that found no programme yet; each new programme retries
	// them, so a programme event folded before its tildeling still counts.
	pending []LoggedEvent
	// waitingFirst and waitingIn are the kommuner the events of pending name, each once
	// ("" for none): the first event's, while pending holds one, and the others'. Most
	// persons' waiting events name one kommune, and a slice of it alone was an allocation
	// on every fold of such a person.
	waitingFirst string
	waitingIn    []string
	// deletedComputed are the ids of the computed terminations a ComputedTerminationDeleted
	// named, whether or not the termination had found its programme then: one that waits in
	// pending (its tildeling corrected by retract and register again) is attached deleted
	// (DOMAIN.md Product decisions 5: a deletion holds on every re-fold).
	deletedComputed map[string]bool
	// touched is the one programme the events since the last finish changed, and
	// touchedAll says that they changed several (touch); touchedComputed says that they
	// changed what every computed termination rests on (touchComputed); touchedVgo that
	// they changed the utdanningsbakgrunn (touchVgo); movedOn are the dates whose moves
	// changed (touchMoved). finish settles only those.
	touched                                 *Programme
	touchedAll, touchedComputed, touchedVgo bool
	movedOn                                 []Date
	// computedIn are the indexes in Programmes of the programmes that have computed
	// terminations resting on the person's whole state (restsOnPerson): those
	// touchComputed settles. flyttetOn are, by date, those with a FLYTTET termination of
	// that date: those a move of the date settles.
	computedIn []int
	flyttetOn  map[Date][]int
	// computedAt is, by event id, the index in Programmes of the programme a computed
	// termination was attached to, or -1 when terminations of that id were attached to
	// several: a ComputedTerminationDeleted marks its target there (deleteComputed).
	computedAt map[string]int
	// earlier are the programmes but the latest (latestIn looks at that one first), by
	// kommune number (Programme.Kommune, exactly), then start, then index in Programmes: a
	// lookup finds the latest programme of a number started on or before a date by binary
	// search (programmeRef.latest), however many programmes of other kommuner or later
	// starts there are, and asks each number of a kommune's lineage in turn (SameKommune is
	// no equivalence: 1508 and 1580 are each 1507, not each other, so no one key stands for
	// a kommune). addProgramme adds the one a new programme follows; setStart moves one
	// whose start a tildeling moves. A re-fold builds it again (reset).
	earlier []programmeRef
}

// LoggedEvent is an applied event with its stream sequence.
type LoggedEvent struct {
	Seq   uint64
	Event *nirv1.Event
}

// Person is what PersonRegistered says about the person (DOMAIN.md 1.1–1.3). The national
// ids are deliberately not copied here: they stay inside the event payload.
type Person struct {
	EventID            string
	BirthDate          Date
	Sex                nirv1.Sex
	PermitDate         Date
	PermitBasis        nirv1.PermitBasis
	ArrivalDate        Date
	SettlementDate     Date
	SettlementKommune  string
	SettledByAgreement bool
	// KeptAge is the age on the permit date that nird kept in clear when it sealed the birth
	// date (PersonRegistered.age_at_permit_date), valid when HasKeptAge; AgeAtPermit uses it
	// when the birth date cannot be read (an erased person), so the law and schemes do not
	// change with an erasure.
	KeptAge    int
	HasKeptAge bool
}

// AgeAtPermit is the person's age in whole years on the permit date (DOMAIN.md 1.2, 1.3): from
// the birth date when it can be read, else the age kept in clear at registration; -1 if
// neither is known.
func (p Person) AgeAtPermit() int {
	if !p.BirthDate.IsZero() || !p.HasKeptAge {
		return AgeOn(p.BirthDate, p.PermitDate)
	}
	return p.KeptAge
}

// Move is a change of bostedskommune (DOMAIN.md 7.4).
type Move struct {
	EventID string
	Seq     uint64
	Date    Date
	From    string
	To      string
}

// Period is a closed range of days; a zero To means open-ended.
type Period struct {
	From Date
	To   Date
}

// Contains reports whether d lies in p.
func (p Period) Contains(d Date) bool {
	if d.Before(p.From) {
		return false
	}
	return p.To.IsZero() || !d.After(p.To)
}

// Days returns the number of days in p, both ends included; 0 for an open or reversed period.
func (p Period) Days() int {
	if p.To.IsZero() || p.From.IsZero() || p.To.Before(p.From) {
		return 0
	}
	return p.From.DaysUntil(p.To) + 1
}

// Leave is approved leave (godkjent permisjon), from a permisjon vedtak or an absence
// registration of a permisjon type (DOMAIN.md 2.6, 3.2).
type Leave struct {
	EventID string
	Period
	// Type is the absence type, ABSENCE_TYPE_UNSPECIFIED for a permisjon vedtak.
	Type nirv1.AbsenceType
}

// Absence is registered fravær (not leave).
type Absence struct {
	EventID string
	Period
	Type  nirv1.AbsenceType
	Hours float64
}

// Tiltak is a registered tiltak in a programme (DOMAIN.md 2.4).
type Tiltak struct {
	EventID string
	Period
	Code         nirv1.TiltakCode
	HoursPerWeek float64
}

// Extension is an utvidelse vedtak on a programme (DOMAIN.md 2.2).
type Extension struct {
	EventID    string
	VedtakDate Date
	Months     int
}

// ProgrammeVedtak is one vedtak on the introduction programme (DOMAIN.md 2.1).
type ProgrammeVedtak struct {
	EventID         string
	Kommune         string
	Type            nirv1.ProgrammeVedtakType
	VedtakDate      Date
	From            Date
	To              Date
	ExtensionMonths int
}

// Termination is a registered or computed termination of a programme (DOMAIN.md 2.5,
// Product decisions 5).
type Termination struct {
	EventID  string
	Seq      uint64
	Computed bool
	Kind     nirv1.TerminationKind
	Reason   nirv1.TerminationReason
	Date     Date
	// Rule, RuleVersion and ProgrammeStart are set for computed terminations.
	Rule           nirv1.TerminationRule
	RuleVersion    string
	ProgrammeStart Date
	// Deleted is true when a ComputedTerminationDeleted removed this computed termination.
	Deleted bool
	// Lapsed is true when the trigger this computed termination rested on no longer holds on
	// the history as it stands: the stans or the move it followed was retracted or re-dated,
	// or a registered extension (or another correction) moved the programme's latest end
	// (DOMAIN.md Product decisions 5, 11; DESIGN.md: a retraction removes the retracted
	// event's effect). A lapsed termination stays in history but ends nothing; should its
	// trigger hold again on the same date, it applies again. See State.computedHolds.
	Lapsed bool
}

// Programme is one introduction programme stint in one kommune.
type Programme struct {
	Kommune string
	// Start is the from date of the first tildeling.
	Start Date
	// PlannedEnd is the to date of the latest tildeling that gave one (zero if none).
	PlannedEnd Date
	// Vedtak are the programme's vedtak in stream order (tildeling, stans, permisjon,
	// utvidelse).
	Vedtak               []ProgrammeVedtak
	Sluttmal             nirv1.Sluttmal
	SluttmalDate         Date
	Integreringskontrakt Date
	Extensions           []Extension
	Leave                []Leave
	Tiltak               []Tiltak
	Absence              []Absence
	// Stopped is the date of a stans vedtak (zero if none).
	Stopped Date
	// RegisteredTerminations are the kommune's TerminationRegistered events, in stream order.
	RegisteredTerminations []*Termination
	// ComputedTerminations are the regelmotor's TerminationComputed events, deleted ones
	// included, in stream order.
	ComputedTerminations []*Termination
	// Termination is the effective one: the latest registered termination, else the latest
	// computed one neither deleted nor lapsed, else nil. A registered termination wins over a
	// computed one (IL "Legg til", DOMAIN.md Product decisions 5).
	Termination *Termination
	// leave indexes Leave for the programme's latest end (leaveIndex), added to with it.
	leave leaveIndex
	// vgoDecides says that the utdanningsbakgrunn decides whether one of its computed
	// terminations holds (computedHolds, as the programme was last settled): only such
	// programmes does a change of the utdanningsbakgrunn settle (settleTouched).
	vgoDecides bool
}

// addLeave adds l to the programme's leave and its index.
func (p *Programme) addLeave(l Leave) {
	p.Leave = append(p.Leave, l)
	p.leave.add(l)
}

// leaveIndex returns the index of the programme's leave: its own, or one made of Leave when
// Leave was not added to by addLeave (a Programme built by hand).
func (p *Programme) leaveIndex() *leaveIndex {
	if p.leave.n == len(p.Leave) {
		return &p.leave
	}
	return newLeaveIndex(p.Leave)
}

// inEffect reports whether computed termination t is neither deleted nor lapsed.
func (t *Termination) inEffect() bool { return !t.Deleted && !t.Lapsed }

// EffectiveComputed returns the computed terminations that are in effect: neither deleted by
// the kommune nor lapsed (their trigger no longer holds, Termination.Lapsed).
func (p *Programme) EffectiveComputed() []*Termination {
	var out []*Termination
	for _, t := range p.ComputedTerminations {
		if t.inEffect() {
			out = append(out, t)
		}
	}
	return out
}

// TrainingVedtak is one vedtak on opplæring i norsk og samfunnskunnskap (DOMAIN.md 3.1).
type TrainingVedtak struct {
	EventID    string
	Kommune    string
	Scheme     nirv1.TrainingScheme
	Type       nirv1.TrainingVedtakType
	VedtakDate Date
	Start      Date
	End        Date
}

// HoursKey is a type of training hours in one calendar month given by one kommune. A person
// who moves mid-month is given hours for that month by both kommuner, and both count
// (DOMAIN.md 3.1, 6.5: hours are part of the grant basis).
type HoursKey struct {
	Type  nirv1.HoursType
	Year  int
	Month time.Month
	// Kommune registered the hours, by its number valid in the month (hoursKommune).
	Kommune string
}

// Norskmal is the registered norskmål (DOMAIN.md 3.3).
type Norskmal struct {
	EventID                               string
	Date                                  Date
	Listening, Reading, Writing, Speaking nirv1.CefrLevel
}

// Exemption is a fritak (DOMAIN.md 3.6).
type Exemption struct {
	EventID    string
	Type       nirv1.ExemptionType
	LegalBasis string
	Date       Date
}

// Training is opplæring i norsk og samfunnskunnskap (DOMAIN.md 3).
type Training struct {
	// Vedtak are all training vedtak in stream order.
	Vedtak []TrainingVedtak
	// Scheme is the scheme of the first tildeling under an ordinary scheme (not utvidet 6A).
	Scheme nirv1.TrainingScheme
	// Utdanningsbakgrunn is nil until registered; true means upper secondary from before.
	Utdanningsbakgrunn     *bool
	UtdanningsbakgrunnDate Date
	Norskmal               *Norskmal
	// Hours per type, month and kommune. A later registration by the same kommune for the same
	// type and month replaces the earlier one (a re-sent monthly total), so nothing is counted
	// twice; another kommune's hours for the month are its own. Nil (with
	// AbsenceHours) until the first hours registration.
	Hours map[HoursKey]float64
	// AbsenceHours per type and month, replaced like Hours.
	AbsenceHours           map[HoursKey]float64
	FullTimeUpperSecondary []Period
	Exemptions             []Exemption
	Leave                  []Leave
	Absence                []Absence
}

// Offer is a tilbud or krav for a programme or training.
type Offer struct {
	EventID   string
	Kommune   string
	Programme nirv1.Programme
	Date      Date
}

// ReceptionParticipation is opplæring or kvalifisering i mottak (DOMAIN.md 4).
type ReceptionParticipation struct {
	EventID string
	Period
	Activity  nirv1.ReceptionActivity
	Hours     float64
	Completed bool
}

// NewState returns the empty state of a person.
func NewState(personKey string) *State {
	s := &State{PersonKey: personKey}
	s.reset()
	return s
}

// Fold folds a person's events, in stream order, into their state. The i-th event gets
// stream sequence i+1 unless the caller uses Apply with real sequences.
func Fold(personKey string, events []*nirv1.Event) *State {
	s := NewState(personKey)
	les := make([]LoggedEvent, len(events))
	for i, ev := range events {
		les[i] = LoggedEvent{Seq: uint64(i + 1), Event: ev}
	}
	s.ApplyAll(les)
	return s
}

// reset clears everything derived from events, keeping the log and the faults.
func (s *State) reset() {
	log, events, retracted, last, faults, broken := s.log, s.Events, s.Retracted, s.LastSeq, s.Faults, s.Broken
	*s = State{PersonKey: s.PersonKey, log: log, Events: events, Retracted: retracted, LastSeq: last, Faults: faults, Broken: broken}
	if s.Events == nil {
		s.Events = map[string]LoggedEvent{}
	}
	if s.Retracted == nil {
		s.Retracted = map[string]bool{}
	}
}

// Apply applies one event at stream sequence seq. It is incremental and deterministic: applying
// events one by one gives the same State as Fold. An event whose id was already applied is
// ignored (redelivery). An EventRetracted re-folds the person without the retracted event
// (and a retracted retraction restores its target). Apply never panics on any sequence of
// events, however odd (unknown payloads, missing dates, effective dates out of order).
//
// Should a bug in the rules still panic while an event is folded, Apply contains it: the
// event is recorded in Faults and left out of the derived state, which is re-derived
// without it (see Faults; Broken if even that fails). So one stored event can never stop a
// reader of the stream, and every reader leaves out the same events.
func (s *State) Apply(seq uint64, ev *nirv1.Event) {
	le := LoggedEvent{Seq: seq, Event: ev}
	if !s.logEvent(le) {
		return
	}
	if ev.GetEventRetracted() != nil {
		s.refoldAll()
		return
	}
	s.foldLast(le)
}

// ApplyAll applies les in order, with the same State as Apply on each, but re-folds the
// person once for all the retractions among them rather than once for each: the events
// before the first retraction are folded one by one, and the rest in one re-fold at the
// end. A history read whole (a rebuild, an as-of replay, a person's history read for the
// API or the append path) folds in time linear in its events however many retractions it
// holds, where Apply on each event re-folds the whole log for every retraction (quadratic
// in them: a kommune could make every read of its own person slow).
func (s *State) ApplyAll(les []LoggedEvent) {
	stale := false
	for _, le := range les {
		logged := s.logEvent(le)
		switch {
		case !logged, stale:
		case le.Event.GetEventRetracted() != nil:
			stale = true
		default:
			s.foldLast(le)
		}
	}
	if stale {
		s.refoldAll()
	}
}

// logEvent adds le to the log and the id index, and reports whether it did: not for a nil
// event, nor for a redelivery of an id already applied.
func (s *State) logEvent(le LoggedEvent) bool {
	ev := le.Event
	if ev == nil {
		return false
	}
	if s.Events == nil {
		s.reset()
	}
	if id := ev.GetId(); id != "" {
		if _, dup := s.Events[id]; dup {
			return false
		}
		s.Events[id] = le
	}
	s.log = append(s.log, le)
	s.lastRegValid = false
	s.indexAbsorbed(le.Seq, ev)
	if le.Seq > s.LastSeq {
		s.LastSeq = le.Seq
	}
	return true
}

// foldLast folds le, the last event of the log and no retraction, into the derived state of
// the events before it. On a Broken state every earlier event is faulted, so that state is
// the empty one. A panic faults le, and the state is derived again without it.
func (s *State) foldLast(le LoggedEvent) {
	if s.Broken {
		s.reset()
		s.Broken = false
	}
	if r := s.applyLast(le); r != nil {
		s.addFault(len(s.log)-1, r)
		s.refold()
	}
}

// applyLast applies le, the last event of the log, and returns what it panicked with (nil
// if it did not).
func (s *State) applyLast(le LoggedEvent) (panicked any) {
	defer func() { panicked = recover() }()
	s.applyOne(le)
	s.finish()
	return nil
}

// FaultReason is why a Fault's event is left out of the derived state.
const FaultReason = "the rules panicked folding the event"

// Fault is an event whose fold panicked (State.Faults).
type Fault struct {
	// Seq and EventID are the event's stream sequence and id.
	Seq     uint64
	EventID string
	// Panic says what the fold panicked with: a runtime error's text (it holds no data), else
	// only the panic value's type, as the value could hold a national id.
	Panic string
	// at is the event's index in the log.
	at int
}

// addFault records the event at index i of the log as faulted by the panic value r.
func (s *State) addFault(i int, r any) {
	le := s.log[i]
	s.Faults = append(s.Faults, Fault{Seq: le.Seq, EventID: le.Event.GetId(), Panic: panicText(r), at: i})
}

// panicText describes a panic value without its content, unless the runtime made it.
func panicText(r any) string {
	if e, ok := r.(runtime.Error); ok {
		return RedactIDs(e.Error())
	}
	return fmt.Sprintf("panic(%T)", r)
}

// faulted reports whether the event at index i of the log is in Faults.
func (s *State) faulted(i int) bool {
	for _, f := range s.Faults {
		if f.at == i {
			return true
		}
	}
	return false
}

// Faulted reports whether the event with id is in Faults: in the log, but left out of the
// derived state.
func (s *State) Faulted(id string) bool {
	for _, f := range s.Faults {
		if f.EventID == id && id != "" {
			return true
		}
	}
	return false
}

// Log returns the applied events in stream order, retracted ones included.
func (s *State) Log() []LoggedEvent { return append([]LoggedEvent(nil), s.log...) }

// refoldAll derives the state from the whole log, its faults found anew: an event faulted
// before may count now (a retraction changed what came before it, or retracted it), and
// another may fault. So the faults are those of one re-fold of the log as it stands, the
// same whether its events came one by one (Apply) or together (ApplyAll).
func (s *State) refoldAll() {
	s.Faults = nil
	s.Broken = false
	s.refold()
}

// refold recomputes the retracted set and rebuilds the derived state from the log, leaving
// out the faulted events. Each event is applied and the state settled after it (finish), as
// Apply does: a panic in either faults that event, and it starts over without it. A panic
// settling the state without any event leaves the derived state empty and the state Broken.
func (s *State) refold() {
	knownAt := s.knownAt()
	for {
		blame, r := s.tryRefold(knownAt)
		if r == nil {
			return
		}
		if blame < 0 {
			s.Broken = true
			s.clear()
			return
		}
		s.addFault(blame, r)
	}
}

// clear empties the derived state of a Broken state; it cannot panic (reset would, only if
// memory ran out).
func (s *State) clear() {
	s.Retracted = map[string]bool{}
	s.reset()
}

// knownAt maps each id the person knows (Events) to the index of the log's event that made
// it known: the event itself, or the merge that copied it.
func (s *State) knownAt() map[string]int {
	at := make(map[string]int, len(s.Events))
	var index func(i int, ev *nirv1.Event)
	index = func(i int, ev *nirv1.Event) {
		if id := ev.GetId(); id != "" {
			if _, ok := at[id]; !ok {
				at[id] = i
			}
		}
		for _, e := range ev.GetPersonsMerged().GetAbsorbedEvents() {
			index(i, e)
		}
	}
	for i, le := range s.log {
		index(i, le.Event)
	}
	return at
}

// tryRefold is one attempt of refold. It returns what it panicked with (nil if it did not)
// and the log index of the event to blame for it (-1 for none). A retraction retracts only
// an event known before it (knownAt), as Check asks: one the stream holds anyway, of an id
// that comes later, retracts nothing, so that the fold of a log does not depend on whether
// a retraction after the id re-folded it (Apply) or not (ApplyAll, the log read in pieces).
func (s *State) tryRefold(knownAt map[string]int) (blame int, panicked any) {
	blame = -1
	defer func() { panicked = recover() }()
	retracted := map[string]bool{}
	// A retraction always targets an earlier event, so walking backwards settles each
	// retraction before its target is looked at.
	for i := len(s.log) - 1; i >= 0; i-- {
		ev := s.log[i].Event
		if retracted[ev.GetId()] && ev.GetId() != "" {
			continue
		}
		if len(s.Faults) > 0 && s.faulted(i) {
			continue
		}
		if r := ev.GetEventRetracted(); r != nil && r.GetEventId() != "" && r.GetEventId() != ev.GetId() {
			if at, known := knownAt[r.GetEventId()]; known && at < i {
				retracted[r.GetEventId()] = true
			}
		}
	}
	s.Retracted = retracted
	log := s.log
	s.reset()
	for i, le := range log {
		if id := le.Event.GetId(); id != "" && retracted[id] {
			continue
		}
		if len(s.Faults) > 0 && s.faulted(i) {
			continue
		}
		blame = i
		s.applyOne(le)
		s.finish()
	}
	if blame < 0 {
		s.finish()
	}
	return -1, nil
}

// finish recomputes the values derived from the whole state.
func (s *State) finish() {
	faultForTest(nil)
	s.Law, s.LawVersion = LawOf(s.Person)
	s.Kommune = s.KommuneOn(Date{})
	// Unattached holds the ids of the first of pending (retryPending, which alone takes
	// events out of it, empties it); pending only grew since, so its tail is what is new. A
	// re-fold settles the state after every event: rebuilt whole each time, a person of n
	// events that found no programme re-folded in time n².
	if len(s.Unattached) > len(s.pending) {
		s.Unattached = s.Unattached[:0]
	}
	for _, le := range s.pending[len(s.Unattached):] {
		s.Unattached = append(s.Unattached, le.Event.GetId())
	}
	s.settleTouched()
	s.touched, s.touchedAll, s.touchedComputed, s.touchedVgo, s.movedOn = nil, false, false, false, s.movedOn[:0]
}

// settle decides which of p's computed terminations hold and which termination ends p.
func (s *State) settle(p *Programme) {
	p.vgoDecides = false
	for _, t := range p.ComputedTerminations {
		t.Lapsed = !s.computedHolds(p, t)
	}
	p.settleTermination()
}

// restsOnPerson reports whether a computed termination of rule r rests on more than its
// programme (computedHolds): FLYTTET on the moves and the law, FRIST_UTLOPT on the law and
// the utdanningsbakgrunn. STANS rests on its programme's stans alone, and INAKTIV holds.
func restsOnPerson(r nirv1.TerminationRule) bool {
	return r == nirv1.TerminationRule_TERMINATION_RULE_FLYTTET || r == nirv1.TerminationRule_TERMINATION_RULE_FRIST_UTLOPT
}

// computedHolds reports whether the trigger computed termination t of programme p rested on
// still holds on the history as it stands (DOMAIN.md Product decisions 5, 11): for STANS, the
// programme is stopped by a stans on t's date; for FLYTTET, the person moved out of the
// programme's kommune on t's date (as an IntroL participant, when the rule version asks it);
// for FRIST_UTLOPT, the programme's latest end is not after t's date (an extension, leave or
// a corrected start or sluttmål registered after it moves the end past it; a new one is
// computed when the new end has passed, and the old one holds again if a retraction brings
// its end back: then both hold, and the earliest ends the programme, settleTermination).
// While the end cannot be computed (a sluttmål contradicted, Product decisions 10) nothing
// shows the programme runs on, so it holds. An INAKTIV termination rests on the
// registrations recorded before it, which a later registration does not undo: it holds. It
// reads only the folded state (no clock), so every reader agrees.
func (s *State) computedHolds(p *Programme, t *Termination) bool {
	switch t.Rule {
	case nirv1.TerminationRule_TERMINATION_RULE_STANS:
		return p.Stopped == t.Date
	case nirv1.TerminationRule_TERMINATION_RULE_FLYTTET:
		i := sort.Search(len(s.Moves), func(i int) bool { return !s.Moves[i].Date.Before(t.Date) })
		for _, m := range s.Moves[i:] {
			if m.Date != t.Date {
				break
			}
			if SameKommune(m.From, p.Kommune) && !SameKommune(m.To, p.Kommune) {
				return !pick(terminationMovedVersions, m.Date).IntroLOnly || s.Law == nirv1.Law_LAW_INTROL
			}
		}
		return false
	case nirv1.TerminationRule_TERMINATION_RULE_FRIST_UTLOPT:
		end, _, _, _, ok := programmeLatestEndBy(s, p, Date{}, false)
		if !ok || !end.After(t.Date) {
			return true
		}
		// The programme runs on past t's date, unless the utdanningsbakgrunn contradicts
		// the sluttmål (then its end cannot be computed): that can only be under LAW_IL.
		_, _, bad := sluttmalContradiction(s, p.Sluttmal)
		p.vgoDecides = p.vgoDecides || s.Law == nirv1.Law_LAW_IL
		return bad
	}
	return true
}

// SettledIn returns when the person came to kommune k: the date of the latest move into it,
// else the settlement date (DOMAIN.md 3.5 «folkeregistrering i kommunen»). A move between
// two numbers of one kommune (a renumbering registered as a move, SameKommune, Product
// decisions 13) is no arrival.
func (s *State) SettledIn(k string) Date {
	d := s.Person.SettlementDate
	for _, m := range s.Moves {
		if SameKommune(m.To, k) && !SameKommune(m.From, m.To) {
			d = m.Date
		}
	}
	return d
}

// KommuneOn returns the bostedskommune on date d: the settlement kommune, replaced by each move
// dated on or before d. A zero d means "latest": every move counts.
func (s *State) KommuneOn(d Date) string {
	if d.IsZero() && len(s.Moves) > 0 {
		return s.Moves[len(s.Moves)-1].To
	}
	k := s.Person.SettlementKommune
	for _, m := range s.Moves {
		if !d.IsZero() && m.Date.After(d) {
			break
		}
		k = m.To
	}
	return k
}

func (p *Programme) settleTermination() {
	p.Termination = nil
	if n := len(p.RegisteredTerminations); n > 0 {
		p.Termination = p.RegisteredTerminations[n-1]
		return
	}
	// A programme ends once: of the computed terminations in effect the earliest-dated one,
	// the latest recorded among equal dates. Before, the latest recorded won: a second
	// FRIST_UTLOPT, computed after an extension that was then retracted, ended the programme
	// a year late (il_extension_retracted_after_second_frist), and one computed while a stans
	// was retracted outlived the stans registered again (stans_registered_again_after_frist).
	for _, t := range p.ComputedTerminations {
		if t.inEffect() && (p.Termination == nil || !t.Date.After(p.Termination.Date)) {
			p.Termination = t
		}
	}
}

// ended reports whether p can no longer take a new tildeling as the same stint.
func (p *Programme) ended() bool {
	p.settleTermination()
	return p.Termination != nil || !p.Stopped.IsZero()
}

// eventKommune returns the kommune an event is registered for, falling back to the
// bostedskommune on the effective date.
func (s *State) eventKommune(ev *nirv1.Event, d Date) string {
	if k := ev.GetKommune(); k != "" {
		return k
	}
	return s.KommuneOn(d)
}

// hoursKommune is the kommune that gives a month's training hours: the event's kommune (else
// the bostedskommune on the month's first day), named by its number valid in the month, so
// that a kommune re-sending a month under its number from after a reform (Product decisions
// 13) replaces its own figure. A kommune merged from several has no one number then; it is
// the person's bostedskommune of the month when that is one of them (3025 Asker for 0220):
// the one at the month's end, else at its start. Before, only the month's first day was
// asked, so a re-send by 3025 for a person who moved into 0627 Røyken on 10 December 2019 was
// kept beside 0627's own figure and the month counted twice
// (TestFold_HoursResentAfterMidMonthMove).
func (s *State) hoursKommune(ev *nirv1.Event, y int, m time.Month) string {
	first, ok := NewDate(y, m, 1)
	if !ok {
		return ev.GetKommune()
	}
	k := s.eventKommune(ev, first)
	if v, err := KommuneValidAs(k, first); err == nil {
		return v.Nr
	}
	for _, d := range []Date{first.AddMonths(1).AddDays(-1), first} {
		if b := s.KommuneOn(d); SameKommune(b, k) {
			return b
		}
	}
	return k
}

// programmeFor returns the programme in kommune k that an event with effective date d belongs
// to: the latest one started on or before d, else the latest one in k; nil if k has none.
func (s *State) programmeFor(k string, d Date) *Programme {
	if i := s.programmeAt(k, d); i >= 0 {
		return s.Programmes[i]
	}
	return nil
}

// programmeAt is programmeFor's programme's index in Programmes; -1 if there is none.
func (s *State) programmeAt(k string, d Date) int {
	if !d.IsZero() {
		if i := s.latestIn(k, startedBy, d); i >= 0 {
			return i
		}
	}
	return s.latestIn(k, anyStart, Date{})
}

func dateOf(p *nirv1.Date) Date {
	d, ok := DateOf(p)
	if !ok {
		return Date{}
	}
	return d
}

func (s *State) applyOne(le LoggedEvent) {
	ev := le.Event
	faultForTest(ev)
	id := ev.GetId()
	switch {
	case ev.GetPersonRegistered() != nil:
		if s.Registered {
			return // the first registration wins; a second is refused by Check
		}
		p := ev.GetPersonRegistered()
		s.Registered = true
		s.Person = Person{
			EventID:            id,
			BirthDate:          dateOf(p.GetBirthDate()),
			Sex:                p.GetSex(),
			PermitDate:         dateOf(p.GetPermitDate()),
			PermitBasis:        p.GetPermitBasis(),
			ArrivalDate:        dateOf(p.GetArrivalDate()),
			SettlementDate:     dateOf(p.GetSettlementDate()),
			SettlementKommune:  p.GetSettlementKommune(),
			SettledByAgreement: p.GetSettledByAgreement(),
			HasKeptAge:         p.AgeAtPermitDate != nil,
			KeptAge:            int(p.GetAgeAtPermitDate()),
		}
		s.relinkMoves()
		s.touchComputed()

	case ev.GetIdentifierAdded() != nil:
		s.IDEvents = append(s.IDEvents, id)

	case ev.GetIdentifierClaimed() != nil:
		if s.AliasOf == "" {
			s.AliasOf = ev.GetIdentifierClaimed().GetPersonKey()
		}

	case ev.GetPersonErased() != nil:
		s.Erased = true

	case ev.GetPersonMergedInto() != nil:
		if s.MergedInto == "" {
			s.MergedInto = ev.GetPersonMergedInto().GetSurvivingPersonKey()
		}

	case ev.GetPersonsMerged() != nil:
		// The absorbed person's effective events, as nird copied them at the merge, count as
		// this person's from the merge on; its registration only lends its ids (the
		// surviving registration decides law and schemes).
		m := ev.GetPersonsMerged()
		s.Absorbed = append(s.Absorbed, m.GetAbsorbedPersonKey())
		for _, e := range m.GetAbsorbedEvents() {
			switch {
			case e == nil, e.GetId() != "" && s.Retracted[e.GetId()]:
			case e.GetPersonRegistered() != nil:
				s.mergedRegs = append(s.mergedRegs, e.GetId())
			case e.GetEventRetracted() != nil, e.GetPersonMergedInto() != nil, e.GetIdentifierClaimed() != nil:
			default:
				s.applyOne(LoggedEvent{Seq: le.Seq, Event: e})
			}
		}

	case ev.GetPersonMoved() != nil:
		m := ev.GetPersonMoved()
		s.addMove(Move{EventID: id, Seq: le.Seq, Date: dateOf(m.GetDate()), To: m.GetToKommune()})

	case ev.GetDemandRegistered() != nil:
		d := ev.GetDemandRegistered()
		date := dateOf(d.GetDate())
		s.Demands = append(s.Demands, Offer{EventID: id, Kommune: s.eventKommune(ev, date), Programme: d.GetProgramme(), Date: date})

	case ev.GetOfferRegistered() != nil:
		o := ev.GetOfferRegistered()
		date := dateOf(o.GetDate())
		s.Offers = append(s.Offers, Offer{EventID: id, Kommune: s.eventKommune(ev, date), Programme: o.GetProgramme(), Date: date})

	case ev.GetProgrammeVedtakRegistered() != nil:
		s.applyProgrammeVedtak(le)

	case ev.GetSluttmalRegistered() != nil:
		m := ev.GetSluttmalRegistered()
		d := dateOf(m.GetDate())
		if p := s.programmeFor(s.eventKommune(ev, d), d); p != nil {
			p.Sluttmal, p.SluttmalDate = m.GetSluttmal(), d
			s.touch(p)
		} else {
			s.wait(le)
		}

	case ev.GetIntegreringskontraktRegistered() != nil:
		d := dateOf(ev.GetIntegreringskontraktRegistered().GetDate())
		if p := s.programmeFor(s.eventKommune(ev, d), d); p != nil {
			p.Integreringskontrakt = d
		} else {
			s.wait(le)
		}

	case ev.GetTiltakRegistered() != nil:
		t := ev.GetTiltakRegistered()
		per := Period{From: dateOf(t.GetFromDate()), To: dateOf(t.GetToDate())}
		if p := s.programmeFor(s.eventKommune(ev, per.From), per.From); p != nil {
			p.Tiltak = append(p.Tiltak, Tiltak{EventID: id, Period: per, Code: t.GetCode(), HoursPerWeek: t.GetHoursPerWeek()})
		} else {
			s.wait(le)
		}

	case ev.GetAbsenceRegistered() != nil:
		s.applyAbsence(le)

	case ev.GetTerminationRegistered() != nil:
		t := ev.GetTerminationRegistered()
		d := dateOf(t.GetDate())
		p := s.programmeFor(s.eventKommune(ev, d), d)
		if p == nil {
			s.wait(le)
			return
		}
		p.RegisteredTerminations = append(p.RegisteredTerminations, &Termination{
			EventID: id, Seq: le.Seq, Kind: t.GetKind(), Reason: t.GetReason(), Date: d,
		})
		s.touch(p)

	case ev.GetTerminationComputed() != nil:
		t := ev.GetTerminationComputed()
		d, start := dateOf(t.GetDate()), dateOf(t.GetProgrammeStart())
		k := s.eventKommune(ev, d)
		i := s.latestIn(k, startedAt, start)
		if i < 0 {
			i = s.programmeAt(k, d)
		}
		if i < 0 {
			s.wait(le)
			return
		}
		p := s.Programmes[i]
		p.ComputedTerminations = append(p.ComputedTerminations, &Termination{
			EventID: id, Seq: le.Seq, Computed: true, Reason: t.GetReason(), Date: d,
			Rule: t.GetRule(), RuleVersion: t.GetRuleVersion(), ProgrammeStart: start,
			Deleted: s.deletedComputed[id],
		})
		s.indexComputed(i)
		s.touch(p)
		s.indexComputedAt(id, i)

	case ev.GetComputedTerminationDeleted() != nil:
		target := ev.GetComputedTerminationDeleted().GetComputedEventId()
		if s.deletedComputed == nil {
			s.deletedComputed = map[string]bool{}
		}
		s.deletedComputed[target] = true
		s.deleteComputed(target)

	case ev.GetTrainingVedtakRegistered() != nil:
		v := ev.GetTrainingVedtakRegistered()
		tv := TrainingVedtak{
			EventID: id, Scheme: v.GetScheme(), Type: v.GetType(),
			VedtakDate: dateOf(v.GetVedtakDate()), Start: dateOf(v.GetStartDate()), End: dateOf(v.GetEndDate()),
		}
		tv.Kommune = s.eventKommune(ev, tv.Start)
		s.Training.Vedtak = append(s.Training.Vedtak, tv)
		if tv.Type == nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_PERMISJON {
			s.Training.Leave = append(s.Training.Leave, Leave{EventID: id, Period: Period{From: tv.Start, To: tv.End}})
		}
		if tv.Type == nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING &&
			s.Training.Scheme == nirv1.TrainingScheme_TRAINING_SCHEME_UNSPECIFIED &&
			tv.Scheme != nirv1.TrainingScheme_TRAINING_SCHEME_UTVIDET_6A {
			s.Training.Scheme = tv.Scheme
		}

	case ev.GetUtdanningsbakgrunnRegistered() != nil:
		u := ev.GetUtdanningsbakgrunnRegistered()
		vgo := u.GetUpperSecondaryCompleted()
		s.touchVgo(s.Training.Utdanningsbakgrunn, vgo)
		s.Training.Utdanningsbakgrunn = &vgo
		s.Training.UtdanningsbakgrunnDate = dateOf(u.GetDate())

	case ev.GetNorskmalRegistered() != nil:
		n := ev.GetNorskmalRegistered()
		s.Training.Norskmal = &Norskmal{
			EventID: id, Date: dateOf(n.GetDate()),
			Listening: n.GetListening(), Reading: n.GetReading(), Writing: n.GetWriting(), Speaking: n.GetSpeaking(),
		}

	case ev.GetTrainingHoursRegistered() != nil:
		h := ev.GetTrainingHoursRegistered()
		k := HoursKey{Type: h.GetType(), Year: int(h.GetMonth().GetYear()), Month: time.Month(h.GetMonth().GetMonth())}
		k.Kommune = s.hoursKommune(ev, k.Year, k.Month)
		if s.Training.Hours == nil {
			// Made on the first hours event, not by reset: most states folded on the
			// append path have none, and the maps would be two allocations per fold.
			s.Training.Hours, s.Training.AbsenceHours = map[HoursKey]float64{}, map[HoursKey]float64{}
		}
		s.Training.Hours[k] = h.GetHours()
		s.Training.AbsenceHours[k] = h.GetAbsenceHours()

	case ev.GetFullTimeUpperSecondaryRegistered() != nil:
		f := ev.GetFullTimeUpperSecondaryRegistered()
		s.Training.FullTimeUpperSecondary = append(s.Training.FullTimeUpperSecondary,
			Period{From: dateOf(f.GetFromDate()), To: dateOf(f.GetToDate())})

	case ev.GetReceptionParticipationRegistered() != nil:
		r := ev.GetReceptionParticipationRegistered()
		s.Reception = append(s.Reception, ReceptionParticipation{
			EventID: id, Period: Period{From: dateOf(r.GetFromDate()), To: dateOf(r.GetToDate())},
			Activity: r.GetActivity(), Hours: r.GetHours(), Completed: r.GetCompleted(),
		})

	case ev.GetExemptionRegistered() != nil:
		x := ev.GetExemptionRegistered()
		s.Training.Exemptions = append(s.Training.Exemptions, Exemption{
			EventID: id, Type: x.GetType(), LegalBasis: x.GetLegalBasis(), Date: dateOf(x.GetDate()),
		})
	}
}

// LastRegistration is the latest date something was registered for the person, by anyone
// but the regelmotor: the latest RegistrationDate of the events that are not retracted. The
// inactivity rule counts from it (DOMAIN.md Product decisions 5c). It is computed when asked
// (the fold itself never needs it) and kept until the next Apply.
func (s *State) LastRegistration() Date {
	if s.lastRegValid {
		return s.lastReg
	}
	var maxSec int64
	haveSec := false
	var last Date
	for i, le := range s.log {
		ev := le.Event
		if s.Retracted[ev.GetId()] || (len(s.Faults) > 0 && s.faulted(i)) || ev.GetTerminationComputed() != nil || ev.GetActor().GetSubject() == RegelmotorSubject {
			continue
		}
		if ts := ev.GetRecordedAt(); ts != nil && ts.IsValid() {
			if !haveSec || ts.GetSeconds() > maxSec {
				maxSec, haveSec = ts.GetSeconds(), true
			}
			if end := periodEnd(ev); end.After(last) {
				last = end
			}
			continue
		}
		if d := RegistrationDate(ev); d.After(last) {
			last = d
		}
	}
	if haveSec {
		if d := osloDate(maxSec); d.After(last) {
			last = d
		}
	}
	s.lastReg, s.lastRegValid = last, true
	return last
}

// osloDate is the calendar date in Norway (Europe/Oslo, DOMAIN.md 0, calendar.go) of a Unix
// time in seconds: the register's dates are Norwegian dates, so a registration recorded at
// 00:30 in Oslo on 1 January counts on 1 January, not on 31 December as its UTC date would.
func osloDate(sec int64) Date { return Today(time.Unix(sec, 0)) }

// periodEnd is the end of the period an event registers (a tiltak, an absence or leave, a
// permisjon vedtak), zero for other events.
func periodEnd(ev *nirv1.Event) Date {
	switch {
	case ev.GetTiltakRegistered() != nil:
		return dateOf(ev.GetTiltakRegistered().GetToDate())
	case ev.GetAbsenceRegistered() != nil:
		return dateOf(ev.GetAbsenceRegistered().GetToDate())
	case ev.GetProgrammeVedtakRegistered().GetType() == nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_PERMISJON:
		return dateOf(ev.GetProgrammeVedtakRegistered().GetToDate())
	}
	return Date{}
}

// RegistrationDate is the date event ev shows the person active in the register, for the
// inactivity rule (DOMAIN.md Product decisions 5c: «nothing registered for a long time»): the
// later of the day it was recorded (recorded_at, as a date in Norway) and the end of the period it
// registers (a tiltak, an absence or leave), else its effective date when it carries no
// recorded time (an event explained offline). A registration made today about last year thus
// counts today, and a tiltak registered ahead counts until it ends. The regelmotor's own
// events count for nothing (zero).
func RegistrationDate(ev *nirv1.Event) Date {
	if ev.GetTerminationComputed() != nil || ev.GetActor().GetSubject() == RegelmotorSubject {
		return Date{}
	}
	var d Date
	if ts := ev.GetRecordedAt(); ts != nil && ts.IsValid() {
		d = osloDate(ts.GetSeconds())
	} else if eff, ok := EffectiveDate(ev); ok {
		d = eff
	}
	if end := periodEnd(ev); end.After(d) {
		d = end
	}
	return d
}

// addMove inserts m after the moves dated on or before it (so moves of one date stay in
// stream order), and links it and the move after it, the only ones whose From it changes.
// Sorting and linking every move after each one made a person's fold quadratic in its
// moves (BenchmarkFold_Moves: 486–794 ms for 10 000, 1.2–1.9 s in reverse date order).
func (s *State) addMove(m Move) {
	i := sort.Search(len(s.Moves), func(i int) bool { return s.Moves[i].Date.After(m.Date) })
	s.Moves = slices.Insert(s.Moves, i, m)
	s.Moves[i].From = s.Person.SettlementKommune
	if i > 0 {
		s.Moves[i].From = s.Moves[i-1].To
	}
	s.touchMoved(m.Date)
	if i+1 < len(s.Moves) {
		s.Moves[i+1].From = m.To
		s.touchMoved(s.Moves[i+1].Date)
	}
}

// relinkMoves recomputes each move's From kommune from the settlement kommune and the moves
// before it in effective-date order.
func (s *State) relinkMoves() {
	k := s.Person.SettlementKommune
	for i := range s.Moves {
		s.Moves[i].From = k
		k = s.Moves[i].To
	}
}

func (s *State) applyProgrammeVedtak(le LoggedEvent) {
	ev, id := le.Event, le.Event.GetId()
	v := ev.GetProgrammeVedtakRegistered()
	pv := ProgrammeVedtak{
		EventID: id, Type: v.GetType(), VedtakDate: dateOf(v.GetVedtakDate()),
		From: dateOf(v.GetFromDate()), To: dateOf(v.GetToDate()), ExtensionMonths: int(v.GetExtensionMonths()),
	}
	eff := pv.From
	if eff.IsZero() {
		eff = pv.VedtakDate
	}
	pv.Kommune = s.eventKommune(ev, eff)
	switch pv.Type {
	case nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_AVSLAG:
		s.ProgrammeRefusals = append(s.ProgrammeRefusals, pv)
		return
	case nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING:
		i := s.latestIn(pv.Kommune, anyStart, Date{})
		created := false
		if i < 0 || s.Programmes[i].ended() {
			s.addProgramme(&Programme{Kommune: pv.Kommune, Start: pv.From})
			i, created = len(s.Programmes)-1, true
		}
		p := s.Programmes[i]
		if p.Start.IsZero() || (!pv.From.IsZero() && pv.From.Before(p.Start)) {
			s.setStart(i, pv.From)
		}
		if !pv.To.IsZero() {
			p.PlannedEnd = pv.To
		}
		p.Vedtak = append(p.Vedtak, pv)
		s.touch(p)
		if created {
			s.retryPending(p)
		}
		return
	}
	p := s.programmeFor(pv.Kommune, eff)
	if p == nil {
		s.wait(le)
		return
	}
	p.Vedtak = append(p.Vedtak, pv)
	s.touch(p)
	switch pv.Type {
	case nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_STANS:
		p.Stopped = eff
	case nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_PERMISJON:
		p.addLeave(Leave{EventID: id, Period: Period{From: pv.From, To: pv.To}})
	case nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_UTVIDELSE:
		p.Extensions = append(p.Extensions, Extension{EventID: id, VedtakDate: pv.VedtakDate, Months: pv.ExtensionMonths})
	}
}

// isLeaveType reports whether an absence type is approved leave (godkjent permisjon).
func isLeaveType(t nirv1.AbsenceType) bool {
	switch t {
	case nirv1.AbsenceType_ABSENCE_TYPE_PERMISJON_FODSEL_ADOPSJON,
		nirv1.AbsenceType_ABSENCE_TYPE_PERMISJON_SYKDOM,
		nirv1.AbsenceType_ABSENCE_TYPE_PERMISJON_ANNET:
		return true
	}
	return false
}

func (s *State) applyAbsence(le LoggedEvent) {
	ev, id := le.Event, le.Event.GetId()
	a := ev.GetAbsenceRegistered()
	per := Period{From: dateOf(a.GetFromDate()), To: dateOf(a.GetToDate())}
	switch a.GetProgramme() {
	case nirv1.Programme_PROGRAMME_OPPLAERING:
		if isLeaveType(a.GetType()) {
			s.Training.Leave = append(s.Training.Leave, Leave{EventID: id, Period: per, Type: a.GetType()})
		} else {
			s.Training.Absence = append(s.Training.Absence, Absence{EventID: id, Period: per, Type: a.GetType(), Hours: a.GetHours()})
		}
	default: // the introduction programme (also when unspecified)
		p := s.programmeFor(s.eventKommune(ev, per.From), per.From)
		if p == nil {
			s.wait(le)
			return
		}
		if isLeaveType(a.GetType()) {
			p.addLeave(Leave{EventID: id, Period: per, Type: a.GetType()})
		} else {
			p.Absence = append(p.Absence, Absence{EventID: id, Period: per, Type: a.GetType(), Hours: a.GetHours()})
		}
		s.touch(p)
	}
}

// indexAbsorbed makes the events a merge copied known by id (so that they can be retracted
// on the surviving person), nested merges included.
func (s *State) indexAbsorbed(seq uint64, ev *nirv1.Event) {
	for _, e := range ev.GetPersonsMerged().GetAbsorbedEvents() {
		if id := e.GetId(); id != "" {
			if _, known := s.Events[id]; !known {
				s.Events[id] = LoggedEvent{Seq: seq, Event: e}
			}
		}
		s.indexAbsorbed(seq, e)
	}
}

// CopiedBy returns, for the id of an event a merge copied into this person (nested merges
// included), the id of the person's own merge event that holds the copy; "" for an event of
// the person's own stream, or an id the person does not know.
func (s *State) CopiedBy(id string) string {
	if _, ok := s.Events[id]; !ok || id == "" {
		return ""
	}
	for _, le := range s.log {
		if le.Event.GetId() == id {
			return ""
		}
	}
	for _, le := range s.log {
		if copies(le.Event, id) {
			return le.Event.GetId()
		}
	}
	return ""
}

// copies reports whether the merge ev copied the event id, itself or in a merge it copied.
func copies(ev *nirv1.Event, id string) bool {
	for _, e := range ev.GetPersonsMerged().GetAbsorbedEvents() {
		if e.GetId() == id || copies(e, id) {
			return true
		}
	}
	return false
}

// ErasedText is what an erased person's identifying fields read as (DOMAIN.md Product
// decisions 15): in lists, CSV, histories and the web console.
const ErasedText = "slettet"

// UnreadableText is what a person's identifying fields read as where the data key that sealed
// them is damaged or lost on disk (sealing.ErrKeyUnreadable), in the read models: the person
// is not erased, and keeps everything that does not need those fields (the age on the permit
// date is kept in clear), but its national id and birth date cannot be read until the key is
// restored from a backup. A read of that identity through the API answers DataLoss. It is no
// national id (none validates), so it is never taken for one.
const UnreadableText = "uleselig"

// RedactIdentity replaces the identifying fields of ev, and of every event a merge copied into
// it, with ErasedText (DOMAIN.md Product decisions 15): what an erased person's history shows,
// whether or not the reader could still open its sealed fields.
func RedactIdentity(ev *nirv1.Event) { replaceIdentity(ev, ErasedText) }

// UnreadableIdentity replaces the identifying fields of ev, and of every event a merge copied
// into it, with UnreadableText, with no birth date: what a reader that must not stop reads
// where the data key that sealed them does not open (damaged or lost, not destroyed by an
// erasure). The age on the permit date, kept in clear, stays, as RedactIdentity leaves it.
func UnreadableIdentity(ev *nirv1.Event) { replaceIdentity(ev, UnreadableText) }

func replaceIdentity(ev *nirv1.Event, text string) {
	switch {
	case ev.GetPersonRegistered() != nil:
		p := ev.GetPersonRegistered()
		p.Fodselsnummer, p.DNummer, p.DufNummer, p.BirthDate, p.SealedIdentity = text, "", "", nil, nil
	case ev.GetIdentifierAdded() != nil:
		a := ev.GetIdentifierAdded()
		a.NationalId, a.SealedNationalId = text, nil
	case ev.GetPersonsMerged() != nil:
		for _, c := range ev.GetPersonsMerged().GetAbsorbedEvents() {
			replaceIdentity(c, text)
		}
	}
}

// Successor is the person a lookup of this subject leads to: the person an id's claim names,
// or the person this one was merged into; "" for a person of its own (DOMAIN.md Product
// decisions 15).
func (s *State) Successor() string {
	if s.AliasOf != "" {
		return s.AliasOf
	}
	return s.MergedInto
}

// HeldID is a national id a person holds, with its type.
type HeldID struct {
	Type nirv1.IdentifierType
	ID   string
}

// HeldIDs returns the national ids the person holds: those of the registration (fødselsnummer,
// D-nummer, DUF-nummer), of the registrations of persons merged into it, and of every
// IdentifierAdded, in that order, without repeats (DOMAIN.md Product decisions 15). The result
// holds national ids: never log it.
func HeldIDs(s *State) []HeldID {
	var out []HeldID
	if s.Erased {
		return nil // Product decisions 15: nothing identifying is left
	}
	add := func(t nirv1.IdentifierType, id string) {
		if id != "" && !Holds(out, id) {
			out = append(out, HeldID{Type: t, ID: id})
		}
	}
	addReg := func(id string) {
		if le, ok := s.Events[id]; ok {
			p := le.Event.GetPersonRegistered()
			add(nirv1.IdentifierType_IDENTIFIER_TYPE_FODSELSNUMMER, p.GetFodselsnummer())
			add(nirv1.IdentifierType_IDENTIFIER_TYPE_D_NUMMER, p.GetDNummer())
			add(nirv1.IdentifierType_IDENTIFIER_TYPE_DUF_NUMMER, p.GetDufNummer())
		}
	}
	if s.Registered {
		addReg(s.Person.EventID)
	}
	for _, id := range s.mergedRegs {
		addReg(id)
	}
	for _, id := range s.IDEvents {
		if le, ok := s.Events[id]; ok && !s.Retracted[id] {
			a := le.Event.GetIdentifierAdded()
			add(a.GetType(), a.GetNationalId())
		}
	}
	return out
}

// Holds reports whether ids holds the national id id.
func Holds(ids []HeldID, id string) bool {
	return slices.ContainsFunc(ids, func(h HeldID) bool { return h.ID == id })
}

// PreferredID returns the id a person is shown by: a fødselsnummer if the person holds one,
// else a D-nummer, else a DUF-nummer, registered or added, the first of its kind (DOMAIN.md
// 7). It is a national id: never log it.
func PreferredID(s *State) string {
	if s.Erased {
		return ErasedText
	}
	held := HeldIDs(s)
	for _, t := range []nirv1.IdentifierType{nirv1.IdentifierType_IDENTIFIER_TYPE_FODSELSNUMMER,
		nirv1.IdentifierType_IDENTIFIER_TYPE_D_NUMMER, nirv1.IdentifierType_IDENTIFIER_TYPE_DUF_NUMMER} {
		for _, h := range held {
			if h.Type == t {
				return h.ID
			}
		}
	}
	return ""
}
