package api

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestQuery_ExportFilterNames: the CSV export reads its filters' names as the registration
// files do (internal/regfile), case folded in ASCII only. Before 2026-12-07 it folded with
// strings.ToUpper and strings.ToLower, so a look-alike (the dotless ı, the long s ſ, the
// Kelvin sign, the dotted İ) read as the name it resembles. Every refusal is 400 naming the
// parameter, without the value; the same name in another ASCII case is accepted and exports
// what the canonical name does.
func TestQuery_ExportFilterNames(t *testing.T) {
	w := startQuery(t)
	fnr := w.people["p1"].fnr
	for _, tc := range []struct{ param, value string }{
		{"law", "ıl"},
		{"law", "ıntrol"},
		{"law", "Unspecified"},
		{"law", "law_unspecified"},
		{"law", "XYZ"},
		{"law", fnr},
		{"termination_reason", "ſykdom"},
		{"termination_reason", "termination_reason_unspecified"},
		{"termination_reason", "sometimes"},
		{"programme_category", "kan_tilbyſ"},
		{"training_category", "rett_og_plıkt"},
		{"training_category", "unspecified"},
		{"sort", "person_\u212Aey"},
		{"tiltak", "wİth"},
		{"deadline", "due_wİthin"},
	} {
		status, body := w.csv(t, qtOslo, http.MethodGet, url.Values{tc.param: {tc.value}})
		if status != http.StatusBadRequest || !strings.HasPrefix(body, tc.param+":") || strings.Contains(body, tc.value) {
			t.Errorf("%s=%+q: %d %q, want 400 naming %s, not quoting the value", tc.param, tc.value, status, firstLine(body), tc.param)
		}
	}
	// Refusals of an enum say what it takes.
	if _, body := w.csv(t, qtOslo, http.MethodGet, url.Values{"law": {"ıl"}}); !strings.Contains(body, "INTROL, IL, IL_6A") {
		t.Errorf("law=ıl: %q does not name the laws", firstLine(body))
	}
	for param, values := range map[string][2]string{
		"law": {"il", "IL"}, "programme_category": {"Rett-Og-Plikt", "RETT_OG_PLIKT"}, "termination_reason": {"arbeid", "ARBEID"},
		"sort": {"PERSON_KEY", "person_key"}, "tiltak": {"WITH", "with"},
	} {
		s1, b1 := w.csv(t, qtOslo, http.MethodGet, url.Values{param: {values[0]}})
		s2, b2 := w.csv(t, qtOslo, http.MethodGet, url.Values{param: {values[1]}})
		if s1 != http.StatusOK || s2 != http.StatusOK || b1 != b2 {
			t.Errorf("%s=%s: %d, %s=%s: %d; want both 200 with the same export", param, values[0], s1, param, values[1], s2)
		}
	}
}

// firstLine is what a failure quotes of an answer: a refusal's message, or an export's header.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
