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
)

// TestService_RegistrationFiledUnderItsOwnID: a PersonRegistered is the person's identity,
// keyed by one of its own ids (DOMAIN.md Product decisions 8 and 15), so a registration whose
// person ref (national_id or person_key) is none of its ids is refused, naming
// registrations[i].person and never the id.
//
// Found on 2026-12-06 (review of the write path): before, Oslo's registration of its person F,
// naming the person by X (Bergen's person, not registered yet), was stored under X's key: X
// was taken by a person whose registration never mentions X, and Bergen's registration of X
// answered NotFound. Now Oslo's is refused, nothing stored, and Bergen registers X.
func TestService_RegistrationFiledUnderItsOwnID(t *testing.T) {
	ctx := context.Background()
	svc, store := newService(t)
	bergen := access.For(auth.Principal{Name: "bergen-fagsystem", Role: auth.RoleKommune, Kommune: "4601"})
	x, regX := person(51, false) // Bergen's person, not registered yet
	f, regF := person(52, false) // Oslo's own person F
	xKey, err := svc.PersonKey(&nirv1.PersonRef{NationalId: x}, "p")
	if err != nil {
		t.Fatal(err)
	}
	for name, ref := range map[string]*nirv1.PersonRef{"national_id": {NationalId: x}, "person_key": {PersonKey: xKey}} {
		regF.Person = ref
		_, err := svc.Append(ctx, oslo, []*nirv1.Registration{regF})
		var ie *ingest.InvalidError
		if !errors.As(err, &ie) || ie.Field != "registrations[0].person" {
			t.Errorf("by %s: Oslo's registration of F naming the person by X: %v; want invalid registrations[0].person", name, err)
		}
		if err != nil && (strings.Contains(err.Error(), x) || strings.Contains(err.Error(), f)) {
			t.Errorf("by %s: the error echoes a national id: %v", name, err)
		}
	}
	if n, _ := store.LastSeq(ctx); n != 0 {
		t.Errorf("the refused registrations stored %d events", n)
	}
	// Named by its own id, or not named, it is stored as before.
	regF.Person = &nirv1.PersonRef{NationalId: f}
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{regF}); err != nil {
		t.Errorf("Oslo's registration of F named by F: %v", err)
	}
	pr := regX.Event.GetPersonRegistered()
	regX.Event.Kommune, pr.SettlementKommune = "4601", "4601"
	if _, err := svc.Append(ctx, bergen, []*nirv1.Registration{regX}); err != nil {
		t.Errorf("Bergen registers its person X: %v", err)
	}
}
