package api

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"connectrpc.com/connect"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

const unregisteredFirstSort = nirv1.TerminatedSort_TERMINATED_SORT_UNREGISTERED_FIRST

// ended adds a person of Oslo whose programme ended in 2023: with the reason «arbeid»
// registered by the kommune, or by the regelmotor («Avslutningsårsak ikke registrert»).
// It returns the termination's event id.
func (b *qBuilder) ended(name string, seq int, reason bool) string {
	b.person(name, oslo, "2021-01-01", seq)
	b.programme(name, oslo, "2021-02-01")
	return b.add(name, oslo, "2023-05-02", func(ev *nirv1.Event) {
		if reason {
			ev.Payload = &nirv1.Event_TerminationRegistered{TerminationRegistered: &nirv1.TerminationRegistered{
				Kind: nirv1.TerminationKind_TERMINATION_KIND_FULLFORT, Reason: nirv1.TerminationReason_TERMINATION_REASON_ARBEID, Date: qd("2023-05-01")}}
			return
		}
		ev.Actor = &nirv1.Actor{Subject: rules.RegelmotorSubject, Role: nirv1.ActorRole_ACTOR_ROLE_SYSTEM}
		ev.Payload = &nirv1.Event_TerminationComputed{TerminationComputed: &nirv1.TerminationComputed{
			Rule: nirv1.TerminationRule_TERMINATION_RULE_FRIST_UTLOPT, Reason: nirv1.TerminationReason_TERMINATION_REASON_IKKE_REGISTRERT,
			Date: qd("2023-05-01"), ProgrammeStart: qd("2021-02-01"), RuleVersion: "test"}}
	})
}

// startTerminated serves the population with Oslo's 2023 report at 5 rows without a
// registered reason (p2 and 4 more) and 4 with one (p1 and 3 more); the builder adds more.
func startTerminated(t *testing.T) (*qWorld, *qBuilder) {
	t.Helper()
	keys := qKeys(t)
	recs, people := population(t, keys)
	b := &qBuilder{keys: keys, recs: recs, people: people}
	for i := range 7 {
		b.ended(fmt.Sprintf("t%d", i), 20+i, i%2 == 1)
	}
	return serveQuery(t, QueryConfig{}, nil, keys, b.recs, b.people), b
}

// reportRows reads every page of req by next_page_token and returns the rows in order,
// checking that each page has at most its size and the whole report's counts (want).
func reportRows(t *testing.T, q func(*nirv1.TerminatedReportRequest) (*nirv1.TerminatedReportResponse, error), req *nirv1.TerminatedReportRequest, want *nirv1.TerminatedReportResponse) []*nirv1.TerminatedParticipant {
	t.Helper()
	var rows []*nirv1.TerminatedParticipant
	for n := 1; ; n++ {
		res, err := q(req)
		if err != nil {
			t.Fatalf("page %d of size %d: %v", n, req.GetPageSize(), err)
		}
		if len(res.GetRows()) > int(req.GetPageSize()) || res.GetTotal() != want.GetTotal() || res.GetWithReason() != want.GetWithReason() ||
			res.GetWithoutReason() != want.GetWithoutReason() || fmt.Sprint(res.GetByReason()) != fmt.Sprint(want.GetByReason()) {
			t.Errorf("page %d of size %d: %d rows, counts %d %d %d %v; want the report's %d %d %d %v", n, req.GetPageSize(), len(res.GetRows()),
				res.GetTotal(), res.GetWithReason(), res.GetWithoutReason(), res.GetByReason(), want.GetTotal(), want.GetWithReason(), want.GetWithoutReason(), want.GetByReason())
		}
		rows = append(rows, res.GetRows()...)
		if req.PageToken = res.GetNextPageToken(); req.PageToken == "" {
			return rows
		}
		if n > 20 {
			t.Fatal("the pages do not end")
		}
	}
}

// terminatedAs is QueryService.TerminatedReport as the principal of token.
func (w *qWorld) terminatedAs(ctx context.Context, token string) func(*nirv1.TerminatedReportRequest) (*nirv1.TerminatedReportResponse, error) {
	q := w.query(token)
	return func(req *nirv1.TerminatedReportRequest) (*nirv1.TerminatedReportResponse, error) {
		res, err := q.TerminatedReport(ctx, connect.NewRequest(req))
		if err != nil {
			return nil, err
		}
		return res.Msg, nil
	}
}

func eventIDs(rows []*nirv1.TerminatedParticipant) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.GetEventId())
	}
	return out
}

// unregisteredFirstOf is the report's rows without a registered reason, then the others,
// each in the report's order.
func unregisteredFirstOf(rows []*nirv1.TerminatedParticipant) []string {
	var without, with []string
	for _, r := range rows {
		if r.GetReasonRegistered() {
			with = append(with, r.GetEventId())
		} else {
			without = append(without, r.GetEventId())
		}
	}
	return append(without, with...)
}

// TestQuery_TerminatedUnregisteredFirst: Oslo's 2023 report sorted UNREGISTERED_FIRST holds
// its 5 rows without a registered avslutningsårsak first, then its 4 with one, each in the
// report's own order, read by next_page_token at every page size (pages ending inside each
// part and at its end), each page with the whole report's counts; a decimal offset is a row
// of that order; and with a registered_reason filter the sort changes nothing. Before, the
// console read the rows without a reason and the others in two calls to get this order.
func TestQuery_TerminatedUnregisteredFirst(t *testing.T) {
	w, _ := startTerminated(t)
	ctx := context.Background()
	ask := w.terminatedAs(ctx, qtOslo)
	whole, err := ask(&nirv1.TerminatedReportRequest{Year: 2023, PageSize: 1000})
	if err != nil || whole.GetTotal() != 9 || whole.GetWithoutReason() != 5 {
		t.Fatalf("Oslo's 2023 report: %v (%v), want 9 rows, 5 without a reason", whole, err)
	}
	want := unregisteredFirstOf(whole.GetRows())
	if slices.Equal(want, eventIDs(whole.GetRows())) {
		t.Fatal("the report's own order already has the rows without a reason first: the test proves nothing")
	}
	for size := int32(1); size <= 10; size++ {
		got := eventIDs(reportRows(t, ask, &nirv1.TerminatedReportRequest{Year: 2023, PageSize: size, Sort: unregisteredFirstSort}, whole))
		if !slices.Equal(got, want) {
			t.Errorf("pages of %d hold %v, want %v", size, got, want)
		}
	}
	for n := range 10 {
		res, err := ask(&nirv1.TerminatedReportRequest{Year: 2023, PageSize: 2, Sort: unregisteredFirstSort, PageToken: strconv.Itoa(n)})
		if err != nil {
			t.Fatalf("offset %d: %v", n, err)
		}
		if got := eventIDs(res.GetRows()); !slices.Equal(got, want[min(n, 9):min(n+2, 9)]) || (n+2 < 9) != (res.GetNextPageToken() != "") {
			t.Errorf("offset %d: %v, next %q; want %v", n, got, res.GetNextPageToken(), want[min(n, 9):min(n+2, 9)])
		}
	}
	for _, reg := range []nirv1.PresenceFilter{nirv1.PresenceFilter_PRESENCE_FILTER_WITH, nirv1.PresenceFilter_PRESENCE_FILTER_WITHOUT} {
		one, err := ask(&nirv1.TerminatedReportRequest{Year: 2023, PageSize: 1000, RegisteredReason: reg})
		if err != nil {
			t.Fatal(err)
		}
		got := eventIDs(reportRows(t, ask, &nirv1.TerminatedReportRequest{Year: 2023, PageSize: 2, RegisteredReason: reg, Sort: unregisteredFirstSort}, one))
		if !slices.Equal(got, eventIDs(one.GetRows())) {
			t.Errorf("%v sorted: %v, want the report's order %v", reg, got, eventIDs(one.GetRows()))
		}
	}
	if _, err := ask(&nirv1.TerminatedReportRequest{Year: 2023, Sort: 7}); !isFieldError(err, "sort") {
		t.Errorf("an unknown sort: %v, want InvalidArgument naming sort", err)
	}
}

// TestQuery_TerminatedUnregisteredFirstWhileRowsChange: Oslo reads its 2023 report sorted
// UNREGISTERED_FIRST in pages of 2. Between the first page and the next, a row without a
// reason is stored before the place reached and one after it, a row with a reason is
// stored, and one with a reason not yet shown is retracted. The later pages, read by
// next_page_token, show no row twice and skip none that stays: the rest of the rows without
// a reason past the place reached (the new one after it among them), then every row with a
// reason as the report now holds them; the one stored before the place is not shown, as
// in the report's own order.
func TestQuery_TerminatedUnregisteredFirstWhileRowsChange(t *testing.T) {
	w, b := startTerminated(t)
	ctx := context.Background()
	ask := w.terminatedAs(ctx, qtOslo)
	req := &nirv1.TerminatedReportRequest{Year: 2023, PageSize: 2, Sort: unregisteredFirstSort}
	first, err := ask(req)
	if err != nil || len(first.GetRows()) != 2 || first.GetRows()[1].GetReasonRegistered() {
		t.Fatalf("the first page: %v (%v), want 2 rows without a reason", first, err)
	}
	place := first.GetRows()[1].GetPersonKey()

	// A person key before the place reached and one after it.
	var before, after string
	for seq := 200; before == "" || after == ""; seq++ {
		key := b.keys.Key(rules.SyntheticFodselsnummer(rules.MustDate(1988, 3, 14), seq))
		name := fmt.Sprintf("n%d", seq)
		switch {
		case key < place && before == "":
			before = b.ended(name, seq, false)
		case key > place && after == "":
			after = b.ended(name, seq, false)
		}
	}
	with := b.ended("n-with", 400, true)
	var retracted string
	whole, err := ask(&nirv1.TerminatedReportRequest{Year: 2023, PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range slices.Backward(whole.GetRows()) {
		if r.GetReasonRegistered() {
			retracted = r.GetEventId()
			break
		}
	}
	b.add("p1", oslo, "2023-06-01", func(ev *nirv1.Event) {
		ev.Payload = &nirv1.Event_EventRetracted{EventRetracted: &nirv1.EventRetracted{EventId: retracted, Reason: "feil"}}
	})
	n := len(w.recs)
	w.feed.Add(b.recs[n:]...)
	catchCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := w.proj.CatchUp(catchCtx); err != nil {
		t.Fatal(err)
	}

	now, err := ask(&nirv1.TerminatedReportRequest{Year: 2023, PageSize: 1000})
	if err != nil || now.GetTotal() != whole.GetTotal()+2 {
		t.Fatalf("the report after the changes: %v (%v), want 3 rows more and 1 less", now, err)
	}
	order := unregisteredFirstOf(now.GetRows())
	at := slices.Index(order, first.GetRows()[1].GetEventId())
	wantRest := order[at+1:]
	if !slices.Contains(order, before) || slices.Contains(wantRest, before) || !slices.Contains(wantRest, after) || !slices.Contains(wantRest, with) || slices.Contains(order, retracted) {
		t.Fatalf("the rows stored and retracted are not where the test means them: %v", order)
	}
	req.PageToken = first.GetNextPageToken()
	got := eventIDs(reportRows(t, ask, req, now))
	if !slices.Equal(got, wantRest) {
		t.Errorf("the later pages hold %v, want %v", got, wantRest)
	}
}

// TestQuery_TerminatedUnregisteredFirstTokenSaysNothingOfOthers: a token of the sorted report
// placed at another kommune's row, in either part, is refused as one placed where that
// kommune has no row and as a token of no part: the answer never tells whether the row exists.
func TestQuery_TerminatedUnregisteredFirstTokenSaysNothingOfOthers(t *testing.T) {
	w, _ := startTerminated(t)
	ctx := context.Background()
	place := func(kommune, pk string) string {
		return "t1." + hex.EncodeToString(append([]byte{0x07, 0xe7}, kommune+"\x00"+pk...))
	}
	answer := func(token string) string {
		_, err := w.query(qtOslo).TerminatedReport(ctx, connect.NewRequest(&nirv1.TerminatedReportRequest{Year: 2023, PageToken: token, Sort: unregisteredFirstSort}))
		if !isFieldError(err, "page_token") {
			t.Fatalf("token %s: %v, want InvalidArgument naming page_token", token, err)
		}
		ce := err.(*connect.Error)
		out := ce.Message()
		for _, d := range ce.Details() {
			v, _ := d.Value()
			out += fmt.Sprint(" ", v)
		}
		return out
	}
	none := answer("x." + place("4601", "ffff"))
	for _, token := range []string{
		"u." + place("4601", w.people["p3"].key), "u." + place("4601", "ffff"),
		"r." + place("4601", w.people["p3"].key), "r." + place("4601", "ffff"),
		place(oslo, w.people["p1"].key), "u.not-hex", "-1",
	} {
		if got := answer(token); got != none {
			t.Errorf("%s: %q, but %q for a token of no part", token, got, none)
		}
	}
}

// isFieldError reports whether err is InvalidArgument with one FieldViolation naming field.
func isFieldError(err error, field string) bool {
	ce, ok := err.(*connect.Error)
	if !ok || ce.Code() != connect.CodeInvalidArgument || len(ce.Details()) != 1 {
		return false
	}
	v, derr := ce.Details()[0].Value()
	fv, ok := v.(*nirv1.FieldViolation)
	return derr == nil && ok && fv.GetField() == field
}
