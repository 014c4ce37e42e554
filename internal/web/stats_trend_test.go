package web_test

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/introreg/nir/internal/auth"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// trendRow is a row of the statistics page's table over the years: its year and its cells.
var trendRow = regexp.MustCompile(`(?s)<th scope="row">(\d{4})(?: <span[^>]*>[^<]*</span>)?</th>(.*?)</tr>`)

// trendChartSVG is the statistics page's chart over the years.
var trendChartSVG = regexp.MustCompile(`(?s)<svg[^>]*aria-labelledby="utvikling-tittel.*?</svg>`)

// TestConsole_StatisticsTrendWithoutRow: the table over the years shows «–» in every cell of a
// year the API has no row for (30 Viken before 2020 and after 2023), as the downloads leave
// such a year out, and the year's figures where it has one; a former fylke is named by its
// last name («30» before 2026-12-07), and a year it was none says so. Found on 2026-12-07 (a walk of the
// console's forms): every cell of such a year read 0, a count of nobody published for a fylke
// that did not exist.
func TestConsole_StatisticsTrendWithoutRow(t *testing.T) {
	w := newWorld(t)
	analyst := login(t, w.h, w.tokens["analytiker"])
	ctx := auth.NewContext(context.Background(), auth.Principal{Name: "analytiker", Role: auth.RoleAnalyst})
	r := w.do(http.MethodGet, "/statistikk?ar=2025&niva=fylke&omrade=30", nil, nil, analyst)
	if r.code != http.StatusOK {
		t.Fatalf("statistics of fylke 30 in 2025: %d", r.code)
	}
	// The table is named by the fylke's last name, not by its bare number, in a year after
	// its end.
	if !strings.Contains(r.body, "<caption>Viken per år</caption>") {
		t.Errorf("the table over the years is not captioned «Viken per år»")
	}
	// No figures for 2025, and the page says why: Viken was a fylke only 2020-2023.
	if !strings.Contains(r.body, "Ingen tall for 2025. Viken (30) var et fylke 2020–2023; tallene følger kommunestrukturen per 1. januar 2025.") {
		t.Errorf("the page of fylke 30 in 2025 does not say it was a fylke 2020–2023 only")
	}
	if r := w.do(http.MethodGet, "/statistikk?ar=2025&niva=fylke&omrade=03", nil, nil, analyst); strings.Contains(r.body, "var et fylke") {
		t.Errorf("the page of fylke 03 in 2025 says it was a fylke once")
	}
	rows := trendRow.FindAllStringSubmatch(r.body, -1)
	if len(rows) != 7 {
		t.Fatalf("%d rows over the years; want 7 (2019-2025)", len(rows))
	}
	none, withheld := 0, 0
	for _, row := range rows {
		y, _ := strconv.Atoi(row[1])
		res, err := w.query.Statistics(ctx, connect.NewRequest(&nirv1.StatisticsRequest{Year: int32(y), Level: nirv1.StatisticsLevel_STATISTICS_LEVEL_FYLKE, Area: "30"}))
		if err != nil {
			t.Fatal(err)
		}
		cells := strings.Count(row[2], `<td class="tall">`)
		dashes := strings.Count(row[2], `<td class="tall">–</td>`)
		if len(res.Msg.GetRows()) == 0 {
			none++
			if dashes != cells || cells == 0 {
				t.Errorf("%d, no row in the API: %d of %d cells «–»; want all", y, dashes, cells)
			}
		} else if dashes != 0 {
			t.Errorf("%d, a row in the API: %d cells «–»; want its figures", y, dashes)
		} else {
			for _, f := range res.Msg.GetRows()[0].GetSuppressed() {
				if f == "participants" || f == "new_programmes" || f == "terminated" {
					withheld++
				}
			}
		}
	}
	// The chart over the years (its three lines) marks a year without figures «–» as the
	// table does, not «:», which reads as withheld (a review, 2026-12-07).
	chart := trendChartSVG.FindString(r.body)
	if marks := strings.Count(chart, ">–</text>"); marks != 3*none {
		t.Errorf("the chart over the years marks %d points «–»; want %d (three lines, %d years without a row)", marks, 3*none, none)
	}
	if marks := strings.Count(chart, ">:</text>"); marks != withheld {
		t.Errorf("the chart over the years marks %d points «:»; want %d, the figures withheld", marks, withheld)
	}
	if none == 0 || none == len(rows) {
		t.Fatalf("%d of %d years without a row; the test needs both kinds", none, len(rows))
	}
}

// TestConsole_StatisticsOfTheFirstYears: the page and the downloads over the years of a data
// year the console takes (1900 on) answer with the years from 1900, not a refusal. Before,
// the trend asked the API for the six years before, 1894 for 1900, and the whole page read
// «Ugyldig verdi: Dataår» (found on 2026-12-07, a walk of the console's parameters).
func TestConsole_StatisticsOfTheFirstYears(t *testing.T) {
	w := newWorld(t)
	for _, who := range []string{"analytiker", "oslo"} {
		ck := login(t, w.h, w.tokens[who])
		r := w.do(http.MethodGet, "/statistikk?ar=1902", nil, nil, ck)
		if r.code != http.StatusOK {
			t.Errorf("%s: the page of 1902: %d, want 200", who, r.code)
		}
		if rows := trendRow.FindAllStringSubmatch(r.body, -1); len(rows) != 3 || rows[0][1] != "1900" {
			t.Errorf("%s: the page of 1902 has %d rows over the years; want 3, from 1900", who, len(rows))
		}
		if r := w.do(http.MethodGet, "/statistikk.csv?ar=1900&serie=ar", nil, nil, ck); r.code != http.StatusOK {
			t.Errorf("%s: the download over the years to 1900: %d, want 200", who, r.code)
		}
	}
}
