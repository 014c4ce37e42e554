package web_test

import (
	"fmt"
	"net/http"
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
