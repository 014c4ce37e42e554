package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/introreg/nir/internal/api"
	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/nirdtest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
	"github.com/introreg/nir/rules"
)

// TestErase: erasure by crypto-shredding (DOMAIN.md Product decisions 15), through the API of
// nird as a process. A person registered by fødselsnummer and D-nummer, with a vedtak, beside
// another person; no id is ever readable in the stream's files. An operator erases the person:
// lookups by both ids find nothing, by the person key the ids and birth date read «slettet» in
// the person list, the history and the audit history, and the statistics still count two. The
// same holds after a rebuild (whose file holds the ids no more), in an as-of snapshot from
// before the erasure, against a fresh fold, and after a restart; the other person keeps its
// ids, and a new registration of the erased id is refused.
func TestErase(t *testing.T) {
	if testing.Short() {
		t.Skip("runs nird; run without -short")
	}
	data := filepath.Join(t.TempDir(), "data")
	n := nirdtest.Start(t, "--data", data, "--rate-limit", "0")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const oslo, operator = "kommune:0301", "operator"
	var (
		reg   func(token string) nirv1connect.RegistrationServiceClient
		query nirv1connect.QueryServiceClient
		admin nirv1connect.AdminServiceClient
	)
	connectTo := func(n *nirdtest.Nird) {
		reg = func(token string) nirv1connect.RegistrationServiceClient {
			return nirv1connect.NewRegistrationServiceClient(http.DefaultClient, n.URL(), connect.WithInterceptors(auth.BearerInterceptor(token)))
		}
		query = nirv1connect.NewQueryServiceClient(http.DefaultClient, n.URL(), connect.WithInterceptors(auth.BearerInterceptor(oslo)))
		admin = nirv1connect.NewAdminServiceClient(http.DefaultClient, n.URL(), connect.WithInterceptors(auth.BearerInterceptor(operator)))
	}
	connectTo(n)

	birth := rules.MustDate(1979, 11, 23)
	fnr, dnr := rules.SyntheticFodselsnummer(birth, 41), rules.SyntheticDNummer(birth, 41)
	other := rules.SyntheticFodselsnummer(rules.MustDate(1990, 5, 5), 42)
	d := func(y, m, day int) *nirv1.Date { return rules.MustDate(y, time.Month(m), day).Proto() }
	send := func(token, person string, e *nirv1.Event) (*nirv1.Position, error) {
		e.Id, e.Kommune = ulid.Make().String(), "0301"
		r := &nirv1.Registration{Event: e}
		switch {
		case len(person) == 64:
			r.Person = &nirv1.PersonRef{PersonKey: person}
		case person != "":
			r.Person = &nirv1.PersonRef{NationalId: person}
		}
		res, err := reg(token).Append(ctx, connect.NewRequest(&nirv1.AppendRequest{Registrations: []*nirv1.Registration{r}}))
		if err != nil {
			return nil, err
		}
		return res.Msg.GetPositions()[0], nil
	}
	must := func(p *nirv1.Position, err error) *nirv1.Position {
		t.Helper()
		if err != nil {
			t.Fatalf("append: %v", err)
		}
		return p
	}
	person := func(fnr, dnr string, born rules.Date) *nirv1.Event {
		return &nirv1.Event{Payload: &nirv1.Event_PersonRegistered{PersonRegistered: &nirv1.PersonRegistered{
			Fodselsnummer: fnr, DNummer: dnr, BirthDate: born.Proto(), Sex: nirv1.Sex_SEX_MALE,
			PermitDate: d(2025, 1, 10), PermitBasis: nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, ArrivalDate: d(2024, 12, 1),
			SettlementDate: d(2025, 1, 20), SettlementKommune: "0301", SettledByAgreement: true}}}
	}
	vedtak := func() *nirv1.Event {
		return &nirv1.Event{Payload: &nirv1.Event_ProgrammeVedtakRegistered{ProgrammeVedtakRegistered: &nirv1.ProgrammeVedtakRegistered{
			Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, VedtakDate: d(2025, 2, 3), FromDate: d(2025, 2, 3)}}}
	}
	participants := func(snapshot string, min uint64) int64 {
		t.Helper()
		res, err := query.Statistics(ctx, connect.NewRequest(&nirv1.StatisticsRequest{Year: 2025, Level: nirv1.StatisticsLevel_STATISTICS_LEVEL_KOMMUNE,
			Area: "0301", Snapshot: snapshot, MinSequence: min}))
		if err != nil || len(res.Msg.GetRows()) != 1 {
			t.Fatalf("statistics: %v, %v", res, err)
		}
		return res.Msg.GetRows()[0].GetParticipants()
	}
	// filesHolding lists the files under dir whose bytes hold any of the ids.
	filesHolding := func(dir string, ids ...string) []string {
		t.Helper()
		var out []string
		err := filepath.WalkDir(dir, func(path string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, id := range ids {
				if bytes.Contains(b, []byte(id)) {
					out = append(out, path)
					break
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	key := must(send(oslo, "", person(fnr, dnr, birth))).GetPersonKey()
	must(send(oslo, fnr, vedtak()))
	must(send(oslo, "", person(other, "", rules.MustDate(1990, 5, 5))))
	last := must(send(oslo, other, vedtak()))
	if got := participants("", last.GetSequence()); got != 2 {
		t.Fatalf("before the erasure: %d participants, want 2", got)
	}
	jetstream := filepath.Join(data, "jetstream")
	if f := filesHolding(jetstream, fnr, dnr, other); len(f) > 0 {
		t.Fatalf("national ids in clear in the stream's files: %v", f)
	}
	// The scan finds an id where one is in clear: the live read models show it.
	if f := filesHolding(filepath.Join(data, "projections"), fnr); len(f) == 0 {
		t.Fatal("the scan does not find the fødselsnummer in the read models, which show it")
	}
	beforeErase := time.Now()
	time.Sleep(50 * time.Millisecond)

	erasure := func() *nirv1.Event {
		return &nirv1.Event{Payload: &nirv1.Event_PersonErased{PersonErased: &nirv1.PersonErased{Reason: "oppbevaringstiden er ute"}}}
	}
	if _, err := send(oslo, fnr, erasure()); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("a kommune erases a person: %v, want PermissionDenied", err)
	}
	erased := must(send(operator, fnr, erasure()))
	if erased.GetPersonKey() != key {
		t.Fatalf("the erasure went to %s, want the person", erased.GetPersonKey())
	}
	seq := erased.GetSequence()

	check := func(when, snapshot string, min uint64) {
		t.Helper()
		if got := participants(snapshot, min); got != 2 {
			t.Fatalf("%s: %d participants, want 2 (an erasure changes no statistic)", when, got)
		}
		for _, id := range []string{fnr, dnr} {
			_, err := query.GetPerson(ctx, connect.NewRequest(&nirv1.GetPersonRequest{Person: &nirv1.PersonRef{NationalId: id}, Snapshot: snapshot, MinSequence: min}))
			if connect.CodeOf(err) != connect.CodeNotFound {
				t.Fatalf("%s: a lookup by an erased id: %v, want NotFound", when, err)
			}
		}
		res, err := query.GetPerson(ctx, connect.NewRequest(&nirv1.GetPersonRequest{Person: &nirv1.PersonRef{PersonKey: key}, Snapshot: snapshot, MinSequence: min}))
		if err != nil {
			t.Fatalf("%s: GetPerson by person key: %v", when, err)
		}
		if p := res.Msg.GetPerson(); p.GetNationalId() != rules.ErasedText || p.GetBirthDate() != nil || p.GetProgrammeStart() == nil {
			t.Fatalf("%s: the erased person reads %v; want «slettet», no birth date, the programme as before", when, p)
		}
		o, err := query.GetPerson(ctx, connect.NewRequest(&nirv1.GetPersonRequest{Person: &nirv1.PersonRef{NationalId: other}, Snapshot: snapshot, MinSequence: min}))
		if err != nil || o.Msg.GetPerson().GetNationalId() != other {
			t.Fatalf("%s: the other person: %v, %v; want its fødselsnummer", when, o, err)
		}
		audit, err := query.AuditHistory(ctx, connect.NewRequest(&nirv1.AuditHistoryRequest{Person: &nirv1.PersonRef{PersonKey: key}, Snapshot: snapshot, MinSequence: min}))
		if err != nil {
			t.Fatalf("%s: audit history: %v", when, err)
		}
		pr := audit.Msg.GetEntries()[0].GetEvent().GetPersonRegistered()
		if pr.GetFodselsnummer() != rules.ErasedText || pr.GetDNummer() != "" || pr.GetBirthDate() != nil || len(pr.GetSealedIdentity()) > 0 {
			t.Fatalf("%s: the audit history shows the registration as %v", when, pr)
		}
	}
	check("after the erasure", "", seq)
	// The CSV export: the erased person's row reads «slettet», id and birth date alike.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.URL()+api.ExportPersonsPath+"?kommune=0301", nil)
	req.Header.Set("Authorization", "Bearer "+oslo)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	csv, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || bytes.Contains(csv, []byte(fnr)) || bytes.Contains(csv, []byte(dnr)) ||
		!bytes.Contains(csv, []byte(key+",slettet,0301,slettet,")) || !bytes.Contains(csv, []byte(other)) {
		t.Fatalf("the CSV export (%d):\n%s\nwant the erased person «slettet», the other with its id", resp.StatusCode, csv)
	}
	hist, err := reg(oslo).History(ctx, connect.NewRequest(&nirv1.HistoryRequest{Person: &nirv1.PersonRef{PersonKey: key}}))
	if err != nil {
		t.Fatal(err)
	}
	if pr := hist.Msg.GetEvents()[0].GetEvent().GetPersonRegistered(); pr.GetFodselsnummer() != rules.ErasedText || pr.GetBirthDate() != nil {
		t.Fatalf("the history shows the registration as %v", pr)
	}
	if _, err := reg(oslo).History(ctx, connect.NewRequest(&nirv1.HistoryRequest{Person: &nirv1.PersonRef{NationalId: fnr}})); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("history by the erased id: %v, want NotFound", err)
	}
	if _, err := send(oslo, "", person(fnr, "", birth)); connect.CodeOf(err) != connect.CodeFailedPrecondition {
		t.Fatalf("registering the erased id again: %v, want FailedPrecondition (NIR-R055)", err)
	}
	// Sent again, the erasure stores nothing new.
	again := must(send(operator, key, erasure()))
	if !again.GetDuplicate() || again.GetEventId() != erased.GetEventId() {
		t.Fatalf("the erasure again: %v; want the first one, as a duplicate", again)
	}

	// A rebuild writes a new file: the erased ids are in none of nird's files any more.
	rb, err := admin.Rebuild(ctx, connect.NewRequest(&nirv1.RebuildRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	for rb.Receive() {
	}
	if err := rb.Err(); err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("rebuild: %v", err)
	}
	check("after a rebuild", "", seq)
	if f := filesHolding(data, fnr, dnr); len(f) > 0 {
		t.Fatalf("the erased ids are still in clear in %v", f)
	}

	// As known before the erasure: the same figures, and the ids unreadable all the same.
	snap, err := admin.CreateSnapshot(ctx, connect.NewRequest(&nirv1.CreateSnapshotRequest{Name: "before-erasure", RecordedUntil: timestamppb.New(beforeErase)}))
	if err != nil {
		t.Fatal(err)
	}
	for snap.Receive() {
	}
	if err := snap.Err(); err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("snapshot: %v", err)
	}
	if got := participants("before-erasure", 0); got != 2 {
		t.Fatalf("the snapshot from before the erasure: %d participants, want 2", got)
	}
	res, err := query.GetPerson(ctx, connect.NewRequest(&nirv1.GetPersonRequest{Person: &nirv1.PersonRef{PersonKey: key}, Snapshot: "before-erasure"}))
	if err != nil || res.Msg.GetPerson().GetNationalId() == fnr || res.Msg.GetPerson().GetNationalId() == dnr {
		t.Fatalf("the snapshot from before the erasure shows the person as %v, %v; its ids must not be readable", res, err)
	}
	vres, err := admin.VerifyProjections(ctx, connect.NewRequest(&nirv1.VerifyProjectionsRequest{CompareFold: true}))
	if err != nil || !vres.Msg.GetFold().GetEqual() {
		t.Fatalf("live models against a fresh fold: %v, %v", vres, err)
	}

	// After a restart.
	n.Stop(t, syscall.SIGTERM)
	n = nirdtest.Start(t, "--data", data, "--rate-limit", "0")
	connectTo(n)
	check("after a restart", "", seq)
	if f := filesHolding(data, fnr, dnr); len(f) > 0 {
		t.Fatalf("after a restart, the erased ids are in clear in %v", f)
	}
}
