package projections

import (
	"fmt"
	"math/rand"
	"reflect"
	"slices"
	"testing"
	"time"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// oldCountedTrainingPeriods is countedTrainingPeriods as it was, each tildeling looking at
// every move after its start: the reference the stay chains must agree with.
func oldCountedTrainingPeriods(st *rules.State) []rules.TrainingPeriod {
	var deadline6A rules.Date
	if d, ok := rules.NorskDeadline(st, rules.Date{}); ok && st.Law == nirv1.Law_LAW_IL_6A &&
		d.State != nirv1.DeadlineState_DEADLINE_STATE_CANNOT_COMPUTE {
		deadline6A = d.Date
	}
	moves := slices.Clone(st.Moves)
	slices.SortStableFunc(moves, func(a, b rules.Move) int { return a.Date.Compare(b.Date) })
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
		// stay appends the part of p from from to to (zero: p's end), a later stay of an
		// open tildeling within its 4 statistical years.
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
		start, in := p.From, true
		for _, m := range moves {
			if m.Date.Before(p.From) {
				continue
			}
			if !p.To.IsZero() && p.To.Before(m.Date) {
				break
			}
			here, there := rules.SameKommune(m.From, p.Kommune), rules.SameKommune(m.To, p.Kommune)
			switch {
			case in && here && !there:
				stay(start, m.Date)
				in = false
			case !in && !here && there:
				start, in = m.Date, true
			}
		}
		if in {
			stay(start, rules.Date{})
		}
	}
	return out
}

// countedKeys is what the statistics and the person list take of counted periods
// (contributions, rowYears): the kommune, the data years (trainingYears) and whether the
// period has a start, each first time in order.
func countedKeys(ps []rules.TrainingPeriod) []string {
	var out []string
	for _, p := range ps {
		first, last := trainingYears(p)
		if k := fmt.Sprintf("%s %d-%d %t", p.Kommune, first, last, p.From.IsZero()); !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

// periodSet is the periods by kommune and dates, each once.
func periodSet(ps []rules.TrainingPeriod) map[[3]string]bool {
	out := map[[3]string]bool{}
	for _, p := range ps {
		out[[3]string{p.Kommune, p.From.String(), p.To.String()}] = true
	}
	return out
}

// randomTrainingMoves is a person (introduksjonsloven or 6A) of up to 30 training vedtak
// (tildeling, stans; every scheme; some with an end date) in four kommuner, two of them one
// kommune renumbered (3025 Asker, 3203 from 2024), and up to 40 moves between them and
// elsewhere, many on the same days, some without a date.
func randomTrainingMoves(r *rand.Rand) *rules.State {
	base := rules.MustParseDate("2021-06-01")
	kommuner := []string{"0301", "1103", "3025", "3203", "4601"}
	permit := base.Proto()
	if r.Intn(2) == 0 {
		permit = rules.MustParseDate("2019-01-10").Proto()
	}
	evs := []*nirv1.Event{hostileEv("reg", &nirv1.PersonRegistered{BirthDate: rules.MustParseDate("1990-05-01").Proto(), PermitDate: permit, ArrivalDate: permit,
		PermitBasis: nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, SettlementDate: permit, SettlementKommune: "0301", SettledByAgreement: true})}
	day := func() rules.Date { return base.AddDays(r.Intn(1500)) }
	for i := range r.Intn(31) {
		d := day()
		v := &nirv1.TrainingVedtakRegistered{Scheme: nirv1.TrainingScheme(1 + r.Intn(4)), Type: nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING,
			VedtakDate: d.Proto(), StartDate: d.Proto()}
		if r.Intn(5) == 0 {
			v.Type = nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_STANS
		}
		if r.Intn(3) == 0 {
			v.EndDate = d.AddDays(r.Intn(900)).Proto()
		}
		e := hostileEv(fmt.Sprintf("v%d", i), v)
		e.Kommune = kommuner[r.Intn(len(kommuner))]
		evs = append(evs, e)
	}
	for i := range r.Intn(41) {
		m := &nirv1.PersonMoved{ToKommune: kommuner[r.Intn(len(kommuner))], Date: day().Proto()}
		if r.Intn(15) == 0 {
			m.Date = nil
		}
		e := hostileEv(fmt.Sprintf("m%d", i), m)
		e.Kommune = m.ToKommune
		evs = append(evs, e)
	}
	r.Shuffle(len(evs)-1, func(i, j int) { evs[i+1], evs[j+1] = evs[j+1], evs[i+1] })
	return rules.Fold("pk", evs)
}

// TestProperty_CountedTrainingPeriodsAsBefore: the stay chains give the periods of looking at
// every move for every tildeling, but each stay that ends with a move out once per kommune:
// the same periods, and the same kommuner and years in the same order of first appearance,
// which is all the statistics and the person list take of them.
func TestProperty_CountedTrainingPeriodsAsBefore(t *testing.T) {
	r := rand.New(rand.NewSource(20261207))
	fewer := 0
	for i := range 3000 {
		st := randomTrainingMoves(r)
		got, want := countedTrainingPeriods(st), oldCountedTrainingPeriods(st)
		if !reflect.DeepEqual(countedKeys(got), countedKeys(want)) || !reflect.DeepEqual(periodSet(got), periodSet(want)) {
			t.Fatalf("case %d: counted periods\n%v\nwant\n%v\nmoves %v", i, got, want, st.Moves)
		}
		if len(got) < len(want) {
			fewer++
		}
	}
	if fewer < 100 {
		t.Fatalf("only %d cases where a stay was left out: the generator must make them", fewer)
	}
}
