package ingest_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/proto"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/access"
	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/ingest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// operatorScope is the operator who erases persons (DOMAIN.md Product decisions 15).
var operatorScope = access.For(auth.Principal{Name: "drift", Role: auth.RoleOperator})

// sealedStore opens an embedded JetStream with a key store, and returns it with a maker of
// append paths on it that seal identities (each with its own empty history cache: as another
// nird on the same stream).
func sealedStore(t *testing.T) (*eventstore.Store, func() *ingest.Service) {
	return sealedStores(t, false)
}

// peerStores is sealedStore with each append path on a key store of its own (its own watch of
// the key bucket), as nird processes of one cluster have them.
func peerStores(t *testing.T) (*eventstore.Store, func() *ingest.Service) {
	return sealedStores(t, true)
}

func sealedStores(t *testing.T, keyStoreEach bool) (*eventstore.Store, func() *ingest.Service) {
	t.Helper()
	store, shared, master := storeWithKeys(t)
	made := 0
	return store, func() *ingest.Service {
		ks := shared
		if made++; keyStoreEach && made > 1 {
			var err error
			if ks, err = store.OpenKeyStore(context.Background(), master); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ks.Close() })
		}
		return serviceOn(t, store, sealed(ks))
	}
}

// erasureOf is an operator's erasure of the person key.
func erasureOf(key string) *nirv1.Registration {
	return &nirv1.Registration{Person: &nirv1.PersonRef{PersonKey: key}, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301",
		Payload: &nirv1.Event_PersonErased{PersonErased: &nirv1.PersonErased{Reason: "ønsket slettet"}}}}
}

// TestService_EraseSurvivorKeepsUnmergedNestedKeys: A merged into B, B merged into C, and A
// un-merged: A is its own person again, and C's erasure destroys the keys of C and B, never
// A's (DOMAIN.md Product decisions 15).
//
// Found on 2026-12-06 (review of the identity lifecycle): before, A was un-merged by
// retracting the copy of the A→B merge on C, erasedKeys walked into the nested merge without
// looking at its retraction, and A, never erased, lost its national id (its registration read
// «slettet»); now only the keys of persons whose merge into the erased one is in force at
// every level are destroyed. Since NIR-R057 (the same review) that retraction on C is refused:
// the merges come undone in order (B from C, then A from B), and B is merged into C again.
func TestService_EraseSurvivorKeepsUnmergedNestedKeys(t *testing.T) {
	ctx := context.Background()
	store, newSvc := sealedStore(t)
	svc := newSvc()
	dnrC, keyC, keyB, dnrA, pa := personsABC(t, svc, 62, nil)
	keyA := pa[0].PersonKey
	m1, m2 := mergeChain(t, svc, keyA, keyB, dnrC)
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{retractOn(keyC, m1)}); err == nil || !strings.Contains(err.Error(), "NIR-R057") {
		t.Fatalf("un-merge A on C: %v, want NIR-R057 (the later merge first)", err)
	}
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{retractOn(keyC, m2)}); err != nil {
		t.Fatalf("un-merge B from C: %v", err)
	}
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{retractOn(keyB, m1)}); err != nil {
		t.Fatalf("un-merge A from B: %v", err)
	}
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{mergeReg(dnrC, keyB)}); err != nil {
		t.Fatalf("merge B into C again: %v", err)
	}
	if _, err := svc.Append(ctx, operatorScope, []*nirv1.Registration{erasureOf(keyC)}); err != nil {
		t.Fatalf("erase C: %v", err)
	}
	dataKey := func(key string) string {
		h, _, err := store.Read(ctx, key)
		if err != nil || len(h) == 0 {
			t.Fatalf("read %.8s: %d events, %v", key, len(h), err)
		}
		return h[0].Event.GetDataKeyId()
	}
	ch, _, err := store.Read(ctx, keyC)
	if err != nil {
		t.Fatal(err)
	}
	destroyed := map[string]bool{}
	for _, k := range ch[len(ch)-1].Event.GetPersonErased().GetDestroyedKeys() {
		destroyed[k] = true
	}
	if !destroyed[dataKey(keyC)] || !destroyed[dataKey(keyB)] {
		t.Errorf("C's erasure does not destroy the keys of C and of B (merged into C, in force): %v", destroyed)
	}
	if destroyed[dataKey(keyA)] {
		t.Errorf("C's erasure destroyed A's data key, and A (un-merged, not erased) is its own person")
	}
	for name, s := range map[string]*ingest.Service{"the nird that erased C": svc, "another nird": newSvc()} {
		k, h, err := s.History(ctx, historyReader, &nirv1.PersonRef{NationalId: dnrA})
		if err != nil || k != keyA || h[0].Event.GetPersonRegistered().GetDNummer() != dnrA {
			t.Errorf("%s: A by its D-nummer after C's erasure: %.8s, %v; want A, its D-nummer readable", name, k, err)
		}
	}
}

// TestService_FullPersonErasedAndUnmerged: a person at the most events one person may have
// (Config.MaxPersonEvents, a case system filled it) can still be un-merged (the retraction
// of a merge in force) and erased by an operator, and nothing else passes the bound (DOMAIN.md
// Product decisions 15; README, --max-person-events).
//
// Found on 2026-12-06 (review of the identity lifecycle): before, the bound exempted only the
// system scope, and the operator's erasure and the un-merge were ErrPersonFull like any
// append; now those two pass it.
func TestService_FullPersonErasedAndUnmerged(t *testing.T) {
	ctx := context.Background()
	_, store := newService(t)
	svc := serviceOn(t, store, func(c *ingest.Config) { c.MaxPersonEvents = 3 })
	dnr, _, _, pos := registeredTwice(t, svc, 92)
	survivor, absorbed := pos[0].PersonKey, pos[1].PersonKey
	m, err := svc.Append(ctx, oslo, []*nirv1.Registration{mergeReg(dnr, absorbed)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{offer(dnr)}); err != nil {
		t.Fatal(err) // the third event: the survivor is full
	}
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{offer(dnr)}); !errors.Is(err, ingest.ErrPersonFull) {
		t.Fatalf("an offer for the full person: %v, want ErrPersonFull", err)
	}
	offerID := ""
	h, _, _ := store.Read(ctx, survivor)
	for _, e := range h {
		if e.Event.GetOfferRegistered() != nil {
			offerID = e.Event.GetId()
		}
	}
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{retractOn(survivor, offerID)}); !errors.Is(err, ingest.ErrPersonFull) {
		t.Fatalf("the retraction of an offer (no merge) for the full person: %v, want ErrPersonFull", err)
	}
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{retractOn(survivor, m[0].EventId)}); err != nil {
		t.Fatalf("the un-merge of the full person: %v", err)
	}
	if k, _, err := svc.History(ctx, historyReader, &nirv1.PersonRef{PersonKey: absorbed}); err != nil || k != absorbed {
		t.Fatalf("the un-merged person: %.8s, %v; want its own again", k, err)
	}
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{offer(dnr)}); !errors.Is(err, ingest.ErrPersonFull) {
		t.Fatalf("an offer for the un-merged full person: %v, want ErrPersonFull", err)
	}
	if _, err := svc.Append(ctx, operatorScope, []*nirv1.Registration{erasureOf(survivor)}); err != nil {
		t.Fatalf("the operator's erasure of the full person: %v", err)
	}
	h, _, _ = store.Read(ctx, survivor)
	if len(h) != 5 || h[4].Event.GetPersonErased() == nil {
		t.Fatalf("the survivor's stream: %d events, the last %v; want 5, the erasure last", len(h), h[len(h)-1].Event.GetPayload())
	}
}

// TestService_ErasureDropsCachedHistory: once an erasure is stored, the nird that stored it
// keeps no history in clear of the erased person, nor of a person merged into it, and a
// re-send of either's registration is answered as by a nird that reads the stream (DOMAIN.md
// Product decisions 15).
//
// Found on 2026-12-06 (review of the identity lifecycle): before, the erasure was added to
// the cached history, which kept the fødselsnummer in clear, and the re-send was a duplicate
// on that nird and an id reused with other content on every other; now the erasure drops the
// cached histories of every person it erases.
func TestService_ErasureDropsCachedHistory(t *testing.T) {
	ctx := context.Background()
	_, newSvc := sealedStore(t)
	svc := newSvc()
	p := cachedMergedPair(t, 71, svc, svc)
	if _, err := svc.Append(ctx, operatorScope, []*nirv1.Registration{erasureOf(p.survivor)}); err != nil {
		t.Fatal(err)
	}
	p.notCached(t, svc, "the nird that erased")
	for name, reg := range map[string]*nirv1.Registration{"the erased person's": p.regS, "the merged person's": p.regA} {
		a, errA := svc.Append(ctx, oslo, []*nirv1.Registration{proto.Clone(reg).(*nirv1.Registration)})
		b, errB := newSvc().Append(ctx, oslo, []*nirv1.Registration{proto.Clone(reg).(*nirv1.Registration)})
		if errA == nil || errB == nil || errA.Error() != errB.Error() {
			t.Errorf("a re-send of %s registration after the erasure: the nird that erased %v, %v; another %v, %v; want the same refusal", name, a, errA, b, errB)
		}
		// Saying why: "other content" sent case systems after a new id (a walk through the
		// README, 2026-12-07).
		if errA == nil || !strings.Contains(errA.Error(), "erased") {
			t.Errorf("a re-send of %s registration after the erasure: %v; want the refusal to say the person was erased", name, errA)
		}
	}
}

// TestService_MergeChainBoundedByMaxHops: persons of one human merged one into the next make a
// chain a lookup follows from any of the first one's ids (its D-nummer's subject, its added
// fødselsnummer's claim) to the last survivor, at most MaxHops links (DOMAIN.md Product
// decisions 15). A merge that would make a longer chain is refused by NIR-R058, saying to
// merge into the end of the chain; merged the other way, every id is still found.
//
// Found on 2026-12-06 (review of the identity lifecycle): before, merges were nested without
// bound, and follow gave up after MaxHops: the first person's D-nummer and added fødselsnummer
// found nobody, and Oslo could not append by them; now the merge that would make the chain too
// long is refused, and the chain nird writes is always followed to its end.
func TestService_MergeChainBoundedByMaxHops(t *testing.T) {
	ctx := context.Background()
	svc, _ := newService(t)
	i := 63
	birth := rules.Date{Y: 1991, M: time.Month(1 + i%12), D: 1 + i%28}
	var keys, dnrs []string
	for n := 0; n < 6; n++ {
		_, _, reg := dnrPerson(i)
		dnr := rules.SyntheticDNummer(birth, i+10*n)
		reg.GetEvent().GetPersonRegistered().DNummer = dnr
		p, err := svc.Append(ctx, oslo, []*nirv1.Registration{reg})
		if err != nil {
			t.Fatal(err)
		}
		keys, dnrs = append(keys, p[0].PersonKey), append(dnrs, dnr)
	}
	fnr := rules.SyntheticFodselsnummer(birth, i+3)
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{addID(dnrs[0], fnr, fnrType)}); err != nil {
		t.Fatal(err)
	}
	// 0 into 1 into 2 into 3: from fnr's claim, four links (the bound).
	for n := 0; n < 3; n++ {
		if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{mergeReg(dnrs[n+1], keys[n])}); err != nil {
			t.Fatalf("merge %d into %d: %v", n, n+1, err)
		}
	}
	_, err := svc.Append(ctx, oslo, []*nirv1.Registration{mergeReg(dnrs[4], keys[3])})
	var re *ingest.RefusedError
	if !errors.As(err, &re) || len(re.Refusals) != 1 || re.Refusals[0].Code != "NIR-R058" || !strings.Contains(err.Error(), "merge into the end of the chain") {
		t.Fatalf("merging the end of a chain of three into another: %v, want NIR-R058 saying to merge into the end of the chain", err)
	}
	if strings.Contains(err.Error(), dnrs[3]) || strings.Contains(err.Error(), dnrs[4]) {
		t.Fatalf("the refusal holds a national id: %v", err)
	}
	// Into the end of the chain instead: 4 into 3, and 5 into 3.
	for _, n := range []int{4, 5} {
		if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{mergeReg(dnrs[3], keys[n])}); err != nil {
			t.Fatalf("merge %d into the end of the chain: %v", n, err)
		}
	}
	for _, id := range append([]string{fnr}, dnrs...) {
		if k, _, err := svc.History(ctx, historyReader, &nirv1.PersonRef{NationalId: id}); err != nil || k != keys[3] {
			t.Errorf("history by an id of the chain: %.8s, %v; want the end of the chain", k, err)
		}
		if p, err := svc.Append(ctx, oslo, []*nirv1.Registration{offer(id)}); err != nil || p[0].PersonKey != keys[3] {
			t.Errorf("Oslo's append by an id of the chain: %v, %v; want it stored on the end of the chain", p, err)
		}
	}
}

// TestService_EraseDestroysKeysOfRetractedCopies: A merged into B, A's registration retracted
// on B (its copy), B merged into C; C's erasure destroys A's data key too, A being closed into
// B into C by merges in force at every level (DOMAIN.md Product decisions 15).
//
// Found on 2026-12-06 (review of the fixes of the identity lifecycle): since a merge copies
// only what is in force on the absorbed person, C's copy of B held nothing sealed with A's
// key, and C's erasure left A's D-nummer readable on A's own subject; now the erasure also
// takes the keys of every event stored on the subjects of the persons merged into C.
func TestService_EraseDestroysKeysOfRetractedCopies(t *testing.T) {
	ctx := context.Background()
	store, newSvc := sealedStore(t)
	svc := newSvc()
	dnrC, keyC, keyB, dnrA, pa := personsABC(t, svc, 63, nil)
	keyA, regAID := pa[0].PersonKey, pa[0].EventId
	r := mergeReg("", keyA)
	r.Person = &nirv1.PersonRef{PersonKey: keyB}
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{r}); err != nil {
		t.Fatalf("merge A into B: %v", err)
	}
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{retractOn(keyB, regAID)}); err != nil {
		t.Fatalf("retract A's registration on B: %v", err)
	}
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{mergeReg(dnrC, keyB)}); err != nil {
		t.Fatalf("merge B into C: %v", err)
	}
	if _, err := svc.Append(ctx, operatorScope, []*nirv1.Registration{erasureOf(keyC)}); err != nil {
		t.Fatalf("erase C: %v", err)
	}
	ha, _, err := store.Read(ctx, keyA)
	if err != nil || len(ha) == 0 {
		t.Fatalf("read A: %d events, %v", len(ha), err)
	}
	ch, _, err := store.Read(ctx, keyC)
	if err != nil || len(ch) == 0 {
		t.Fatalf("read C: %d events, %v", len(ch), err)
	}
	destroyed := map[string]bool{}
	for _, k := range ch[len(ch)-1].Event.GetPersonErased().GetDestroyedKeys() {
		destroyed[k] = true
	}
	if !destroyed[ha[0].Event.GetDataKeyId()] {
		t.Errorf("C's erasure leaves A's data key, A merged into B into C")
	}
	if _, h, err := newSvc().History(ctx, historyReader, &nirv1.PersonRef{NationalId: dnrA}); err == nil && len(h) > 0 && h[0].Event.GetPersonRegistered().GetDNummer() == dnrA {
		t.Errorf("A's D-nummer is readable after C's erasure")
	}
}

// mergedPair is a person registered by D-nummer (survivor) and again by fødselsnummer
// (absorbed), then merged: the erasure tests' persons.
type mergedPair struct {
	dnr, fnr           string
	regS, regA         *nirv1.Registration
	survivor, absorbed string
}

// cachedMergedPair registers the pair of persons i through first and merges them through
// merger, which then holds both histories in its cache.
func cachedMergedPair(t *testing.T, i int, first, merger *ingest.Service) mergedPair {
	t.Helper()
	ctx := context.Background()
	dnr, fnr, regS := dnrPerson(i)
	_, regA := person(i, false)
	regA.GetEvent().GetPersonRegistered().Fodselsnummer = fnr
	regA.GetEvent().GetPersonRegistered().BirthDate = regS.GetEvent().GetPersonRegistered().GetBirthDate()
	pos, err := first.Append(ctx, oslo, []*nirv1.Registration{proto.Clone(regS).(*nirv1.Registration), proto.Clone(regA).(*nirv1.Registration)})
	if err != nil {
		t.Fatal(err)
	}
	p := mergedPair{dnr: dnr, fnr: fnr, regS: regS, regA: regA, survivor: pos[0].PersonKey, absorbed: pos[1].PersonKey}
	if _, err := merger.Append(ctx, oslo, []*nirv1.Registration{mergeReg(dnr, p.absorbed)}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{p.survivor, p.absorbed} {
		if _, ok := merger.CachedHistoryForTest(k); !ok {
			t.Fatalf("%.8s is not cached before the erasure: the test shows nothing", k)
		}
	}
	return p
}

// notCached checks that svc (named who) keeps neither person of the pair cached, nor their
// national ids in clear.
func (p mergedPair) notCached(t *testing.T, svc *ingest.Service, who string) {
	t.Helper()
	for _, k := range []string{p.survivor, p.absorbed} {
		h, ok := svc.CachedHistoryForTest(k)
		for _, e := range h {
			if e.Event.GetPersonRegistered().GetFodselsnummer() == p.fnr || e.Event.GetPersonRegistered().GetDNummer() == p.dnr {
				t.Errorf("%s: the cache still holds an erased national id in clear, on %.8s", who, k)
			}
		}
		if ok {
			t.Errorf("%s: %.8s (erased) is still cached after the erasure", who, k)
		}
	}
}
