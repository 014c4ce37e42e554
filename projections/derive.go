package projections

import (
	"slices"
	"sort"
	"time"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// derive computes every model's values for one person from the person's folded state. It is
// deterministic and reads no clock: the same state always gives the same values, which is
// what makes incremental, rebuilt and replayed models equal.
func derive(st *rules.State) *derived {
	d := deriveModels(st)
	d.access = encodeAccess(st, d.row)
	return d
}

// deriveModels is derive but for the access record, which needs the row.
func deriveModels(st *rules.State) *derived {
	d := &derived{}
	if !st.Registered || st.MergedInto != "" {
		// Not a person (an id's claim), or merged into another: counted there (DOMAIN.md
		// Product decisions 15).
		return d
	}
	row := &PersonRow{
		PersonKey:      st.PersonKey,
		Kommune:        rules.KommuneNow(st.Kommune),
		NationalID:     rules.PreferredID(st), // shown in the kommune view only
		BirthDate:      st.Person.BirthDate,
		Sex:            st.Person.Sex,
		Law:            st.Law,
		PermitDate:     st.Person.PermitDate,
		SettlementDate: st.SettledIn(st.Kommune),
	}
	if st.Erased {
		// Product decisions 15: the birth date reads as «slettet» (none), whatever a fold
		// that still had the key opened before the erasure.
		row.BirthDate = rules.Date{}
	}
	d.row = row
	intro := rules.IntroScheme(st.Person, st.Law).Scheme
	row.IntroScheme = intro
	row.OpplaeringScheme = rules.TrainingScheme(st.Person, st.Law).Scheme
	defer func() { d.rowEnc = row.encode(nil) }()

	if p := rowProgramme(st, row.Kommune); p != nil {
		row.ProgrammeVedtak = !p.Start.IsZero()
		row.ProgrammeKommune = p.Kommune
		row.ProgrammeStart = p.Start
		row.ProgrammeEnd, row.ProgrammeEndNote = programmeEndNote(st, p)
		if p.Termination == nil && !p.Stopped.IsZero() {
			if due, stopped := rules.StansReasonDue(st, p); stopped {
				// Product decisions 11: stopped by a stans, the programme awaits its
				// avslutningsårsak; the list's deadline is the registration's.
				row.ProgrammeEnd = due
				row.ProgrammeEndNote = "stanset " + p.Stopped.String() + "; avslutningsårsak må registreres innen " + due.String()
			}
		}
		row.Tiltak = len(p.Tiltak) > 0
		row.Sluttmal = p.Sluttmal
		row.Integreringskontrakt = !p.Integreringskontrakt.IsZero()
		if from, _, open := rules.InactiveFrom(st, p); open {
			row.InactiveFrom = from
		}
		if t := p.Termination; t != nil {
			row.TerminationDate = t.Date
			row.TerminationReason = t.Reason
			row.TerminationComputed = t.Computed
		}
	}

	tr := &st.Training
	for _, v := range tr.Vedtak {
		if v.Type == nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING {
			if !row.TrainingVedtak || v.Start.Before(row.TrainingStart) {
				row.TrainingStart = v.Start
			}
			row.TrainingVedtak = true
		}
	}
	row.TrainingScheme = tr.Scheme
	row.Norskmal = tr.Norskmal != nil
	if u := tr.Utdanningsbakgrunn; u != nil {
		row.Utdanningsbakgrunn = No
		if *u {
			row.Utdanningsbakgrunn = Yes
		}
	}
	hkeys := sortedHoursKeys(tr.Hours)
	for _, k := range hkeys {
		h := HoursOf(tr.Hours[k])
		if k.Type == nirv1.HoursType_HOURS_TYPE_NORSK {
			row.NorskHours += h
		} else {
			row.SamfunnHours += h
		}
	}
	row.NorskDeadline, row.NorskDeadlineNote, row.NorskCompleted = norskDeadline(st)
	due, first := rules.TrainingStartDue(st)
	row.TrainingFirst = first
	if row.OpplaeringScheme != nirv1.Scheme_SCHEME_NONE {
		row.StartDeadline = due
	}
	if due, first, applies := rules.ProgrammeStartDue(st); applies {
		row.ProgrammeStartDeadline, row.ProgrammeFirst = due, first
	}
	row.Years, row.Terminations = rowYears(st, row.Kommune)
	row.YearHours = rowYearHours(tr.Hours, hkeys)

	d.stats = contributions(st, row, hkeys)
	for _, p := range st.Programmes {
		t := p.Termination
		if t == nil || t.Date.IsZero() {
			continue
		}
		d.terms = append(d.terms, TerminatedRow{
			PersonKey: st.PersonKey, Kommune: p.Kommune, Law: st.Law, Scheme: intro, ProgrammeStart: p.Start,
			Date: t.Date, Reason: t.Reason, Computed: t.Computed, EventID: t.EventID,
		})
	}
	d.due = nextDue(st)
	return d
}

func sortedHoursKeys(m map[rules.HoursKey]float64) []rules.HoursKey {
	keys := make([]rules.HoursKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.Year != b.Year {
			return a.Year < b.Year
		}
		if a.Month != b.Month {
			return a.Month < b.Month
		}
		if a.Type != b.Type {
			return a.Type < b.Type
		}
		return a.Kommune < b.Kommune
	})
	return keys
}

// yearsOf returns the years from a to b inclusive, at most 10.
func yearsOf(a, b int) []int {
	if b < a {
		b = a
	}
	b = min(b, a+9)
	var ys []int
	for y := a; y <= b; y++ {
		ys = append(ys, y)
	}
	return ys
}

func isWorkOrEducation(r nirv1.TerminationReason) bool {
	switch r {
	case nirv1.TerminationReason_TERMINATION_REASON_ARBEID,
		nirv1.TerminationReason_TERMINATION_REASON_UTDANNING_VGO,
		nirv1.TerminationReason_TERMINATION_REASON_UTDANNING_HOYERE,
		nirv1.TerminationReason_TERMINATION_REASON_UTDANNING_GRUNNSKOLE,
		nirv1.TerminationReason_TERMINATION_REASON_ARBEID_OG_UTDANNING:
		return true
	}
	return false
}

// contributions computes what the person adds to the statistics per data year and kommune,
// by effective dates (DOMAIN.md Product decisions 7).
func contributions(st *rules.State, row *PersonRow, hkeys []rules.HoursKey) []contribution {
	acc := map[[2]string]*Counters{}
	type ck = [2]string
	get := func(y int, k string) *Counters {
		key := ck{itoa4(y), k}
		c := acc[key]
		if c == nil {
			c = new(Counters)
			acc[key] = c
		}
		return c
	}

	// Introduction programme participants, by the programme's kommune.
	for _, p := range st.Programmes {
		first, last, endY, ok := programmeYears(st, p)
		if !ok {
			continue
		}
		t := p.Termination
		ended := endY != 0
		for _, y := range yearsOf(first, last) {
			c := get(y, p.Kommune)
			c[CParticipants]++
			if p.Start.Y == y {
				c[CNew]++
			}
			if !ended || endY > y {
				c[COngoing]++
			}
			if ended && endY == y {
				c[CTerminated]++
				if t.Computed {
					c[CTerminatedComputed]++
				} else {
					c[CTerminatedRegistered]++
				}
				if t.Reason == nirv1.TerminationReason_TERMINATION_REASON_IKKE_REGISTRERT ||
					t.Reason == nirv1.TerminationReason_TERMINATION_REASON_UNSPECIFIED {
					c[CReasonNotRegistered]++
				}
				if isWorkOrEducation(t.Reason) {
					c[CDirectWorkOrEducation]++
				}
				if r := int(t.Reason); r >= 0 && r < NumReasons {
					c[int(CReasonBase)+r]++
				}
			}
		}
	}

	// Persons with a training vedtak running in the year, once per year and kommune: the
	// kommune as the year's structure names it (yearKommune), so that a kommune that changed
	// its number at a reform (3025 → 3203 Asker in 2024) counts the person once, under the
	// first number (Product decisions 13). Each tildeling runs as countedTrainingPeriods says.
	seen := map[ck]bool{}
	for _, p := range countedTrainingPeriods(st) {
		first, last := trainingYears(p)
		for _, y := range yearsOf(first, last) {
			key := ck{itoa4(y), yearKommune(p.Kommune, y)}
			if seen[key] {
				continue
			}
			seen[key] = true
			get(y, p.Kommune)[CTrainingVedtak]++
		}
	}

	// Hours by the month they were given, in the kommune that gave them (a person who moves
	// mid-month has hours from both), and the persons they are given to (once per year and
	// kommune, as the year's structure names it): with any hours, and with each kind's, the
	// persons that kind's hours sum (disclosure control, Product decisions 14).
	type hoursKey struct {
		year, kommune string
		c             Counter
	}
	hoursSeen := map[hoursKey]bool{}
	once := func(c *Counters, y int, kom string, ctr Counter) {
		if key := (hoursKey{itoa4(y), yearKommune(kom, y), ctr}); !hoursSeen[key] {
			hoursSeen[key] = true
			c[ctr]++
		}
	}
	for _, k := range hkeys {
		h := int64(HoursOf(st.Training.Hours[k]))
		if h == 0 {
			continue
		}
		on, ok := rules.NewDate(k.Year, k.Month, 1)
		if !ok {
			continue
		}
		kom := k.Kommune
		if kom == "" {
			kom = st.KommuneOn(on)
		}
		c := get(k.Year, kom)
		once(c, k.Year, kom, CHoursPersons)
		if k.Type == nirv1.HoursType_HOURS_TYPE_NORSK {
			c[CNorskHours] += h
			once(c, k.Year, kom, CNorskHoursPersons)
		} else {
			c[CSamfunnHours] += h
			once(c, k.Year, kom, CSamfunnHoursPersons)
		}
	}

	// Training start within 3 months (Product decisions 6), of the persons the rule applies
	// to: the opplæring target group (DOMAIN.md 3.5; the deadline status shows the rule for
	// them only). A start outside it could never be in time, and counted in the share's
	// denominator only.
	if f := row.TrainingFirst; !f.IsZero() && row.OpplaeringScheme != nirv1.Scheme_SCHEME_NONE {
		c := get(f.Y, st.KommuneOn(f))
		c[CTrainingStarted]++
		if !row.StartDeadline.IsZero() && !f.After(row.StartDeadline) {
			c[CTrainingStartedWithin3m]++
		}
	}

	out := make([]contribution, 0, len(acc))
	for key, c := range acc {
		if c.zero() || key[1] == "" {
			continue
		}
		out = append(out, contribution{year: atoi4(key[0]), kommune: key[1], c: *c})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].year != out[j].year {
			return out[i].year < out[j].year
		}
		return out[i].kommune < out[j].kommune
	})
	return out
}

// programmeYears returns the data years a programme ran in, the years the statistics count
// it among the participants (DOMAIN.md 8, participants of the year; Product decisions 7, by
// effective dates): from its start year to the year it terminated, else to the year of its
// latest end date, else 4 years on, at most 10 years (yearsOf). endY is the termination's
// year (0 while not terminated): a termination dated before the start counts in the start
// year, so that every participant of a year is either ongoing on 31 December or terminated in
// it. ok is false for a programme without a start, which ran in no year.
func programmeYears(st *rules.State, p *rules.Programme) (first, last, endY int, ok bool) {
	if p.Start.IsZero() {
		return 0, 0, 0, false
	}
	first, last = p.Start.Y, p.Start.Y+4
	if end := programmeEnd(st, p); !end.IsZero() {
		last = end.Y
	}
	if t := p.Termination; t != nil && !t.Date.IsZero() {
		endY = max(t.Date.Y, p.Start.Y)
		last = endY
	}
	return first, min(max(last, first), first+9), endY, true
}

// trainingYears returns the data years a training tildeling ran in, the years the statistics
// count the person among those with a running training vedtak: from its start to its end (or
// its stans, or the move away, countedTrainingPeriods), an open one at most 4 years, at most 10
// years (yearsOf).
func trainingYears(p rules.TrainingPeriod) (first, last int) {
	first, last = p.From.Y, p.From.Y+3
	if !p.To.IsZero() {
		last = p.To.Y
	}
	return first, min(max(last, first), first+9)
}

// countedTrainingPeriods are the periods the statistics count a training tildeling as running
// in its kommune: rules.TrainingPeriods (to its end date or its stans), and within that
//   - only while the person lives in the tildeling's kommune (DOMAIN.md Product decisions 16:
//     after a move the new kommune sees the person, the old one keeps its own period, which
//     ends with the move; the new kommune counts from its own vedtak). A person who moves back
//     while the tildeling runs is counted again from the move back: one period for each stay;
//   - for an open 6A tildeling (no end date, no stans; DOMAIN.md 3.2), until RETT_6A's
//     deadline as rules.NorskDeadline computes it (12 months from the first vedtak, extended
//     by leave and the utvidet vedtak), UTVIDET_6A 6 months from its start («up to 6 months per
//     vedtak»).
//
// An open tildeling otherwise runs its 4 statistical years from its start (trainingYears), a
// later stay in them too. The append check judges hours by rules.TrainingPeriods, not by
// these.
func countedTrainingPeriods(st *rules.State) []rules.TrainingPeriod {
	var deadline6A rules.Date
	if d, ok := rules.NorskDeadline(st, rules.Date{}); ok && st.Law == nirv1.Law_LAW_IL_6A &&
		d.State != nirv1.DeadlineState_DEADLINE_STATE_CANNOT_COMPUTE {
		deadline6A = d.Date
	}
	moves := slices.Clone(st.Moves)
	slices.SortStableFunc(moves, func(a, b rules.Move) int { return a.Date.Compare(b.Date) })
	chains := map[string]*stayChain{}
	var out []rules.TrainingPeriod
	for _, p := range rules.TrainingPeriods(st) {
		if p.To.IsZero() {
			switch p.Scheme {
			case nirv1.TrainingScheme_TRAINING_SCHEME_RETT_6A:
				p.To = deadline6A
			case nirv1.TrainingScheme_TRAINING_SCHEME_UTVIDET_6A:
				p.To = p.From.AddMonths(6)
			}
			if !p.To.IsZero() && p.To.Before(p.From) {
				p.To = p.From
			}
		}
		c := chains[p.Kommune]
		if c == nil {
			c = newStayChain(moves, p.Kommune)
			chains[p.Kommune] = c
		}
		out = c.appendStays(out, p)
	}
	return out
}

// stayChain is the person's stays in one kommune by the moves (in date order): each move
// into it (from outside) to the next move out of it, the stays a training tildeling there
// counts again after its first move away. A move out (or in) when the person is already out
// (in) changes nothing, so after any move out the stays that follow are the chain's from the
// next move in on, whatever came before.
//
// Each tildeling looked at every move after its start, and each move back gave it a stay:
// a person of 4 000 open tildeling and 4 000 moves in and out had 16 million moves looked
// at and millions of stays, 9-22 s on every derive (BenchmarkDerive_Hostile). A stay that
// ends with a move out is the same for every tildeling of the kommune that reaches it, and
// the statistics count a kommune's years once (contributions, rowYears), so the chain gives
// each such stay once, to the first tildeling that reaches it; the rest are found by binary
// search.
type stayChain struct {
	moves   []rules.Move
	kommune string
	outs    []int    // the moves out of the kommune (from it to another), by index
	stays   [][2]int // the chain: move in, move out (len(moves) for none), by index
	next    []int    // next[j] leads to the first stay from j on not yet given (given)
}

func newStayChain(moves []rules.Move, kommune string) *stayChain {
	c := &stayChain{moves: moves, kommune: kommune}
	in := false
	for i, m := range moves {
		here, there := rules.SameKommune(m.From, kommune), rules.SameKommune(m.To, kommune)
		switch {
		case here && !there:
			c.outs = append(c.outs, i)
			if in {
				c.stays[len(c.stays)-1][1] = i
				in = false
			}
		case !here && there && !in:
			c.stays = append(c.stays, [2]int{i, len(moves)})
			in = true
		}
	}
	c.next = make([]int, len(c.stays)+1)
	for j := range c.next {
		c.next[j] = j
	}
	return c
}

// given returns the first stay from j on not yet given to a tildeling.
func (c *stayChain) given(j int) int {
	for c.next[j] != j {
		c.next[j] = c.next[c.next[j]]
		j = c.next[j]
	}
	return j
}

// appendStays appends the parts of p the statistics count: from its start to the first move out
// (or p's end), then the chain's stays from the next move in until p's end, the last of them
// to p's end when no move out ends it first. A stay ended by a move out that an earlier
// tildeling of the kommune was given is left out.
func (c *stayChain) appendStays(out []rules.TrainingPeriod, p rules.TrainingPeriod) []rules.TrainingPeriod {
	// stay appends the part of p from from to to (zero: p's end), a later stay of an open
	// tildeling within its 4 statistical years.
	stay := func(from, to rules.Date) {
		q := p
		q.From, q.To = from, to
		if to.IsZero() {
			q.To = p.To
			if p.To.IsZero() && from != p.From {
				q.To = rules.Date{Y: p.From.Y + 3, M: time.December, D: 31}
			}
		}
		if !q.To.IsZero() && q.To.Before(from) {
			return
		}
		out = append(out, q)
	}
	s, _ := slices.BinarySearchFunc(c.moves, p.From, func(m rules.Move, d rules.Date) int { return m.Date.Compare(d) })
	e := len(c.moves)
	if !p.To.IsZero() {
		e = s + sort.Search(len(c.moves)-s, func(i int) bool { return p.To.Before(c.moves[s+i].Date) })
	}
	k, _ := slices.BinarySearch(c.outs, s)
	if k == len(c.outs) || c.outs[k] >= e {
		stay(p.From, rules.Date{})
		return out
	}
	first := c.outs[k]
	stay(p.From, c.moves[first].Date)
	j := sort.Search(len(c.stays), func(i int) bool { return c.stays[i][0] > first })
	last := sort.Search(len(c.stays), func(i int) bool { return c.stays[i][0] >= e }) - 1
	closed := last + 1
	if last >= j && c.stays[last][1] >= e {
		closed = last // the person is in the kommune at p's end
	}
	for i := c.given(j); i < closed; i = c.given(i) {
		stay(c.moves[c.stays[i][0]].Date, c.moves[c.stays[i][1]].Date)
		c.next[i] = i + 1
	}
	if closed == last {
		stay(c.moves[c.stays[last][0]].Date, rules.Date{})
	}
	return out
}

// yearKommune is kommunenummer k as data year y's structure names it (rules.KommuneIn on 1
// January), the kommune a person counts once in for the year; k itself when that is not one
// number.
func yearKommune(k string, y int) string {
	if to, _, ok := rules.KommuneIn(k, rules.Date{Y: y, M: time.January, D: 1}); ok {
		return to
	}
	return k
}

// rowYears returns the data years the person's programmes and training ran in, as the
// statistics count them (programmeYears, trainingYears), merged and in order, and the
// effective terminations of the programmes of kommune (the person's kommune now, by its
// newest number: Product decisions 13), the rows the report of terminated participants holds
// for it. The person list's year filter is «ran in the data year» by them (PersonQuery.Year).
func rowYears(st *rules.State, kommune string) ([]YearSpan, []RowTermination) {
	var spans []YearSpan
	var terms []RowTermination
	for _, p := range st.Programmes {
		if first, last, _, ok := programmeYears(st, p); ok {
			spans = append(spans, YearSpan{From: first, To: last})
		}
		if t := p.Termination; t != nil && !t.Date.IsZero() && rules.KommuneNow(p.Kommune) == kommune {
			terms = append(terms, RowTermination{Date: t.Date, Reason: t.Reason, Computed: t.Computed})
		}
	}
	for _, p := range countedTrainingPeriods(st) {
		if p.From.IsZero() {
			continue
		}
		first, last := trainingYears(p)
		spans = append(spans, YearSpan{From: first, To: last})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].From < spans[j].From })
	merged := spans[:0]
	for _, sp := range spans {
		if n := len(merged); n > 0 && sp.From <= merged[n-1].To+1 {
			merged[n-1].To = max(merged[n-1].To, sp.To)
			continue
		}
		merged = append(merged, sp)
	}
	sort.Slice(terms, func(i, j int) bool { return terms[i].Date.Before(terms[j].Date) })
	return merged, terms
}

// rowProgramme is the programme the person list row shows: that of the kommune the person
// belongs to now (DOMAIN.md Product decisions 16: after a move the new kommune sees the
// person; a number and its successors are one kommune, Product decisions 13), the latest by
// start date among that kommune's (stream order breaks ties; one without a start, its
// tildeling retracted, only when none has one); the last created of any kommune when the
// kommune has none, as before. Nil without programmes.
func rowProgramme(st *rules.State, kommune string) *rules.Programme {
	var best *rules.Programme
	for _, p := range st.Programmes {
		if rules.KommuneNow(p.Kommune) != kommune {
			continue
		}
		if best == nil || best.Start.IsZero() || !p.Start.IsZero() && !p.Start.Before(best.Start) {
			best = p
		}
	}
	if best == nil && len(st.Programmes) > 0 {
		best = st.Programmes[len(st.Programmes)-1]
	}
	return best
}

func itoa4(y int) string { return string([]byte{byte(y >> 8), byte(y)}) }
func atoi4(s string) int {
	if len(s) != 2 {
		return 0
	}
	return int(s[0])<<8 | int(s[1])
}

// programmeEnd is the regelmotor's latest end date of a programme, computed without a clock
// (an open-ended leave makes it not computable until the leave ends).
func programmeEnd(st *rules.State, p *rules.Programme) rules.Date {
	end, _ := programmeEndNote(st, p)
	return end
}

// programmeEndNote is programmeEnd with the regelmotor's reason when the date cannot be
// computed (for example a sluttmål that contradicts the utdanningsbakgrunn, Product
// decisions 10).
func programmeEndNote(st *rules.State, p *rules.Programme) (rules.Date, string) {
	end, _, nb, _, ok := rules.ProgrammeLatestEnd(st, p, rules.Date{})
	if !ok {
		return rules.Date{}, nb
	}
	return end, ""
}

// norskDeadline is the regelmotor's norsk deadline, computed without a clock: its date, the
// reason when it cannot be computed, and whether it is completed (fritak). No deadline applies
// (zero, "", false) under introduksjonsloven or plikt without rett.
func norskDeadline(st *rules.State) (rules.Date, string, bool) {
	d, ok := rules.NorskDeadline(st, rules.Date{})
	if !ok {
		return rules.Date{}, "", false
	}
	switch d.State {
	case nirv1.DeadlineState_DEADLINE_STATE_COMPLETED:
		return d.Date, "", true
	case nirv1.DeadlineState_DEADLINE_STATE_CANNOT_COMPUTE:
		return rules.Date{}, d.ReasonNB, false
	}
	return d.Date, "", false
}

// nextDue is when the regelmotor worker must look at the person next (rules.NextDue).
func nextDue(st *rules.State) rules.Date {
	d, ok := rules.NextDue(st)
	if !ok {
		return rules.Date{}
	}
	return d
}
