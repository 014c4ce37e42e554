package rules

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// hostileHistories are histories of about n events of one or two kinds that one kommune may
// store for its own person, by name: many programmes, moves, absences, leave, vedtak, tiltak,
// sluttmål, training vedtak, hours, norskmål, utdanningsbakgrunn, retractions, some in
// reverse date order or on one date, some after many programmes or vedtak.
func hostileHistories(n int) map[string][]*nirv1.Event {
	reg := func() []*nirv1.Event {
		return []*nirv1.Event{evPerson("reg", "0301", "1990-05-01", "2010-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28)}
	}
	one := func() []*nirv1.Event {
		return append(reg(), evProgramme("t", "0301", nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, "2010-02-01"))
	}
	h := map[string][]*nirv1.Event{}
	h["programmes"] = programmePairs(n / 2)
	h["movedProgrammes"] = movedProgrammes(n / 4)
	h["moves"] = movePairs(n)
	d0 := md("2010-02-01")
	each := func(base []*nirv1.Event, k int, mk func(i int) *nirv1.Event) []*nirv1.Event {
		for i := range k {
			base = append(base, mk(i))
		}
		return base
	}
	h["absences"] = each(one(), n, func(i int) *nirv1.Event {
		d := d0.AddDays(i % 900)
		return withPayload(fmt.Sprintf("a%d", i), "0301", &nirv1.AbsenceRegistered{Type: nirv1.AbsenceType_ABSENCE_TYPE_FRAVAER_UGYLDIG, FromDate: d.Proto(), ToDate: d.Proto(), Hours: 1})
	})
	h["leaves"] = each(one(), n, func(i int) *nirv1.Event {
		d := d0.AddDays(i)
		return withPayload(fmt.Sprintf("a%d", i), "0301", &nirv1.AbsenceRegistered{Type: nirv1.AbsenceType_ABSENCE_TYPE_PERMISJON_SYKDOM, FromDate: d.Proto(), ToDate: d.Proto()})
	})
	h["leavesBackwards"] = each(one(), n, func(i int) *nirv1.Event {
		d := d0.AddDays(n - i)
		return withPayload(fmt.Sprintf("a%d", i), "0301", &nirv1.AbsenceRegistered{Type: nirv1.AbsenceType_ABSENCE_TYPE_PERMISJON_SYKDOM, FromDate: d.Proto(), ToDate: d.AddDays(3).Proto()})
	})
	h["leaveVedtak"] = each(one(), n, func(i int) *nirv1.Event {
		d := d0.AddDays(i)
		e := evProgramme(fmt.Sprintf("p%d", i), "0301", nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_PERMISJON, d.String())
		e.GetProgrammeVedtakRegistered().ToDate = d.AddDays(1).Proto()
		return e
	})
	h["leaveVedtakApart"] = each(one(), n, func(i int) *nirv1.Event { // each before the last, none adjoining
		d := d0.AddDays(2 * (n - i))
		e := evProgramme(fmt.Sprintf("p%d", i), "0301", nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_PERMISJON, d.String())
		e.GetProgrammeVedtakRegistered().ToDate = d.Proto()
		return e
	})
	h["extensions"] = each(one(), n, func(i int) *nirv1.Event {
		e := evProgramme(fmt.Sprintf("u%d", i), "0301", nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_UTVIDELSE, d0.AddDays(i).String())
		e.GetProgrammeVedtakRegistered().ExtensionMonths = 1
		return e
	})
	h["stans"] = each(one(), n, func(i int) *nirv1.Event {
		return evProgramme(fmt.Sprintf("s%d", i), "0301", nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_STANS, d0.AddDays(n-i).String())
	})
	h["tiltak"] = each(one(), n, func(i int) *nirv1.Event {
		d := d0.AddDays(i)
		return withPayload(fmt.Sprintf("k%d", i), "0301", &nirv1.TiltakRegistered{Code: nirv1.TiltakCode_TILTAK_CODE_KURS, FromDate: d.Proto(), ToDate: d.AddDays(30).Proto(), HoursPerWeek: 10})
	})
	h["sluttmal"] = each(one(), n, func(i int) *nirv1.Event {
		return withPayload(fmt.Sprintf("g%d", i), "0301", &nirv1.SluttmalRegistered{Sluttmal: nirv1.Sluttmal_SLUTTMAL_ARBEID_VGO, Date: d0.AddDays(i).Proto()})
	})
	h["trainingVedtak"] = each(reg(), n, func(i int) *nirv1.Event {
		typ := nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING
		if i%2 == 1 {
			typ = nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_STANS
		}
		d := d0.AddDays(i)
		return withPayload(fmt.Sprintf("v%d", i), "0301", &nirv1.TrainingVedtakRegistered{Scheme: nirv1.TrainingScheme_TRAINING_SCHEME_RETT_OG_PLIKT, Type: typ, VedtakDate: d.Proto(), StartDate: d.Proto()})
	})
	h["trainingLeave"] = each(append(reg(), withPayload("tv", "0301", &nirv1.TrainingVedtakRegistered{Scheme: nirv1.TrainingScheme_TRAINING_SCHEME_RETT_OG_PLIKT, Type: nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING, VedtakDate: d0.Proto(), StartDate: d0.Proto()})), n, func(i int) *nirv1.Event {
		d := d0.AddDays(n - i)
		return withPayload(fmt.Sprintf("v%d", i), "0301", &nirv1.TrainingVedtakRegistered{Scheme: nirv1.TrainingScheme_TRAINING_SCHEME_RETT_OG_PLIKT, Type: nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_PERMISJON, VedtakDate: d.Proto(), StartDate: d.Proto(), EndDate: d.AddDays(2).Proto()})
	})
	h["hours"] = each(reg(), n, func(i int) *nirv1.Event {
		m := d0.AddDays(31 * (i / 5))
		return withPayload(fmt.Sprintf("h%d", i), "0301", &nirv1.TrainingHoursRegistered{Type: nirv1.HoursType(1 + i%5), Month: &nirv1.YearMonth{Year: int32(m.Time().Year()), Month: int32(m.Time().Month())}, Hours: 5})
	})
	h["norskmal"] = each(reg(), n, func(i int) *nirv1.Event {
		return withPayload(fmt.Sprintf("n%d", i), "0301", &nirv1.NorskmalRegistered{Listening: nirv1.CefrLevel_CEFR_LEVEL_B1, Reading: nirv1.CefrLevel_CEFR_LEVEL_B1, Writing: nirv1.CefrLevel_CEFR_LEVEL_B1, Speaking: nirv1.CefrLevel_CEFR_LEVEL_B1, Date: d0.AddDays(n - i).Proto()})
	})
	h["utdanning"] = each(one(), n, func(i int) *nirv1.Event {
		return withPayload(fmt.Sprintf("u%d", i), "0301", &nirv1.UtdanningsbakgrunnRegistered{UpperSecondaryCompleted: i%2 == 0, Date: d0.AddDays(n - i).Proto()})
	})
	h["stoppedComputed"] = reg()
	for i := range n / 3 {
		d := d0.AddDays(2 * i)
		stop := d.AddDays(1)
		h["stoppedComputed"] = append(h["stoppedComputed"], evProgramme(fmt.Sprintf("t%d", i), "0301", nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, d.String()),
			evProgramme(fmt.Sprintf("s%d", i), "0301", nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_STANS, stop.String()),
			withPayload(fmt.Sprintf("c%d", i), "0301", &nirv1.TerminationComputed{Rule: nirv1.TerminationRule_TERMINATION_RULE_STANS,
				Reason: nirv1.TerminationReason_TERMINATION_REASON_STANSET, Date: stop.Proto(), ProgrammeStart: d.Proto()}))
	}
	h["programmesThenMoves"] = append(programmePairs(n / 4)[:n/2+1], movePairs(n / 2)[1:]...)
	h["programmesThenAbsences"] = slices.Concat(h["programmes"][:n/2+1], each(nil, n/2, func(i int) *nirv1.Event {
		d := d0.AddDays(i % (n / 2))
		return withPayload(fmt.Sprintf("a%d", i), "0301", &nirv1.AbsenceRegistered{Type: nirv1.AbsenceType_ABSENCE_TYPE_PERMISJON_SYKDOM, FromDate: d.Proto(), ToDate: d.Proto()})
	}))
	h["programmesThenTiltak"] = slices.Concat(h["programmes"][:n/2+1], each(nil, n/2, func(i int) *nirv1.Event {
		d := d0.AddDays(i % (n / 2))
		return withPayload(fmt.Sprintf("k%d", i), "0301", &nirv1.TiltakRegistered{Code: nirv1.TiltakCode_TILTAK_CODE_KURS, FromDate: d.Proto(), ToDate: d.Proto(), HoursPerWeek: 10})
	}))
	h["programmesThenHours"] = slices.Concat(h["programmes"][:n/2+1], h["hours"][1:n/2+1])
	h["retractions"] = retractionPairs(n / 2)
	h["trainingThenHours"] = slices.Concat(h["trainingVedtak"][:n/2+1], h["hours"][1:n/2+1])
	h["hoursThenTraining"] = slices.Concat(h["hours"][:n/2+1], h["trainingVedtak"][1:n/2+1])
	return h
}

// BenchmarkPerPerson_Hostile runs what nird computes per person (the fold, Evaluate, the
// regelmotor's functions, the reach, retention and ids, ExplainStored, and the check of one
// and of 1 000 new events) on each of hostileHistories, for n of 2 000, 4 000 and 8 000 (or
// PERPERSON_N alone): `PERPERSON_N=8000 go test -run '^$' -bench BenchmarkPerPerson_Hostile
// -benchtime 1x ./rules`. It found, on 2026-12-07 under a load of 9-16: the training
// periods (0.1-0.5 s each Evaluate, BenchmarkTrainingPeriods), the check of 1 000 hours
// events (35 s), of 1 000 sluttmål or programme vedtak (1.5-4.6 s,
// BenchmarkCheck_ProgrammeLength). Left: 1 000 leave vedtak on a programme of 7 000 (1.3-1.6
// s, its latest end sorted all its leave for each, leaveDays; with the programme's leaveIndex
// 28-39 ms against 1.0-1.3 s for the build before it, and 59-91 ms against 2.4-3.1 s for 1
// 000 of none adjoining in reverse date order, leaveVedtakApart, whose fold takes 3-15 ms in
// either; in turns under a load of 12-13, helper-146) and 1 000 retractions (1.8-2.4 s,
// bounded by ingest's MaxRefoldEvents: each re-folds the person, linear in its events, and
// nothing in it grows faster, ingest's BenchmarkServiceAppend_Retractions); everything else
// takes under 50 ms at 8 000 events.
func BenchmarkPerPerson_Hostile(b *testing.B) {
	now := md("2030-06-01")
	for _, n := range benchSizes() {
		hs := hostileHistories(n)
		names := make([]string, 0, len(hs))
		for k := range hs {
			names = append(names, k)
		}
		slices.Sort(names)
		for _, name := range names {
			evs := hs[name]
			s := Fold("pk", evs)
			prior := Fold("pk", evs[:len(evs)-1])
			priorK := Fold("pk", evs[:len(evs)-min(1000, len(evs)/2)])
			fns := map[string]func(){
				"Fold":            func() { Fold("pk", evs) },
				"Evaluate":        func() { Evaluate(s, now) },
				"DueTerminations": func() { DueTerminations(s, now) },
				"NextDue":         func() { NextDue(s) },
				"HoursGoals":      func() { HoursGoals(s, now) },
				"TrainingPeriods": func() { TrainingPeriods(s) },
				"Residences":      func() { Residences(s) },
				"ReachOf":         func() { ReachOf(s) },
				"LastActivity":    func() { LastActivity(s) },
				"ErasureDue":      func() { ErasureDue(s, 10, now) },
				"HeldIDs":         func() { HeldIDs(s) },
				"MergeDepth":      func() { MergeDepth(s) },
				"ExplainStored":   func() { ExplainStored("pk", evs, now) },
				"Check1":          func() { Check(prior, evs[len(evs)-1:], now) },
				"Check1000":       func() { Check(priorK, evs[len(evs)-min(1000, len(evs)/2):], now) },
				"CheckApply1000":  func() { CheckApply(priorK.Copy(), evs[len(evs)-min(1000, len(evs)/2):], now) },
				"InactiveFromAll": func() {
					for _, p := range s.Programmes {
						InactiveFrom(s, p)
					}
				},
			}
			fnames := make([]string, 0, len(fns))
			for k := range fns {
				fnames = append(fnames, k)
			}
			slices.Sort(fnames)
			for _, fn := range fnames {
				b.Run(fmt.Sprintf("%s/%s/n=%d", name, fn, n), func(b *testing.B) {
					for b.Loop() {
						fns[fn]()
					}
				})
			}
		}
	}
}

func benchSizes() []int {
	if v := os.Getenv("PERPERSON_N"); v != "" {
		n, _ := strconv.Atoi(v)
		return []int{n}
	}
	return []int{2000, 4000, 8000}
}
