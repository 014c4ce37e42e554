package rules

import (
	"cmp"
	"fmt"
	"math/rand"
	"reflect"
	"slices"
	"testing"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestProperty_ProgrammesLookedUpAsScanned: after every event, programmeFor and latestIn
// find what the look from the latest programme back at every programme found before
// State.earlier indexed them, and earlier is the index built anew
// (programmesLookedUpAsForward), on histories a stream may hold though Check refuses them
// (hostileHistory), on garbage (no kommune, zero and impossible dates, any vedtak type),
// and on persons of many programmes in kommuner of one lineage and others, whose
// tildelinger move the start of programmes before the latest (programmeEvent,
// lookupEvent). The foldSettled tests check the same after every event of theirs.
func TestProperty_ProgrammesLookedUpAsScanned(t *testing.T) {
	t.Parallel()
	g := &gen{r: rand.New(rand.NewSource(propertySeed + 31))}
	var programmes, moved int
	for i := range 240 {
		evs := g.person()
		k, start := evs[0].GetKommune(), dateOf(evs[0].GetPersonRegistered().GetSettlementDate())
		switch i % 3 {
		case 0:
			evs = g.hostileHistory()
		case 1:
			for range 20 {
				evs = append(evs, g.garbage(evs))
			}
		default:
			for range 40 + g.r.Intn(40) {
				if g.r.Intn(4) == 0 {
					evs = append(evs, g.lookupEvent(k, start, evs))
				} else {
					evs = append(evs, g.programmeEvent(k, start))
				}
			}
		}
		st := NewState("pk")
		for j, ev := range evs {
			before := st.Programmes
			starts := startsOf(before)
			st.Apply(uint64(j+1), ev)
			programmesLookedUpAsForward(t, fmt.Sprintf("case %d event %d", i, j+1), st)
			if n := len(before); n > 1 && slices.Equal(before, st.Programmes) && !slices.Equal(starts[:n-1], startsOf(st.Programmes)[:n-1]) {
				moved++
			}
		}
		programmesLookedUpAsForward(t, fmt.Sprintf("case %d folded whole", i), Fold("pk", evs))
		programmes += len(st.Programmes)
	}
	t.Logf("%d programmes; %d events moved the start of one before the latest", programmes, moved)
	if moved < 20 {
		t.Fatalf("%d events moved the start of a programme before the latest: the generator must move them", moved)
	}
}

// programmeAtIndex is the programme at index i in st.Programmes, nil for -1.
func programmeAtIndex(st *State, i int) *Programme {
	if i < 0 {
		return nil
	}
	return st.Programmes[i]
}

// startsOf returns the starts of ps.
func startsOf(ps []*Programme) []Date {
	out := make([]Date, len(ps))
	for i, p := range ps {
		out[i] = p.Start
	}
	return out
}

// programmeEvent is a tildeling (some with no start), a termination or a stans, in k, a
// number of its lineage or another's, or none (lookupKommune): a person of many programmes
// in several kommuner, started in any order, whose tildelinger move programmes' starts.
func (g *gen) programmeEvent(k string, start Date) *nirv1.Event {
	e := g.ev(g.lookupKommune(k))
	d := g.date(start.AddDays(-100), 400)
	switch g.r.Intn(4) {
	case 0:
		e.Payload = &nirv1.Event_TerminationRegistered{TerminationRegistered: &nirv1.TerminationRegistered{
			Kind: nirv1.TerminationKind_TERMINATION_KIND_AVBRUTT, Reason: nirv1.TerminationReason_TERMINATION_REASON_ARBEID, Date: d.Proto()}}
	case 1:
		e.Payload = &nirv1.Event_ProgrammeVedtakRegistered{ProgrammeVedtakRegistered: &nirv1.ProgrammeVedtakRegistered{
			Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_STANS, VedtakDate: d.Proto(), FromDate: d.Proto()}}
	default:
		from := []*nirv1.Date{d.Proto(), d.Proto(), d.Proto(), nil}[g.r.Intn(4)]
		e.Payload = &nirv1.Event_ProgrammeVedtakRegistered{ProgrammeVedtakRegistered: &nirv1.ProgrammeVedtakRegistered{
			Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, VedtakDate: d.Proto(), FromDate: from}}
	}
	return e
}

// earlierBuilt is State.earlier built anew from st's programmes but the latest.
func earlierBuilt(st *State) []programmeRef {
	var refs []programmeRef
	for i := range max(len(st.Programmes)-1, 0) {
		refs = append(refs, programmeRef{at: i})
	}
	slices.SortFunc(refs, func(a, b programmeRef) int {
		p, q := st.Programmes[a.at], st.Programmes[b.at]
		return cmp.Or(cmp.Compare(p.Kommune, q.Kommune), p.Start.Compare(q.Start), cmp.Compare(a.at, b.at))
	})
	for j := range refs {
		refs[j].latest = refs[j].at
		if j > 0 && st.Programmes[refs[j-1].at].Kommune == st.Programmes[refs[j].at].Kommune {
			refs[j].latest = max(refs[j].at, refs[j-1].latest)
		}
	}
	return refs
}

// scanProgrammeFor is programmeFor as it was before State.earlier: a look from the latest
// programme back at every one. It is the oracle of the index.
func scanProgrammeFor(s *State, k string, d Date) *Programme {
	var latest *Programme
	for i := len(s.Programmes) - 1; i >= 0; i-- {
		p := s.Programmes[i]
		if !SameKommune(p.Kommune, k) {
			continue
		}
		if latest == nil {
			latest = p
		}
		if !d.IsZero() && !p.Start.After(d) {
			return p
		}
	}
	return latest
}

// scanLastProgramme is lastProgramme as it was before State.earlier: the latest programme in
// kommune k that match accepts (match nil accepts any), looking at every one from the latest
// back. It is the oracle of the index (latestIn).
func scanLastProgramme(s *State, k string, match func(*Programme) bool) *Programme {
	for i := len(s.Programmes) - 1; i >= 0; i-- {
		if p := s.Programmes[i]; SameKommune(p.Kommune, k) && (match == nil || match(p)) {
			return p
		}
	}
	return nil
}

// TestCopy_EarlierShared: two copies of one state index their programmes (State.earlier)
// each in its own: each copy's new programme puts the one before it into earlier at
// another place, within the capacity the original left, and each copy must equal its
// own fold.
func TestCopy_EarlierShared(t *testing.T) {
	tildeling := func(id, kommune, from string) *nirv1.Event {
		return evProgramme(id, kommune, nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, from)
	}
	end := func(id, kommune, on string) *nirv1.Event {
		return evTermination(id, kommune, nirv1.TerminationReason_TERMINATION_REASON_ARBEID, on)
	}
	evs := []*nirv1.Event{evPerson("reg", "0301", "1990-05-01", "2018-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28),
		tildeling("t0", "0301", "2018-02-01"), end("e0", "0301", "2018-03-01"),
		tildeling("t1", "0301", "2018-04-01"), end("e1", "0301", "2018-05-01"),
		tildeling("t2", "4601", "2018-05-10"), end("e2", "4601", "2018-05-20"),
		tildeling("t3", "0301", "2018-06-01")}
	base := Fold("pk", evs)
	if len(base.earlier) != 3 || cap(base.earlier) <= 3 {
		t.Fatalf("earlier %v (cap %d): the test needs 3 and more capacity", base.earlier, cap(base.earlier))
	}
	// The latest programme goes into earlier after the two of 0301 in one copy, and before
	// them in the other, whose tildeling moved its start first.
	aEvs := []*nirv1.Event{end("e3", "0301", "2018-07-01"), tildeling("t4", "1103", "2018-08-01")}
	bEvs := []*nirv1.Event{tildeling("t3b", "0301", "2018-01-20"), end("e3", "0301", "2018-07-01"), tildeling("t4", "1103", "2018-08-01")}
	a, b := base.Copy(), base.Copy()
	for i, ev := range aEvs {
		a.Apply(uint64(len(evs)+1+i), ev)
	}
	for i, ev := range bEvs {
		b.Apply(uint64(len(evs)+1+i), ev)
	}
	if want := Fold("pk", slices.Concat(evs, aEvs)); !reflect.DeepEqual(a, want) {
		t.Errorf("the first copy differs from its fold: earlier %v, want %v", a.earlier, want.earlier)
	}
	if want := Fold("pk", slices.Concat(evs, bEvs)); !reflect.DeepEqual(b, want) {
		t.Errorf("the second copy differs from its fold: earlier %v, want %v", b.earlier, want.earlier)
	}
	if want := Fold("pk", evs); !reflect.DeepEqual(base, want) {
		t.Errorf("the original differs from its fold: earlier %v, want %v", base.earlier, want.earlier)
	}
}
