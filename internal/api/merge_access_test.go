package api_test

// A merge of two persons (DOMAIN.md Product decisions 15) and the kommune boundaries (16):
// the retraction of the merge gives each kommune back what it had, and no kommune reaches a
// person by a merge it makes (README "Kommune boundaries"). What the kommune that had the
// absorbed person keeps of the merged person is open: it gets NotFound today (a change that
// gave it its own period was taken out again, d029ccc, for the holes its review found).

import (
	"context"
	"slices"
	"testing"

	"connectrpc.com/connect"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// mergedIDs returns the ids of events, and of the events the merges among them copied.
func mergedIDs(events []*nirv1.Event) []string {
	var out []string
	for _, ev := range events {
		out = append(out, ev.GetId())
		out = append(out, mergedIDs(ev.GetPersonsMerged().GetAbsorbedEvents())...)
	}
	return out
}

// mergeWorld is Bergen's person A (settled in Bergen on 2020-06-01, a Bergen programme from
// 2020-07-01 and a wrong offer of Bergen's) merged by an operator into Oslo's person S, the
// same person registered again by Oslo (settled 2024-02-01, an offer before the merge and
// one after).
type mergeWorld struct {
	*accessWorld
	keyA, keyS                       string
	regA, tildeling, wrongOffer      string
	regS, osloOffer, merge, osloLate string
}

func startMerge(t *testing.T) *mergeWorld {
	t.Helper()
	w := &mergeWorld{accessWorld: startAccess(t)}
	fnrA, fnrS := w.fnr(), w.fnr()
	w.keyA, w.keyS = w.keys.Key(fnrA), w.keys.Key(fnrS)
	regA := personReg(fnrA, "4601", true)
	w.must(t, atBergen, regA)
	tildeling := accessEv(w.keyA, "4601", &nirv1.Event{Payload: &nirv1.Event_ProgrammeVedtakRegistered{ProgrammeVedtakRegistered: &nirv1.ProgrammeVedtakRegistered{
		Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, VedtakDate: ad("2020-07-01"), FromDate: ad("2020-07-01")}}})
	wrong := accessEv(w.keyA, "4601", accessOffer("2020-06-15"))
	w.must(t, atBergen, tildeling, wrong)
	regS := personReg(fnrS, "0301", false)
	w.must(t, atOslo, regS)
	osloOffer := accessEv(w.keyS, "0301", accessOffer("2024-03-01"))
	w.must(t, atOslo, osloOffer)
	merge := accessEv(w.keyS, "0301", &nirv1.Event{Payload: &nirv1.Event_PersonsMerged{PersonsMerged: &nirv1.PersonsMerged{AbsorbedPersonKey: w.keyA, Reason: "samme person"}}})
	w.must(t, atOperator, merge)
	late := accessEv(w.keyS, "0301", accessOffer("2024-09-20"))
	w.must(t, atOslo, late)
	w.regA, w.tildeling, w.wrongOffer = regA.Event.Id, tildeling.Event.Id, wrong.Event.Id
	w.regS, w.osloOffer, w.merge, w.osloLate = regS.Event.Id, osloOffer.Event.Id, merge.Event.Id, late.Event.Id
	w.caughtUp(t)
	return w
}

// history is token's History of the person key leads to: the key it answered with and the
// ids of the events (and of the events merges copied) it holds.
func (w *mergeWorld) history(t *testing.T, token, key string) (string, []string, error) {
	t.Helper()
	res, err := w.reg(token).History(context.Background(), connect.NewRequest(&nirv1.HistoryRequest{Person: &nirv1.PersonRef{PersonKey: key}}))
	if err != nil {
		return "", nil, err
	}
	var evs []*nirv1.Event
	for _, e := range res.Msg.GetEvents() {
		evs = append(evs, e.GetEvent())
	}
	return res.Msg.GetPersonKey(), mergedIDs(evs), nil
}

// try appends regs as token and returns the code (0: stored); a refused append stored nothing.
func (w *mergeWorld) try(t *testing.T, token string, regs ...*nirv1.Registration) connect.Code {
	t.Helper()
	before := w.lastSeq(t)
	_, err := w.reg(token).Append(context.Background(), connect.NewRequest(&nirv1.AppendRequest{Registrations: regs}))
	if err != nil {
		if after := w.lastSeq(t); after != before {
			t.Errorf("a refused append (%v) moved the stream from %d to %d", err, before, after)
		}
		return connect.CodeOf(err)
	}
	return 0
}

func wantIDs(t *testing.T, what string, got []string, have, lack map[string]string) {
	t.Helper()
	for name, id := range have {
		if !slices.Contains(got, id) {
			t.Errorf("%s lacks %s", what, name)
		}
	}
	for name, id := range lack {
		if slices.Contains(got, id) {
			t.Errorf("%s holds %s", what, name)
		}
	}
}

func bergenTermination(key string) *nirv1.Registration {
	return accessEv(key, "4601", &nirv1.Event{Payload: &nirv1.Event_TerminationRegistered{TerminationRegistered: &nirv1.TerminationRegistered{
		Kind: nirv1.TerminationKind_TERMINATION_KIND_FULLFORT, Reason: nirv1.TerminationReason_TERMINATION_REASON_ARBEID, Date: ad("2021-05-31")}}})
}

// TestAccess_MergeRetracted: the retraction of the merge gives each kommune back what it
// had: Bergen its person A and nothing of Oslo's S, Oslo its S and nothing of A.
func TestAccess_MergeRetracted(t *testing.T) {
	w := startMerge(t)
	w.must(t, atOperator, accessEv(w.keyS, "0301", accessRetract(w.merge)))
	w.caughtUp(t)

	got, ids, err := w.history(t, atBergen, w.keyA)
	if err != nil || got != w.keyA {
		t.Fatalf("Bergen's history of its person after the un-merge: %s, %v; want %s", got, err, w.keyA)
	}
	wantIDs(t, "Bergen's history of its person", ids, map[string]string{"Bergen's tildeling": w.tildeling}, map[string]string{"Oslo's registration": w.regS})
	if _, _, err := w.history(t, atBergen, w.keyS); connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("Bergen's history of Oslo's person after the un-merge: %v, want NotFound", err)
	}
	if code := w.try(t, atBergen, bergenTermination(w.keyS)); code != connect.CodeNotFound {
		t.Errorf("Bergen's append to Oslo's person after the un-merge: %v, want NotFound", code)
	}
	if code := w.try(t, atBergen, accessEv(w.keyA, "4601", accessOffer("2024-09-25"))); code != 0 {
		t.Errorf("Bergen's offer for its own person after the un-merge: %v, want it stored", code)
	}
	if _, _, err := w.history(t, atOslo, w.keyA); connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("Oslo's history of Bergen's person after the un-merge: %v, want NotFound", err)
	}
	if got, _, err := w.history(t, atOslo, w.keyS); err != nil || got != w.keyS {
		t.Errorf("Oslo's history of its person after the un-merge: %s, %v", got, err)
	}
}

// TestAccess_MergeByKommuneGainsNothing: a kommune cannot reach another kommune's person by
// merging its own (possibly invented) person into it, or it into its own: a kommune merges
// only persons it has both of now; and one that keeps its own period of a merged person
// cannot merge into it or out of it either.
func TestAccess_MergeByKommuneGainsNothing(t *testing.T) {
	w := startMerge(t)
	mergeOn := func(survivor, absorbed string) *nirv1.Registration {
		return accessEv(survivor, "4601", &nirv1.Event{Payload: &nirv1.Event_PersonsMerged{PersonsMerged: &nirv1.PersonsMerged{AbsorbedPersonKey: absorbed, Reason: "samme person"}}})
	}
	// Oslo's own person P, and Bergen's invention F of the same birth date and sex.
	fnrP, fnrF := w.fnr(), w.fnr()
	keyP, keyF := w.keys.Key(fnrP), w.keys.Key(fnrF)
	w.must(t, atOslo, personReg(fnrP, "0301", false))
	w.must(t, atBergen, personReg(fnrF, "4601", false))
	w.caughtUp(t)
	for name, c := range map[string]struct {
		reg  *nirv1.Registration
		want []connect.Code
	}{
		"F into Oslo's person":              {mergeOn(keyP, keyF), []connect.Code{connect.CodeNotFound}},
		"Oslo's person into F":              {mergeOn(keyF, keyP), []connect.Code{connect.CodeNotFound}},
		"F into the merged person":          {mergeOn(w.keyS, keyF), []connect.Code{connect.CodeNotFound, connect.CodePermissionDenied}},
		"the merged person into F":          {mergeOn(keyF, w.keyS), []connect.Code{connect.CodeNotFound, connect.CodePermissionDenied}},
		"the merged person's A back into F": {mergeOn(keyF, w.keyA), []connect.Code{connect.CodeNotFound, connect.CodePermissionDenied, connect.CodeFailedPrecondition}},
	} {
		if code := w.try(t, atBergen, c.reg); !slices.Contains(c.want, code) {
			t.Errorf("Bergen merging %s: %v, want one of %v", name, code, c.want)
		}
	}
	w.caughtUp(t)
	if _, _, err := w.history(t, atBergen, keyP); connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("Bergen's history of Oslo's person after its merges: %v, want NotFound", err)
	}
	if _, ids, err := w.history(t, atBergen, keyF); err != nil || slices.Contains(ids, w.regS) || slices.Contains(ids, w.osloOffer) {
		t.Errorf("Bergen's history of its invention after its merges: %v, %v; want its own events only", ids, err)
	}
	// Bergen's reach of the merged person is still its own period only.
	if _, ids, err := w.history(t, atBergen, w.keyS); err == nil {
		wantIDs(t, "Bergen's history of the merged person", ids, nil, map[string]string{"Oslo's registration": w.regS, "Oslo's offer": w.osloOffer, "Oslo's late offer": w.osloLate})
	}
}
