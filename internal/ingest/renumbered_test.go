package ingest_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/oklog/ulid/v2"

	"github.com/introreg/nir/internal/access"
	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/ingest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// TestService_RenumberedKommuneWritesItsPast: Halden was 3001 until 2023-12-31 and is 3101
// since; its token holds 3101 (a token names a number valid today). Events dated before 2024
// name the kommune 3001, the number valid on their date (rules.Validate), and the fold counts
// both as one kommune (DOMAIN.md Product decisions 13), so the append path lets Halden write
// and correct them; Moss (3103, 3002 before) does not.
//
// Found on 2026-12-06 (review of the write path): before, access compared the numbers as
// strings, so Halden could register nothing dated before 2024 ("a kommune may only register for
// its own kommune (3101)" with 3001; the validator's "3101 not valid on 2023-06-01" with 3101),
// nor retract its own registration written as 3001; now 3001 is Halden's, and 3101 on a 2023
// date is still the validator's error naming the field.
func TestService_RenumberedKommuneWritesItsPast(t *testing.T) {
	ctx := context.Background()
	svc, store := newService(t)
	halden := access.For(auth.Principal{Name: "halden-fagsystem", Role: auth.RoleKommune, Kommune: "3101"})
	moss := access.For(auth.Principal{Name: "moss-fagsystem", Role: auth.RoleKommune, Kommune: "3103"})

	id := rules.SyntheticFodselsnummer(rules.Date{Y: 1991, M: 3, D: 4}, 901)
	reg := func(k string) *nirv1.Registration {
		return &nirv1.Registration{Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: k,
			Payload: &nirv1.Event_PersonRegistered{PersonRegistered: &nirv1.PersonRegistered{
				Fodselsnummer: id, BirthDate: d(1991, 3, 4), Sex: nirv1.Sex_SEX_FEMALE,
				PermitDate: d(2023, 4, 1), PermitBasis: nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, ArrivalDate: d(2023, 2, 1),
				SettlementDate: d(2023, 6, 1), SettlementKommune: k, SettledByAgreement: true}}}}
	}
	offerBy := func(k string, on *nirv1.Date) *nirv1.Registration {
		return &nirv1.Registration{Person: &nirv1.PersonRef{NationalId: id}, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: k,
			Payload: &nirv1.Event_OfferRegistered{OfferRegistered: &nirv1.OfferRegistered{Programme: nirv1.Programme_PROGRAMME_INTRO, Date: on}}}}
	}

	// Moss may not register a person for Halden, under either of Halden's numbers.
	for _, k := range []string{"3001", "3101"} {
		r := reg(k)
		r.Event.GetPersonRegistered().SettlementDate = d(2024, 6, 1)
		if k == "3001" {
			r.Event.GetPersonRegistered().SettlementDate = d(2023, 6, 1)
		}
		var de *access.DeniedError
		if _, err := svc.Append(ctx, moss, []*nirv1.Registration{r}); !errors.As(err, &de) || de.Field != "registrations[0].event.kommune" {
			t.Errorf("Moss registers a person settled in %s: %v, want denied on registrations[0].event.kommune", k, err)
		}
	}

	// 3101 on 2023-06-01 is the validator's refusal, naming the field.
	if _, err := svc.Append(ctx, halden, []*nirv1.Registration{reg("3101")}); !errors.Is(err, ingest.ErrInvalid) || !strings.Contains(err.Error(), "settlement_kommune") {
		t.Errorf("Halden registers a person settled 2023-06-01 in 3101: %v, want the validator's error on settlement_kommune", err)
	}
	// Halden registers the person it settled in June 2023 under the number it had then.
	first := reg("3001")
	pos, err := svc.Append(ctx, halden, []*nirv1.Registration{first})
	if err != nil {
		t.Fatalf("Halden (3101) registers its person settled 2023-06-01 in 3001: %v", err)
	}
	key := pos[0].PersonKey
	// An offer made in July 2023 (as 3001), and one made in 2024 (as 3101).
	if _, err := svc.Append(ctx, halden, []*nirv1.Registration{offerBy("3001", d(2023, 7, 1)), offerBy("3101", d(2024, 2, 1))}); err != nil {
		t.Errorf("Halden registers offers of 2023-07-01 (3001) and 2024-02-01 (3101): %v", err)
	}
	if _, err := svc.Append(ctx, moss, []*nirv1.Registration{offerBy("3103", d(2024, 2, 1))}); !errors.Is(err, access.ErrNotFound) {
		t.Errorf("Moss writes for Halden's person: %v, want not found", err)
	}
	// Halden retracts its own pre-reform registration to correct it.
	rt := &nirv1.Registration{Person: &nirv1.PersonRef{NationalId: id}, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "3101",
		Payload: &nirv1.Event_EventRetracted{EventRetracted: &nirv1.EventRetracted{EventId: first.Event.Id}}}}
	if _, err := svc.Append(ctx, halden, []*nirv1.Registration{rt}); err != nil {
		t.Fatalf("Halden retracts its registration written as 3001: %v", err)
	}
	events, _, err := store.Read(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	st := rules.NewState(key)
	for _, e := range events {
		st.Apply(e.Seq, e.Event)
	}
	if len(events) != 4 || !st.Retracted[first.Event.Id] || st.Registered {
		t.Errorf("stored %d events (want 4), registration retracted %v, registered %v", len(events), st.Retracted[first.Event.Id], st.Registered)
	}
}
