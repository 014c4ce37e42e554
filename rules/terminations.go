package rules

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"sort"
	"time"

	"google.golang.org/protobuf/proto"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// RegelmotorSubject is the actor subject of every event the regelmotor emits.
const RegelmotorSubject = "regelmotor"

// candidate is a computed termination that a rule would emit for a programme.
type candidate struct {
	rule      nirv1.TerminationRule
	reason    nirv1.TerminationReason
	date      Date
	version   Version
	causation string
	// wait is how many days after its date the termination becomes due (0: on its date).
	wait int
}

// alreadyComputed reports whether the person's history holds a computed termination for the
// programme and rule: in effect, deleted by the kommune or retracted. Such a termination is
// never computed again (DOMAIN.md Product decisions 5), even when its date would now differ.
// One that lapsed undeleted (its trigger no longer holds, Termination.Lapsed) does not count:
// a later trigger computes a new one, with its own date and so its own id.
func (s *State) alreadyComputed(p *Programme, rule nirv1.TerminationRule) bool {
	var lapsed []string
	for _, t := range p.ComputedTerminations {
		if t.Rule != rule {
			continue
		}
		if t.Lapsed && !t.Deleted {
			lapsed = append(lapsed, t.EventID)
			continue
		}
		return true
	}
	for _, le := range s.log {
		tc := le.Event.GetTerminationComputed()
		if tc == nil || tc.GetRule() != rule || dateOf(tc.GetProgrammeStart()) != p.Start || slices.Contains(lapsed, le.Event.GetId()) {
			continue
		}
		if SameKommune(le.Event.GetKommune(), p.Kommune) {
			return true
		}
	}
	return false
}

// candidates returns the computed terminations the rules would emit for p, earliest first,
// ignoring whether they are due yet. A zero now means "any time": an open-ended leave then
// makes the latest end unknown.
func (s *State) candidates(p *Programme, now Date) []candidate {
	if len(p.RegisteredTerminations) > 0 || len(p.EffectiveComputed()) > 0 || p.Start.IsZero() {
		return nil
	}
	end, endV, _, _, endKnown := ProgrammeLatestEnd(s, p, now)
	// Stopped by a stans when the stans, not the programme time, ends it (StansReasonDue).
	stopped := endKnown && !p.Stopped.IsZero() && end == p.Stopped && endV.Rule == RuleTerminationStans
	var out []candidate
	// 5b: FLYTTET at the move date, for an IntroL participant with an active programme who
	// moves out of the programme's kommune (DOMAIN.md Product decisions 5b, 7.4).
	for _, m := range s.Moves {
		v := pick(terminationMovedVersions, m.Date)
		if v.IntroLOnly && s.Law != nirv1.Law_LAW_INTROL {
			break
		}
		// A move between two numbers of one kommune (3001 → 3101 Halden, 1507 → 1580 Haram)
		// is a renumbering, not a move (Product decisions 13).
		if m.Date.IsZero() || !SameKommune(m.From, p.Kommune) || SameKommune(m.To, p.Kommune) || m.Date.Before(p.Start) {
			continue
		}
		if !p.Stopped.IsZero() && m.Date.After(p.Stopped) {
			continue // stopped by vedtak before the move
		}
		if endKnown && m.Date.After(end) {
			continue // the programme had already run out: 5a applies instead
		}
		if s.alreadyComputed(p, nirv1.TerminationRule_TERMINATION_RULE_FLYTTET) {
			break
		}
		out = append(out, candidate{
			rule: nirv1.TerminationRule_TERMINATION_RULE_FLYTTET, reason: nirv1.TerminationReason_TERMINATION_REASON_FLYTTET,
			date: m.Date, version: v.Version, causation: m.EventID,
		})
		break
	}
	// 5c: inactivity. Nothing registered for the person for the rule version's threshold while
	// the programme is open (not stopped, not on open-ended leave): IKKE_REGISTRERT dated on
	// the day the threshold is reached, due after the notice period in which the person list
	// shows the person (DOMAIN.md Product decisions 5c; the threshold awaits IMDi).
	if from, v, ok := InactiveFrom(s, p); ok && (!endKnown || from.Before(end)) &&
		!s.alreadyComputed(p, nirv1.TerminationRule_TERMINATION_RULE_INAKTIV) {
		out = append(out, candidate{
			rule: nirv1.TerminationRule_TERMINATION_RULE_INAKTIV, reason: nirv1.TerminationReason_TERMINATION_REASON_IKKE_REGISTRERT,
			date: from, version: v.Version, wait: v.Days,
		})
	}
	// Product decisions 11: a stans ended the programme; IKKE_REGISTRERT dated on the stans
	// date, due when 30 days have passed without an avslutningsårsak.
	if stopped {
		if !s.alreadyComputed(p, nirv1.TerminationRule_TERMINATION_RULE_STANS) {
			v := pick(terminationStansVersions, p.Stopped)
			out = append(out, candidate{
				rule: nirv1.TerminationRule_TERMINATION_RULE_STANS, reason: nirv1.TerminationReason_TERMINATION_REASON_IKKE_REGISTRERT,
				date: p.Stopped, version: v.Version, causation: stansEventID(p), wait: v.Days,
			})
		}
		endKnown = false // the stans, not the latest end, ends this programme
	}
	// 5a: IKKE_REGISTRERT at the latest end date, once it has passed (DOMAIN.md Product
	// decisions 5a; covid programmes beyond 3 years under IntroL, DOMAIN.md 1.6).
	if endKnown && !s.alreadyComputed(p, nirv1.TerminationRule_TERMINATION_RULE_FRIST_UTLOPT) {
		v := pick(terminationDeadlineVersions, end)
		causation := ""
		if len(p.Vedtak) > 0 {
			causation = p.Vedtak[0].EventID
		}
		out = append(out, candidate{
			rule: nirv1.TerminationRule_TERMINATION_RULE_FRIST_UTLOPT, reason: nirv1.TerminationReason_TERMINATION_REASON_IKKE_REGISTRERT,
			date: end, version: v.Version, causation: causation,
		})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].dueDate().Before(out[j].dueDate()) })
	return out
}

// InactiveFrom returns the day programme p counts as inactive (DOMAIN.md Product decisions
// 5c): the rule version's threshold (12 months) after the later of the programme's start and
// the person's last registration, with the version applied. false when the programme is not
// open: not started, terminated, stopped by a stans, or on leave without an end date. The
// person list shows such persons under «ingen registreringer siste 12 måneder» from that day;
// the regelmotor computes the termination the version's Days later.
func InactiveFrom(s *State, p *Programme) (Date, terminationVersion, bool) {
	if p.Start.IsZero() || p.Termination != nil || !p.Stopped.IsZero() {
		return Date{}, terminationVersion{}, false
	}
	for _, l := range p.Leave {
		if l.To.IsZero() {
			return Date{}, terminationVersion{}, false
		}
	}
	last := s.LastRegistration()
	if last.Before(p.Start) {
		last = p.Start
	}
	v := pick(terminationInactiveVersions, last)
	return last.AddMonths(v.Months), v, true
}

// stansEventID returns the id of the programme's stans vedtak (the latest).
func stansEventID(p *Programme) string {
	id := ""
	for _, v := range p.Vedtak {
		if v.Type == nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_STANS {
			id = v.EventID
		}
	}
	return id
}

// dueDate is the first date at which c is due: the move date for FLYTTET, the day after the
// latest end date for FRIST_UTLOPT ("when that date has passed"), the day after the 30 days
// for STANS (Product decisions 11: "within 30 days of the stans"), and the threshold date plus
// the notice period for INAKTIV.
func (c candidate) dueDate() Date {
	switch c.rule {
	case nirv1.TerminationRule_TERMINATION_RULE_FRIST_UTLOPT:
		return c.date.AddDays(1)
	case nirv1.TerminationRule_TERMINATION_RULE_STANS:
		return c.date.AddDays(c.wait + 1)
	}
	return c.date.AddDays(c.wait)
}

// DueTerminations returns the computed terminations due for the person at now (DOMAIN.md
// Product decisions 5), as ready-to-append events: payload TerminationComputed, actor
// {subject "regelmotor", role SYSTEM}, and a deterministic id (TerminationID) so that the same
// termination is never stored twice. At most one per programme: the earliest due. A programme
// with a registered termination, or with an undeleted computed one, gets none; a computed
// termination deleted by the kommune is never computed again for the same programme and rule.
// recorded_at is left for nird to set.
func DueTerminations(s *State, now Date) []*nirv1.Event {
	var out []*nirv1.Event
	for _, p := range s.Programmes {
		for _, c := range s.candidates(p, now) {
			if c.dueDate().After(now) {
				continue
			}
			out = append(out, s.terminationEvent(p, c))
			break
		}
	}
	return out
}

// ComputedIsDue reports whether ev, a TerminationComputed, is one the rules compute for s on
// now: the same id, kommune and payload as a termination due then for one of the person's
// programmes (any of them due, not only the one DueTerminations picks, so that a day's
// difference between the regelmotor's clock and the checker's does not matter). The
// regelmotor computes from the read models, which may lag the stream; the append path
// judges the event again on the person's history as stored (DOMAIN.md Product decisions 5).
func ComputedIsDue(s *State, ev *nirv1.Event, now Date) bool {
	want := ev.GetTerminationComputed()
	if want == nil {
		return false
	}
	if !s.lastRegValid {
		// The candidates keep LastRegistration in the state; a check leaves s as it was
		// (the append path checks states its cache lends), so they keep it in a shallow
		// copy, which they change nothing else of. A deep copy for each event made a
		// regelmotor append of 1 000 terminations for a person of 2 000 programmes take
		// 7-29 s under load (BenchmarkCheck_ComputedTerminations).
		c := *s
		s = &c
	}
	// Only a programme of the event's kommune and start can compute it: the others'
	// candidates, each with its id's SHA-256, are not looked at.
	start := dateOf(want.GetProgrammeStart())
	for _, p := range s.Programmes {
		if p.Kommune != ev.GetKommune() || p.Start != start {
			continue
		}
		for _, c := range s.candidates(p, now) {
			if c.dueDate().After(now) {
				continue
			}
			got := s.terminationEvent(p, c)
			if got.GetId() == ev.GetId() && got.GetKommune() == ev.GetKommune() && proto.Equal(got.GetTerminationComputed(), want) {
				return true
			}
		}
	}
	return false
}

// NextDue returns the earliest date at which a computed termination becomes due for the person
// if nothing else is registered (for the regelmotor worker to schedule a wake-up): for that
// date d, DueTerminations(s, d) is not empty. It may lie in the past when a termination is
// already due. false means none can become due (every programme is terminated, or lacks what
// its end date needs, such as a sluttmål, or is on open-ended leave).
func NextDue(s *State) (Date, bool) {
	var best Date
	found := false
	for _, p := range s.Programmes {
		for _, c := range s.candidates(p, Date{}) {
			if due := c.dueDate(); !found || due.Before(best) {
				best, found = due, true
			}
		}
	}
	return best, found
}

func (s *State) terminationEvent(p *Programme, c candidate) *nirv1.Event {
	return &nirv1.Event{
		Id:          TerminationID(s.PersonKey, p.Kommune, p.Start, c.rule, c.date),
		PersonKey:   s.PersonKey,
		Kommune:     p.Kommune,
		Actor:       &nirv1.Actor{Subject: RegelmotorSubject, Role: nirv1.ActorRole_ACTOR_ROLE_SYSTEM},
		CausationId: c.causation,
		Payload: &nirv1.Event_TerminationComputed{TerminationComputed: &nirv1.TerminationComputed{
			Rule: c.rule, Reason: c.reason, Date: c.date.Proto(), ProgrammeStart: p.Start.Proto(), RuleVersion: c.version.ID,
		}},
	}
}

// crockford is the ULID alphabet (Crockford's base32).
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// TerminationID returns the deterministic event id of a computed termination: a valid 26-char
// ULID whose time part is midnight UTC of the termination date and whose 80-bit entropy is the
// start of SHA-256(person key, kommune, programme start, rule). The same termination always
// gets the same id, so a re-run of the regelmotor stores nothing twice.
func TerminationID(personKey, kommune string, programmeStart Date, rule nirv1.TerminationRule, date Date) string {
	h := sha256.New()
	for _, part := range []string{personKey, kommune, programmeStart.String(), rule.String()} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		h.Write(n[:])
		h.Write([]byte(part))
	}
	sum := h.Sum(nil)
	var id [16]byte
	// The ULID time is the termination's date at midnight UTC, which the append path keeps
	// from kommuner (ingest's idReserved). A date before 1970-01-02 (NIR-R030 lets facts from
	// 1950 through) or none gives 1970-01-02: time 0 is not kept, since nirctl import derives
	// ids of time 0 (review, 2026-12-07: a programme started in 1955 got a termination id of
	// time 0, which a kommune could have stored an event under first).
	const day = int64(24 * time.Hour / time.Millisecond)
	ms := int64(0)
	if date.Valid() {
		ms = date.Time().UnixMilli()
	}
	if ms < day {
		ms = day
	}
	var t [8]byte
	binary.BigEndian.PutUint64(t[:], uint64(ms)&(1<<48-1))
	copy(id[:6], t[2:])
	copy(id[6:], sum[:10])
	return encodeULID(id)
}

// encodeULID writes 128 bits as 26 Crockford base32 characters (the first carries 3 bits).
func encodeULID(id [16]byte) string {
	var out [26]byte
	// Treat the id as a 130-bit number with two leading zero bits and take 5 bits at a time.
	bit := func(i int) byte { // i-th bit of the 130-bit number, from the most significant
		i -= 2
		if i < 0 {
			return 0
		}
		return (id[i/8] >> (7 - uint(i%8))) & 1
	}
	for c := 0; c < 26; c++ {
		var v byte
		for b := 0; b < 5; b++ {
			v = v<<1 | bit(c*5+b)
		}
		out[c] = crockford[v]
	}
	return string(out[:])
}
