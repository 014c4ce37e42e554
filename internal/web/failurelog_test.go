package web_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/introreg/nir/ratelog"
)

// TestConsole_FailureLogBounded: while the read models fail (here closed, as at shutdown),
// every page fails alike (503), and each was a line of nird's log ("page failed"): an outage
// a line per page asked for, at the rate a browser or a script asks. Now the failure logs its
// first lines, then one a minute saying how many were left out.
func TestConsole_FailureLogBounded(t *testing.T) {
	w := newWorld(t)
	oslo := login(t, w.h, w.tokens["oslo"])
	person := w.persons["0301"][0]
	if err := w.proj.Close(); err != nil {
		t.Fatal(err)
	}
	const requests = 300
	ask := func(n int) {
		t.Helper()
		for range n {
			if res := w.do(http.MethodGet, "/personer/"+person, nil, nil, oslo); res.code != http.StatusServiceUnavailable {
				t.Fatalf("a person's page while the read models are closed: %d, want 503", res.code)
			}
		}
	}
	lines := func() []string {
		var out []string
		for _, l := range strings.Split(w.logged(), "\n") {
			if strings.Contains(l, `msg="page failed"`) {
				out = append(out, l)
			}
		}
		return out
	}
	ask(requests)
	if got := lines(); len(got) != ratelog.DefaultKindsBurst {
		t.Fatalf("%d failed pages logged %d lines, want %d:\n%s", requests, len(got), ratelog.DefaultKindsBurst, strings.Join(got, "\n"))
	}
	w.clock.add(time.Minute)
	ask(5)
	got := lines()
	if len(got) != ratelog.DefaultKindsBurst+1 || !strings.Contains(got[len(got)-1], fmt.Sprintf("not_logged=%d", requests-ratelog.DefaultKindsBurst)) {
		t.Errorf("a minute on, 5 more failed pages logged %d lines in all, the last without the %d left out:\n%s", len(got), requests-ratelog.DefaultKindsBurst, strings.Join(got, "\n"))
	}
	if strings.Contains(w.logged(), w.ids[person]) {
		t.Error("the log names the person's national id")
	}
}

// TestConsole_RefusedLoginsLogBounded: a case system's token bound to its NATS user is
// refused by the console's log-in as often as it is sent, and each refusal was a line of
// nird's log; now the refusals log their first lines, then one a minute with the count.
func TestConsole_RefusedLoginsLogBounded(t *testing.T) {
	w := newWorld(t)
	page := w.do(http.MethodGet, "/logg-inn", nil, nil)
	form := url.Values{"csrf": {csrfOf(t, page.body)}, "nokkel": {w.tokens["oslo-nats"]}}
	const logins = 300
	for range logins {
		if r := w.do(http.MethodPost, "/logg-inn/nokkel/", form, nil, page.cookies...); r.code != http.StatusForbidden {
			t.Fatalf("log-in with a token bound to a NATS user: %d, want 403", r.code)
		}
	}
	if n := strings.Count(w.logged(), `msg="console log-in refused"`); n != ratelog.DefaultKindsBurst {
		t.Fatalf("%d refused log-ins logged %d lines, want %d", logins, n, ratelog.DefaultKindsBurst)
	}
	w.clock.add(time.Minute)
	if r := w.do(http.MethodPost, "/logg-inn/nokkel/", form, nil, page.cookies...); r.code != http.StatusForbidden {
		t.Fatalf("log-in a minute on: %d, want 403", r.code)
	}
	if want := fmt.Sprintf("not_logged=%d", logins-ratelog.DefaultKindsBurst); !strings.Contains(w.logged(), want) {
		t.Errorf("a minute on, the refusal logged does not say %s:\n%s", want, w.logged())
	}
}

// TestConsole_FailureLogMasksTenDigitIDs: a national id in the path of a refused form (a POST
// without its CSRF token, logged before the page looks at its path) is masked in nird's log
// in every form the rest of nir masks a value a client sent: the 10 digits of one whose
// leading zero was dropped (a spreadsheet's number) among them. The path was masked by
// rules.RedactIDs, which knows only the 11-digit form, and the 10 were logged. A person key
// in the path stays, so the line still says whose page it was.
func TestConsole_FailureLogMasksTenDigitIDs(t *testing.T) {
	w := newWorld(t)
	oslo := login(t, w.h, w.tokens["oslo"])
	key := w.persons["0301"][0]
	ids := []string{"01019012345", "1019012345"}
	for _, id := range append(slices.Clone(ids), key) {
		if res := w.do(http.MethodPost, "/personer/"+id, url.Values{"csrf": {"not-it"}}, nil, oslo); res.code != http.StatusForbidden {
			t.Fatalf("a form without its CSRF token: %d, want 403", res.code)
		}
	}
	logged := w.logged()
	if n := strings.Count(logged, `msg="form refused: CSRF token or origin"`); n != len(ids)+1 || !strings.Contains(logged, "path=/personer/"+key) {
		t.Fatalf("%d refused forms logged %d lines, want each, the person key's with its path:\n%s", len(ids)+1, n, logged)
	}
	if strings.Contains(logged, ids[1]) { // in both forms
		t.Errorf("the log names a national id:\n%s", logged)
	}
}
