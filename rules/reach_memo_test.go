package rules

import (
	"math/rand"
	"reflect"
	"testing"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestProperty_ResidenceMemo: the periods and reach a ResidenceMemo keeps are those
// Residences and ReachOf build, after every event applied one by one to one state, and to a
// copy of it now and then: hostile histories (merges copying moves, retractions of anything,
// redeliveries), more moves in any date order, some to where the person lives, a
// registration without a settlement kommune, a second one, the first retracted, and events
// whose fold faults; the memo asked after every event or after several.
func TestProperty_ResidenceMemo(t *testing.T) {
	g := &gen{r: rand.New(rand.NewSource(propertySeed + 43))}
	restore := SetFaultForTest(func(ev *nirv1.Event) bool { return ev.GetId() != "" && ev.GetId()[len(ev.GetId())-1] == '7' })
	defer restore()
	kept, unregistered := 0, 0
	for c := 0; c < 400; c++ {
		evs := g.hostileHistory()
		if c%3 == 0 {
			evs[0].GetPersonRegistered().SettlementKommune = ""
		}
		for range g.r.Intn(30) {
			e := g.ev(genKommuner[g.r.Intn(len(genKommuner))])
			switch g.r.Intn(6) {
			case 0:
				target := evs[0].GetId()
				if g.r.Intn(2) == 0 {
					target = evs[g.r.Intn(len(evs))].GetId()
				}
				e.Payload = &nirv1.Event_EventRetracted{EventRetracted: &nirv1.EventRetracted{EventId: target}}
			case 1: // another registration, which counts once the first is retracted
				k := genKommuner[g.r.Intn(len(genKommuner))]
				if g.r.Intn(3) == 0 {
					k = ""
				}
				e.Payload = &nirv1.Event_PersonRegistered{PersonRegistered: &nirv1.PersonRegistered{SettlementKommune: k, SettlementDate: g.date(md("2018-01-01"), 900).Proto()}}
			default:
				e.Payload = &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: genKommuner[g.r.Intn(len(genKommuner))], Date: g.date(md("2018-01-01"), 3000).Proto()}}
			}
			evs = append(evs, e)
		}
		st := NewState("pk")
		var m ResidenceMemo
		for i, ev := range evs {
			if g.r.Intn(10) == 0 {
				st = st.Copy()
			}
			st.Apply(uint64(i+1), ev)
			if g.r.Intn(3) == 0 {
				continue // the memo is asked after some events only
			}
			before := m
			periods, reach := m.Of(st)
			if want, wantReach := Residences(st), ReachOf(st); !reflect.DeepEqual(periods, want) || !reflect.DeepEqual(reach, wantReach) {
				t.Fatalf("case %d, event %d (%T): memo %v %+v, built %v %+v", c, i+1, ev.GetPayload(), periods, reach, want, wantReach)
			}
			if before.st == st && st.Registered && reflect.ValueOf(before.periods).Pointer() == reflect.ValueOf(periods).Pointer() {
				kept++
			}
			if !st.Registered {
				unregistered++
			}
		}
	}
	if kept < 2000 || unregistered < 100 {
		t.Fatalf("the memo was kept %d times, for an unregistered person %d: the generator must make many of both", kept, unregistered)
	}
}
