package web_test

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestConsole_ReportingForKommunerOnly: the page of a kommune's reporting gaps, which the
// menu offers kommuner only, tells an analyst who opens it that it is for the kommuner, with
// 403; before 2026-12-07 (a walk of the console) it answered 400 «Ugyldig verdi: Kommune.»,
// the person list's refusal of its query without a kommune. A kommune still gets its page.
func TestConsole_ReportingForKommunerOnly(t *testing.T) {
	w := newWorld(t)
	// The operator too (a review, 2026-12-07; nird's system principal cannot log in).
	for _, who := range []string{"analytiker", "drift"} {
		r := w.do(http.MethodGet, "/arsrapportering", nil, nil, login(t, w.h, w.tokens[who]))
		if r.code != http.StatusForbidden || !strings.Contains(r.body, "for kommunene") || strings.Contains(r.body, "Ugyldig verdi") {
			t.Errorf("%s opening /arsrapportering: %d, saying it is for the kommuner: %v; want 403 saying so", who, r.code, strings.Contains(r.body, "for kommunene"))
		}
	}
	oslo := login(t, w.h, w.tokens["oslo"])
	if r := w.do(http.MethodGet, "/arsrapportering", nil, nil, oslo); r.code != http.StatusOK {
		t.Errorf("Oslo's /arsrapportering: %d, want 200", r.code)
	}
}

// TestConsole_ReportingKommune: the årsrapportering is the caller's own kommune's. Before
// 2026-12-07 it ignored a kommune in its URL, and Oslo asking for Bergen's (4601) read its
// own gaps under Bergen's number, answered 200. Now its own number (or none) gives the page,
// another kommune's number is denied with 403 alike whether it exists today, existed once or
// never did (as /avsluttede, TestConsole_AreaNumbers), and a malformed number is refused with
// 400 naming the field, in the page's alert, never quoting a national id.
func TestConsole_ReportingKommune(t *testing.T) {
	w := newWorld(t)
	oslo := login(t, w.h, w.tokens["oslo"])
	get := func(kommune string) response {
		return w.do(http.MethodGet, "/arsrapportering?"+url.Values{"ar": {"2023"}, "kommune": {kommune}}.Encode(), nil, nil, oslo)
	}
	counts := regexp.MustCompile(`data-teller="[0-9]+"`)
	own := w.do(http.MethodGet, "/arsrapportering?ar=2023", nil, nil, oslo)
	if own.code != http.StatusOK || len(counts.FindAllString(own.body, -1)) == 0 {
		t.Fatalf("Oslo's /arsrapportering?ar=2023: %d, want the gaps", own.code)
	}
	for _, nr := range []string{"0301", " 0301 ", ""} {
		r := get(nr)
		if r.code != http.StatusOK || !slices.Equal(counts.FindAllString(r.body, -1), counts.FindAllString(own.body, -1)) {
			t.Errorf("Oslo's /arsrapportering with kommune %q: %d, want its own gaps", nr, r.code)
		}
	}
	fnr := w.ids[w.persons["0301"][0]]
	for _, tc := range []struct {
		kommune string
		status  int
		says    string
	}{
		{"4601", http.StatusForbidden, "Du har ikke tilgang"},
		{"0213", http.StatusForbidden, "Du har ikke tilgang"},
		{"9999", http.StatusForbidden, "Du har ikke tilgang"},
		{"301", http.StatusBadRequest, "Ugyldig verdi: Kommune"},
		{"abcd", http.StatusBadRequest, "Ugyldig verdi: Kommune"},
		{"03011", http.StatusBadRequest, "Ugyldig verdi: Kommune"},
		{fnr, http.StatusBadRequest, "Ugyldig verdi: Kommune"},
	} {
		r := get(tc.kommune)
		msg := areaForm{page: true}.message(r.body)
		if r.code != tc.status || !strings.Contains(msg, tc.says) || counts.MatchString(r.body) || strings.Contains(r.body, fnr) {
			t.Errorf("Oslo's /arsrapportering with kommune %q: %d, alert %q, gaps shown %v, quotes the national id %v; want %d saying %q, no gaps",
				strings.ReplaceAll(tc.kommune, fnr, "<a national id>"), r.code, msg, counts.MatchString(r.body), strings.Contains(r.body, fnr), tc.status, tc.says)
		}
	}
}
