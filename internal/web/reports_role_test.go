package web_test

import (
	"net/http"
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
