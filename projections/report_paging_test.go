package projections

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// pagingDB holds 2024 terminations: 7 in Oslo (0301), 3 in Bergen (4601), 2 in Oslo in 2023.
func pagingDB(t *testing.T) *DB {
	t.Helper()
	var s scenario
	for i, k := range []string{"0301", "0301", "4601", "0301", "0301", "4601", "0301", "0301", "4601", "0301"} {
		pk := fmt.Sprintf("pk%02d-%s", i, k)
		s.person(pk, k, "2022-05-01", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, 40+i)
		s.programmeToWork(pk, k, "2022-08-01", k, "2024-06-30", "2024-07-05")
	}
	for i := range 2 {
		pk := fmt.Sprintf("pk23-%d", i)
		s.person(pk, "0301", "2022-05-01", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, 60+i)
		s.programmeToWork(pk, "0301", "2022-08-01", "0301", "2023-06-30", "2023-07-05")
	}
	db := openTestDB(t, DBOptions{})
	applyAll(t, db, s.recs, 5)
	return db
}

// pages reads every page of q by NextPageToken and returns the rows in order.
func pages(t *testing.T, db *DB, q ReportQuery) []string {
	t.Helper()
	var keys []string
	for n := 0; ; n++ {
		rep, err := db.Terminated(q)
		if err != nil {
			t.Fatalf("page %d: %v", n+1, err)
		}
		if len(rep.Rows) > q.PageSize || rep.Total != rep.WithReason+rep.WithoutReason {
			t.Errorf("page %d: %d rows for a page of %d, total %d", n+1, len(rep.Rows), q.PageSize, rep.Total)
		}
		for _, r := range rep.Rows {
			keys = append(keys, r.Kommune+"/"+r.PersonKey)
		}
		if rep.NextPageToken == "" {
			return keys
		}
		if n > 20 {
			t.Fatal("the pages do not end")
		}
		q.PageToken = rep.NextPageToken
	}
}

// TestTerminated_Paging: the pages of a report, read by NextPageToken, hold each of its rows
// once, in the report's order, and each page gives the whole report's counts; a decimal
// offset jumps to a row.
func TestTerminated_Paging(t *testing.T) {
	db := pagingDB(t)
	today := rules.MustDate(2026, 12, 6)
	for _, kommune := range []string{"0301", ""} {
		whole, err := db.Terminated(ReportQuery{Year: 2024, Kommune: kommune, PageSize: MaxPageSize, Today: today})
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, r := range whole.Rows {
			want = append(want, r.Kommune+"/"+r.PersonKey)
		}
		if n := map[string]int{"0301": 7, "": 10}[kommune]; len(want) != n || whole.Total != n || whole.NextPageToken != "" {
			t.Fatalf("report 2024/%q: %d rows, total %d, next %q; want %d and no next page", kommune, len(want), whole.Total, whole.NextPageToken, n)
		}
		for _, size := range []int{1, 2, 3, 7} {
			got := pages(t, db, ReportQuery{Year: 2024, Kommune: kommune, PageSize: size, Today: today})
			if !slices.Equal(got, want) {
				t.Errorf("report 2024/%q in pages of %d: %v, want %v", kommune, size, got, want)
			}
		}
		all, err := db.Terminated(ReportQuery{Year: 2024, Kommune: kommune, PageSize: 1, All: true, Today: today})
		if err != nil || len(all.Rows) != len(want) || all.NextPageToken != "" {
			t.Errorf("report 2024/%q, All: %d rows (%v), next %q; want all %d on one page", kommune, len(all.Rows), err, all.NextPageToken, len(want))
		}
		rep, err := db.Terminated(ReportQuery{Year: 2024, Kommune: kommune, PageSize: 2, PageToken: "4", Today: today})
		if err != nil || len(rep.Rows) != 2 || rep.Rows[0].Kommune+"/"+rep.Rows[0].PersonKey != want[4] || rep.Total != len(want) {
			t.Errorf("report 2024/%q from row 4: %v, %v, want rows from %s", kommune, rep, err, want[4])
		}
	}
}

// TestTerminated_PageTokenRefused: a page token that is no place in the query's own report
// is refused naming page_token: malformed ones, one of another year's report, and one of
// another kommune's rows (here from the national report, whose pages cross kommuner), so a
// kommune cannot page into another kommune's rows. A made-up place among its own rows
// pages on among them only.
func TestTerminated_PageTokenRefused(t *testing.T) {
	db := pagingDB(t)
	today := rules.MustDate(2026, 12, 6)
	national, err := db.Terminated(ReportQuery{Year: 2024, PageSize: 8, Today: today})
	if err != nil || national.NextPageToken == "" || national.Rows[7].Kommune != "4601" {
		t.Fatalf("national report's first 8 rows: %v (%v), want them to end in Bergen's", national, err)
	}
	osloPage, err := db.Terminated(ReportQuery{Year: 2023, Kommune: "0301", PageSize: 1, Today: today})
	if err != nil || osloPage.NextPageToken == "" {
		t.Fatalf("Oslo's 2023 report: %v (%v), want a next page", osloPage, err)
	}
	tok := func(key string) string { return reportTokenPrefix + hex.EncodeToString([]byte(key)) }
	for name, token := range map[string]string{
		"Bergen's row":        national.NextPageToken,
		"another year's":      osloPage.NextPageToken,
		"not hex":             reportTokenPrefix + "zz",
		"no kommune":          tok("\x07\xe8\x00pk"),
		"no person key":       tok("\x07\xe80301"),
		"year only":           tok("\x07\xe8"),
		"words":               "next, please",
		"negative offset":     "-1",
		"Bergen's made-up":    tok("\x07\xe84601\x00pk"),
		"another prefix":      "c1.person_key.asc.0.pk",
		"the national prefix": tok("\x07\xe8\x00"),
	} {
		_, err := db.Terminated(ReportQuery{Year: 2024, Kommune: "0301", PageSize: 2, PageToken: token, Today: today})
		if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "page_token") {
			t.Errorf("%s token %q: %v, want ErrInvalidArgument naming page_token", name, token, err)
		}
	}
	// A place past Oslo's last row (its own number, a person key above any) pages into
	// nobody else's rows: the page is empty.
	rep, err := db.Terminated(ReportQuery{Year: 2024, Kommune: "0301", PageSize: 5, PageToken: tok("\x07\xe80301\x00\xff"), Today: today})
	if err != nil || len(rep.Rows) != 0 || rep.NextPageToken != "" || rep.Total != 7 {
		t.Errorf("past Oslo's last row: %v (%v), want no rows of its 7", rep, err)
	}
}

// TestWriteReport_TerminatedWhole: the report an as-of replay writes holds every terminated
// participant of the year, more than a page of the API's (DefaultPageSize) too.
func TestWriteReport_TerminatedWhole(t *testing.T) {
	var s scenario
	n := DefaultPageSize + 1
	for i := range n {
		pk := fmt.Sprintf("pk%03d", i)
		s.person(pk, "0301", "2022-05-01", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, 100+i)
		s.programmeToWork(pk, "0301", "2022-08-01", "0301", "2024-06-30", "2024-07-05")
	}
	db := openTestDB(t, DBOptions{})
	applyAll(t, db, s.recs, 5)
	dir := t.TempDir()
	if _, err := db.WriteReport(dir, 2024, rules.MustDate(2026, 12, 6), 0); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "terminated.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Rows []json.RawMessage `json:"rows"`
	}
	if err := json.Unmarshal(b, &rep); err != nil || len(rep.Rows) != n {
		t.Errorf("terminated.json: %d rows (%v), want %d", len(rep.Rows), err, n)
	}
}
