package e2e

import (
	"context"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/nirdtest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
	"github.com/introreg/nir/rules"
)

// TestMerge: two persons found to be one (DOMAIN.md Product decisions 15), through the API of
// nird as a process. A person registered by D-nummer and again by fødselsnummer, each with a
// vedtak, counts twice; merged by an operator it counts once, with the earliest vedtak, found
// by both ids, the merge in its audit history; an as-of snapshot from before the merge still
// shows two; a fresh fold of the stream equals the live models; and the merge retracted
// counts two again.
func TestMerge(t *testing.T) {
	if testing.Short() {
		t.Skip("runs nird; run without -short")
	}
	n := nirdtest.Start(t, "--data", filepath.Join(t.TempDir(), "data"), "--rate-limit", "0")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const oslo, operator = "kommune:0301", "operator"
	reg := func(token string) nirv1connect.RegistrationServiceClient {
		return nirv1connect.NewRegistrationServiceClient(http.DefaultClient, n.URL(), connect.WithInterceptors(auth.BearerInterceptor(token)))
	}
	query := nirv1connect.NewQueryServiceClient(http.DefaultClient, n.URL(), connect.WithInterceptors(auth.BearerInterceptor(oslo)))
	admin := nirv1connect.NewAdminServiceClient(http.DefaultClient, n.URL(), connect.WithInterceptors(auth.BearerInterceptor(operator)))

	birth := rules.MustDate(1988, 4, 9)
	dnr, fnr := rules.SyntheticDNummer(birth, 31), rules.SyntheticFodselsnummer(birth, 31)
	d := func(y, m, day int) *nirv1.Date { return rules.MustDate(y, time.Month(m), day).Proto() }
	ev := func(payload any) *nirv1.Event {
		e := &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301"}
		switch p := payload.(type) {
		case *nirv1.PersonRegistered:
			e.Payload = &nirv1.Event_PersonRegistered{PersonRegistered: p}
		case *nirv1.ProgrammeVedtakRegistered:
			e.Payload = &nirv1.Event_ProgrammeVedtakRegistered{ProgrammeVedtakRegistered: p}
		case *nirv1.PersonsMerged:
			e.Payload = &nirv1.Event_PersonsMerged{PersonsMerged: p}
		case *nirv1.EventRetracted:
			e.Payload = &nirv1.Event_EventRetracted{EventRetracted: p}
		}
		return e
	}
	send := func(token string, person string, e *nirv1.Event) *nirv1.Position {
		t.Helper()
		r := &nirv1.Registration{Event: e}
		if person != "" {
			r.Person = &nirv1.PersonRef{NationalId: person}
		}
		res, err := reg(token).Append(ctx, connect.NewRequest(&nirv1.AppendRequest{Registrations: []*nirv1.Registration{r}}))
		if err != nil {
			t.Fatalf("append: %v", err)
		}
		return res.Msg.GetPositions()[0]
	}
	person := func(fnr, dnr string) *nirv1.Event {
		return ev(&nirv1.PersonRegistered{Fodselsnummer: fnr, DNummer: dnr, BirthDate: birth.Proto(), Sex: nirv1.Sex_SEX_FEMALE,
			PermitDate: d(2025, 1, 10), PermitBasis: nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, ArrivalDate: d(2024, 12, 1),
			SettlementDate: d(2025, 1, 20), SettlementKommune: "0301", SettledByAgreement: true})
	}
	vedtak := func(from *nirv1.Date) *nirv1.Event {
		return ev(&nirv1.ProgrammeVedtakRegistered{Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, VedtakDate: from, FromDate: from})
	}
	participants := func(snapshot string, min uint64) int64 {
		t.Helper()
		res, err := query.Statistics(ctx, connect.NewRequest(&nirv1.StatisticsRequest{Year: 2025, Level: nirv1.StatisticsLevel_STATISTICS_LEVEL_KOMMUNE,
			Area: "0301", Snapshot: snapshot, MinSequence: min}))
		if err != nil {
			t.Fatalf("statistics: %v", err)
		}
		if len(res.Msg.GetRows()) != 1 {
			t.Fatalf("statistics: %d rows", len(res.Msg.GetRows()))
		}
		return res.Msg.GetRows()[0].GetParticipants()
	}

	survivor := send(oslo, "", person("", dnr)).GetPersonKey()
	send(oslo, dnr, vedtak(d(2025, 3, 3)))
	absorbed := send(oslo, "", person(fnr, "")).GetPersonKey()
	last := send(oslo, fnr, vedtak(d(2025, 2, 17)))
	if got := participants("", last.GetSequence()); got != 2 {
		t.Fatalf("before the merge: %d participants, want 2 (the same person twice)", got)
	}
	beforeMerge := time.Now()
	time.Sleep(50 * time.Millisecond)

	merge := send(operator, dnr, ev(&nirv1.PersonsMerged{AbsorbedPersonKey: absorbed, Reason: "samme person: D-nummer og fødselsnummer"}))
	if merge.GetPersonKey() != survivor {
		t.Fatalf("the merge went to %s, want the survivor", merge.GetPersonKey())
	}
	if got := participants("", merge.GetSequence()); got != 1 {
		t.Fatalf("after the merge: %d participants, want 1", got)
	}
	for _, id := range []string{dnr, fnr} {
		res, err := query.GetPerson(ctx, connect.NewRequest(&nirv1.GetPersonRequest{Person: &nirv1.PersonRef{NationalId: id}, MinSequence: merge.GetSequence()}))
		if err != nil {
			t.Fatalf("GetPerson after the merge: %v", err)
		}
		p := res.Msg.GetPerson()
		if p.GetPersonKey() != survivor || p.GetNationalId() != fnr || p.GetProgrammeStart().GetMonth() != 2 {
			t.Fatalf("GetPerson after the merge: %v, %v; want the survivor, shown by the fødselsnummer, its programme from the earliest vedtak (2025-02-17)", p, err)
		}
	}
	list, err := query.ListPersons(ctx, connect.NewRequest(&nirv1.ListPersonsRequest{Kommune: "0301"}))
	if err != nil || list.Msg.GetTotal() != 1 {
		t.Fatalf("person list after the merge: %v, %v; want one person", list, err)
	}
	audit, err := query.AuditHistory(ctx, connect.NewRequest(&nirv1.AuditHistoryRequest{Person: &nirv1.PersonRef{NationalId: fnr}}))
	if err != nil {
		t.Fatal(err)
	}
	entries := audit.Msg.GetEntries()
	if len(entries) == 0 || entries[len(entries)-1].GetEvent().GetPersonsMerged().GetAbsorbedPersonKey() != absorbed {
		t.Fatalf("the audit history does not end with the merge: %v", entries)
	}

	// As known before the merge: two persons.
	stream, err := admin.CreateSnapshot(ctx, connect.NewRequest(&nirv1.CreateSnapshotRequest{Name: "before-merge", RecordedUntil: timestamppb.New(beforeMerge)}))
	if err != nil {
		t.Fatal(err)
	}
	for stream.Receive() {
	}
	if err := stream.Err(); err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("snapshot: %v", err)
	}
	if got := participants("before-merge", 0); got != 2 {
		t.Fatalf("the snapshot from before the merge: %d participants, want 2", got)
	}
	vres, err := admin.VerifyProjections(ctx, connect.NewRequest(&nirv1.VerifyProjectionsRequest{CompareFold: true}))
	if err != nil || !vres.Msg.GetFold().GetEqual() {
		t.Fatalf("live models against a fresh fold: %v, %v", vres, err)
	}

	// Un-merge.
	un := send(oslo, dnr, ev(&nirv1.EventRetracted{EventId: merge.GetEventId(), Reason: "ikke samme person"}))
	if got := participants("", un.GetSequence()); got != 2 {
		t.Fatalf("after the un-merge: %d participants, want 2", got)
	}
	res, err := query.GetPerson(ctx, connect.NewRequest(&nirv1.GetPersonRequest{Person: &nirv1.PersonRef{NationalId: fnr}, MinSequence: un.GetSequence()}))
	if err != nil || res.Msg.GetPerson().GetPersonKey() != absorbed {
		t.Fatalf("GetPerson by the fødselsnummer after the un-merge: %v, %v; want the absorbed person again", res, err)
	}
}
