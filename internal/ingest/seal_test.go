package ingest_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/proto"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/access"
	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/ingest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
	"github.com/introreg/nir/sealing"
)

// TestService_SealedRetry: with identities sealed (DOMAIN.md Product decisions 15), a retried
// registration (with a D-nummer, so with a claim) is answered as a duplicate, by the service
// that stored it and by another on the same stream that reads it sealed; the stream holds the
// ids sealed only.
func TestService_SealedRetry(t *testing.T) {
	ctx := context.Background()
	store, newSvc := sealedStore(t)
	a, b := newSvc(), newSvc()
	fnr, reg := person(3, false)
	reg.GetEvent().GetPersonRegistered().DNummer = rules.SyntheticDNummer(rules.MustDate(1990, 4, 4), 3)
	first, err := a.Append(ctx, oslo, []*nirv1.Registration{proto.Clone(reg).(*nirv1.Registration)})
	if err != nil {
		t.Fatal(err)
	}
	for name, svc := range map[string]*ingest.Service{"the same service": a, "another service": b} {
		again, err := svc.Append(ctx, oslo, []*nirv1.Registration{proto.Clone(reg).(*nirv1.Registration)})
		if err != nil || !again[0].GetDuplicate() || again[0].GetSequence() != first[0].GetSequence() {
			t.Fatalf("%s: the retry: %v, %v; want the first, as a duplicate", name, again, err)
		}
	}
	history, _, err := store.Read(ctx, first[0].GetPersonKey())
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := proto.Marshal(history[0].Event)
	if p := history[0].Event.GetPersonRegistered(); bytes.Contains(raw, []byte(fnr)) || p.GetDNummer() != "" || len(p.GetSealedIdentity()) == 0 || history[0].Event.GetDataKeyId() == "" {
		t.Fatalf("stored: %v; want the ids sealed, the key named", history[0].Event)
	}
}

// TestService_EraseUnreadableKey: the right to erasure does not depend on a data key that no
// longer opens (DOMAIN.md Product decisions 15). A person's data-key entry is overwritten
// with bytes the master key does not open, and the append path reads the person's history
// anew (another service, a key store loaded after it). An ordinary append, and a request that
// brings an erasure with another event for the person, are refused with the key store's error
// (sealing.ErrKeyUnreadable), nothing stored; a kommune's erasure is denied as for any
// person. The operator's erasure is stored, judged on the history with the sealed fields
// unreadable, and names the person's key, which is destroyed (this entry, unlike one damaged
// on disk, can be overwritten). Afterwards the history reads the person erased, the erasure
// sent again is a duplicate and an ordinary append is refused by NIR-R055; another person is
// appended to as before.
func TestService_EraseUnreadableKey(t *testing.T) {
	ctx := context.Background()
	id, reg := person(7, false)
	other, otherReg := person(8, false)
	w := withDamagedKey(t, []*nirv1.Registration{reg, offer(id), otherReg}, 0)
	store, keyID, ks2, svc := w.store, w.keyID, w.keys, w.svc
	key, otherKey := w.pos[0].GetPersonKey(), w.pos[2].GetPersonKey()

	operator := access.For(auth.Principal{Name: "drift", Role: auth.RoleOperator})
	erasure := func() *nirv1.Registration {
		return &nirv1.Registration{Person: &nirv1.PersonRef{PersonKey: key}, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301",
			Payload: &nirv1.Event_PersonErased{PersonErased: &nirv1.PersonErased{Reason: "oppbevaringstiden er ute"}}}}
	}
	last := func() uint64 {
		t.Helper()
		n, err := store.LastSeq(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	was := last()
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{offer(id)}); !errors.Is(err, sealing.ErrKeyUnreadable) {
		t.Errorf("an ordinary append: %v; want the key unreadable", err)
	}
	merge := &nirv1.Registration{Person: &nirv1.PersonRef{PersonKey: key}, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301",
		Payload: &nirv1.Event_PersonsMerged{PersonsMerged: &nirv1.PersonsMerged{AbsorbedPersonKey: otherKey, Reason: "samme person"}}}}
	if _, err := svc.Append(ctx, operator, []*nirv1.Registration{merge, erasure()}); !errors.Is(err, sealing.ErrKeyUnreadable) {
		t.Errorf("an erasure with a merge: %v; want the key unreadable", err)
	}
	var denied *access.DeniedError
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{erasure()}); !errors.As(err, &denied) {
		t.Errorf("a kommune's erasure: %v; want denied", err)
	}
	// Once more, now that the refusals above may have left something in the history cache.
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{offer(id)}); !errors.Is(err, sealing.ErrKeyUnreadable) {
		t.Errorf("an ordinary append after the refusals: %v; want the key unreadable", err)
	}
	if n := last(); n != was {
		t.Fatalf("the refused requests stored %d events", n-was)
	}

	first := erasure()
	erased, err := svc.Append(ctx, operator, []*nirv1.Registration{first})
	if err != nil {
		t.Fatalf("the operator's erasure: %v", err)
	}
	if n := last(); n != was+1 || erased[0].GetDuplicate() || erased[0].GetPersonKey() != key {
		t.Fatalf("the erasure: %v, %d events stored; want it stored for the person", erased, n-was)
	}
	history, _, err := store.Read(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if e := history[len(history)-1].Event.GetPersonErased(); e == nil || len(e.GetDestroyedKeys()) != 1 || e.GetDestroyedKeys()[0] != keyID {
		t.Errorf("the stored erasure: %v; want it to name the person's key %s", history[len(history)-1].Event, keyID)
	}
	if _, err := ks2.Key(ctx, keyID); !errors.Is(err, sealing.ErrKeyDestroyed) {
		t.Errorf("the key after the erasure: %v; want destroyed", err)
	}
	for name, s := range map[string]*ingest.Service{"the service": svc, "another service": serviceOn(t, store, sealed(ks2))} {
		_, events, err := s.History(ctx, operator, &nirv1.PersonRef{PersonKey: key})
		if err != nil || len(events) == 0 || events[0].Event.GetPersonRegistered().GetFodselsnummer() != rules.ErasedText || events[len(events)-1].Event.GetPersonErased() == nil {
			t.Errorf("%s: the history after the erasure: %v, %v; want the registration «slettet» and the erasure", name, events, err)
		}
		again, err := s.Append(ctx, operator, []*nirv1.Registration{erasure()})
		if err != nil || !again[0].GetDuplicate() || again[0].GetEventId() != first.GetEvent().GetId() {
			t.Errorf("%s: the erasure again: %v, %v; want the first, a duplicate", name, again, err)
		}
		var refused *ingest.RefusedError
		if _, err := s.Append(ctx, oslo, []*nirv1.Registration{offer(id)}); !errors.As(err, &refused) || refused.Refusals[0].Code != "NIR-R055" {
			t.Errorf("%s: an ordinary append after the erasure: %v; want NIR-R055", name, err)
		}
	}
	if n := last(); n != was+1 {
		t.Errorf("after the erasure %d more events are stored, want none", n-was-1)
	}
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{offer(other)}); err != nil {
		t.Errorf("an append for another person: %v", err)
	}
}

// damagedKey is a store whose events are sealed, after regs were appended for Oslo through a
// service on it (and then whatever each of then appends through that service, given regs'
// positions) and the data key of the person at position victim was overwritten with bytes
// that do not open (a key entry damaged on disk can only be read, this one is rewritten): pos
// are regs' positions, keyID the damaged key's id, keys a key store opened after the damage
// and svc a service sealing with it.
type damagedKey struct {
	store *eventstore.Store
	pos   []*nirv1.Position
	keyID string
	keys  *eventstore.KeyStore
	svc   *ingest.Service
}

func withDamagedKey(t *testing.T, regs []*nirv1.Registration, victim int, then ...func(*ingest.Service, []*nirv1.Position)) damagedKey {
	t.Helper()
	ctx := context.Background()
	store, ks, master := storeWithKeys(t)
	before := serviceOn(t, store, sealed(ks))
	pos, err := before.Append(ctx, oslo, regs)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range then {
		f(before, pos)
	}
	stored, _, err := store.Read(ctx, pos[victim].GetPersonKey())
	if err != nil {
		t.Fatal(err)
	}
	keyID := stored[0].Event.GetDataKeyId()
	ks.Close()
	js, err := jetstream.New(store.Conn())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "$KV."+eventstore.KeyBucket+"."+keyID, bytes.Repeat([]byte{0x5a}, 60)); err != nil {
		t.Fatal(err)
	}
	ks2, err := store.OpenKeyStore(ctx, master)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks2.Close() })
	return damagedKey{store: store, pos: pos, keyID: keyID, keys: ks2, svc: serviceOn(t, store, sealed(ks2))}
}

// sealed configures a service to seal and open events with the data keys of ks, strictly, as
// nird's append path does.
// storeWithKeys opens an embedded JetStream on files and a key store on it with a new master
// key, both closed with the test, and returns the master key too (to open another key store).
func storeWithKeys(t *testing.T) (*eventstore.Store, *eventstore.KeyStore, *sealing.Key) {
	t.Helper()
	ctx := context.Background()
	store, err := eventstore.Open(ctx, eventstore.Config{Dir: filepath.Join(t.TempDir(), "js")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	master, _, err := sealing.NewDataKey()
	if err != nil {
		t.Fatal(err)
	}
	ks, err := store.OpenKeyStore(ctx, master)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	return store, ks, master
}

func sealed(ks *eventstore.KeyStore) func(*ingest.Config) {
	return func(c *ingest.Config) { c.Sealer = sealing.Events{Keys: ks, Strict: true} }
}
