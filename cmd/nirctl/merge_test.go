package main

import (
	"bytes"
	"context"
	"net/http"
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

// TestPersonMerge: an operator merges two persons found to be one with `nirctl person merge`
// and undoes it with `nirctl person unmerge` (DOMAIN.md Product decisions 15); a kommune's
// lookups by the absorbed person's fødselsnummer follow.
func TestPersonMerge(t *testing.T) {
	n := startTestNird(t)
	ctx := context.Background()
	reg := nirv1connect.NewRegistrationServiceClient(http.DefaultClient, n.url, connect.WithInterceptors(auth.BearerInterceptor("kommune:0301")))
	birth := rules.MustDate(1979, time.March, 3)
	dnr, fnr := rules.SyntheticDNummer(birth, 8), rules.SyntheticFodselsnummer(birth, 8)
	register := func(fnr, dnr string) string {
		t.Helper()
		ev := &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301", Payload: &nirv1.Event_PersonRegistered{PersonRegistered: &nirv1.PersonRegistered{
			Fodselsnummer: fnr, DNummer: dnr, BirthDate: birth.Proto(), Sex: nirv1.Sex_SEX_MALE,
			PermitDate: birth.AddYears(40).Proto(), PermitBasis: nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, ArrivalDate: birth.AddYears(40).Proto(),
			SettlementDate: birth.AddYears(40).AddDays(30).Proto(), SettlementKommune: "0301", SettledByAgreement: true}}}
		res, err := reg.Append(ctx, connect.NewRequest(&nirv1.AppendRequest{Registrations: []*nirv1.Registration{{Event: ev}}}))
		if err != nil {
			t.Fatal(err)
		}
		return res.Msg.GetPositions()[0].GetPersonKey()
	}
	survivor, absorbed := register("", dnr), register(fnr, "")
	nirctl := func(token string, args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(ctx, append([]string{"--server", n.url, "--token", token}, args...), &out, &errOut)
		return out.String() + errOut.String(), err
	}
	historyKey := func(id string) string {
		res, err := reg.History(ctx, connect.NewRequest(&nirv1.HistoryRequest{Person: &nirv1.PersonRef{NationalId: id}}))
		if err != nil {
			t.Fatal(err)
		}
		return res.Msg.GetPersonKey()
	}

	if out, err := nirctl("operator", "person", "merge", survivor, absorbed); err == nil || !strings.Contains(out, "--kommune is required") {
		t.Fatalf("merge without --kommune: %v, %s", err, out)
	}
	if out, err := nirctl("operator", "person", "merge", survivor, fnr, "--kommune", "0301"); err == nil || !strings.Contains(out, "person key") {
		t.Fatalf("merge naming the absorbed person by national id: %v, %s", err, out)
	}
	out, err := nirctl("operator", "person", "merge", survivor, absorbed, "--kommune", "0301", "--reason", "samme person")
	if err != nil || !strings.Contains(out, "merged into person "+survivor) {
		t.Fatalf("merge: %v, %s", err, out)
	}
	if got := historyKey(fnr); got != survivor {
		t.Fatalf("after the merge the fødselsnummer leads to %s, want the survivor", got)
	}
	mergeID := strings.Fields(out[strings.Index(out, "event ")+len("event "):])[0]
	if out, err := nirctl("operator", "person", "unmerge", survivor, mergeID, "--kommune", "0301"); err != nil || !strings.Contains(out, "unmerged from person "+survivor) {
		t.Fatalf("unmerge: %v, %s", err, out)
	}
	if got := historyKey(fnr); got != absorbed {
		t.Fatalf("after the unmerge the fødselsnummer leads to %s, want the absorbed person", got)
	}
}
