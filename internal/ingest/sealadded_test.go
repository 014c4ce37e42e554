package ingest_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/proto"

	"github.com/introreg/nir/internal/access"
	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/ingest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/sealing"
)

// TestService_AddedIDSealed: an IdentifierAdded sent alone (a request with nothing else to
// seal) is stored with its national id sealed, never in clear, and named by its data key
// (README "What is sealed": an added id too). Found by mutation testing (2026-12-07): an
// append path that left IdentifierAdded out of what it seals stored the added id in clear and
// failed no test of the package.
func TestService_AddedIDSealed(t *testing.T) {
	ctx := context.Background()
	store, ks, _ := storeWithKeys(t)
	svc := serviceOn(t, store, sealed(ks))
	dnr, fnr, reg := dnrPerson(36)
	pos, err := svc.Append(ctx, oslo, []*nirv1.Registration{reg})
	if err != nil {
		t.Fatal(err)
	}
	added, err := svc.Append(ctx, oslo, []*nirv1.Registration{addID(dnr, fnr, fnrType)})
	if err != nil {
		t.Fatal(err)
	}
	raw, _, err := store.Read(ctx, pos[0].GetPersonKey()) // the stream as stored, nothing opened
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, h := range raw {
		b, err := proto.Marshal(h.Event)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(fnr)) || bytes.Contains(b, []byte(dnr)) {
			t.Errorf("event %d of the person is stored with a national id in clear: %v", h.Seq, h.Event)
		}
		if ia := h.Event.GetIdentifierAdded(); ia != nil && h.Seq == added[0].GetSequence() {
			found = true
			if ia.GetNationalId() != "" || len(ia.GetSealedNationalId()) == 0 || h.Event.GetDataKeyId() == "" {
				t.Errorf("the stored IdentifierAdded: %v; want its id sealed, naming its data key", h.Event)
			}
		}
	}
	if !found {
		t.Fatalf("the IdentifierAdded at %d is not in the person's stream", added[0].GetSequence())
	}
	_, events, err := svc.History(ctx, oslo, &nirv1.PersonRef{NationalId: fnr})
	if err != nil || events[len(events)-1].Event.GetIdentifierAdded().GetNationalId() != fnr {
		t.Errorf("the history by the added id: %v, %v; want the added id opened", events, err)
	}
}

// neverDestroy is a sealer whose key store cannot destroy a key (an entry damaged on disk can
// only be read); every other call goes to the real one.
type neverDestroy struct{ sealing.Events }

func (neverDestroy) Destroy(context.Context, string) error {
	return errors.New("the key entry is damaged on disk and cannot be overwritten")
}

// TestService_ErasedDamagedKeyReadsErased: a person erased while its data key was damaged (the
// erasure stored and naming the key, which could not be destroyed) reads erased afterwards, its
// history given, the sealed fields not in clear, not DataLoss: the erasure is recorded, and
// only the damage kept the key store from overwriting the key (sealedStore.Read). Found by
// mutation testing (2026-12-07): a read that failed on every unreadable key, named by an
// erasure or not, failed no test of the package.
func TestService_ErasedDamagedKeyReadsErased(t *testing.T) {
	ctx := context.Background()
	id, reg := person(37, false)
	_, otherReg := person(39, false) // a key that opens: the master key is the right one
	w := withDamagedKey(t, []*nirv1.Registration{reg, offer(id), otherReg}, 0)
	svc := serviceOn(t, w.store, func(c *ingest.Config) { c.Sealer = neverDestroy{sealing.Events{Keys: w.keys, Strict: true}} })
	key := w.pos[0].GetPersonKey()
	operator := access.For(auth.Principal{Name: "drift", Role: auth.RoleOperator})
	erasure := &nirv1.Registration{Person: &nirv1.PersonRef{PersonKey: key}, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301",
		Payload: &nirv1.Event_PersonErased{PersonErased: &nirv1.PersonErased{Reason: "oppbevaringstiden er ute"}}}}
	if _, err := svc.Append(ctx, operator, []*nirv1.Registration{erasure}); !errors.Is(err, ingest.ErrKeysNotDestroyed) {
		t.Fatalf("the erasure of a person whose key cannot be destroyed: %v; want it stored, ErrKeysNotDestroyed", err)
	}
	for name, s := range map[string]*ingest.Service{"the service": svc, "another service": serviceOn(t, w.store, sealed(w.keys))} {
		_, events, err := s.History(ctx, operator, &nirv1.PersonRef{PersonKey: key})
		if err != nil || len(events) != 3 || events[2].Event.GetPersonErased() == nil || events[0].Event.GetPersonRegistered().GetFodselsnummer() == id {
			t.Errorf("%s: the erased person's history: %v, %v; want its three events, the ids not in clear, no error", name, events, err)
		}
	}
}
