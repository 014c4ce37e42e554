package rules

import (
	"fmt"
	"math/rand"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// Property tests with hand-rolled random generation and a fixed seed, so a failure is
// reproducible: the failing case prints its seed and index.

const propertySeed = 20261125

// gen builds random but plausible persons.
type gen struct {
	r  *rand.Rand
	id int
	// origin is the earliest permit date of person; zero means 2018-01-01.
	origin Date
}

func (g *gen) nextID() string { g.id++; return fmt.Sprintf("g%04d", g.id) }

func (g *gen) date(from Date, maxDays int) Date { return from.AddDays(g.r.Intn(maxDays + 1)) }

var genKommuner = []string{"0301", "4601", "5001", "1103", "3201"}

var genBases = []nirv1.PermitBasis{
	nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, nirv1.PermitBasis_PERMIT_BASIS_KOLLEKTIV_BESKYTTELSE_34,
	nirv1.PermitBasis_PERMIT_BASIS_OVERFORING_35, nirv1.PermitBasis_PERMIT_BASIS_FAMILIE_FLYKTNING,
	nirv1.PermitBasis_PERMIT_BASIS_ARBEID, nirv1.PermitBasis_PERMIT_BASIS_ANNET_PERMANENT,
}

func (g *gen) ev(kommune string) *nirv1.Event {
	return &nirv1.Event{Id: g.nextID(), PersonKey: "pk", Kommune: kommune}
}

// person returns a registration followed by a random mix of the events of DOMAIN.md 8.
func (g *gen) person() []*nirv1.Event {
	k := genKommuner[g.r.Intn(len(genKommuner))]
	origin := g.origin
	if origin.IsZero() {
		origin = md("2018-01-01")
	}
	permit := g.date(origin, 6*365)
	settled := g.date(permit, 120)
	reg := g.ev(k)
	reg.Payload = &nirv1.Event_PersonRegistered{PersonRegistered: &nirv1.PersonRegistered{
		BirthDate: g.date(md("1950-01-01"), 55*365).Proto(), PermitDate: permit.Proto(), PermitBasis: genBases[g.r.Intn(len(genBases))],
		ArrivalDate: g.date(permit.AddDays(-200), 260).Proto(), SettlementDate: settled.Proto(), SettlementKommune: k,
		SettledByAgreement: g.r.Intn(2) == 0,
	}}
	evs := []*nirv1.Event{reg}
	start := g.date(settled, 150)
	n := 3 + g.r.Intn(12)
	for i := 0; i < n; i++ {
		evs = append(evs, g.event(k, start, evs))
	}
	return evs
}

func (g *gen) event(k string, start Date, prior []*nirv1.Event) *nirv1.Event {
	e := g.ev(k)
	d := g.date(start, 3*365)
	switch g.r.Intn(16) {
	case 0, 1:
		e.Payload = &nirv1.Event_ProgrammeVedtakRegistered{ProgrammeVedtakRegistered: &nirv1.ProgrammeVedtakRegistered{
			Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, VedtakDate: start.Proto(), FromDate: start.Proto()}}
	case 2:
		e.Payload = &nirv1.Event_ProgrammeVedtakRegistered{ProgrammeVedtakRegistered: &nirv1.ProgrammeVedtakRegistered{
			Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_UTVIDELSE, VedtakDate: d.Proto(), FromDate: d.Proto(), ExtensionMonths: int32(1 + g.r.Intn(12))}}
	case 3:
		e.Payload = &nirv1.Event_ProgrammeVedtakRegistered{ProgrammeVedtakRegistered: &nirv1.ProgrammeVedtakRegistered{
			Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_PERMISJON, VedtakDate: d.Proto(), FromDate: d.Proto(), ToDate: g.date(d, 90).Proto()}}
	case 4:
		e.Payload = &nirv1.Event_SluttmalRegistered{SluttmalRegistered: &nirv1.SluttmalRegistered{
			Sluttmal: nirv1.Sluttmal(1 + g.r.Intn(6)), Date: start.Proto()}}
	case 5:
		e.Payload = &nirv1.Event_TiltakRegistered{TiltakRegistered: &nirv1.TiltakRegistered{
			Code: nirv1.TiltakCode(1 + g.r.Intn(17)), FromDate: d.Proto(), ToDate: g.date(d, 120).Proto(), HoursPerWeek: float64(g.r.Intn(38))}}
	case 6:
		e.Payload = &nirv1.Event_TrainingVedtakRegistered{TrainingVedtakRegistered: &nirv1.TrainingVedtakRegistered{
			Scheme: nirv1.TrainingScheme(1 + g.r.Intn(4)), Type: nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING,
			VedtakDate: d.Proto(), StartDate: d.Proto()}}
	case 7:
		e.Payload = &nirv1.Event_UtdanningsbakgrunnRegistered{UtdanningsbakgrunnRegistered: &nirv1.UtdanningsbakgrunnRegistered{
			UpperSecondaryCompleted: g.r.Intn(2) == 0, Date: d.Proto()}}
	case 8:
		e.Payload = &nirv1.Event_AbsenceRegistered{AbsenceRegistered: &nirv1.AbsenceRegistered{
			Programme: nirv1.Programme(1 + g.r.Intn(2)), Type: nirv1.AbsenceType(1 + g.r.Intn(5)), FromDate: d.Proto(), ToDate: g.date(d, 60).Proto()}}
	case 9:
		e.Payload = &nirv1.Event_TrainingHoursRegistered{TrainingHoursRegistered: &nirv1.TrainingHoursRegistered{
			Type: nirv1.HoursType(1 + g.r.Intn(5)), Month: &nirv1.YearMonth{Year: int32(d.Y), Month: int32(d.M)}, Hours: float64(g.r.Intn(80))}}
	case 10:
		e.Payload = &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: genKommuner[g.r.Intn(len(genKommuner))], Date: d.Proto()}}
	case 11:
		e.Payload = &nirv1.Event_OfferRegistered{OfferRegistered: &nirv1.OfferRegistered{Programme: nirv1.Programme(1 + g.r.Intn(2)), Date: d.Proto()}}
	case 12:
		e.Payload = &nirv1.Event_DemandRegistered{DemandRegistered: &nirv1.DemandRegistered{Programme: nirv1.Programme(1 + g.r.Intn(2)), Date: d.Proto()}}
	case 13:
		e.Payload = &nirv1.Event_TerminationRegistered{TerminationRegistered: &nirv1.TerminationRegistered{
			Kind: nirv1.TerminationKind(1 + g.r.Intn(3)), Reason: nirv1.TerminationReason(1 + g.r.Intn(12)), Date: d.Proto()}}
	case 14:
		e.Payload = &nirv1.Event_ExemptionRegistered{ExemptionRegistered: &nirv1.ExemptionRegistered{Type: nirv1.ExemptionType(1 + g.r.Intn(2)), Date: d.Proto()}}
	default:
		target := prior[g.r.Intn(len(prior))].GetId()
		if g.r.Intn(4) == 0 {
			target = "unknown"
		}
		e.Payload = &nirv1.Event_EventRetracted{EventRetracted: &nirv1.EventRetracted{EventId: target}}
	}
	return e
}

// garbage returns events with random payload types and random, often missing or impossible,
// fields, for the no-panic property.
func (g *gen) garbage(prior []*nirv1.Event) *nirv1.Event {
	e := g.event(genKommuners(g), Date{Y: 1 + g.r.Intn(9998), M: time.Month(1 + g.r.Intn(12)), D: 1 + g.r.Intn(28)}, append(prior, g.ev("")))
	switch g.r.Intn(6) {
	case 0:
		e.Payload = nil
	case 1:
		e.Id = ""
	case 2:
		e.Kommune = ""
	case 3:
		e.Payload = &nirv1.Event_TerminationComputed{TerminationComputed: &nirv1.TerminationComputed{}}
	case 4:
		if len(prior) > 0 {
			e.Payload = &nirv1.Event_ComputedTerminationDeleted{ComputedTerminationDeleted: &nirv1.ComputedTerminationDeleted{ComputedEventId: prior[g.r.Intn(len(prior))].GetId()}}
		}
	case 5:
		e.Payload = &nirv1.Event_ProgrammeVedtakRegistered{ProgrammeVedtakRegistered: &nirv1.ProgrammeVedtakRegistered{
			Type: nirv1.ProgrammeVedtakType(g.r.Intn(7)), FromDate: &nirv1.Date{Year: int32(g.r.Intn(3000)), Month: int32(g.r.Intn(14)), Day: int32(g.r.Intn(33))}}}
	}
	return e
}

func genKommuners(g *gen) string {
	if g.r.Intn(5) == 0 {
		return ""
	}
	return genKommuner[g.r.Intn(len(genKommuner))]
}

// snapshot is everything observable about a State at now, for comparisons.
func snapshot(s *State, now Date) *nirv1.PersonStatus {
	ex := &Explanation{Now: now, State: s, Status: Evaluate(s, now), Due: DueTerminations(s, now)}
	return ex.Proto()
}

var propertyNows = []Date{md("2019-06-01"), md("2021-03-15"), md("2022-12-31"), md("2024-02-29"), md("2026-11-25")}

// TestProperty_FoldDeterministic: folding the same events gives the same state, and applying
// them one by one (with redelivered duplicates) gives what Fold gives (DESIGN.md: projection
// apply is deterministic, like a raft FSM).
func TestProperty_FoldDeterministic(t *testing.T) {
	t.Parallel()
	g := &gen{r: rand.New(rand.NewSource(propertySeed))}
	for i := 0; i < 120; i++ {
		evs := g.person()
		a, b := Fold("pk", evs), NewState("pk")
		for j, ev := range evs {
			b.Apply(uint64(j+1), ev)
			if j%3 == 0 {
				b.Apply(uint64(j+1), ev) // redelivery
			}
		}
		c := Fold("pk", evs)
		for _, now := range propertyNows[i%2:] {
			sa, sb, sc := snapshot(a, now), snapshot(b, now), snapshot(c, now)
			if !proto.Equal(sa, sb) || !proto.Equal(sa, sc) {
				t.Fatalf("seed %d case %d now %s: fold differs:\n%v\n%v", propertySeed, i, now, sa, sb)
			}
		}
	}
}

// TestProperty_ApplyNeverPanics: Fold must not panic on any event sequence (issue 3), however
// odd: missing payloads, impossible dates, retractions of unknown or retracted events,
// deletions of ordinary events.
func TestProperty_ApplyNeverPanics(t *testing.T) {
	t.Parallel()
	g := &gen{r: rand.New(rand.NewSource(propertySeed + 1))}
	for i := 0; i < 200; i++ {
		var evs []*nirv1.Event
		if g.r.Intn(2) == 0 {
			evs = g.person()
		}
		for j := 0; j < 20; j++ {
			evs = append(evs, g.garbage(evs))
		}
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("seed %d case %d: panic %v", propertySeed+1, i, r)
				}
			}()
			s := Fold("pk", evs)
			if len(s.Faults) > 0 || s.Broken {
				// Apply contains a panic (State.Faults), so look for one there.
				t.Fatalf("seed %d case %d: the fold panicked: %+v", propertySeed+1, i, s.Faults)
			}
			for _, now := range propertyNows {
				_ = snapshot(s, now)
				_ = Check(s, evs[len(evs)-3:], now)
			}
			_, _ = NextDue(s)
			if i%4 == 0 {
				_ = Explain(evs, propertyNows[2]).Text()
			}
		}()
	}
}

// commutes reports whether an event's position among others of its kind does not matter by
// law: facts with their own effective dates (tiltak, hours of distinct months, absence, leave,
// offers, demands, exemptions). Order does matter where the law says the later registration
// corrects the earlier one (sluttmål, utdanningsbakgrunn, terminations, hours of the same
// month) and for retractions, which must follow their target.
func commutes(ev *nirv1.Event) bool {
	switch ev.GetPayload().(type) {
	case *nirv1.Event_TiltakRegistered, *nirv1.Event_AbsenceRegistered, *nirv1.Event_OfferRegistered,
		*nirv1.Event_DemandRegistered, *nirv1.Event_ExemptionRegistered:
		return true
	case *nirv1.Event_ProgrammeVedtakRegistered:
		t := ev.GetProgrammeVedtakRegistered().GetType()
		return t == nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_PERMISJON || t == nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_UTVIDELSE
	}
	return false
}

// TestProperty_OrderSensitiveOnlyWhereLawIs: shuffling events whose order the law does not care
// about changes no deadline, status or computed termination; the later of two registrations
// that correct each other (here: terminations) wins.
func TestProperty_OrderSensitiveOnlyWhereLawIs(t *testing.T) {
	t.Parallel()
	g := &gen{r: rand.New(rand.NewSource(propertySeed + 2))}
	compared := 0
	for i := 0; i < 300; i++ {
		evs := g.person()
		// Keep retractions out: their targets must precede them.
		var base []*nirv1.Event
		for _, ev := range evs {
			if ev.GetEventRetracted() == nil {
				base = append(base, ev)
			}
		}
		// A programme event goes to the stint that exists when it is folded: with two tildeling
		// in one kommune the stream order decides which stint, as it did for the kommune that
		// registered it. Such persons are left out here.
		tildelinger := 0
		for _, ev := range base {
			if ev.GetProgrammeVedtakRegistered().GetType() == nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING {
				tildelinger++
			}
		}
		if tildelinger > 1 {
			continue
		}
		compared++
		var idx []int
		for j, ev := range base {
			if commutes(ev) {
				idx = append(idx, j)
			}
		}
		shuffled := append([]*nirv1.Event(nil), base...)
		perm := g.r.Perm(len(idx))
		for j, p := range perm {
			shuffled[idx[j]] = base[idx[p]]
		}
		a, b := Fold("pk", base), Fold("pk", shuffled)
		for _, now := range propertyNows {
			sa, sb := snapshot(a, now), snapshot(b, now)
			// Lists kept in stream order (tiltak, leave) are not in the snapshot; deadlines are.
			if !proto.Equal(sa, sb) {
				t.Fatalf("seed %d case %d now %s: order of commuting events changed the result:\n%v\n%v", propertySeed+2, i, now, sa, sb)
			}
		}
	}

	if compared < 100 {
		t.Fatalf("only %d persons compared; the generator is too weak", compared)
	}

	// Order-sensitive by law (DOMAIN.md 2.5, Product decisions 5): the later termination wins.
	person := evPerson("e1", "0301", "1990-05-01", "2022-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28)
	prog := evProgramme("e2", "0301", nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, "2022-03-01")
	work := evTermination("e3", "0301", nirv1.TerminationReason_TERMINATION_REASON_ARBEID, "2023-01-31")
	school := evTermination("e4", "0301", nirv1.TerminationReason_TERMINATION_REASON_UTDANNING_VGO, "2023-01-31")
	ab := Fold("pk", []*nirv1.Event{person, prog, work, school}).Programmes[0].Termination.Reason
	ba := Fold("pk", []*nirv1.Event{person, prog, school, work}).Programmes[0].Termination.Reason
	if ab != nirv1.TerminationReason_TERMINATION_REASON_UTDANNING_VGO || ba != nirv1.TerminationReason_TERMINATION_REASON_ARBEID {
		t.Errorf("later termination should win: got %v and %v", ab, ba)
	}
}

// TestProperty_LeaveNeverShortens: adding approved leave (DOMAIN.md 3.2, 2.6) never moves a
// norsk deadline or a programme's latest end earlier, and every deadline is on or after its
// start.
func TestProperty_LeaveNeverShortens(t *testing.T) {
	t.Parallel()
	g := &gen{r: rand.New(rand.NewSource(propertySeed + 3))}
	checked := 0
	for i := 0; i < 400; i++ {
		evs := g.person()
		before := Fold("pk", evs)
		k := before.Person.SettlementKommune
		leave := g.ev(k)
		from := g.date(before.Person.SettlementDate, 3*365)
		to := g.date(from, 200)
		if g.r.Intn(2) == 0 {
			leave.Payload = &nirv1.Event_AbsenceRegistered{AbsenceRegistered: &nirv1.AbsenceRegistered{
				Programme: nirv1.Programme(1 + g.r.Intn(2)), Type: nirv1.AbsenceType_ABSENCE_TYPE_PERMISJON_ANNET, FromDate: from.Proto(), ToDate: to.Proto()}}
		} else {
			leave.Payload = &nirv1.Event_TrainingVedtakRegistered{TrainingVedtakRegistered: &nirv1.TrainingVedtakRegistered{
				Type: nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_PERMISJON, StartDate: from.Proto(), EndDate: to.Proto()}}
		}
		after := Fold("pk", append(append([]*nirv1.Event(nil), evs...), leave))
		for _, now := range propertyNows {
			db, da := Evaluate(before, now).Deadlines, Evaluate(after, now).Deadlines
			if len(db) != len(da) {
				t.Fatalf("seed %d case %d: leave changed the set of deadlines", propertySeed+3, i)
			}
			for j := range db {
				for _, d := range []Deadline{db[j], da[j]} {
					if !d.Date.IsZero() && d.Date.Before(d.Start) {
						t.Fatalf("seed %d case %d: deadline %s before its start: %s", propertySeed+3, i, d.Date, DeadlineText(d))
					}
				}
				if db[j].Date.IsZero() || da[j].Date.IsZero() {
					continue
				}
				checked++
				if da[j].Date.Before(db[j].Date) {
					t.Fatalf("seed %d case %d now %s: leave shortened %s: %s -> %s", propertySeed+3, i, now, db[j].Kind, db[j].Date, da[j].Date)
				}
			}
		}
	}
	if checked < 1000 {
		t.Fatalf("only %d deadline pairs compared; the generator is too weak", checked)
	}
}

// TestProperty_NextDueAndNeverTwice: NextDue names the first date on which DueTerminations is
// not empty; once the due terminations are appended nothing is due again, and once deleted they
// are never computed again (DOMAIN.md Product decisions 5).
func TestProperty_NextDueAndNeverTwice(t *testing.T) {
	t.Parallel()
	g := &gen{r: rand.New(rand.NewSource(propertySeed + 4))}
	fired := 0
	for i := 0; i < 400; i++ {
		evs := g.person()
		s := Fold("pk", evs)
		next, ok := NextDue(s)
		if !ok {
			for _, now := range propertyNows {
				if due := DueTerminations(s, now); len(due) > 0 {
					t.Fatalf("seed %d case %d: NextDue says none but %d due at %s", propertySeed+4, i, len(due), now)
				}
			}
			continue
		}
		if len(DueTerminations(s, next)) == 0 {
			t.Fatalf("seed %d case %d: nothing due at NextDue %s", propertySeed+4, i, next)
		}
		if due := DueTerminations(s, next.AddDays(-1)); len(due) > 0 {
			t.Fatalf("seed %d case %d: %s already due before NextDue %s", propertySeed+4, i, TerminationText(due[0]), next)
		}
		fired++
		due := DueTerminations(s, next)
		for _, ev := range due {
			if !ValidULID(ev.GetId()) || ev.GetActor().GetSubject() != RegelmotorSubject || ev.GetActor().GetRole() != nirv1.ActorRole_ACTOR_ROLE_SYSTEM {
				t.Fatalf("bad computed event %v", ev)
			}
		}
		all := append(append([]*nirv1.Event(nil), evs...), due...)
		if again := DueTerminations(Fold("pk", all), next.AddDays(400)); hasSameProgramme(again, due) {
			t.Fatalf("seed %d case %d: computed twice: %s", propertySeed+4, i, TerminationText(again[0]))
		}
		for _, ev := range due {
			del := g.ev(ev.GetKommune())
			del.Payload = &nirv1.Event_ComputedTerminationDeleted{ComputedTerminationDeleted: &nirv1.ComputedTerminationDeleted{ComputedEventId: ev.GetId()}}
			all = append(all, del)
		}
		for _, ev := range DueTerminations(Fold("pk", all), next.AddDays(2000)) {
			for _, d := range due {
				if ev.GetKommune() == d.GetKommune() && proto.Equal(ev.GetTerminationComputed().GetProgrammeStart(), d.GetTerminationComputed().GetProgrammeStart()) &&
					ev.GetTerminationComputed().GetRule() == d.GetTerminationComputed().GetRule() {
					t.Fatalf("seed %d case %d: deleted computed termination computed again: %s", propertySeed+4, i, TerminationText(ev))
				}
			}
		}
	}
	if fired < 50 {
		t.Fatalf("only %d persons had a computed termination; the generator is too weak", fired)
	}
}

func hasSameProgramme(a, b []*nirv1.Event) bool {
	for _, x := range a {
		for _, y := range b {
			if x.GetKommune() == y.GetKommune() && proto.Equal(x.GetTerminationComputed().GetProgrammeStart(), y.GetTerminationComputed().GetProgrammeStart()) {
				return true
			}
		}
	}
	return false
}

// BenchmarkFold measures folding one person of about 15 events (the projections' and nird's
// per-person cost).
func BenchmarkFold(b *testing.B) {
	g := &gen{r: rand.New(rand.NewSource(propertySeed))}
	persons := make([][]*nirv1.Event, 64)
	for i := range persons {
		persons[i] = g.person()
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = Fold("pk", persons[i%len(persons)])
	}
}

// BenchmarkCheck measures checking one new event against a folded person (nird's append path).
func BenchmarkCheck(b *testing.B) {
	g := &gen{r: rand.New(rand.NewSource(propertySeed))}
	type item struct {
		s  *State
		ev *nirv1.Event
	}
	items := make([]item, 64)
	for i := range items {
		evs := g.person()
		items[i] = item{Fold("pk", evs[:len(evs)-1]), evs[len(evs)-1]}
	}
	now := md("2024-06-01")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		it := items[i%len(items)]
		_ = Check(it.s, []*nirv1.Event{it.ev}, now)
	}
}

// retractionPairs is a person of n absences, each retracted by the next event: a history any
// kommune can store for its own person (helper-121's audit, 2026-12-07).
func retractionPairs(n int) []*nirv1.Event {
	events := []*nirv1.Event{withPayload("reg", "0301", &nirv1.PersonRegistered{})}
	for i := range n {
		id := fmt.Sprintf("abs%d", i)
		events = append(events,
			withPayload(id, "0301", &nirv1.AbsenceRegistered{Hours: 1}),
			withPayload(fmt.Sprintf("ret%d", i), "0301", &nirv1.EventRetracted{EventId: id}))
	}
	return events
}

// BenchmarkFold_RetractionPairs folds retractionPairs: Fold re-folds once for all the
// retractions (ApplyAll), so the time per op should about double with n
// (`go test -run '^$' -bench BenchmarkFold_RetractionPairs -benchtime 3x ./rules`); it grew
// fourfold when every retraction re-folded the whole log.
func BenchmarkFold_RetractionPairs(b *testing.B) {
	for _, pairs := range []int{625, 1250, 2500, 5000} {
		events := retractionPairs(pairs)
		b.Run(fmt.Sprintf("events=%d", len(events)), func(b *testing.B) {
			for b.Loop() {
				_ = Fold("pk", events)
			}
		})
	}
}

// programmePairs is a person of n programmes in one kommune, each a tildeling ended by a
// termination the next day, and a retraction of the first termination: a history any kommune
// can store for its own person (review, 2026-12-07).
func programmePairs(n int) []*nirv1.Event {
	evs := []*nirv1.Event{evPerson("reg", "0301", "1990-05-01", "2010-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28)}
	d := md("2010-02-01")
	for i := range n {
		evs = append(evs, evProgramme(fmt.Sprintf("t%d", i), "0301", nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, d.String()),
			evTermination(fmt.Sprintf("e%d", i), "0301", nirv1.TerminationReason_TERMINATION_REASON_ARBEID, d.AddDays(1).String()))
		d = d.AddDays(2)
	}
	return append(evs, withPayload("ret", "0301", &nirv1.EventRetracted{EventId: "e0"}))
}

// BenchmarkFold_Programmes folds programmePairs. Settling the state after each event looked
// at every programme, and so did finding an event's programme: 29–31, 84–96 and 327–376 ms
// for 1 250, 2 500 and 5 000 programmes; settling only what an event touched (State.touch)
// and looking from the latest programme back, 5.6–9.0, 8.4–11.4 and 18.8–23.3 ms (`go test
// -run '^$' -bench 'BenchmarkFold_(Programmes|Moves)' -benchtime 3x ./rules`, the test
// binaries of c6cf971 and of this change in turns, three each, on a quiet machine,
// 2026-12-07 18:16 UTC). A move still settles every programme with a computed
// termination, and an event dated before every programme's start looks at every programme
// (BenchmarkFold_StoppedProgrammesThenMoves), so ingest's retraction bound still weighs
// programmes.
func BenchmarkFold_Programmes(b *testing.B) {
	for _, n := range []int{1250, 2500, 5000} {
		events := programmePairs(n)
		b.Run(fmt.Sprintf("programmes=%d", n), func(b *testing.B) {
			for b.Loop() {
				// The first termination retracted, the second tildeling joins the first.
				if s := Fold("pk", events); len(s.Programmes) != n-1 {
					b.Fatalf("%d programmes, want %d", len(s.Programmes), n-1)
				}
			}
		})
	}
}
