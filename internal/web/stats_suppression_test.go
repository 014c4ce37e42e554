package web_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/projections"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// shareParts are the counts behind each share of the statistics downloads: a share is
// withheld when its numerator or denominator is.
var shareParts = map[string][]string{
	"share_direct_work_or_education":         {"direct_work_or_education", "terminated"},
	"share_training_started_within_3_months": {"training_started_within_3_months", "training_started"},
}

// TestConsole_StatisticsShowSuppressedAsColon: DOMAIN.md "Product decisions" 14: analysts'
// and exported figures show a suppressed count as «:» with a footnote, as SSB does, and a
// kommune sees its own figures unsuppressed. Found on 2026-12-06 (review of the published
// figures): before, the console read no `suppressed` of QueryService.Statistics, so the
// page, the CSV and the JSON published the API's zeroed field as 0 — a false zero for a
// count of 1-4 or its complement — the share chart computed direct/terminated from them, and
// no footnote was shown; now every suppressed cell is «:» on the page and in the CSV, null in
// the JSON (with the row's `suppressed` list, as the API names them), a share whose numerator
// or denominator is suppressed is «:» too, and the page carries the API's footnote.
func TestConsole_StatisticsShowSuppressedAsColon(t *testing.T) {
	w := newWorld(t)
	analyst := login(t, w.h, w.tokens["analytiker"])
	year := time.Now().Year() - 1
	ctx := auth.NewContext(context.Background(), auth.Principal{Name: "analytiker", Role: auth.RoleAnalyst})
	res, err := w.query.Statistics(ctx, connect.NewRequest(&nirv1.StatisticsRequest{Year: int32(year), Level: nirv1.StatisticsLevel_STATISTICS_LEVEL_KOMMUNE}))
	if err != nil {
		t.Fatal(err)
	}
	suppressed := map[string]map[string]bool{}
	n := 0 // suppressed fields that are download columns (by_reason.* and training_hours_persons are not)
	for _, r := range res.Msg.GetRows() {
		suppressed[r.GetArea()] = map[string]bool{}
		for _, f := range r.GetSuppressed() {
			suppressed[r.GetArea()][f] = true
			if !strings.HasPrefix(f, "by_reason.") && f != "training_hours_persons" {
				n++
			}
		}
	}
	if n == 0 {
		t.Fatalf("the demo population of %d has no suppressed cell at kommune level: the test needs one", year)
	}
	// withheld: the API suppressed the field, or (a share) one of its counts.
	withheld := func(area, col string) bool {
		if suppressed[area][col] {
			return true
		}
		for _, p := range shareParts[col] {
			if suppressed[area][p] {
				return true
			}
		}
		return false
	}
	q := "niva=kommune&ar=" + strconv.Itoa(year)

	// The CSV: «:» exactly where the API withholds.
	r := w.do(http.MethodGet, "/statistikk.csv?"+q, nil, nil, analyst)
	if r.code != http.StatusOK {
		t.Fatalf("csv: %d %s", r.code, r.body)
	}
	recs, err := csv.NewReader(strings.NewReader(r.body)).ReadAll()
	if err != nil || len(recs) != len(res.Msg.GetRows())+1 {
		t.Fatalf("csv: %v, %d lines for %d rows", err, len(recs), len(res.Msg.GetRows()))
	}
	head, colons := recs[0], 0
	for _, rec := range recs[1:] {
		area := rec[2]
		if _, ok := suppressed[area]; !ok {
			t.Fatalf("csv row of area %q the API did not give", area)
		}
		for i, col := range head {
			switch want := withheld(area, col); {
			case want && rec[i] != ":":
				t.Errorf("csv kommune %s %d: %s is suppressed, published %q (want «:»)", area, year, col, rec[i])
			case !want && rec[i] == ":":
				t.Errorf("csv kommune %s %d: %s is not suppressed, published «:»", area, year, col)
			case want:
				colons++
			}
		}
	}
	if colons < n {
		t.Errorf("csv: %d cells «:» for %d suppressed by the API", colons, n)
	}

	// The JSON: null where the API withholds, numbers elsewhere, and the row's suppressed list.
	r = w.do(http.MethodGet, "/statistikk.json?"+q, nil, nil, analyst)
	if r.code != http.StatusOK {
		t.Fatalf("json: %d %s", r.code, r.body)
	}
	var objs []map[string]any
	if err := json.Unmarshal([]byte(r.body), &objs); err != nil || len(objs) != len(res.Msg.GetRows()) {
		t.Fatalf("json: %v, %d objects", err, len(objs))
	}
	for _, o := range objs {
		area, _ := o["area"].(string)
		for _, col := range head {
			v, ok := o[col]
			if !ok {
				t.Errorf("json kommune %s: no %s", area, col)
				continue
			}
			if withheld(area, col) && v != nil {
				t.Errorf("json kommune %s %d: %s is suppressed, published %v (want null)", area, year, col, v)
			}
			if !withheld(area, col) && v == nil {
				t.Errorf("json kommune %s %d: %s is not suppressed, published null", area, year, col)
			}
		}
		list, _ := o["suppressed"].([]any)
		if len(list) != len(suppressed[area]) {
			t.Errorf("json kommune %s: suppressed %v, the API names %d fields", area, o["suppressed"], len(suppressed[area]))
		}
	}

	// The page: «:» cells and the footnote.
	r = w.do(http.MethodGet, "/statistikk?"+q, nil, nil, analyst)
	if r.code != http.StatusOK {
		t.Fatalf("page: %d", r.code)
	}
	if !strings.Contains(r.body, `<td class="tall">:</td>`) {
		t.Errorf("the statistics page shows no suppressed cell as «:»")
	}
	foot := strings.SplitN(projections.Footnote, " / ", 2)[0]
	if !strings.Contains(r.body, foot[len(": "):]) {
		t.Errorf("the statistics page has no footnote explaining «:»")
	}

	// Oslo's own row stays unsuppressed for Oslo (DOMAIN.md Product decisions 14).
	oslo := login(t, w.h, w.tokens["oslo"])
	r = w.do(http.MethodGet, "/statistikk.csv?niva=kommune&omrade=0301&ar="+strconv.Itoa(year), nil, nil, oslo)
	if r.code != http.StatusOK {
		t.Fatalf("oslo csv: %d %s", r.code, r.body)
	}
	recs, err = csv.NewReader(strings.NewReader(r.body)).ReadAll()
	if err != nil || len(recs) != 2 || recs[1][2] != "0301" {
		t.Fatalf("oslo csv: %v %v", err, recs)
	}
	for i, v := range recs[1] {
		if v == ":" {
			t.Errorf("Oslo's own 0301 row: %s is «:», want its figure", recs[0][i])
		}
	}
}
