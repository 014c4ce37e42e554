package ingest_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/introreg/nir/internal/access"
	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/ingest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/sealing"
)

// TestService_HiddenDamagedKey: a kommune without a relation to a person whose data key is
// damaged gets, for the person's history, the answer an unknown person gets (README "Kommune
// boundaries"), also when the read models cannot decide it first (here: no access records,
// as while they are behind the stream). Before, the strict read's DataLoss («a stored event's
// data key cannot be read») came back to the stranger, telling it that the person exists.
// The owner still gets the key store's error.
func TestService_HiddenDamagedKey(t *testing.T) {
	ctx := context.Background()
	id, reg := person(9, false)
	_, otherReg := person(10, false) // a key that opens, so that the key store opens at all
	w := withDamagedKey(t, []*nirv1.Registration{reg, offer(id), otherReg}, 0)
	key, svc := w.pos[0].GetPersonKey(), w.svc

	if _, _, err := svc.History(ctx, oslo, &nirv1.PersonRef{PersonKey: key}); !errors.Is(err, sealing.ErrKeyUnreadable) {
		t.Fatalf("the owner's history of the person: %v; want the key unreadable", err)
	}
	bergen := access.For(auth.Principal{Name: "bergen-fagsystem", Role: auth.RoleKommune, Kommune: "4601"})
	notFound := func(err error) bool {
		return errors.Is(err, ingest.ErrNotFound) || errors.Is(err, access.ErrNotFound)
	}
	if _, _, err := svc.History(ctx, bergen, &nirv1.PersonRef{PersonKey: strings.Repeat("ab", 32)}); !notFound(err) {
		t.Fatalf("Bergen's history of an unknown key: %v; want not found", err)
	}
	if _, _, err := svc.History(ctx, bergen, &nirv1.PersonRef{PersonKey: key}); !notFound(err) || errors.Is(err, sealing.ErrKeyUnreadable) {
		t.Errorf("Bergen's history of Oslo's person whose key is damaged: %v; want not found, as for an unknown key", err)
	}
	if _, _, err := svc.History(ctx, bergen, &nirv1.PersonRef{NationalId: id}); !notFound(err) || errors.Is(err, sealing.ErrKeyUnreadable) {
		t.Errorf("Bergen's history of Oslo's person whose key is damaged, by national id: %v; want not found", err)
	}
	// An append reads the person the same way (found on 2026-12-07 after the History fix):
	// Bergen's offer for the person is refused as for a national id nobody registered.
	bergenOffer := func(nid string) error {
		r := offer(nid)
		r.Event.Kommune = "4601"
		_, err := svc.Append(ctx, bergen, []*nirv1.Registration{r})
		return err
	}
	unknownID, _ := person(11, false)
	errUnknown, errDamaged := bergenOffer(unknownID), bergenOffer(id)
	if errUnknown == nil || errDamaged == nil || errors.Is(errDamaged, sealing.ErrKeyUnreadable) || errDamaged.Error() != errUnknown.Error() {
		t.Errorf("Bergen's offer for Oslo's person whose key is damaged: %v; for an unknown national id: %v; want the same refusal", errDamaged, errUnknown)
	}
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{offer(id)}); !errors.Is(err, sealing.ErrKeyUnreadable) {
		t.Errorf("Oslo's offer for its own person whose key is damaged: %v; want the key unreadable", err)
	}
}
