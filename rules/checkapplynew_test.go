package rules

import (
	"fmt"
	"math/rand"
	"reflect"
	"testing"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestProperty_CheckApplyNew: judging an event and applying it in one (the programme length
// judged on the state with the event applied) refuses what CheckNext refuses, leaves the
// state as ApplyNew does and reports its fault. Generated persons with garbage, and with
// extensions and planned ends past the programme time, every prefix; some events made to
// fault (SetFaultForTest).
func TestProperty_CheckApplyNew(t *testing.T) {
	g := &gen{r: rand.New(rand.NewSource(propertySeed + 23))}
	restore := SetFaultForTest(func(ev *nirv1.Event) bool { return ev.GetId() != "" && ev.GetId()[len(ev.GetId())-1] == '7' })
	defer restore()
	lengths, faults := 0, 0
	for i := 0; i < 150; i++ {
		evs := g.person()
		for j := range 12 {
			if j%3 == 0 {
				evs = append(evs, g.garbage(evs))
				continue
			}
			evs = append(evs, g.longProgramme(evs))
		}
		for k := 0; k < len(evs); k++ {
			for _, now := range propertyNows {
				want := Fold("pk", evs[:k])
				ref := CheckNext(want, evs[k], now)
				wantF, wantFaulted := want.ApplyNew(want.LastSeq+1, evs[k])
				st := Fold("pk", evs[:k])
				got, f, faulted := CheckApplyNew(st, evs[k], now)
				if !reflect.DeepEqual(got, ref) {
					t.Fatalf("seed %d case %d, event %d: CheckApplyNew refuses %v, CheckNext %v", propertySeed+23, i, k+1, got, ref)
				}
				if !reflect.DeepEqual(st, want) || f != wantF || faulted != wantFaulted {
					t.Fatalf("seed %d case %d, event %d: state or fault (%v %v) differs from ApplyNew's (%v %v)", propertySeed+23, i, k+1, f, faulted, wantF, wantFaulted)
				}
				for _, r := range got {
					if r.Code == rProgrammeLength.Code {
						lengths++
					}
				}
				if faulted {
					faults++
				}
			}
		}
	}
	if lengths < 50 || faults == 0 {
		t.Fatalf("%d programme length refusals and %d faults: the generator must make both", lengths, faults)
	}
}

// longProgramme is a sluttmål, an extension or a tildeling with a planned end, in one of the
// person's kommuner, some past the programme time.
func (g *gen) longProgramme(prior []*nirv1.Event) *nirv1.Event {
	k := []string{"0301", "1103", ""}[g.r.Intn(3)]
	d := md("2018-01-01").AddDays(g.r.Intn(2000))
	id := fmt.Sprintf("%s-%d", g.nextID(), g.r.Intn(10))
	switch g.r.Intn(3) {
	case 0:
		return withPayload(id, k, &nirv1.SluttmalRegistered{Sluttmal: nirv1.Sluttmal(1 + g.r.Intn(6)), Date: d.Proto()})
	case 1:
		return withPayload(id, k, &nirv1.ProgrammeVedtakRegistered{Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_UTVIDELSE,
			VedtakDate: d.Proto(), FromDate: d.Proto(), ExtensionMonths: int32(1 + g.r.Intn(14))})
	}
	return withPayload(id, k, &nirv1.ProgrammeVedtakRegistered{Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING,
		VedtakDate: d.Proto(), FromDate: d.Proto(), ToDate: d.AddMonths(g.r.Intn(60)).Proto()})
}

// BenchmarkCheck_ProgrammeLength checks an append of 1 000 permisjon vedtak for a person of
// one programme and n-1 000 of them before: each vedtak's programme length was judged on a
// copy of the whole state: 0.78, 2.4 and 4.2 s for 2 000, 4 000 and 8 000 events under a
// load of 11 (`go test -run '^$' -bench BenchmarkCheck_ProgrammeLength -benchtime 1x
// ./rules`, 2026-12-07 20:03 UTC); on the state with each applied (CheckApplyNew) 0.51, 0.71
// and 1.6 s. What was left was the programme's latest end, which sorted and merged all its
// leave again for each vedtak (leaveDays): O(L log L) an event of the request, now looked up
// in the programme's leaveIndex (O(log² L)).
func BenchmarkCheck_ProgrammeLength(b *testing.B) {
	for _, n := range []int{2000, 4000, 8000} {
		evs := []*nirv1.Event{evPerson("reg", "0301", "1990-05-01", "2010-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28),
			evProgramme("t", "0301", nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, "2010-02-01")}
		d := md("2010-02-01")
		for i := range n {
			e := evProgramme(fmt.Sprintf("p%d", i), "0301", nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_PERMISJON, d.AddDays(i).String())
			e.GetProgrammeVedtakRegistered().ToDate = d.AddDays(i + 1).Proto()
			evs = append(evs, e)
		}
		s := Fold("pk", evs[:len(evs)-1000])
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			for b.Loop() {
				Check(s, evs[len(evs)-1000:], md("2040-01-01"))
			}
		})
	}
}
