// Package demo generates a synthetic population for demonstrations, load tests and
// benchmarks of the register: persons under all three laws with their life cycle in the
// introduction programme and in opplæring i norsk og samfunnskunnskap, as the events a
// kommune would register.
//
// Every person is synthetic. Fødselsnummer and D-nummer carry Skatteetaten's synthetic
// marker (month + 80, DOMAIN.md 7.1) and valid check digits, so they can never be a real
// person's. No DUF-nummer is generated, since DUF numbers have no synthetic marker.
// Kommuner are real ones from the embedded kommune table, each valid on every date it is
// used on (see rules.LookupKommune).
//
// The output is deterministic for a seed, a person count and a "now". It uses only the
// standard library, the schema and package rules.
package demo

import (
	"iter"
	"math/rand/v2"
	"slices"
	"time"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// Generate returns the events of persons synthetic persons, one slice per person in
// stream order, the PersonRegistered first. Each event has its id (a ULID), kommune and
// payload set; person_key, actor and recorded_at are left for nird. Effective dates are
// at most now (planned end dates may lie in the future), and the population is
// deterministic for (seed, persons, now).
//
// An event id's time part (midnight UTC) is the day the event is about, as a kommune
// would register it: the date of a fact, the vedtak date of a vedtak, the start of a
// tiltak, the last day of a reported month of hours or of an absence, and for a correction
// (an EventRetracted and what replaces the retracted event) the day of the correction.
// Events are in that order, and the time part is strictly increasing within a person
// (events on the same day get successive milliseconds). Ids never repeat for one seed.
//
// The population mixes (weights are rough, not statistics):
//   - introduksjonsloven persons with permits 2018-2020, integreringsloven persons with
//     permits 2021-2025 and chapter 6A persons with § 34 permits from 2022-03-11, each
//     clipped to now;
//   - asylum seekers with opplæring i mottak before their permit, resettlement and family
//     immigrants, and labour immigrants (plikt only);
//   - programme vedtak (tildeling, utvidelse, permisjon, stans), sluttmål and
//     integreringskontrakt (IL), tiltak, fravær and permisjon, terminations with reasons,
//     and about 7 % of programmes with no termination registered, so that the regelmotor
//     computes «Avslutningsårsak ikke registrert»;
//   - training vedtak, tilbud, utdanningsbakgrunn, norskmål, monthly hours of norsk and
//     samfunnskunnskap (modules from 2022), fritak, fulltid videregående and 6A utvidet
//     opplæring;
//   - moves between kommuner, and corrections (EventRetracted) of a wrong tiltak code or
//     termination reason.
//
// Every kommune is valid on every date it is used on (the table has SSB's numbers from
// 2004, rules.KommuneTableStart): a person whose time in one kommune spans a reform lives in
// a kommune whose number did not change.
func Generate(seed int64, persons int, now rules.Date) iter.Seq[[]*nirv1.Event] {
	return func(yield func([]*nirv1.Event) bool) {
		g := newGenerator(seed, now)
		for i := 0; i < persons; i++ {
			if !yield(g.person(i)) {
				return
			}
		}
	}
}

// generator holds what persons share: the kommune lists and the national ids already
// handed out (so no two persons share one).
type generator struct {
	seed int64
	now  rules.Date
	// used holds every national id handed out, as a number.
	used map[uint64]struct{}
	// spans caches, per (first year, last year), the kommunenummer valid in both (numbers
	// change only on 1 January).
	spans map[[2]int][]string
}

func newGenerator(seed int64, now rules.Date) *generator {
	return &generator{seed: seed, now: now, used: map[uint64]struct{}{}, spans: map[[2]int][]string{}}
}

// validThrough returns the kommunenummer valid on from and on to (and so every day between).
func (g *generator) validThrough(from, to rules.Date) []string {
	key := [2]int{max(from.Y, rules.KommuneTableStart.Y), max(to.Y, from.Y, rules.KommuneTableStart.Y)}
	if list, ok := g.spans[key]; ok {
		return list
	}
	first, last := rules.Date{Y: key[0], M: time.January, D: 1}, rules.Date{Y: key[1], M: time.January, D: 1}
	var list []string
	for _, k := range rules.Kommuner(first) {
		if _, err := rules.LookupKommune(k.Nr, last); err == nil {
			list = append(list, k.Nr)
		}
	}
	g.spans[key] = list
	return list
}

// kommuneFor picks a kommune valid on every day of [from, to], weighting Oslo and the
// large cities above the rest (each where its number is valid then).
func (g *generator) kommuneFor(r *rand.Rand, from, to rules.Date, not string) string {
	list := g.validThrough(from, to)
	for {
		var k string
		switch x := r.IntN(100); {
		case x < 12:
			k = "0301" // Oslo
		case x < 20:
			k = []string{"4601", "5001", "1103", "4204", "1108"}[r.IntN(5)] // Bergen, Trondheim, Stavanger, Kristiansand, Sandnes
			if !slices.Contains(list, k) {
				k = list[r.IntN(len(list))]
			}
		default:
			k = list[r.IntN(len(list))]
		}
		if k != not {
			return k
		}
	}
}

// nationalID returns a synthetic fødselsnummer (or D-nummer) for birth that no earlier
// person got.
func (g *generator) nationalID(r *rand.Rand, birth rules.Date, dnummer bool) string {
	return g.nationalIDFrom(birth, dnummer, r.IntN(400))
}

// nationalIDFrom is nationalID trying the numbers of birth from seq on.
func (g *generator) nationalIDFrom(birth rules.Date, dnummer bool, seq int) string {
	gen := rules.SyntheticFodselsnummer
	if dnummer {
		gen = rules.SyntheticDNummer
	}
	for try := 0; ; try++ {
		b := birth.AddDays(try / 150) // about 400 numbers a day; move on when full
		s := gen(b, seq+try)
		n := uint64(0)
		for i := 0; i < len(s); i++ {
			n = n*10 + uint64(s[i]-'0')
		}
		if _, dup := g.used[n]; !dup {
			g.used[n] = struct{}{}
			return s
		}
	}
}

// keyed is an event with the date that orders it and the kommune stint it belongs to.
type keyed struct {
	key   rules.Date
	n     int // generation order, the tie-breaker
	stint int // index into person.stints
	ev    *nirv1.Event
}

// stint is a period in one kommune: reception (mottak), the settlement kommune, or the
// kommune moved to.
type stint struct {
	from rules.Date
	last rules.Date // latest key of an event in the stint
	nr   string
}

// person generates one person's events.
type person struct {
	g      *generator
	r      *rand.Rand
	now    rules.Date
	evs    []keyed
	stints []stint
	moveAt rules.Date // zero without a move
	// pending are retractions whose target id is known only when finish assigns ids.
	pending []pendingRetraction
	// dates is a slab the payload dates are taken from.
	dates []nirv1.Date
}

type pendingRetraction struct{ rt, wrong *nirv1.Event }

func (p *person) add(key rules.Date, st int, ev *nirv1.Event) *nirv1.Event {
	p.evs = append(p.evs, keyed{key: key, n: len(p.evs), stint: st, ev: ev})
	return ev
}

// stintOn returns the stint of the bostedskommune on date d (settlement or after a move).
func (p *person) stintOn(d rules.Date) int {
	if !p.moveAt.IsZero() && !d.Before(p.moveAt) {
		return 2
	}
	return 1
}

func (p *person) between(a, b rules.Date) rules.Date {
	n := a.DaysUntil(b)
	if n <= 0 {
		return a
	}
	return a.AddDays(p.r.IntN(n + 1))
}

func (p *person) chance(pct int) bool { return p.r.IntN(100) < pct }

// pd converts a date for a payload, allocating from a per-person slab (the population
// is allocation-bound). The zero date is nil.
func (p *person) pd(d rules.Date) *nirv1.Date {
	if d.IsZero() {
		return nil
	}
	if len(p.dates) == 0 {
		p.dates = make([]nirv1.Date, 32)
	}
	x := &p.dates[0]
	p.dates = p.dates[1:]
	x.Year, x.Month, x.Day = int32(d.Y), int32(d.M), int32(d.D)
	return x
}

// Permit bases of humanitarian immigration that give the introduction programme (DOMAIN.md
// 1.2) and rett og plikt to training (1.3).
func refugeeLike(b nirv1.PermitBasis) bool {
	switch b {
	case nirv1.PermitBasis_PERMIT_BASIS_ARBEID, nirv1.PermitBasis_PERMIT_BASIS_FAMILIE_ARBEID,
		nirv1.PermitBasis_PERMIT_BASIS_UNSPECIFIED:
		return false
	}
	return true
}

type category int

const (
	catIntroL category = iota
	catIL
	cat6A
)

func (g *generator) person(i int) []*nirv1.Event {
	p := &person{g: g, r: rand.New(rand.NewPCG(uint64(g.seed), uint64(i))), now: g.now, evs: make([]keyed, 0, 48)}
	r := p.r
	now := g.now

	// Permit windows by law (DOMAIN.md 1.1), clipped so the permit is at least two
	// months before now.
	latestPermit := now.AddMonths(-2)
	windows := []struct {
		cat      category
		from, to rules.Date
		weight   int
	}{
		{catIntroL, rules.MustDate(2018, 1, 1), rules.MustDate(2020, 12, 31), 25},
		{catIL, rules.MustDate(2021, 1, 1), rules.MustDate(2025, 12, 31), 45},
		{cat6A, rules.MustDate(2022, 3, 11), rules.MustDate(2025, 12, 31), 30},
	}
	total := 0
	for _, w := range windows {
		if !w.from.After(latestPermit) {
			total += w.weight
		}
	}
	cat, from, to := catIntroL, latestPermit.AddYears(-2), latestPermit
	if total > 0 {
		x := r.IntN(total)
		for _, w := range windows {
			if w.from.After(latestPermit) {
				continue
			}
			if x < w.weight {
				cat, from, to = w.cat, w.from, w.to
				break
			}
			x -= w.weight
		}
	}
	if to.After(latestPermit) {
		to = latestPermit
	}
	permit := p.between(from, to)

	var basis nirv1.PermitBasis
	if cat == cat6A {
		basis = nirv1.PermitBasis_PERMIT_BASIS_KOLLEKTIV_BESKYTTELSE_34
		if p.chance(4) {
			basis = nirv1.PermitBasis_PERMIT_BASIS_ASYL_28 // Ukrainians with other permits follow IL
		}
	} else {
		switch x := r.IntN(100); {
		case x < 38:
			basis = nirv1.PermitBasis_PERMIT_BASIS_ASYL_28
		case x < 56:
			basis = nirv1.PermitBasis_PERMIT_BASIS_OVERFORING_35
		case x < 80:
			basis = nirv1.PermitBasis_PERMIT_BASIS_FAMILIE_FLYKTNING
		case x < 85:
			basis = nirv1.PermitBasis_PERMIT_BASIS_HUMANITAER_38
		case x < 87:
			basis = nirv1.PermitBasis_PERMIT_BASIS_BEGRENSET_38_5
		case x < 90:
			basis = nirv1.PermitBasis_PERMIT_BASIS_SELVSTENDIG_53
		case x < 96:
			basis = nirv1.PermitBasis_PERMIT_BASIS_ARBEID
		default:
			basis = nirv1.PermitBasis_PERMIT_BASIS_FAMILIE_ARBEID
		}
	}

	// Age at the permit: mostly 18-55 (the programme's target group), some older.
	age := 18 + (r.IntN(38)+r.IntN(38))/2
	if p.chance(8) {
		age = 56 + r.IntN(11)
	}
	birth := permit.AddYears(-age).AddDays(-r.IntN(365))

	// Arrival and settlement by kind of immigration.
	var arrival, settled rules.Date
	byAgreement := true
	switch basis {
	case nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, nirv1.PermitBasis_PERMIT_BASIS_HUMANITAER_38,
		nirv1.PermitBasis_PERMIT_BASIS_BEGRENSET_38_5:
		arrival = permit.AddDays(-90 - r.IntN(450))
		settled = permit.AddDays(30 + r.IntN(210))
	case nirv1.PermitBasis_PERMIT_BASIS_OVERFORING_35:
		arrival = permit.AddDays(30 + r.IntN(150))
		settled = arrival
	case nirv1.PermitBasis_PERMIT_BASIS_KOLLEKTIV_BESKYTTELSE_34:
		arrival = permit.AddDays(-r.IntN(30))
		settled = permit.AddDays(20 + r.IntN(100))
	case nirv1.PermitBasis_PERMIT_BASIS_SELVSTENDIG_53:
		arrival = permit.AddDays(-365 - r.IntN(700))
		settled = permit.AddDays(r.IntN(60))
		byAgreement = false
	default: // family and labour immigration: settle on arrival
		arrival = permit.AddDays(r.IntN(90))
		settled = arrival
		byAgreement = false
	}
	if arrival.After(now) {
		arrival = now
	}
	isSettled := !settled.After(now)
	law, _ := rules.LawOf(rules.Person{PermitDate: permit, PermitBasis: basis, ArrivalDate: arrival})

	// Identity: synthetic fødselsnummer, some D-nummer (not yet in Folkeregisteret).
	reg := &nirv1.PersonRegistered{
		BirthDate: p.pd(birth), PermitDate: p.pd(permit), PermitBasis: basis,
		ArrivalDate: p.pd(arrival), SettledByAgreement: byAgreement && isSettled,
	}
	dnr := p.chance(7)
	id := g.nationalID(r, birth, dnr)
	parsed, err := rules.ParseNationalID(id)
	if err != nil {
		panic("demo: generated national id invalid: " + err.Error())
	}
	reg.Sex = parsed.Sex()
	if b, ok := parsed.BirthDate(); ok && b != birth {
		// nationalID moved to the next day (that day's numbers all taken).
		birth = b
		reg.BirthDate = p.pd(b)
	}
	if dnr {
		reg.DNummer = id
	} else {
		reg.Fodselsnummer = id
	}
	if isSettled {
		reg.SettlementDate = p.pd(settled)
	}
	first := arrival
	if permit.Before(first) {
		first = permit
	}
	p.stints = []stint{{from: arrival}, {from: settled}}
	regStint := 1 // registered by the settlement kommune, or by the mottak kommune before
	if !isSettled {
		regStint = 0
	}
	p.add(first, regStint, &nirv1.Event{Payload: &nirv1.Event_PersonRegistered{PersonRegistered: reg}})

	// Opplæring i mottak while waiting for the permit (DOMAIN.md 4).
	if permit.DaysUntil(arrival) < -60 && p.chance(70) {
		start := arrival.AddDays(14 + r.IntN(30))
		end := permit
		days := start.DaysUntil(end) + 1
		hours := float64(min(175, days*2/3))
		p.add(end, 0, &nirv1.Event{Payload: &nirv1.Event_ReceptionParticipationRegistered{
			ReceptionParticipationRegistered: &nirv1.ReceptionParticipationRegistered{
				Activity: nirv1.ReceptionActivity_RECEPTION_ACTIVITY_NORSK, FromDate: p.pd(start), ToDate: p.pd(end),
				Hours: hours, Completed: hours >= 175,
			}}})
	}

	if isSettled {
		// A move for some persons, between settlement and now.
		if p.chance(10) && settled.DaysUntil(now) > 120 {
			p.moveAt = p.between(settled.AddDays(60), now)
			p.stints = append(p.stints, stint{from: p.moveAt})
		}
		vgo := p.chance(35)
		if law == nirv1.Law_LAW_IL_6A {
			vgo = p.chance(70)
		}
		ageAtPermit := rules.AgeOn(birth, permit)
		if refugeeLike(basis) && ageAtPermit >= 18 && ageAtPermit <= 55 {
			pct := 85
			if law == nirv1.Law_LAW_IL_6A {
				pct = 55 // rett, not plikt (DOMAIN.md 1.5)
			}
			if p.chance(pct) {
				p.programme(law, settled, birth, vgo, basis)
			}
		}
		if ageAtPermit >= 18 && ageAtPermit <= 67 && p.chance(85) {
			p.training(law, settled, birth, vgo, basis)
		}
		if !p.moveAt.IsZero() {
			p.add(p.moveAt, 2, &nirv1.Event{Payload: &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{Date: p.pd(p.moveAt)}}})
		}
		// Folkeregisteret gives a person settled by D-nummer a fødselsnummer some months
		// later (DOMAIN.md Product decisions 15). Drawn from the D-nummer, not from r, so
		// that the rest of the population is what it was.
		if d := int(id[9]-'0') + 10*int(id[8]-'0'); dnr && d%2 == 0 {
			at := settled.AddDays(60 + 3*d)
			if at.Before(now) {
				fnr := g.nationalIDFrom(birth, false, d*4)
				p.add(at, p.stintOn(at), &nirv1.Event{Payload: &nirv1.Event_IdentifierAdded{IdentifierAdded: &nirv1.IdentifierAdded{
					Type: nirv1.IdentifierType_IDENTIFIER_TYPE_FODSELSNUMMER, NationalId: fnr, Date: p.pd(at), Source: "folkeregisteret"}}})
			}
		}
	}
	return p.finish(reg)
}

// finish orders the events, assigns kommuner to the stints and event ids.
func (p *person) finish(reg *nirv1.PersonRegistered) []*nirv1.Event {
	slices.SortStableFunc(p.evs, func(a, b keyed) int {
		if c := a.key.Compare(b.key); c != 0 {
			return c
		}
		return a.n - b.n
	})
	// PersonRegistered first, whatever its key (its key is the earliest anyway).
	for i, k := range p.evs {
		if k.ev.GetPersonRegistered() != nil && i != 0 {
			copy(p.evs[1:i+1], p.evs[:i])
			p.evs[0] = k
		}
	}
	for i := range p.stints {
		p.stints[i].last = p.stints[i].from
	}
	widen := func(st *stint, d rules.Date) {
		if d.After(st.last) {
			st.last = d
		}
		if d.Before(st.from) {
			st.from = d
		}
	}
	for _, k := range p.evs {
		widen(&p.stints[k.stint], k.key)
		// ValidateEvent checks the kommune on the effective date, which may differ
		// from the key (a vedtak's start, a month's first day).
		if d, ok := rules.EffectiveDate(k.ev); ok {
			widen(&p.stints[k.stint], d)
		}
	}
	// The settlement kommune must be valid from settlement to its last event; so must
	// the kommune moved to. The mottak kommune only during reception.
	p.stints[0].nr = p.g.kommuneFor(p.r, p.stints[0].from, p.stints[0].last, "")
	p.stints[1].nr = p.g.kommuneFor(p.r, p.stints[1].from, p.stints[1].last, "")
	if len(p.stints) > 2 {
		p.stints[2].nr = p.g.kommuneFor(p.r, p.stints[2].from, p.stints[2].last, p.stints[1].nr)
	}
	if reg.SettlementDate != nil {
		reg.SettlementKommune = p.stints[1].nr
	}

	out := make([]*nirv1.Event, len(p.evs))
	var lastMs uint64
	for i, k := range p.evs {
		k.ev.Kommune = p.stints[k.stint].nr
		if m := k.ev.GetPersonMoved(); m != nil {
			m.ToKommune = p.stints[2].nr
		}
		ms := uint64(k.key.Time().UnixMilli())
		if ms <= lastMs {
			ms = lastMs + 1
		}
		lastMs = ms
		k.ev.Id = ulid(ms, p.r.Uint64(), p.r.Uint64())
		out[i] = k.ev
	}
	// Retractions name the id of the event they retract, known only now.
	for _, pr := range p.pending {
		pr.rt.GetEventRetracted().EventId = pr.wrong.GetId()
	}
	return out
}

// retract registers a correction on day d: an EventRetracted of wrong (whose id is
// filled in by finish) and then replacement, both keyed on d.
func (p *person) retract(d rules.Date, st int, wrong *nirv1.Event, reason string, replacement *nirv1.Event) {
	rt := &nirv1.Event{Payload: &nirv1.Event_EventRetracted{EventRetracted: &nirv1.EventRetracted{Reason: reason}}}
	p.pending = append(p.pending, pendingRetraction{rt: rt, wrong: wrong})
	p.add(d, st, rt)
	if replacement != nil {
		p.add(d, st, replacement)
	}
}

// Registrations turns one person's events (as Generate yields them) into registrations that
// name the person by the national id of the first event, the PersonRegistered, as a case
// system would send them.
func Registrations(evs []*nirv1.Event) []*nirv1.Registration {
	id := rules.KeyingID(evs[0].GetPersonRegistered())
	regs := make([]*nirv1.Registration, len(evs))
	for i, ev := range evs {
		regs[i] = &nirv1.Registration{Person: &nirv1.PersonRef{NationalId: id}, Event: ev}
	}
	return regs
}
