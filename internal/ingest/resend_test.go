package ingest_test

import (
	"context"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/introreg/nir/internal/access"
	"github.com/introreg/nir/internal/auth"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// Found on 2026-12-06 (review after merging 8ebfeb1): an identical re-send of a registration,
// naming the person by an id the person holds (added later by IdentifierAdded) or by the
// survivor of a merge, was refused by the check that a registration is filed under one of its
// own ids, instead of being answered as a duplicate (README Idempotent). The check now applies
// to a new person's registration only.
func TestService_ResendNamedByHeldID(t *testing.T) {
	ctx := context.Background()
	svc, _ := newService(t)
	dnr, fnr, reg := dnrPerson(41)
	pos, err := svc.Append(ctx, oslo, []*nirv1.Registration{reg})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{addID(dnr, fnr, fnrType)}); err != nil {
		t.Fatal(err)
	}
	// The case system now knows the person by its fødselsnummer and re-sends the registration.
	again := proto.Clone(reg).(*nirv1.Registration)
	again.Person = &nirv1.PersonRef{NationalId: fnr}
	got, err := svc.Append(ctx, oslo, []*nirv1.Registration{again})
	if err != nil {
		t.Errorf("identical re-send named by the person's added fødselsnummer: %v; want duplicate", err)
	} else if !got[0].Duplicate || got[0].Sequence != pos[0].Sequence {
		t.Errorf("re-send answered %v; want duplicate at %d", got[0], pos[0].Sequence)
	}
}

func TestService_ResendAbsorbedRegistrationNamedBySurvivor(t *testing.T) {
	ctx := context.Background()
	svc, _ := newService(t)
	dnr, _, regA, pos := registeredTwice(t, svc, 43)
	absorbed := pos[1].PersonKey
	operator := access.For(auth.Principal{Name: "drift", Role: auth.RoleOperator})
	if _, err := svc.Append(ctx, operator, []*nirv1.Registration{mergeReg(dnr, absorbed)}); err != nil {
		t.Fatal(err)
	}
	for name, ref := range map[string]*nirv1.PersonRef{
		"by its own id (empty ref)":  nil,
		"by the survivor's d-nummer": {NationalId: dnr},
	} {
		again := proto.Clone(regA).(*nirv1.Registration)
		again.Person = ref
		got, err := svc.Append(ctx, oslo, []*nirv1.Registration{again})
		if err != nil {
			t.Errorf("%s: identical re-send of the absorbed registration: %v; want duplicate", name, err)
			continue
		}
		if !got[0].Duplicate || got[0].Sequence != pos[1].Sequence {
			t.Errorf("%s: re-send answered %v; want duplicate at %d", name, got[0], pos[1].Sequence)
		}
	}
}
