package main

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/oklog/ulid/v2"

	"github.com/introreg/nir/internal/auth"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
	"github.com/introreg/nir/rules"
)

// TestPersonEraseDue_ActiveSinceListing: `nirctl person erase --due` erases the persons the
// retention rule makes due (DOMAIN.md Product decisions 15, retention), and leaves one who
// took part in something after the listing: the rule is applied again right before each
// erasure.
//
// Found on 2026-12-06 (review of the identity lifecycle): before, nirctl erased every person of
// its one listing, computed on read models that may lag, and a person who became active
// between the listing and the erasure was erased all the same; now that person is reported
// "not due any more" and kept.
func TestPersonEraseDue_ActiveSinceListing(t *testing.T) {
	n := startTestNird(t, "--retention-years", "10")
	ctx := context.Background()
	reg := nirv1connect.NewRegistrationServiceClient(http.DefaultClient, n.url, connect.WithInterceptors(auth.BearerInterceptor("kommune:0301")))
	admin := nirv1connect.NewAdminServiceClient(http.DefaultClient, n.url, connect.WithInterceptors(auth.BearerInterceptor("operator")))
	birth := rules.MustDate(1970, time.April, 4)
	register := func(seq int) string {
		t.Helper()
		ev := &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301", Payload: &nirv1.Event_PersonRegistered{PersonRegistered: &nirv1.PersonRegistered{
			Fodselsnummer: rules.SyntheticFodselsnummer(birth, seq), BirthDate: birth.Proto(), Sex: nirv1.Sex_SEX_FEMALE,
			PermitDate: rules.MustDate(2010, 1, 10).Proto(), PermitBasis: nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, ArrivalDate: rules.MustDate(2010, 1, 1).Proto(),
			SettlementDate: rules.MustDate(2010, 2, 1).Proto(), SettlementKommune: "0301", SettledByAgreement: true}}}
		res, err := reg.Append(ctx, connect.NewRequest(&nirv1.AppendRequest{Registrations: []*nirv1.Registration{{Event: ev}}}))
		if err != nil {
			t.Fatal(err)
		}
		return res.Msg.GetPositions()[0].GetPersonKey()
	}
	idle, active := register(1), register(2)
	// due waits (within a deadline, no timing asserted) until the read models list exactly the
	// persons want due among idle and active.
	due := func(want ...string) {
		t.Helper()
		var got []string
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			res, err := admin.ListErasureDue(ctx, connect.NewRequest(&nirv1.ListErasureDueRequest{}))
			if err != nil {
				t.Fatal(err)
			}
			got = got[:0]
			for _, p := range res.Msg.GetPersons() {
				if k := p.GetPersonKey(); k == idle || k == active {
					got = append(got, k)
				}
			}
			if len(got) == len(want) && !slices.ContainsFunc(want, func(k string) bool { return !slices.Contains(got, k) }) {
				return
			}
		}
		t.Fatalf("due for erasure: %v, want %v", got, want)
	}
	due(idle, active)
	// The re-check asks for one person (person_key): that person only, at one fold's cost.
	// Found on 2026-12-06 (review of the re-check): it listed the whole register again before
	// each erasure, so N persons due cost N folds of every person.
	one, err := admin.ListErasureDue(ctx, connect.NewRequest(&nirv1.ListErasureDueRequest{PersonKey: idle}))
	if err != nil || len(one.Msg.GetPersons()) != 1 || one.Msg.GetPersons()[0].GetPersonKey() != idle {
		t.Fatalf("ListErasureDue for the idle person alone: %v, %v; want that person", one, err)
	}
	if _, err := admin.ListErasureDue(ctx, connect.NewRequest(&nirv1.ListErasureDueRequest{PersonKey: "x"})); connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "person_key") {
		t.Fatalf("ListErasureDue for person_key x: %v, want InvalidArgument naming person_key", err)
	}
	// Between the listing and the erasures the active person takes part in something.
	afterDueListing = func() {
		ev := &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301", Payload: &nirv1.Event_OfferRegistered{OfferRegistered: &nirv1.OfferRegistered{
			Programme: nirv1.Programme_PROGRAMME_INTRO, Date: rules.Today(time.Now()).AddDays(-30).Proto()}}}
		if _, err := reg.Append(ctx, connect.NewRequest(&nirv1.AppendRequest{Registrations: []*nirv1.Registration{{
			Person: &nirv1.PersonRef{PersonKey: active}, Event: ev}}})); err != nil {
			t.Fatalf("the active person's offer: %v", err)
		}
		due(idle)
	}
	t.Cleanup(func() { afterDueListing = func() {} })
	var out, errOut bytes.Buffer
	err = run(ctx, []string{"--server", n.url, "--token", "operator", "person", "erase", "--due"}, &out, &errOut)
	if err != nil || !strings.Contains(out.String(), "erased "+idle+": event") || !strings.Contains(out.String(), "not erased "+active+": not due any more") {
		t.Fatalf("nirctl person erase --due: %v\n%s%s\nwant the idle person erased, the active one not due any more", err, out.String(), errOut.String())
	}
	h, err := reg.History(ctx, connect.NewRequest(&nirv1.HistoryRequest{Person: &nirv1.PersonRef{PersonKey: active}}))
	if err != nil {
		t.Fatal(err)
	}
	evs := h.Msg.GetEvents()
	if len(evs) == 0 || evs[len(evs)-1].GetEvent().GetOfferRegistered() == nil {
		t.Fatalf("the active person's history ends with %v; want the offer, no erasure", evs)
	}
}
