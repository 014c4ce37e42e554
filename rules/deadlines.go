package rules

import (
	"fmt"
	"strings"
	"time"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// DueSoonDays is the warning period: a deadline this many days away or closer is DUE_SOON.
const DueSoonDays = 30

// Deadline is one deadline (frist) and its status at a date.
type Deadline struct {
	Kind  nirv1.DeadlineKind
	State nirv1.DeadlineState
	// Start is the date the deadline runs from; Date the deadline itself. Both are zero when
	// the deadline cannot be computed.
	Start, Date Date
	// DaysLeft from now to Date (negative when passed).
	DaysLeft int
	// Kommune and ProgrammeStart identify the programme of a programme deadline.
	Kommune        string
	ProgrammeStart Date
	// DataYear of an annual reporting deadline.
	DataYear int
	// ReasonNB and ReasonEN explain the status (for example «mangler utdanningsbakgrunn»).
	ReasonNB, ReasonEN     string
	Rule, Section, Version string
	// CoverageNB and CoverageEN say when the version was applied to a date it does not cover
	// (a date before the rule's first version): the oldest version known was applied.
	CoverageNB, CoverageEN string
}

// Status is what Evaluate derives for a person at a date.
type Status struct {
	Law        nirv1.Law
	LawVersion string
	Schemes    []SchemeResult
	Deadlines  []Deadline
	// Hours are the registered training hours against their goals (DOMAIN.md 3.4).
	Hours []HoursGoal
}

// Evaluate derives the person's law, schemes and deadlines with their status at now
// (DOMAIN.md 5: kategori, ordninger and frister per person). Deadlines that do not apply to the
// person (for example a norsk deadline under introduksjonsloven, DOMAIN.md 9.6 [G], or under
// plikt without rett) are left out; those that apply but lack data are CANNOT_COMPUTE with the
// reason. The annual reporting deadline is always present.
func Evaluate(s *State, now Date) Status {
	st := Status{Law: s.Law, LawVersion: s.LawVersion}
	if s.Registered {
		intro, training := IntroScheme(s.Person, s.Law), TrainingScheme(s.Person, s.Law)
		st.Schemes = []SchemeResult{intro, training}
		if d, ok := NorskDeadline(s, now); ok {
			st.Deadlines = append(st.Deadlines, d)
		}
		if training.Scheme != nirv1.Scheme_SCHEME_NONE {
			st.Deadlines = append(st.Deadlines, trainingStartDeadline(s, now))
		}
		if programmeStartApplies(intro.Scheme) {
			st.Deadlines = append(st.Deadlines, programmeStartDeadline(s, now))
		}
		for _, p := range s.Programmes {
			st.Deadlines = append(st.Deadlines, ProgrammeEnd(s, p, now))
		}
		st.Hours = HoursGoals(s, now)
	}
	st.Deadlines = append(st.Deadlines, ReportingDeadlineAt(now))
	return st
}

// classify sets State and DaysLeft of a deadline that is not completed.
func (d *Deadline) classify(now Date) {
	d.DaysLeft = now.DaysUntil(d.Date)
	switch {
	case d.DaysLeft < 0:
		d.State = nirv1.DeadlineState_DEADLINE_STATE_OVERDUE
		if d.ReasonNB == "" {
			d.ReasonNB = fmt.Sprintf("fristen %s er passert", d.Date)
			d.ReasonEN = fmt.Sprintf("the deadline %s has passed", d.Date)
		}
	case d.DaysLeft <= DueSoonDays:
		d.State = nirv1.DeadlineState_DEADLINE_STATE_DUE_SOON
		if d.ReasonNB == "" {
			d.ReasonNB = fmt.Sprintf("fristen %s er om %d dager", d.Date, d.DaysLeft)
			d.ReasonEN = fmt.Sprintf("the deadline %s is in %d days", d.Date, d.DaysLeft)
		}
	default:
		d.State = nirv1.DeadlineState_DEADLINE_STATE_OK
	}
}

func (d *Deadline) cannot(nb, en string) Deadline {
	d.State = nirv1.DeadlineState_DEADLINE_STATE_CANNOT_COMPUTE
	d.Start, d.Date, d.DaysLeft = Date{}, Date{}, 0
	d.ReasonNB, d.ReasonEN = nb, en
	return *d
}

func (d *Deadline) completed(nb, en string) Deadline {
	d.State = nirv1.DeadlineState_DEADLINE_STATE_COMPLETED
	d.ReasonNB, d.ReasonEN = nb, en
	return *d
}

// setVersion names the rule version applied to the date on (the date the version was
// selected by), with a note when the version does not cover it.
func (d *Deadline) setVersion(v Version, on Date) {
	d.Rule, d.Section, d.Version = v.Rule, v.Section, v.ID
	d.CoverageNB, d.CoverageEN = coverage(v, on)
}

// leaveDays returns the number of days of approved leave on or after from that extend a
// deadline of base, overlapping periods counted once. Leave extends a deadline that is still
// running (DOMAIN.md 3.2: approved leave is added to the deadline): a leave counts when it
// begins on or before the deadline as extended by the leave before it, and a leave that
// begins after the deadline has passed revives nothing. A zero base puts no such limit. An
// open-ended leave counts up to now (it keeps extending the deadline while it lasts); with a
// zero now it counts nothing and open is true, when it began in time.
func leaveDays(leaves []Leave, from, base, now Date) (days int, open bool) {
	return newLeaveIndex(leaves).days(from, base, now)
}

// roseDate is when rett og plikt to training arose: the permit date, or the arrival date when
// the permit was granted before entry (DOMAIN.md 1.3).
func roseDate(p Person) Date {
	if !p.ArrivalDate.IsZero() && p.ArrivalDate.After(p.PermitDate) {
		return p.ArrivalDate
	}
	return p.PermitDate
}

// firstOf returns the earliest date of the offers or demands for a programme.
func firstOf(os []Offer, prog nirv1.Programme) Date {
	var first Date
	for _, o := range os {
		if o.Programme != prog || o.Date.IsZero() {
			continue
		}
		if first.IsZero() || o.Date.Before(first) {
			first = o.Date
		}
	}
	return first
}

func hasExemption(s *State, t nirv1.ExemptionType) (Exemption, bool) {
	for _, x := range s.Training.Exemptions {
		if x.Type == t {
			return x, true
		}
	}
	return Exemption{}, false
}

// NorskDeadline computes the gjennomføringsfrist for opplæring i norsk (DOMAIN.md 3.2, Product
// decisions 3) and reports whether one applies to the person:
//
//   - IL rett og plikt: start + 18 months with vgo from before, else 36 months, plus approved
//     leave. The start is the date rett og plikt arose (version 2021-01-01), or the date of
//     tilbud om oppstart (version 2023-08-01); the version is selected by the date of the first
//     training offer, else by the date rett og plikt arose. Without utdanningsbakgrunn the
//     deadline cannot be computed («mangler utdanningsbakgrunn»).
//   - 6A rett: start of the first 6A training vedtak + 12 months + leave, plus 6 months per
//     utvidet vedtak (at most 1 with vgo, 4 without).
//   - IntroL and plikt without rett: no deadline (not applicable).
//
// An open-ended leave counts up to now; with a zero now (the read models, which compute
// without a clock) it makes the deadline CANNOT_COMPUTE («permisjon uten sluttdato»), as it
// makes the programme end (ProgrammeLatestEnd).
func NorskDeadline(s *State, now Date) (Deadline, bool) {
	d := Deadline{Kind: nirv1.DeadlineKind_DEADLINE_KIND_NORSK}
	ts := TrainingScheme(s.Person, s.Law)
	// openLeave: approved leave without an end date has begun (by now, or at all when now is
	// zero).
	openLeave := false
	switch {
	case s.Law == nirv1.Law_LAW_IL && ts.Scheme == nirv1.Scheme_SCHEME_RETT_OG_PLIKT:
		arose := roseDate(s.Person)
		offer := firstOf(s.Offers, nirv1.Programme_PROGRAMME_OPPLAERING)
		sel := arose
		if !offer.IsZero() {
			sel = offer
		}
		v := pick(norskILVersions, sel)
		d.setVersion(v.Version, sel)
		d.Start = arose
		if v.StartFromOffer {
			if offer.IsZero() {
				return d.cannot("mangler tilbud om oppstart", "no offer of training start (tilbud om oppstart) registered"), true
			}
			d.Start = offer
		}
		if s.Training.Utdanningsbakgrunn == nil {
			return d.cannot("mangler utdanningsbakgrunn", "utdanningsbakgrunn (upper secondary from before, yes/no) not registered"), true
		}
		months := v.MonthsNo
		if *s.Training.Utdanningsbakgrunn {
			months = v.MonthsVgo
		}
		leave, open := leaveDays(s.Training.Leave, d.Start, d.Start.AddMonths(months), now)
		openLeave = open
		d.Date = d.Start.AddMonths(months).AddDays(leave)
		if leave > 0 {
			d.ReasonNB = fmt.Sprintf("%d måneder fra %s, forlenget med %d dager permisjon", months, d.Start, leave)
			d.ReasonEN = fmt.Sprintf("%d months from %s, extended by %d days of leave", months, d.Start, leave)
		}

	case s.Law == nirv1.Law_LAW_IL_6A && ts.Scheme == nirv1.Scheme_SCHEME_RETT:
		var first *TrainingVedtak
		for i := range s.Training.Vedtak {
			tv := &s.Training.Vedtak[i]
			if tv.Type == nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING &&
				tv.Scheme == nirv1.TrainingScheme_TRAINING_SCHEME_RETT_6A && !tv.Start.IsZero() &&
				(first == nil || tv.Start.Before(first.Start)) {
				first = tv
			}
		}
		sel := s.Person.PermitDate
		if first != nil {
			sel = first.Start
		}
		v := pick(norsk6AVersions, sel)
		d.setVersion(v.Version, sel)
		if first == nil {
			return d.cannot("mangler vedtak om opplæring (Rett til norsk)", "no training vedtak under chapter 6A (Rett til norsk) registered"), true
		}
		d.Start = first.Start
		n, months, uv, uvOn := utvidet6A(s)
		// Leave during an utvidet vedtak's months extends the deadline too: it still runs.
		leave, open := leaveDays(s.Training.Leave, d.Start, d.Start.AddMonths(v.Months+months), now)
		openLeave = open
		d.Date = d.Start.AddMonths(v.Months).AddDays(leave)
		if n > 0 {
			d.Date = d.Date.AddMonths(months)
			d.setVersion(uv, uvOn)
		}
		d.ReasonNB = fmt.Sprintf("%d måneder fra første vedtak %s, %d dager permisjon, %d vedtak om utvidet opplæring", v.Months, d.Start, leave, n)
		d.ReasonEN = fmt.Sprintf("%d months from the first vedtak %s, %d days of leave, %d utvidet vedtak", v.Months, d.Start, leave, n)

	default:
		return d, false
	}
	d.DaysLeft = now.DaysUntil(d.Date)
	if x, ok := hasExemption(s, nirv1.ExemptionType_EXEMPTION_TYPE_OPPLAERING); ok {
		return d.completed(fmt.Sprintf("fritak fra opplæringen %s", x.Date), fmt.Sprintf("exempted from training %s", x.Date)), true
	}
	if openLeave && now.IsZero() {
		// DOMAIN.md 3.2: approved leave is added to the deadline. Without a date to count an
		// open-ended leave to (the read models compute without a clock), the deadline is not
		// known: the date without the leave would show a person on leave as overdue. As for
		// the programme end (ProgrammeLatestEnd).
		return d.cannot("permisjon uten sluttdato", "open-ended leave"), true
	}
	reason, reasonEN := d.ReasonNB, d.ReasonEN
	d.classify(now)
	if d.State == nirv1.DeadlineState_DEADLINE_STATE_OK {
		d.ReasonNB, d.ReasonEN = reason, reasonEN
	}
	return d, true
}

// utvidet6A counts the utvidet 6A vedtak that extend the deadline, at most the number the
// version allows (1 with vgo from before, 4 without, the smaller when utdanningsbakgrunn is
// unknown), and returns the months they add, the version applied and the date it was selected
// by (DOMAIN.md 3.2).
func utvidet6A(s *State) (n, months int, v Version, on Date) {
	for _, tv := range s.Training.Vedtak {
		if tv.Type != nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING || tv.Scheme != nirv1.TrainingScheme_TRAINING_SCHEME_UTVIDET_6A {
			continue
		}
		when := tv.VedtakDate
		if when.IsZero() {
			when = tv.Start
		}
		uv := pick(norsk6AVersions, when)
		if uv.UtvidetMonths == 0 || n >= utvidetMax(s, uv) {
			continue
		}
		n++
		months += uv.UtvidetMonths
		v, on = uv.Version, when
	}
	return n, months, v, on
}

func utvidetMax(s *State, v norsk6AVersion) int {
	if s.Training.Utdanningsbakgrunn == nil || *s.Training.Utdanningsbakgrunn {
		return v.UtvidetMaxVgo
	}
	return v.UtvidetMaxNo
}

// ProgrammeLatestEnd computes a programme's latest end date (DOMAIN.md 2.2, Product decisions
// 4): IL (and 6A, which has no own rule, DOMAIN.md 1.5 [G]) = start + the sluttmål's ordinary
// maximum + registered extension (at most the sluttmål's extension); IntroL = start + 2 years +
// extension up to 1 year, at most 3 years (what NIR holds, DOMAIN.md 1.6). Approved leave is
// not programme time, so it is added (DOMAIN.md 2.6; Product decisions 12); an open-ended leave
// counts to now, and with a zero now the end is not computable (ok false). A stans vedtak ends
// the programme on its date (Product decisions 11): the end is the stans date when that comes
// first, whatever else is known, and the version is the stans rule's. ok is false with a reason
// when the end cannot be computed.
func ProgrammeLatestEnd(s *State, p *Programme, now Date) (end Date, v Version, nb, en string, ok bool) {
	end, v, nb, en, ok = programmeLatestEnd(s, p, now)
	if st := p.Stopped; !st.IsZero() && !p.Start.IsZero() && (!ok || st.Before(end)) {
		return st, pick(terminationStansVersions, st).Version, "", "", true
	}
	return end, v, nb, en, ok
}

func programmeLatestEnd(s *State, p *Programme, now Date) (end Date, v Version, nb, en string, ok bool) {
	return programmeLatestEndBy(s, p, now, true)
}

// programmeLatestEndBy is programmeLatestEnd, which with vgo false ignores whether the
// utdanningsbakgrunn contradicts the sluttmål (sluttmalContradiction): what it reads of the
// utdanningsbakgrunn (computedHolds).
func programmeLatestEndBy(s *State, p *Programme, now Date, vgo bool) (end Date, v Version, nb, en string, ok bool) {
	pv := pick(programmeEndVersions, p.Start)
	v = pv.Version
	if p.Start.IsZero() {
		return Date{}, v, "mangler startdato for programmet", "programme start date missing", false
	}
	ext := 0
	for _, e := range p.Extensions {
		if e.Months > 0 {
			ext += e.Months
		}
	}
	var months int
	switch s.Law {
	case nirv1.Law_LAW_INTROL:
		months = pv.IntroLMonths + min(ext, pv.IntroLMaxExtension)
		months = min(months, pv.IntroLCap)
	case nirv1.Law_LAW_IL, nirv1.Law_LAW_IL_6A:
		lim, known := sluttmalLimits[int32(p.Sluttmal)]
		if !known {
			return Date{}, v, "mangler sluttmål", "sluttmål not registered", false
		}
		if _, _, bad := sluttmalContradiction(s, p.Sluttmal); vgo && bad {
			// Product decisions 10: registered or corrected after the sluttmål, the
			// utdanningsbakgrunn contradicts it; nothing is computed until one is corrected.
			m := contradictionText[int32(p.Sluttmal)]
			return Date{}, sluttmalGroupVersion, m[2], m[3], false
		}
		months = lim.Months + min(ext, lim.Extension)
	default:
		return Date{}, v, "loven kan ikke avgjøres (mangler dato for oppholdstillatelse)", "the law cannot be decided (permit date missing)", false
	}
	end = p.Start.AddMonths(months)
	if pv.LeaveExtends {
		leave, open := p.leaveIndex().days(p.Start, end, now)
		if open && now.IsZero() {
			return Date{}, v, "permisjon uten sluttdato", "open-ended leave", false
		}
		end = end.AddDays(leave)
	}
	return end, v, "", "", true
}

// StansReasonDue returns the date by which the avslutningsårsak of a programme stopped by a
// stans vedtak must be registered (the stans date + 30 days, Product decisions 11), and
// whether the programme ended by its stans (false when it was not stopped, or had run out
// before the stans date).
func StansReasonDue(s *State, p *Programme) (Date, bool) {
	end, v, _, _, ok := ProgrammeLatestEnd(s, p, Date{})
	if !ok || p.Stopped.IsZero() || end != p.Stopped || v.Rule != RuleTerminationStans {
		return Date{}, false
	}
	return p.Stopped.AddDays(pick(terminationStansVersions, p.Stopped).Days), true
}

// ProgrammeEnd is the programme's latest end date as a deadline at now: COMPLETED when the
// programme has an effective termination, else OK, DUE_SOON or OVERDUE. A programme stopped
// by a stans vedtak ends on the stans date; from then the deadline is the registration of its
// avslutningsårsak within 30 days (DUE_SOON), OVERDUE after (Product decisions 11).
func ProgrammeEnd(s *State, p *Programme, now Date) Deadline {
	d := Deadline{Kind: nirv1.DeadlineKind_DEADLINE_KIND_PROGRAMME_END, Kommune: p.Kommune, ProgrammeStart: p.Start, Start: p.Start}
	end, v, nb, en, ok := ProgrammeLatestEnd(s, p, now)
	d.setVersion(v, p.Start)
	if !ok {
		if t := p.Termination; t != nil {
			return d.completed(terminationText(t))
		}
		return d.cannot(nb, en)
	}
	d.Date = end
	d.DaysLeft = now.DaysUntil(end)
	if t := p.Termination; t != nil {
		return d.completed(terminationText(t))
	}
	if due, stopped := StansReasonDue(s, p); stopped {
		d.setVersion(v, end)
		switch {
		case now.Before(end):
			d.ReasonNB = fmt.Sprintf("programmet stanses %s", end)
			d.ReasonEN = fmt.Sprintf("the programme stops on %s", end)
			reason, reasonEN := d.ReasonNB, d.ReasonEN
			d.classify(now)
			d.ReasonNB, d.ReasonEN = reason, reasonEN
		case !now.After(due):
			d.State = nirv1.DeadlineState_DEADLINE_STATE_DUE_SOON
			d.ReasonNB = fmt.Sprintf("programmet er stanset %s; avslutningsårsak må registreres innen %s", end, due)
			d.ReasonEN = fmt.Sprintf("the programme was stopped on %s; register the avslutningsårsak by %s", end, due)
		default:
			d.State = nirv1.DeadlineState_DEADLINE_STATE_OVERDUE
			d.ReasonNB = fmt.Sprintf("programmet er stanset %s; avslutningsårsak er ikke registrert innen %s", end, due)
			d.ReasonEN = fmt.Sprintf("the programme was stopped on %s; no avslutningsårsak registered by %s", end, due)
		}
		return d
	}
	d.classify(now)
	return d
}

func terminationText(t *Termination) (string, string) {
	if t.Computed {
		return fmt.Sprintf("avsluttet av regelmotoren %s (%s)", t.Date, reasonName(t.Reason)),
			fmt.Sprintf("terminated by the regelmotor %s (%s)", t.Date, reasonName(t.Reason))
	}
	return fmt.Sprintf("avsluttet %s (%s)", t.Date, reasonName(t.Reason)),
		fmt.Sprintf("terminated %s (%s)", t.Date, reasonName(t.Reason))
}

func reasonName(r nirv1.TerminationReason) string {
	if r == nirv1.TerminationReason_TERMINATION_REASON_IKKE_REGISTRERT {
		return "Avslutningsårsak ikke registrert"
	}
	return strings.TrimPrefix(r.String(), "TERMINATION_REASON_")
}

// startDeadline computes a "started within N months" deadline from base = max(settlement
// date, first krav) and the first start.
// The version is selected by that base date.
func startDeadline(d Deadline, table []startVersion, settled, demand, started Date, now Date) Deadline {
	base := startBase(settled, demand)
	v := pick(table, base)
	d.setVersion(v.Version, base)
	if base.IsZero() {
		return d.cannot("mangler bosettingsdato og krav", "settlement date and demand (krav) missing")
	}
	d.Start, d.Date = base, base.AddMonths(v.Months)
	d.DaysLeft = now.DaysUntil(d.Date)
	switch StartState(d.Date, started) {
	case nirv1.DeadlineState_DEADLINE_STATE_OVERDUE:
		d.State = nirv1.DeadlineState_DEADLINE_STATE_OVERDUE
		d.ReasonNB = fmt.Sprintf("startet %s, etter fristen %s", started, d.Date)
		d.ReasonEN = fmt.Sprintf("started %s, after the deadline %s", started, d.Date)
		return d
	case nirv1.DeadlineState_DEADLINE_STATE_COMPLETED:
		return d.completed(fmt.Sprintf("startet %s, innen fristen", started), fmt.Sprintf("started %s, in time", started))
	}
	d.classify(now)
	return d
}

// StartState is the state of a "start within N months" deadline due on due whose first start
// is started (zero while not started), as far as it does not depend on the date it is read on:
// COMPLETED when started on or before due, OVERDUE when started after it (the start was late,
// DOMAIN.md 1.2, 3.5: it stays overdue), and UNSPECIFIED while not started, when the state is
// the date's (OK, DUE_SOON or OVERDUE on the date read). Evaluate and the read models (the
// person list, its filters and CSV) both take it from here.
func StartState(due, started Date) nirv1.DeadlineState {
	switch {
	case started.IsZero():
		return nirv1.DeadlineState_DEADLINE_STATE_UNSPECIFIED
	case started.After(due):
		return nirv1.DeadlineState_DEADLINE_STATE_OVERDUE
	}
	return nirv1.DeadlineState_DEADLINE_STATE_COMPLETED
}

// trainingStartDeadline: the first registered training hours or training vedtak start on or
// before max(settlement date in the kommune, krav date) + 3 months (DOMAIN.md 3.5, Product
// decisions 6); see TrainingStartDue.
func trainingStartDeadline(s *State, now Date) Deadline {
	settled, demand, started := trainingStartBase(s)
	d := Deadline{Kind: nirv1.DeadlineKind_DEADLINE_KIND_TRAINING_START}
	return startDeadline(d, trainingStartVersions, settled, demand, started, now)
}

// TrainingStartDue returns the date training must have started by (zero when neither a
// settlement date nor a krav is known) and the first start (first registered hours or
// training vedtak start; zero while training has not started): the "start within 3 months"
// rule of DOMAIN.md 3.5 and Product decisions 6, the one definition the deadline status and
// the statistics share. "Settlement in the kommune" is the settlement date, or for a person
// who moved, the date of the move into the kommune where training started (the current one
// while it has not).
func TrainingStartDue(s *State) (due, started Date) {
	settled, demand, started := trainingStartBase(s)
	base := startBase(settled, demand)
	if base.IsZero() {
		return Date{}, started
	}
	return base.AddMonths(pick(trainingStartVersions, base).Months), started
}

// startBase is the date a start deadline counts from: the later of the settlement and the krav.
func startBase(settled, demand Date) Date {
	if demand.After(settled) {
		return demand
	}
	return settled
}

// trainingStartBase returns the dates the training start deadline counts from: settlement in
// the kommune where training started (or the current one), the first krav for training, and
// the first start.
func trainingStartBase(s *State) (settled, demand, started Date) {
	started = trainingStart(s)
	k := s.Kommune
	if !started.IsZero() {
		k = s.KommuneOn(started)
	}
	return s.SettledIn(k), firstOf(s.Demands, nirv1.Programme_PROGRAMME_OPPLAERING), started
}

// programmeStartDeadline: the programme starts no later than 3 months after settlement or krav
// (DOMAIN.md 1.2).
func programmeStartDeadline(s *State, now Date) Deadline {
	d := Deadline{Kind: nirv1.DeadlineKind_DEADLINE_KIND_PROGRAMME_START}
	return startDeadline(d, programmeStartVersions, s.Person.SettlementDate, firstOf(s.Demands, nirv1.Programme_PROGRAMME_INTRO), programmeFirstStart(s), now)
}

// programmeStartApplies reports whether the programme start deadline applies to a person of
// the intro kategori (DOMAIN.md 1.2: rett og plikt, or rett).
func programmeStartApplies(intro nirv1.Scheme) bool {
	return intro == nirv1.Scheme_SCHEME_RETT_OG_PLIKT || intro == nirv1.Scheme_SCHEME_RETT
}

// programmeFirstStart is the earliest start of the person's programmes (zero when none has
// started).
func programmeFirstStart(s *State) Date {
	var started Date
	for _, p := range s.Programmes {
		if !p.Start.IsZero() && (started.IsZero() || p.Start.Before(started)) {
			started = p.Start
		}
	}
	return started
}

// ProgrammeStartDue returns, for a person the programme start deadline applies to (DOMAIN.md
// 1.2: intro kategori rett og plikt or rett), the date the programme must have started by
// (zero when neither a settlement date nor a krav is known) and its first start (zero while
// no programme has started); applies is false for the others. It is the deadline Evaluate
// shows (DEADLINE_KIND_PROGRAMME_START), without a clock, for the read models.
func ProgrammeStartDue(s *State) (due, started Date, applies bool) {
	if !s.Registered || !programmeStartApplies(IntroScheme(s.Person, s.Law).Scheme) {
		return Date{}, Date{}, false
	}
	started = programmeFirstStart(s)
	base := startBase(s.Person.SettlementDate, firstOf(s.Demands, nirv1.Programme_PROGRAMME_INTRO))
	if base.IsZero() {
		return Date{}, started, true
	}
	return base.AddMonths(pick(programmeStartVersions, base).Months), started, true
}

// ReportingDeadline returns the ajourføring deadline of data year y (DOMAIN.md 6.3, Product
// decisions 7): the last day of February of y+1 (15 January for data years 2016 and 2017).
func ReportingDeadline(y int) (Date, Version) {
	v := pick(reportingVersions, Date{Y: y, M: time.January, D: 1})
	if v.LastDayOfFebruary {
		return LastDayOfFebruary(y + 1), v.Version
	}
	return Date{Y: y + 1, M: v.FixedMonth, D: v.FixedDay}, v.Version
}

// ReportingDeadlineAt returns the reporting deadline still open at now: that of the previous
// data year until its deadline has passed, then that of the current year.
func ReportingDeadlineAt(now Date) Deadline {
	y := now.Y - 1
	date, v := ReportingDeadline(y)
	if now.After(date) {
		y = now.Y
		date, v = ReportingDeadline(y)
	}
	d := Deadline{Kind: nirv1.DeadlineKind_DEADLINE_KIND_ANNUAL_REPORTING, DataYear: y, Start: Date{Y: y, M: time.January, D: 1}, Date: date}
	d.setVersion(v, d.Start)
	d.ReasonNB = fmt.Sprintf("data for %d skal være ajourført innen %s", y, date)
	d.ReasonEN = fmt.Sprintf("data for %d must be up to date by %s", y, date)
	reason, reasonEN := d.ReasonNB, d.ReasonEN
	d.classify(now)
	d.ReasonNB, d.ReasonEN = reason, reasonEN
	return d
}
