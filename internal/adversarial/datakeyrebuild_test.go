package adversarial

import (
	"context"
	"encoding/csv"
	"maps"
	"net/http"
	"reflect"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/oklog/ulid/v2"

	"github.com/introreg/nir/internal/auth"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
	"github.com/introreg/nir/rules"
)

// TestDamage_DataKeyFlippedRebuild: a rebuild from the stream does not read a person whose
// data key is damaged on disk as erased. Person 0 has a programme vedtak (a deadline), and
// its data-key entry is flipped on disk (TestDamage_DataKeyFlipped); person 1 is erased by the
// operator; person 2 is neither.
//
// What this pins, after a rebuild from the stream:
//   - Person 0's row keeps everything it had but the national id and birth date: the
//     programme, the deadlines (PersonDeadlines as before), and the statistics are what they
//     were. Its national id reads as unreadable, neither «slettet» nor the id, in the list,
//     the audit history and the CSV export (its birth date too), and a read of its identity
//     (GetPerson, by person key or by national id) is DataLoss, as its History is. Before, the rebuild read the person as erased: «slettet», no birth date, the only
//     trace of the difference an error line in the log.
//   - Person 1, erased, still reads «slettet» without a birth date; person 2 is unchanged.
//   - No log line holds a national id.
func TestDamage_DataKeyFlippedRebuild(t *testing.T) {
	data := t.TempDir()
	nd := startNird(t, data)
	persons := registerPersons(t, nd, 0, 3) // seq 1 registers person 0
	damaged, erased, other := persons[0], persons[1], persons[2]
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	reg := func(token string) nirv1connect.RegistrationServiceClient {
		return nirv1connect.NewRegistrationServiceClient(http.DefaultClient, nd.URL(), connect.WithInterceptors(auth.BearerInterceptor(token)))
	}
	query := func() nirv1connect.QueryServiceClient {
		return nirv1connect.NewQueryServiceClient(http.DefaultClient, nd.URL(), connect.WithInterceptors(auth.BearerInterceptor("kommune:"+kommune)))
	}
	vedtak := &nirv1.Registration{Person: &nirv1.PersonRef{NationalId: damaged.id}, Event: &nirv1.Event{
		Id: ulid.Make().String(), Kommune: kommune,
		Payload: &nirv1.Event_ProgrammeVedtakRegistered{ProgrammeVedtakRegistered: &nirv1.ProgrammeVedtakRegistered{
			Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, VedtakDate: date(2024, 4, 15), FromDate: date(2024, 5, 1)}}}}
	erasure := &nirv1.Registration{Person: &nirv1.PersonRef{PersonKey: erased.key}, Event: &nirv1.Event{
		Id: ulid.Make().String(), Kommune: kommune,
		Payload: &nirv1.Event_PersonErased{PersonErased: &nirv1.PersonErased{Reason: "test"}}}}
	if _, err := reg("kommune:"+kommune).Append(ctx, connect.NewRequest(&nirv1.AppendRequest{Registrations: []*nirv1.Registration{vedtak}})); err != nil {
		t.Fatalf("the programme vedtak: %v", err)
	}
	if _, err := reg("operator").Append(ctx, connect.NewRequest(&nirv1.AppendRequest{Registrations: []*nirv1.Registration{erasure}})); err != nil {
		t.Fatalf("the erasure: %v", err)
	}
	want := settledAnswers(t, nd)
	deadlines := func(p person) []*nirv1.DeadlineStatus {
		t.Helper()
		res, err := query().PersonDeadlines(ctx, connect.NewRequest(&nirv1.PersonDeadlinesRequest{
			Person: &nirv1.PersonRef{PersonKey: p.key}, Now: date(2024, 6, 1)}))
		if err != nil {
			t.Fatalf("the deadlines of person %s: %v", p.key, err)
		}
		return res.Msg.GetDeadlines()
	}
	wantDeadlines := deadlines(damaged)
	if len(wantDeadlines) == 0 {
		t.Fatal("the person with a programme vedtak has no deadline")
	}
	rowsOf := func(a map[string]any) map[string]map[string]any {
		out := map[string]map[string]any{}
		rows, _ := a["list"].(map[string]any)["rows"].([]any)
		for _, r := range rows {
			row, _ := r.(map[string]any)
			out[row["personKey"].(string)] = row
		}
		return out
	}
	wantRows := rowsOf(want)
	if row := wantRows[damaged.key]; row["nationalId"] != damaged.id || row["birthDate"] == nil || row["programmeVedtak"] != true {
		t.Fatalf("before the damage the person reads %v", row)
	}
	if row := wantRows[erased.key]; row["nationalId"] != rules.ErasedText || row["birthDate"] != nil {
		t.Fatalf("before the damage the erased person reads %v", row)
	}
	nd.Stop(t, syscall.SIGTERM)
	flipDataKey(t, data, 1)

	nd = startNird(t, data)
	settledAnswers(t, nd)
	if _, finished, err := rebuild(nd, true); err != nil || !finished {
		t.Fatalf("rebuild from the stream: finished %v, %v", finished, err)
	}
	got := settledAnswers(t, nd)
	if !reflect.DeepEqual(got["stats"], want["stats"]) {
		t.Errorf("after the rebuild the statistics changed:\n%v\nwant\n%v", got["stats"], want["stats"])
	}
	gotRows := rowsOf(got)
	if len(gotRows) != len(wantRows) {
		t.Errorf("after the rebuild %d persons are listed, want %d", len(gotRows), len(wantRows))
	}
	for _, p := range persons {
		row, w := gotRows[p.key], wantRows[p.key]
		if p == damaged {
			id, _ := row["nationalId"].(string)
			if id == rules.ErasedText || id == damaged.id || id == "" || row["birthDate"] != nil {
				t.Errorf("after the rebuild the person whose data key is damaged reads %q, born %v; want the id unreadable (not «slettet»: the person is not erased), no birth date", id, row["birthDate"])
			}
			// Everything else is as before: nothing else needs the sealed fields.
			row, w = maps.Clone(row), maps.Clone(w)
			delete(row, "nationalId")
			delete(row, "birthDate")
			delete(w, "nationalId")
			delete(w, "birthDate")
		}
		if !reflect.DeepEqual(row, w) {
			t.Errorf("after the rebuild person %s reads\n%v\nwant\n%v", p.key, row, w)
		}
	}
	if got := deadlines(damaged); !reflect.DeepEqual(got, wantDeadlines) {
		t.Errorf("after the rebuild the damaged person's deadlines are %v, want %v", got, wantDeadlines)
	}

	for _, ref := range []*nirv1.PersonRef{{PersonKey: damaged.key}, {NationalId: damaged.id}} {
		res, err := query().GetPerson(ctx, connect.NewRequest(&nirv1.GetPersonRequest{Person: ref}))
		if connect.CodeOf(err) != connect.CodeDataLoss {
			t.Errorf("GetPerson of the person whose data key is damaged (by key: %v): %v, %v; want DataLoss, as its history", ref.GetPersonKey() != "", res.Msg.GetPerson().GetNationalId(), err)
		}
	}
	if _, err := reg("kommune:"+kommune).History(ctx, connect.NewRequest(&nirv1.HistoryRequest{Person: &nirv1.PersonRef{PersonKey: damaged.key}})); connect.CodeOf(err) != connect.CodeDataLoss {
		t.Errorf("the history of the person whose data key is damaged: %v; want DataLoss", err)
	}
	audit, err := query().AuditHistory(ctx, connect.NewRequest(&nirv1.AuditHistoryRequest{Person: &nirv1.PersonRef{PersonKey: damaged.key}}))
	if err != nil {
		t.Fatalf("the audit history of the person whose data key is damaged: %v", err)
	}
	if id := audit.Msg.GetEntries()[0].GetEvent().GetPersonRegistered().GetFodselsnummer(); id != listedID(gotRows, damaged) {
		t.Errorf("the audit history's registration reads %q; want what the person list reads, %q", id, listedID(gotRows, damaged))
	}
	// The CSV export: the national id and the birth date read as the list's national id.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, nd.URL()+"/export/persons.csv?kommune="+kommune, nil)
	auth.SetBearer(req.Header, "kommune:"+kommune)
	csvRes, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	records, err := csv.NewReader(csvRes.Body).ReadAll()
	csvRes.Body.Close()
	if err != nil || csvRes.StatusCode != http.StatusOK {
		t.Fatalf("the CSV export: %d, %v", csvRes.StatusCode, err)
	}
	found := false
	for _, r := range records {
		if r[0] == damaged.key {
			found = true
			if r[1] != listedID(gotRows, damaged) || r[3] != listedID(gotRows, damaged) {
				t.Errorf("the CSV export's row of the person whose data key is damaged: national id %q, birth date %q; want both %q", r[1], r[3], listedID(gotRows, damaged))
			}
		}
	}
	if !found {
		t.Error("the CSV export has no row for the person whose data key is damaged")
	}
	res, err := query().GetPerson(ctx, connect.NewRequest(&nirv1.GetPersonRequest{Person: &nirv1.PersonRef{PersonKey: erased.key}}))
	if err != nil || res.Msg.GetPerson().GetNationalId() != rules.ErasedText {
		t.Errorf("GetPerson of the erased person: %v, %v; want «slettet»", res.Msg.GetPerson().GetNationalId(), err)
	}
	res, err = query().GetPerson(ctx, connect.NewRequest(&nirv1.GetPersonRequest{Person: &nirv1.PersonRef{NationalId: other.id}}))
	if err != nil || res.Msg.GetPerson().GetNationalId() != other.id {
		t.Errorf("GetPerson of another person: %v; want its id", err)
	}
	for _, p := range persons {
		noIDInLog(t, nd.Logs(), p.id)
	}
	nd.Stop(t, syscall.SIGTERM)
}

// listedID is the national id the person list reads for p.
func listedID(rows map[string]map[string]any, p person) string {
	id, _ := rows[p.key]["nationalId"].(string)
	return id
}
