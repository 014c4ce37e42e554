package projections

import (
	"fmt"
	"slices"
	"testing"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// TestTerminated_PagingWhileRowsChange: rows stored and retracted between two pages read by
// NextPageToken: no row is shown twice, none that stays in the report is skipped, a row
// stored after the place reached is on a later page, and the counts are the report's as it
// stands when each page is read.
func TestTerminated_PagingWhileRowsChange(t *testing.T) {
	var s scenario
	ended := map[string]string{} // person key → its termination's event id
	programme := func(pk string, i int) {
		s.person(pk, "0301", "2022-05-01", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, 40+i)
		s.tildeling(pk, "0301", "2022-08-01")
		ended[pk] = s.terminate(pk, "0301", "2024-06-30", "2024-07-05", nirv1.TerminationReason_TERMINATION_REASON_ARBEID)
	}
	for i := range 7 {
		programme(fmt.Sprintf("pk%02d", i), i)
	}
	db := openTestDB(t, DBOptions{})
	applyAll(t, db, s.recs, 5)
	q := ReportQuery{Year: 2024, Kommune: "0301", PageSize: 3, Today: rules.MustDate(2026, 12, 6)}
	first, err := db.Terminated(q)
	if err != nil || len(first.Rows) != 3 || first.Total != 7 || first.NextPageToken == "" {
		t.Fatalf("the first page: %+v (%v)", first, err)
	}
	got := terminatedKeys(first.Rows)

	// Between the pages: a row stored before the place reached and one after it, and a
	// row retracted before it and one after it.
	n := len(s.recs)
	programme("pk01z", 20)
	programme("pk04z", 21)
	s.add("pk01", "0301", "2024-08-01", &nirv1.EventRetracted{EventId: ended["pk01"], Reason: "feil"})
	s.add("pk05", "0301", "2024-08-01", &nirv1.EventRetracted{EventId: ended["pk05"], Reason: "feil"})
	applyAll(t, db, s.recs[n:], 5)

	q.PageToken = first.NextPageToken
	for range 5 {
		rep, err := db.Terminated(q)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Total != 7 {
			t.Errorf("a later page counts %d rows, want the 7 the report now holds", rep.Total)
		}
		got = append(got, terminatedKeys(rep.Rows)...)
		if q.PageToken = rep.NextPageToken; q.PageToken == "" {
			break
		}
	}
	if want := []string{"pk00", "pk01", "pk02", "pk03", "pk04", "pk04z", "pk06"}; !slices.Equal(got, want) {
		t.Errorf("the pages hold %v, want %v", got, want)
	}
}

func terminatedKeys(rows []TerminatedRow) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.PersonKey)
	}
	return out
}
