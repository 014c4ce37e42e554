package web

import (
	"strings"
	"testing"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// TestStatsCharts_SuppressedShareIsColon: DOMAIN.md "Product decisions" 14: a suppressed
// count is shown as «:». Found on 2026-12-06 (review of the published figures): before, the
// share chart computed direct/terminated itself from the API's zeroed fields, so a kommune
// whose 1-4 direct transitions were suppressed was drawn with «0 % (0 av 12)»; now a share
// whose numerator or denominator is withheld reads «:», and a withheld count draws no bar.
func TestStatsCharts_SuppressedShareIsColon(t *testing.T) {
	rows := []statsRowView{
		{Area: "0301", Name: "Oslo", Participants: 40, Terminated: 12, Suppressed: map[string]bool{"direct_work_or_education": true}},
		{Area: "4601", Name: "Bergen", Participants: 30, Direct: 6, Terminated: 10, ShareDirect: 0.6},
		{Area: "1103", Name: "Stavanger", Participants: 20, Suppressed: map[string]bool{"terminated": true}},
	}
	bars, shares := statsCharts(rows, statsQuery{Year: 2025, Level: "kommune"})
	if strings.Contains(string(shares), "0 av") || strings.Contains(string(shares), "(0") {
		t.Errorf("the share chart publishes a suppressed count as 0: %s", shares)
	}
	if got := strings.Count(string(shares), ">:</text>"); got != 2 {
		t.Errorf("the share chart reads «:» %d times, want 2 (Oslo: numerator, Stavanger: denominator withheld)", got)
	}
	if !strings.Contains(string(shares), "60\u00a0% (6 av 10)") {
		t.Errorf("the share chart lost Bergen's published share: %s", shares)
	}
	if got := strings.Count(string(bars), ">:</text>"); got != 1 {
		t.Errorf("the bars read «:» %d times, want 1 (Stavanger's terminated)", got)
	}
	for _, r := range rows {
		for _, f := range []string{"share_direct_work_or_education", "direct_work_or_education", "terminated"} {
			if w := withheld(r.Suppressed, f); (r.Cell(f) == ":") != w {
				t.Errorf("%s %s: cell %q, withheld %v", r.Name, f, r.Cell(f), w)
			}
		}
	}
	if got := rows[0].Cell("share_direct_work_or_education"); got != ":" {
		t.Errorf("Oslo's share with its numerator withheld: %q, want «:»", got)
	}
	if got := rows[2].Cell("share_direct_work_or_education"); got != ":" {
		t.Errorf("Stavanger's share with its denominator withheld: %q, want «:»", got)
	}
}

// TestAreaOutside: what the statistics page says of an area asked for a year whose kommune
// structure does not hold it: when it was a kommune or fylke; nothing for an area of the
// structure or a number the table does not know.
func TestAreaOutside(t *testing.T) {
	fylke, kommune := nirv1.StatisticsLevel_STATISTICS_LEVEL_FYLKE, nirv1.StatisticsLevel_STATISTICS_LEVEL_KOMMUNE
	for _, tt := range []struct {
		level nirv1.StatisticsLevel
		area  string
		year  int
		want  string
	}{
		{fylke, "30", 2025, "Viken (30) var et fylke 2020–2023; tallene følger kommunestrukturen per 1. januar 2025."},
		{fylke, "30", 2019, "Viken (30) var et fylke 2020–2023; tallene følger kommunestrukturen per 1. januar 2019."},
		{fylke, "30", 2022, ""},
		{fylke, "03", 2025, ""},
		{fylke, "99", 2025, ""},
		{kommune, "0213", 2025, "Ski (0213) var en kommune 2004–2019; tallene følger kommunestrukturen per 1. januar 2025."},
		{kommune, "0301", 2025, ""},
		{kommune, "9999", 2025, ""},
	} {
		if got := areaOutside(tt.level, tt.area, rules.MustDate(tt.year, 1, 1)); got != tt.want {
			t.Errorf("areaOutside(%v, %s, %d) = %q, want %q", tt.level, tt.area, tt.year, got, tt.want)
		}
	}
}
