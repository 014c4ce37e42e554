package projections

import (
	"fmt"
	"slices"
	"testing"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// hostileEv is an event of kommune 0301 with payload.
func hostileEv(id string, payload any) *nirv1.Event {
	e := &nirv1.Event{Id: id, Kommune: "0301"}
	switch p := payload.(type) {
	case *nirv1.PersonRegistered:
		e.Payload = &nirv1.Event_PersonRegistered{PersonRegistered: p}
	case *nirv1.PersonMoved:
		e.Payload = &nirv1.Event_PersonMoved{PersonMoved: p}
	case *nirv1.TrainingVedtakRegistered:
		e.Payload = &nirv1.Event_TrainingVedtakRegistered{TrainingVedtakRegistered: p}
	case *nirv1.ProgrammeVedtakRegistered:
		e.Payload = &nirv1.Event_ProgrammeVedtakRegistered{ProgrammeVedtakRegistered: p}
	case *nirv1.TerminationRegistered:
		e.Payload = &nirv1.Event_TerminationRegistered{TerminationRegistered: p}
	case *nirv1.TrainingHoursRegistered:
		e.Payload = &nirv1.Event_TrainingHoursRegistered{TrainingHoursRegistered: p}
	}
	return e
}

// hostileReg is the registration of an asylum seeker settled in 0301 in 2010 (introduksjonsloven),
// or in 2022 (integreringsloven) for scheme "6A".
func hostileReg(scheme string) []*nirv1.Event {
	d := rules.MustParseDate("2010-01-10").Proto()
	if scheme == "6A" {
		d = rules.MustParseDate("2022-01-10").Proto()
	}
	return []*nirv1.Event{hostileEv("reg", &nirv1.PersonRegistered{BirthDate: rules.MustParseDate("1990-05-01").Proto(), PermitDate: d, ArrivalDate: d,
		PermitBasis: nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, SettlementDate: d, SettlementKommune: "0301", SettledByAgreement: true})}
}

// hostileMoves is n moves a day apart from from, out to 1103 and back to 0301 in turns.
func hostileMoves(n int, from rules.Date) []*nirv1.Event {
	var evs []*nirv1.Event
	for i := range n {
		to := "0301"
		if i%2 == 0 {
			to = "1103"
		}
		evs = append(evs, hostileEv(fmt.Sprintf("m%d", i), &nirv1.PersonMoved{ToKommune: to, Date: from.AddDays(i).Proto()}))
	}
	return evs
}

// hostileTraining is n open training tildeling in 0301 a day apart from from.
func hostileTraining(n int, from rules.Date, scheme nirv1.TrainingScheme) []*nirv1.Event {
	var evs []*nirv1.Event
	for i := range n {
		d := from.AddDays(i).Proto()
		evs = append(evs, hostileEv(fmt.Sprintf("v%d", i), &nirv1.TrainingVedtakRegistered{Scheme: scheme,
			Type: nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING, VedtakDate: d, StartDate: d}))
	}
	return evs
}

// hostileProgrammes is n programmes in 0301, each ended the day after its start.
func hostileProgrammes(n int, from rules.Date) []*nirv1.Event {
	var evs []*nirv1.Event
	for i := range n {
		d := from.AddDays(2 * i)
		evs = append(evs, hostileEv(fmt.Sprintf("t%d", i), &nirv1.ProgrammeVedtakRegistered{Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING,
			VedtakDate: d.Proto(), FromDate: d.Proto()}),
			hostileEv(fmt.Sprintf("e%d", i), &nirv1.TerminationRegistered{Kind: nirv1.TerminationKind_TERMINATION_KIND_FULLFORT,
				Reason: nirv1.TerminationReason_TERMINATION_REASON_ARBEID, Date: d.AddDays(1).Proto()}))
	}
	return evs
}

// BenchmarkDerive_Hostile derives the read models (on every rebuild and every event applied)
// of persons of about n events a kommune may store for its own person. Open training
// tildeling, then as many moves out and back (trainingThenMoves, training6AThenMoves): each
// tildeling looked at every move after its start and was given a stay for each move back
// (countedTrainingPeriods), 1.0, 5.1 and 9.0 s and 1.6, 5.5 and 21.7 s for 2 000, 4 000 and
// 8 000 events under a load of 16 (`go test -run '^$' -bench BenchmarkDerive_Hostile
// -benchtime 1x ./projections`, 2026-12-07 20:14 UTC); by stay chains 1.7, 5.7 and 13 ms
// and 3.3, 6.4 and 7.7 ms. The other kinds take 0.5-5 ms.
func BenchmarkDerive_Hostile(b *testing.B) {
	d0 := rules.MustParseDate("2010-02-01")
	for _, n := range []int{2000, 4000, 8000} {
		hs := map[string][]*nirv1.Event{
			"trainingThenMoves":   slices.Concat(hostileReg(""), hostileTraining(n/2, d0, nirv1.TrainingScheme_TRAINING_SCHEME_RETT_OG_PLIKT), hostileMoves(n/2, d0)),
			"training6AThenMoves": slices.Concat(hostileReg("6A"), hostileTraining(n/2, rules.MustParseDate("2022-02-01"), nirv1.TrainingScheme_TRAINING_SCHEME_RETT_6A), hostileMoves(n/2, rules.MustParseDate("2022-02-01"))),
			"programmes":          slices.Concat(hostileReg(""), hostileProgrammes(n/2, d0)),
			"programmesThenMoves": slices.Concat(hostileReg(""), hostileProgrammes(n/4, d0), hostileMoves(n/2, d0)),
			"moves":               slices.Concat(hostileReg(""), hostileMoves(n, d0)),
		}
		for _, name := range []string{"moves", "programmes", "programmesThenMoves", "training6AThenMoves", "trainingThenMoves"} {
			st := rules.Fold("pk", hs[name])
			b.Run(fmt.Sprintf("%s/n=%d", name, n), func(b *testing.B) {
				for b.Loop() {
					derive(st)
				}
			})
		}
	}
}
