package rules

import (
	"fmt"
	"math/rand"
	"reflect"
	"testing"
	"time"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// oldTrainingPeriods is eachTrainingPeriod as it was, each tildeling looking at every stans:
// the reference the faster one must agree with.
func oldTrainingPeriods(s *State) []TrainingPeriod {
	var stops []Date
	for _, tv := range s.Training.Vedtak {
		if tv.Type == nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_STANS && !tv.Start.IsZero() {
			stops = append(stops, tv.Start)
		}
	}
	var out []TrainingPeriod
	for i := range s.Training.Vedtak {
		tv := &s.Training.Vedtak[i]
		if tv.Type != nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING || tv.Start.IsZero() {
			continue
		}
		p := Period{From: tv.Start, To: tv.End}
		for _, st := range stops {
			if !st.Before(p.From) && (p.To.IsZero() || st.Before(p.To)) {
				p.To = st
			}
		}
		out = append(out, TrainingPeriod{Kommune: tv.Kommune, Scheme: tv.Scheme, Period: p})
	}
	return out
}

// oldTrainingStart is trainingStart as it was, looking up every month of hours.
func oldTrainingStart(s *State) Date {
	var started Date
	for _, tv := range s.Training.Vedtak {
		if tv.Type == nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING && !tv.Start.IsZero() &&
			(started.IsZero() || tv.Start.Before(started)) {
			started = tv.Start
		}
	}
	var periods []Period
	for _, p := range oldTrainingPeriods(s) {
		periods = append(periods, p.Period)
	}
	for k, h := range s.Training.Hours {
		if h <= 0 {
			continue
		}
		m, ok := NewDate(k.Year, k.Month, 1)
		if !ok {
			continue
		}
		m = hoursStart(periods, m)
		if started.IsZero() || m.Before(started) {
			started = m
		}
	}
	return started
}

// randomTraining is a state of up to 40 training vedtak (tildeling, stans and others, some
// without a start, ends before, on or after their start, many on the same days) and up to 12
// months of hours (some zero or negative, some months invalid).
func randomTraining(r *rand.Rand) *State {
	s := NewState("pk")
	base := md("2020-01-01")
	day := func() Date {
		if r.Intn(8) == 0 {
			return Date{}
		}
		return base.AddDays(r.Intn(120))
	}
	types := []nirv1.TrainingVedtakType{nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING, nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_STANS,
		nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_PERMISJON, nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_AVSLAG}
	for i := range r.Intn(41) {
		s.Training.Vedtak = append(s.Training.Vedtak, TrainingVedtak{EventID: fmt.Sprintf("v%d", i), Kommune: []string{"0301", "1103"}[r.Intn(2)],
			Type: types[r.Intn(len(types))], Start: day(), End: day()})
	}
	s.Training.Hours = map[HoursKey]float64{}
	for range r.Intn(13) {
		m := base.AddDays(r.Intn(150))
		k := HoursKey{Year: m.Y, Month: time.Month(m.M), Kommune: "0301"}
		if r.Intn(10) == 0 {
			k.Month = 13
		}
		s.Training.Hours[k] = float64(r.Intn(5) - 1)
	}
	return s
}

// TestProperty_TrainingPeriodsAsBefore: the periods (each tildeling to its first stans on or
// after its start, found by binary search), whether they cover a month (trainingCovers,
// without building them) and the training start (from the earliest month of hours only) are
// those of looking at every stans and every month.
func TestProperty_TrainingPeriodsAsBefore(t *testing.T) {
	r := rand.New(rand.NewSource(propertySeed))
	covered := map[bool]int{}
	for i := range 5000 {
		s := randomTraining(r)
		if got, want := TrainingPeriods(s), oldTrainingPeriods(s); !reflect.DeepEqual(got, want) {
			t.Fatalf("case %d: periods\n%v\nwant\n%v\nvedtak %v", i, got, want, s.Training.Vedtak)
		}
		for range 8 {
			first := md("2019-12-01").AddMonths(r.Intn(8))
			month := Period{From: first, To: first.AddMonths(1).AddDays(-1)}
			want := false
			for _, p := range oldTrainingPeriods(s) {
				want = want || (!p.From.After(month.To) && (p.To.IsZero() || !p.To.Before(month.From)))
			}
			if got := trainingCovers(s, month); got != want {
				t.Fatalf("case %d: training covers %s: %t, want %t; vedtak %v", i, first, got, want, s.Training.Vedtak)
			}
			covered[want]++
		}
		if got, want := trainingStart(s), oldTrainingStart(s); got != want {
			t.Fatalf("case %d: training started %s, want %s; vedtak %v, hours %v", i, got, want, s.Training.Vedtak, s.Training.Hours)
		}
	}
	if covered[true] < 1000 || covered[false] < 1000 {
		t.Fatalf("months covered %d, not %d: the generator must make both", covered[true], covered[false])
	}
}

// BenchmarkTrainingPeriods: a kommune's person of n training tildeling and stans vedtak
// (alternating, a day apart), then n hours events (four types a month, the first 24 months again and again); each of the n
// hours events of an append checked against the periods (checkHours). Each tildeling looked
// at every stans, and the training start looked up every month of hours: under a load of 12
// (`go test -run '^$' -bench BenchmarkTrainingPeriods -benchtime 1x ./rules`, 2026-12-07
// 19:57 UTC) the check of 1 000 hours events took 1.9, 5.0 and 18.3 s for 1 000, 2 000 and
// 4 000 vedtak, Evaluate 2.9, 43 and 35 ms (0.35-0.49 s with 4 000 distinct months of hours,
// BenchmarkPerPerson_Hostile's trainingThenHours and hoursThenTraining of 8 000 events) and
// HoursGoals 1.2, 4.1 and 30 ms. Now 0.18, 0.42 and 0.53 s; 0.28, 0.42 and 1.9 ms; 0.08,
// 0.17 and 2.1 ms. The check then sorted every stans for each hours event; without building
// the periods (trainingCovers), 5.2, 10 and 22 ms (load 10, 20:35 UTC).
func BenchmarkTrainingPeriods(b *testing.B) {
	for _, n := range []int{1000, 2000, 4000} {
		evs := []*nirv1.Event{evPerson("reg", "0301", "1990-05-01", "2010-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28)}
		d := md("2022-02-01")
		for i := range n {
			typ := nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING
			if i%2 == 1 {
				typ = nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_STANS
			}
			evs = append(evs, withPayload(fmt.Sprintf("v%d", i), "0301", &nirv1.TrainingVedtakRegistered{Scheme: nirv1.TrainingScheme_TRAINING_SCHEME_RETT_OG_PLIKT,
				Type: typ, VedtakDate: d.AddDays(i).Proto(), StartDate: d.AddDays(i).Proto()}))
		}
		var hours []*nirv1.Event
		for i := range n {
			m := d.AddMonths(i / 4 % 24)
			hours = append(hours, withPayload(fmt.Sprintf("h%d", i), "0301", &nirv1.TrainingHoursRegistered{Type: nirv1.HoursType(1 + i%4),
				Month: &nirv1.YearMonth{Year: int32(m.Y), Month: int32(m.M)}, Hours: 5}))
		}
		s := Fold("pk", append(evs, hours...))
		now := md("2040-06-01")
		b.Run(fmt.Sprintf("Evaluate/vedtak=%d", n), func(b *testing.B) {
			for b.Loop() {
				if st := Evaluate(s, now); len(st.Deadlines) == 0 {
					b.Fatal("no deadlines")
				}
			}
		})
		b.Run(fmt.Sprintf("HoursGoals/vedtak=%d", n), func(b *testing.B) {
			for b.Loop() {
				HoursGoals(s, now)
			}
		})
		before := Fold("pk", evs)
		b.Run(fmt.Sprintf("CheckHours/vedtak=%d", n), func(b *testing.B) {
			for b.Loop() {
				if rs := Check(before, hours[:min(n, 1000)], now); len(rs) != 0 {
					b.Fatalf("refused: %v", rs[0])
				}
			}
		})
	}
}
