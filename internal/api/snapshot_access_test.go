package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/personkey"
	"github.com/introreg/nir/projections"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// TestQuery_SnapshotNeverMoreThanLive: a kommune reads a person from an as-of snapshot only as
// far as it may both at the snapshot's cut-off and today (README "Kommune boundaries", Product
// decision 16). Person p is registered in Oslo, moves to Bergen in 2021 and on to Trondheim
// (5001) in 2022; person q stays in Bergen. The snapshot is cut off on 2021-12-31, when Bergen
// had p. Before, Bergen read the snapshot as p's current kommune: Oslo's vedtak in the audit
// history, p's row with the national id from GetPerson and PersonDeadlines, and p in its person
// list and CSV, none of which it gets live (review 2, probe
// TestProbe_SnapshotGivesAFormerKommuneTheCurrentView). Analysts read the snapshot as before,
// but for the identity of a person erased since («slettet», as for a kommune).
func TestQuery_SnapshotNeverMoreThanLive(t *testing.T) {
	const trondheim, snap = "5001", "2021@2021-12-31"
	keys, err := personkey.New([]byte("snapshot test secret, not a real one"))
	if err != nil {
		t.Fatal(err)
	}
	b := &qBuilder{keys: keys, people: map[string]qPerson{}}
	b.person("p", oslo, "2021-01-04", 9)
	b.programme("p", oslo, "2021-02-01")
	b.add("p", oslo, "2021-06-03", func(ev *nirv1.Event) {
		ev.Payload = &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: bergen, Date: qd("2021-06-01")}}
	})
	b.add("p", bergen, "2021-08-02", func(ev *nirv1.Event) {
		ev.Payload = &nirv1.Event_SluttmalRegistered{SluttmalRegistered: &nirv1.SluttmalRegistered{
			Sluttmal: nirv1.Sluttmal_SLUTTMAL_FULLFORT_VGO, Date: qd("2021-08-02")}}
	})
	b.add("p", bergen, "2022-03-03", func(ev *nirv1.Event) {
		ev.Payload = &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: trondheim, Date: qd("2022-03-01")}}
	})
	b.person("q", bergen, "2021-02-01", 10)
	b.programme("q", bergen, "2021-03-01")
	// r, Bergen's too, is erased after the cut-off.
	b.person("r", bergen, "2021-03-01", 11)
	b.add("r", "", "2023-01-10", func(ev *nirv1.Event) {
		ev.Payload = &nirv1.Event_PersonErased{PersonErased: &nirv1.PersonErased{Reason: "test"}}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q := snapshotQuery(ctx, t, b, keys, snap)
	kommune := func(k string) context.Context {
		return auth.NewContext(ctx, auth.Principal{Name: "fagsystem-" + k, Role: auth.RoleKommune, Kommune: k})
	}
	p, qq := b.people["p"], b.people["q"]
	byID := func(who qPerson) *nirv1.PersonRef { return &nirv1.PersonRef{NationalId: who.fnr} }

	// view is what one kommune reads of p (and q) from the live models or the snapshot.
	type view struct {
		audit        string // the audit history's events: kommune/kind, in order; or the error code
		row, dl      connect.Code
		listP, listQ bool   // p, q in the kommune's person list
		csvP, csvQ   bool   // p's, q's national id in the kommune's CSV export
		rowQ         string // q's national id from GetPerson
	}
	read := func(k, snapshot string) view {
		t.Helper()
		kctx := kommune(k)
		var v view
		h, err := q.AuditHistory(kctx, connect.NewRequest(&nirv1.AuditHistoryRequest{Person: byID(p), Snapshot: snapshot}))
		if err != nil {
			v.audit = connect.CodeOf(err).String()
		} else {
			var kinds []string
			for _, e := range h.Msg.GetEntries() {
				kinds = append(kinds, e.GetEvent().GetKommune()+"/"+e.GetKind())
			}
			v.audit = strings.Join(kinds, " ")
		}
		_, err = q.GetPerson(kctx, connect.NewRequest(&nirv1.GetPersonRequest{Person: byID(p), Snapshot: snapshot}))
		v.row = codeOf(err)
		_, err = q.PersonDeadlines(kctx, connect.NewRequest(&nirv1.PersonDeadlinesRequest{Person: byID(p), Snapshot: snapshot}))
		v.dl = codeOf(err)
		if r, err := q.GetPerson(kctx, connect.NewRequest(&nirv1.GetPersonRequest{Person: byID(qq), Snapshot: snapshot})); err == nil {
			v.rowQ = r.Msg.GetPerson().GetNationalId()
		}
		list, err := q.ListPersons(kctx, connect.NewRequest(&nirv1.ListPersonsRequest{Snapshot: snapshot}))
		if err != nil {
			t.Fatalf("%s lists its persons (snapshot %q): %v", k, snapshot, err)
		}
		for _, r := range list.Msg.GetRows() {
			v.listP = v.listP || r.GetPersonKey() == p.key
			v.listQ = v.listQ || r.GetPersonKey() == qq.key
		}
		if int(list.Msg.GetTotal()) != len(list.Msg.GetRows()) {
			t.Errorf("%s's list (snapshot %q): total %d, %d rows", k, snapshot, list.Msg.GetTotal(), len(list.Msg.GetRows()))
		}
		rec := httptest.NewRecorder()
		req := httptest.NewRequestWithContext(kctx, http.MethodGet, ExportPersonsPath+"?snapshot="+snapshot, nil)
		q.ExportHandler().ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s's CSV export (snapshot %q): %d %s", k, snapshot, rec.Code, rec.Body)
		}
		v.csvP, v.csvQ = strings.Contains(rec.Body.String(), p.fnr), strings.Contains(rec.Body.String(), qq.fnr)
		return v
	}

	for _, c := range []struct {
		kommune  string
		live     view // what the kommune reads live (checked, so that the test's premise holds)
		snapshot view // what it reads from the snapshot
	}{
		// Bergen had p at the cut-off and has it no more: its own period of the history, as
		// live, and none of p's status; q, which it has then and now, in full.
		{bergen,
			view{audit: "0301/person_registered 0301/person_moved 4601/sluttmal_registered 4601/person_moved", row: connect.CodeNotFound, dl: connect.CodeNotFound, listQ: true, csvQ: true, rowQ: qq.fnr},
			view{audit: "0301/person_registered 0301/person_moved 4601/sluttmal_registered", row: connect.CodeNotFound, dl: connect.CodeNotFound, listQ: true, csvQ: true, rowQ: qq.fnr}},
		// Oslo had p before the cut-off: its own period, then and now.
		{oslo,
			view{audit: "0301/person_registered 0301/programme_vedtak_registered 0301/person_moved", row: connect.CodeNotFound, dl: connect.CodeNotFound},
			view{audit: "0301/person_registered 0301/programme_vedtak_registered 0301/person_moved", row: connect.CodeNotFound, dl: connect.CodeNotFound}},
		// Trondheim has p now, but did not at the cut-off: it reads p live; from the
		// snapshot, which held p as Bergen's, it reads nothing of p.
		{trondheim,
			view{audit: "0301/person_registered 0301/programme_vedtak_registered 0301/person_moved 4601/sluttmal_registered 4601/person_moved", listP: true, csvP: true},
			view{audit: connect.CodeNotFound.String(), row: connect.CodeNotFound, dl: connect.CodeNotFound}},
	} {
		t.Run(c.kommune, func(t *testing.T) {
			if got := read(c.kommune, ""); got != c.live {
				t.Errorf("live:\n got %+v\nwant %+v", got, c.live)
			}
			if got := read(c.kommune, snap); got != c.snapshot {
				t.Errorf("snapshot %s:\n got %+v\nwant %+v", snap, got, c.snapshot)
			}
		})
	}

	// The erased person: not found by its id in the snapshot (as live), its identity «slettet»
	// in the snapshot's audit history (as live).
	r := b.people["r"]
	bctx := kommune(bergen)
	for _, snapshot := range []string{"", snap} {
		if _, err := q.GetPerson(bctx, connect.NewRequest(&nirv1.GetPersonRequest{Person: byID(r), Snapshot: snapshot})); codeOf(err) != connect.CodeNotFound {
			t.Errorf("Bergen reads the erased person by its id (snapshot %q): %v, want NotFound", snapshot, err)
		}
		h, err := q.AuditHistory(bctx, connect.NewRequest(&nirv1.AuditHistoryRequest{Person: &nirv1.PersonRef{PersonKey: r.key}, Snapshot: snapshot}))
		if err != nil {
			t.Fatalf("Bergen reads the erased person's audit history (snapshot %q): %v", snapshot, err)
		}
		if got := h.Msg.GetEntries()[0].GetEvent().GetPersonRegistered().GetFodselsnummer(); got != rules.ErasedText {
			t.Errorf("the erased person's registration in the audit history (snapshot %q) reads %q, want %q", snapshot, got, rules.ErasedText)
		}
		// The rows of this test's events hold the ids in clear, as a snapshot file made
		// before the erasure does.
		row, err := q.GetPerson(bctx, connect.NewRequest(&nirv1.GetPersonRequest{Person: &nirv1.PersonRef{PersonKey: r.key}, Snapshot: snapshot}))
		if err != nil || row.Msg.GetPerson().GetNationalId() != rules.ErasedText || row.Msg.GetPerson().GetBirthDate() != nil {
			t.Errorf("Bergen reads the erased person by its key (snapshot %q): %v, %v; want «slettet»", snapshot, row, err)
		}
		list, err := q.ListPersons(bctx, connect.NewRequest(&nirv1.ListPersonsRequest{Snapshot: snapshot}))
		if err != nil {
			t.Fatal(err)
		}
		listed := false
		for _, row := range list.Msg.GetRows() {
			if row.GetPersonKey() == r.key {
				listed = true
				if row.GetNationalId() != rules.ErasedText || row.GetBirthDate() != nil {
					t.Errorf("the erased person in Bergen's list (snapshot %q): %v, want «slettet»", snapshot, row)
				}
			}
		}
		if !listed {
			t.Errorf("the erased person is not in Bergen's list (snapshot %q)", snapshot)
		}
		rec := httptest.NewRecorder()
		q.ExportHandler().ServeHTTP(rec, httptest.NewRequestWithContext(bctx, http.MethodGet, ExportPersonsPath+"?snapshot="+snapshot, nil))
		if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), r.fnr) || !strings.Contains(rec.Body.String(), r.key+",slettet,4601,slettet,") {
			t.Errorf("Bergen's CSV export (snapshot %q): %d\n%s\nwant the erased person «slettet»", snapshot, rec.Code, rec.Body)
		}
	}

	// Analysts read the snapshot as it was: p in Bergen's list, p's row by person key.
	an := auth.NewContext(ctx, auth.Principal{Name: "analyst", Role: auth.RoleAnalyst})
	list, err := q.ListPersons(an, connect.NewRequest(&nirv1.ListPersonsRequest{Kommune: bergen, Snapshot: snap}))
	if err != nil || list.Msg.GetTotal() != 3 {
		t.Fatalf("an analyst lists Bergen in the snapshot: %v, %v; want p, q and r", list, err)
	}
	row, err := q.GetPerson(an, connect.NewRequest(&nirv1.GetPersonRequest{Person: &nirv1.PersonRef{PersonKey: p.key}, Snapshot: snap}))
	if err != nil || row.Msg.GetPerson().GetKommune() != bergen || row.Msg.GetPerson().GetNationalId() != "" {
		t.Fatalf("an analyst reads p in the snapshot: %v, %v; want Bergen's row without the national id", row, err)
	}
	// But not the identity of r, erased since: no birth date, in its row, the list and the
	// CSV export, as live. Before, an analyst read it from the snapshot.
	row, err = q.GetPerson(an, connect.NewRequest(&nirv1.GetPersonRequest{Person: &nirv1.PersonRef{PersonKey: r.key}, Snapshot: snap}))
	if err != nil || row.Msg.GetPerson().GetBirthDate() != nil {
		t.Errorf("an analyst reads the erased person in the snapshot: %v, %v; want no birth date", row, err)
	}
	for _, row := range list.Msg.GetRows() {
		if row.GetPersonKey() == r.key && row.GetBirthDate() != nil {
			t.Errorf("the erased person in an analyst's list of the snapshot: %v, want no birth date", row)
		}
	}
	rec := httptest.NewRecorder()
	q.ExportHandler().ServeHTTP(rec, httptest.NewRequestWithContext(an, http.MethodGet, ExportPersonsPath+"?kommune="+bergen+"&snapshot="+snap, nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), r.key+","+bergen+",slettet,") {
		t.Errorf("an analyst's CSV export of the snapshot: %d\n%s\nwant the erased person «slettet»", rec.Code, rec.Body)
	}
}

// TestQuery_SnapshotSortedAsLive: Bergen has a (born 1980), r (born 1990) and c (born 2000);
// r is erased after the snapshot's cut-off. Live, r's row has no birth date and sorts first.
// From the snapshot r's row read «slettet» but was placed by its real birth date, between a and
// c, in the list and the CSV export, ascending and descending: the order told Bergen what the
// erasure removed (found by a review, helper-47). Now the snapshot's list is sorted as the live
// one is.
func TestQuery_SnapshotSortedAsLive(t *testing.T) {
	const snap = "2021@2021-12-31"
	keys, err := personkey.New([]byte("snapshot test secret, not a real one"))
	if err != nil {
		t.Fatal(err)
	}
	b := &qBuilder{keys: keys, people: map[string]qPerson{}}
	born := func(name string, y, seq int) {
		birth := rules.MustDate(y, 3, 14)
		fnr := rules.SyntheticFodselsnummer(birth, seq)
		b.people[name] = qPerson{name: name, fnr: fnr, key: b.keys.Key(fnr)}
		p := rules.MustParseDate("2021-03-01")
		b.add(name, bergen, "2021-03-01", func(ev *nirv1.Event) {
			ev.Payload = &nirv1.Event_PersonRegistered{PersonRegistered: &nirv1.PersonRegistered{
				Fodselsnummer: fnr, BirthDate: birth.Proto(), Sex: nirv1.Sex_SEX_FEMALE,
				PermitDate: p.Proto(), PermitBasis: nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, ArrivalDate: p.AddDays(-30).Proto(),
				SettlementDate: p.AddMonths(1).Proto(), SettlementKommune: bergen, SettledByAgreement: true,
			}}
		})
	}
	born("a", 1980, 1)
	born("r", 1990, 2)
	born("c", 2000, 3)
	b.add("r", "", "2023-01-10", func(ev *nirv1.Event) {
		ev.Payload = &nirv1.Event_PersonErased{PersonErased: &nirv1.PersonErased{Reason: "test"}}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q := snapshotQuery(ctx, t, b, keys, snap)
	bctx := auth.NewContext(ctx, auth.Principal{Name: "fagsystem-" + bergen, Role: auth.RoleKommune, Kommune: bergen})
	names := map[string]string{}
	for n, p := range b.people {
		names[p.key] = n
	}
	order := func(snapshot string, desc bool) string {
		list, err := q.ListPersons(bctx, connect.NewRequest(&nirv1.ListPersonsRequest{Snapshot: snapshot, Sort: nirv1.PersonSort_PERSON_SORT_BIRTH_DATE, Desc: desc}))
		if err != nil {
			t.Fatal(err)
		}
		s := ""
		for _, r := range list.Msg.GetRows() {
			s += names[r.GetPersonKey()]
			if r.GetNationalId() == rules.ErasedText {
				s += "(slettet)"
			}
			s += " "
		}
		return s
	}
	csvOrder := func(snapshot string, desc bool) string {
		rec := httptest.NewRecorder()
		path := ExportPersonsPath + "?sort=birth_date&snapshot=" + snapshot
		if desc {
			path += "&desc=true"
		}
		q.ExportHandler().ServeHTTP(rec, httptest.NewRequestWithContext(bctx, http.MethodGet, path, nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("CSV export (snapshot %q): %d %s", snapshot, rec.Code, rec.Body)
		}
		s := ""
		for _, line := range strings.Split(strings.TrimSpace(rec.Body.String()), "\n")[1:] {
			for key, n := range names {
				if strings.Contains(line, key) {
					s += n + " "
				}
			}
		}
		return s
	}
	for _, desc := range []bool{false, true} {
		if live, fromSnap := order("", desc), order(snap, desc); live != fromSnap {
			t.Errorf("the list sorted by birth date (desc %v): live %q, snapshot %q", desc, live, fromSnap)
		}
		if live, fromSnap := csvOrder("", desc), csvOrder(snap, desc); live != fromSnap {
			t.Errorf("the CSV sorted by birth date (desc %v): live %q, snapshot %q", desc, live, fromSnap)
		}
	}
}

// TestQuery_SnapshotTerminatedReportAsLive: the report of terminated participants (DOMAIN.md
// 6.2) is a kommune's own programmes, pseudonymous (person keys), live and from a snapshot: the
// kommune a person has left keeps its own period (Product decision 16), so the report is not
// cut down to the kommune's live person list as ListPersons and the CSV are. Bergen terminated
// the programmes of m, e and k in 2021; after the 2021-12-31 cut-off m moved to Oslo and e was
// erased. Bergen's report for 2021 from the snapshot holds the rows its live report holds, m's
// and e's included; Oslo, which has m now, gets Bergen's programme neither live nor from the
// snapshot; an analyst reads the snapshot as it was.
func TestQuery_SnapshotTerminatedReportAsLive(t *testing.T) {
	const snap = "2021@2021-12-31"
	keys, err := personkey.New([]byte("snapshot test secret, not a real one"))
	if err != nil {
		t.Fatal(err)
	}
	b := &qBuilder{keys: keys, people: map[string]qPerson{}}
	for i, name := range []string{"m", "e", "k"} {
		b.person(name, bergen, "2021-01-04", 20+i)
		b.programme(name, bergen, "2021-02-01")
		b.add(name, bergen, "2021-10-05", func(ev *nirv1.Event) {
			ev.Payload = &nirv1.Event_TerminationRegistered{TerminationRegistered: &nirv1.TerminationRegistered{
				Kind: nirv1.TerminationKind_TERMINATION_KIND_FULLFORT, Reason: nirv1.TerminationReason_TERMINATION_REASON_ARBEID, Date: qd("2021-10-01")}}
		})
	}
	b.add("m", bergen, "2022-03-03", func(ev *nirv1.Event) {
		ev.Payload = &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: oslo, Date: qd("2022-03-01")}}
	})
	b.add("e", "", "2023-01-10", func(ev *nirv1.Event) {
		ev.Payload = &nirv1.Event_PersonErased{PersonErased: &nirv1.PersonErased{Reason: "test"}}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q := snapshotQuery(ctx, t, b, keys, snap)
	names := map[string]string{}
	for n, p := range b.people {
		names[p.key] = n
	}
	// report is one principal's 2021 report: its rows (person/kommune/reason, by person key)
	// and its counts.
	report := func(pctx context.Context, snapshot string) string {
		t.Helper()
		res, err := q.TerminatedReport(pctx, connect.NewRequest(&nirv1.TerminatedReportRequest{Year: 2021, Snapshot: snapshot}))
		if err != nil {
			t.Fatalf("terminated report (snapshot %q): %v", snapshot, err)
		}
		var rows []string
		for _, r := range res.Msg.GetRows() {
			n := names[r.GetPersonKey()]
			if n == "" {
				n = "?"
			}
			rows = append(rows, n+"/"+r.GetKommune()+"/"+r.GetReason().String())
		}
		slices.Sort(rows)
		var by []string
		for _, rc := range res.Msg.GetByReason() {
			by = append(by, fmt.Sprintf("%s:%d", rc.GetReason(), rc.GetCount()))
		}
		return fmt.Sprintf("%s with=%d without=%d by_reason=%s", strings.Join(rows, " "),
			res.Msg.GetWithReason(), res.Msg.GetWithoutReason(), strings.Join(by, ","))
	}
	const reason = "TERMINATION_REASON_ARBEID"
	all := "e/4601/" + reason + " k/4601/" + reason + " m/4601/" + reason + " with=3 without=0 by_reason=" + reason + ":3"
	kommune := func(k string) context.Context {
		return auth.NewContext(ctx, auth.Principal{Name: "fagsystem-" + k, Role: auth.RoleKommune, Kommune: k})
	}
	for _, c := range []struct {
		who  string
		pctx context.Context
		want string
	}{
		{"Bergen", kommune(bergen), all},
		{"Oslo", kommune(oslo), " with=0 without=0 by_reason="},
		{"an analyst", auth.NewContext(ctx, auth.Principal{Name: "analyst", Role: auth.RoleAnalyst}), all},
	} {
		for _, snapshot := range []string{"", snap} {
			if got := report(c.pctx, snapshot); got != c.want {
				t.Errorf("%s's report for 2021 (snapshot %q):\n got %s\nwant %s", c.who, snapshot, got, c.want)
			}
		}
	}
	// The premise: Bergen has m no more (not in its live list) but may read its own period of
	// m today, and the snapshot's list, cut down to the live one, no longer holds m.
	for _, snapshot := range []string{"", snap} {
		list, err := q.ListPersons(kommune(bergen), connect.NewRequest(&nirv1.ListPersonsRequest{Snapshot: snapshot}))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range list.Msg.GetRows() {
			if names[r.GetPersonKey()] == "m" {
				t.Errorf("m, gone to Oslo, is in Bergen's list (snapshot %q)", snapshot)
			}
		}
	}
	if _, err := q.AuditHistory(kommune(bergen), connect.NewRequest(&nirv1.AuditHistoryRequest{Person: &nirv1.PersonRef{PersonKey: b.people["m"].key}})); err != nil {
		t.Errorf("Bergen reads its own period of m live: %v", err)
	}
}

// snapshotQuery folds b's events into read models, makes the snapshot snap cut off on
// 2021-12-31, and returns the query service over them.
func snapshotQuery(ctx context.Context, t *testing.T, b *qBuilder, keys *personkey.Keyer, snap string) *Query {
	t.Helper()
	proj, err := projections.New(projections.NewSliceFeed(b.recs), projections.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proj.Close() })
	if _, err := proj.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	op := auth.NewContext(ctx, auth.Principal{Name: "op", Role: auth.RoleOperator})
	if _, err := NewAdmin(proj, nil).CreateSnapshotAs(op, &nirv1.CreateSnapshotRequest{Name: snap, CutoffDate: qd("2021-12-31")}, func(projections.Progress) {}); err != nil {
		t.Fatal(err)
	}
	return NewQuery(QueryConfig{Source: proj, Keys: keys, Now: func() time.Time { return qClock }})
}

// TestQuery_SnapshotErasedAfterMove: a person in Bergen's list of a snapshot who has moved
// on since and then been erased is «slettet» (no birth date) in an analyst's read of that
// list and its CSV export, though Bergen's live list no longer holds the person.
func TestQuery_SnapshotErasedAfterMove(t *testing.T) {
	const trondheim, snap = "5001", "2021@2021-12-31"
	keys, err := personkey.New([]byte("snapshot test secret, not a real one"))
	if err != nil {
		t.Fatal(err)
	}
	b := &qBuilder{keys: keys, people: map[string]qPerson{}}
	b.person("m", bergen, "2021-03-01", 12)
	b.add("m", bergen, "2022-03-03", func(ev *nirv1.Event) {
		ev.Payload = &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: trondheim, Date: qd("2022-03-01")}}
	})
	b.add("m", "", "2023-01-10", func(ev *nirv1.Event) {
		ev.Payload = &nirv1.Event_PersonErased{PersonErased: &nirv1.PersonErased{Reason: "test"}}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q := snapshotQuery(ctx, t, b, keys, snap)
	m := b.people["m"]
	an := auth.NewContext(ctx, auth.Principal{Name: "analyst", Role: auth.RoleAnalyst})
	list, err := q.ListPersons(an, connect.NewRequest(&nirv1.ListPersonsRequest{Kommune: bergen, Snapshot: snap}))
	if err != nil || len(list.Msg.GetRows()) != 1 || list.Msg.GetRows()[0].GetPersonKey() != m.key || list.Msg.GetRows()[0].GetBirthDate() != nil {
		t.Errorf("an analyst lists Bergen in the snapshot: %v, %v; want m without a birth date", list, err)
	}
	rec := httptest.NewRecorder()
	q.ExportHandler().ServeHTTP(rec, httptest.NewRequestWithContext(an, http.MethodGet, ExportPersonsPath+"?kommune="+bergen+"&snapshot="+snap, nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), m.key+","+bergen+",slettet,") {
		t.Errorf("an analyst's CSV export of the snapshot: %d\n%s\nwant m «slettet»", rec.Code, rec.Body)
	}
}

// TestQuery_SnapshotAbsorbedErasedSince: a person in Bergen's list of a snapshot who has
// been merged into another person since, the survivor then erased (which destroys the
// absorbed person's data keys too), is «slettet» in an analyst's read of that list and its
// CSV export, as a person erased itself is. Before, the absorbed person, who has no live row
// of its own, read as not erased, and its birth date came from the snapshot as it was.
func TestQuery_SnapshotAbsorbedErasedSince(t *testing.T) {
	const snap = "2021@2021-12-31"
	keys, err := personkey.New([]byte("snapshot test secret, not a real one"))
	if err != nil {
		t.Fatal(err)
	}
	b := &qBuilder{keys: keys, people: map[string]qPerson{}}
	b.person("a", bergen, "2021-03-01", 13)
	b.person("s", oslo, "2021-04-01", 14)
	reg := b.recs[0].Event
	merge := b.add("s", oslo, "2022-05-02", func(ev *nirv1.Event) {
		ev.Actor = &nirv1.Actor{Subject: "op", Role: nirv1.ActorRole_ACTOR_ROLE_OPERATOR}
		ev.Payload = &nirv1.Event_PersonsMerged{PersonsMerged: &nirv1.PersonsMerged{AbsorbedPersonKey: b.people["a"].key,
			Reason: "samme person", AbsorbedEvents: []*nirv1.Event{reg}}}
	})
	b.add("a", oslo, "2022-05-02", func(ev *nirv1.Event) {
		ev.Actor = &nirv1.Actor{Subject: "op", Role: nirv1.ActorRole_ACTOR_ROLE_OPERATOR}
		ev.Payload = &nirv1.Event_PersonMergedInto{PersonMergedInto: &nirv1.PersonMergedInto{SurvivingPersonKey: b.people["s"].key, MergeEventId: merge}}
	})
	b.add("s", "", "2023-01-10", func(ev *nirv1.Event) {
		ev.Payload = &nirv1.Event_PersonErased{PersonErased: &nirv1.PersonErased{Reason: "test"}}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q := snapshotQuery(ctx, t, b, keys, snap)
	a := b.people["a"]
	an := auth.NewContext(ctx, auth.Principal{Name: "analyst", Role: auth.RoleAnalyst})
	// The premise: a is erased with s today (GetPerson follows the merge).
	if r, err := q.GetPerson(an, connect.NewRequest(&nirv1.GetPersonRequest{Person: &nirv1.PersonRef{PersonKey: a.key}, Snapshot: snap})); err != nil || r.Msg.GetPerson().GetBirthDate() != nil {
		t.Fatalf("an analyst reads a from the snapshot: %v, %v; want it without a birth date", r, err)
	}
	list, err := q.ListPersons(an, connect.NewRequest(&nirv1.ListPersonsRequest{Kommune: bergen, Snapshot: snap}))
	if err != nil || len(list.Msg.GetRows()) != 1 || list.Msg.GetRows()[0].GetPersonKey() != a.key || list.Msg.GetRows()[0].GetBirthDate() != nil {
		t.Errorf("an analyst lists Bergen in the snapshot: %v, %v; want a without a birth date", list, err)
	}
	rec := httptest.NewRecorder()
	q.ExportHandler().ServeHTTP(rec, httptest.NewRequestWithContext(an, http.MethodGet, ExportPersonsPath+"?kommune="+bergen+"&snapshot="+snap, nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), a.key+","+bergen+",slettet,") {
		t.Errorf("an analyst's CSV export of the snapshot: %d\n%s\nwant a «slettet»", rec.Code, rec.Body)
	}
}
