package rules

import (
	"fmt"
	"math/rand"
	"slices"
	"testing"
	"time"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// hostileHistory is a person's history with what Check would refuse but a stream may
// still hold: retractions of ids that come later (an own event or a merge's copy),
// of themselves, of unknown ids and of nothing; nil events; redeliveries (the same id
// again, with another payload); events with no id; and merges whose copies are retracted
// before or after the merge.
func (g *gen) hostileHistory() []*nirv1.Event {
	evs := g.person()
	for range 1 + g.r.Intn(4) { // merges copying fresh events
		m := g.ev("0301")
		var copied []*nirv1.Event
		for range 1 + g.r.Intn(3) {
			copied = append(copied, g.event("0301", md("2022-01-01"), evs))
		}
		m.Payload = &nirv1.Event_PersonsMerged{PersonsMerged: &nirv1.PersonsMerged{AbsorbedPersonKey: "other", AbsorbedEvents: copied}}
		evs = slices.Insert(evs, 1+g.r.Intn(len(evs)), m)
	}
	var ids []string
	for _, e := range evs {
		ids = append(ids, e.GetId())
		for _, c := range e.GetPersonsMerged().GetAbsorbedEvents() {
			ids = append(ids, c.GetId())
		}
	}
	for range g.r.Intn(12) {
		at := 1 + g.r.Intn(len(evs))
		e := g.ev("0301")
		switch g.r.Intn(8) {
		case 0:
			evs = slices.Insert(evs, at, nil)
			continue
		case 1: // a redelivery, or the same id with another payload
			d := evs[g.r.Intn(len(evs))]
			if d != nil && g.r.Intn(2) == 0 {
				d = &nirv1.Event{Id: d.GetId(), PersonKey: "pk", Kommune: "0301", Payload: &nirv1.Event_EventRetracted{EventRetracted: &nirv1.EventRetracted{EventId: ids[g.r.Intn(len(ids))]}}}
			}
			evs = slices.Insert(evs, at, d)
			continue
		case 2:
			e.Payload = &nirv1.Event_EventRetracted{EventRetracted: &nirv1.EventRetracted{EventId: e.GetId()}}
		case 3:
			e.Id = ""
			e.Payload = &nirv1.Event_EventRetracted{EventRetracted: &nirv1.EventRetracted{EventId: ids[g.r.Intn(len(ids))]}}
		default: // any id of the history, earlier or later, or one never seen
			target := "never"
			if g.r.Intn(6) != 0 {
				target = ids[g.r.Intn(len(ids))]
			}
			e.Payload = &nirv1.Event_EventRetracted{EventRetracted: &nirv1.EventRetracted{EventId: target}}
		}
		ids = append(ids, e.GetId())
		evs = slices.Insert(evs, at, e)
	}
	return evs
}

// TestProperty_ApplyAllIsApplyHostile: on histories a stream may hold though Check refuses
// them (hostileHistory), Apply one by one, ApplyAll in random pieces and Fold give the same
// State, with and without faults (and the state after each event is the fold of the log up
// to it): so catching up, a rebuild and an as-of replay agree on whatever the stream holds.
func TestProperty_ApplyAllIsApplyHostile(t *testing.T) {
	faults := foldFaults(t)
	g := &gen{r: rand.New(rand.NewSource(propertySeed))}
	for i := range 400 {
		evs := g.hostileHistory()
		faults.pick(g, nil) // none
		if i%2 == 1 {
			faults.pick(g, evs)
		}
		sameEachWay(t, fmt.Sprintf("case %d", i), g, evs, i%2 == 0)
	}
}

// TestRefold_LinearInUnattached: a retraction's re-fold of a person of many programme events
// that found no programme (Unattached; absences a kommune registered before any tildeling)
// takes time in proportion to them, as does their fold event by event. Both settle the state
// after every event, and settling rebuilt Unattached whole each time: 60 000 such events took
// about 4 s for one retraction, where a re-fold that settled once took 40 ms. The bound is
// wide, for a loaded machine and the race detector: folding 100 000 and the retraction take
// about 1.5 s under -race, and took about 29 s without it when settling was quadratic.
func TestRefold_LinearInUnattached(t *testing.T) {
	const n = 100000
	st := NewState("pk")
	st.Apply(1, evPerson("reg", "0301", "1990-05-01", "2022-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28))
	les := make([]LoggedEvent, n)
	for i := range les {
		les[i] = LoggedEvent{Seq: uint64(i + 2), Event: withPayload(fmt.Sprintf("abs%d", i), "0301", &nirv1.AbsenceRegistered{
			Programme: nirv1.Programme_PROGRAMME_INTRO, Type: nirv1.AbsenceType_ABSENCE_TYPE_FRAVAER_UGYLDIG,
			FromDate: dpb("2022-04-01"), ToDate: dpb("2022-04-02"), Hours: 1})}
	}
	start := time.Now()
	st.ApplyAll(les)
	st.Apply(n+2, withPayload("ret", "0301", &nirv1.EventRetracted{EventId: "abs0"}))
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("folding %d unattached events and one retraction's re-fold of them took %v, want within 15 s", n, d)
	}
	if len(st.Unattached) != n-1 || st.Unattached[0] != "abs1" || st.Unattached[n-2] != fmt.Sprintf("abs%d", n-1) {
		t.Fatalf("%d unattached, want %d from abs1", len(st.Unattached), n-1)
	}
}
