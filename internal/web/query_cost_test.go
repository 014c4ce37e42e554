package web_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
)

// TestConsole_PersonListRefusesBeforeItWorks sends the person list what nird lets a request
// line hold (its 64 KiB of headers) as thousands of parameters it does not know, or one
// parameter given thousands of times, and checks the page refuses it for about what reading
// the query costs. Before, the page built its column links, its CSV link and its page-size
// form from every parameter sent (nine copies of the query, each sorted and encoded) and only
// then found the query invalid: 18 MB allocated and 33 ms of CPU for 60 KB of unknown
// parameters (5 MB for one parameter repeated), ten times the CPU of a valid page of a
// 20 000-person kommune, from any kommune at its request rate; now 3.8 MB and 1.8 MB, about
// twice the request's own parse (the page reads the query once more).
func TestConsole_PersonListRefusesBeforeItWorks(t *testing.T) {
	w := newWorld(t)
	oslo := login(t, w.h, w.tokens["oslo"])
	var unknown, repeated strings.Builder
	for i := 0; unknown.Len() < 60<<10; i++ {
		fmt.Fprintf(&unknown, "k%04d=x&", i)
	}
	for repeated.Len() < 60<<10 {
		repeated.WriteString("law=IL&")
	}
	for name, query := range map[string]string{"unknown": unknown.String(), "repeated": repeated.String()} {
		path := "/personer?" + query
		// What a request costs before the page does anything: its parse and the query's.
		base := allocated(func() {
			r := httptest.NewRequest(http.MethodGet, path, nil)
			_ = r.URL.Query()
		})
		var code int
		got := allocated(func() { code = w.do(http.MethodGet, path, nil, nil, oslo).code })
		if code != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", name, code)
		}
		if got > 2*base+(1<<20) {
			t.Errorf("%s parameters (%d bytes): the page allocated %d KB, the request's parse %d KB", name, len(query), got>>10, base>>10)
		}
	}
}

// allocated returns the bytes fn allocates (the mean of a few runs).
func allocated(fn func()) uint64 {
	const runs = 5
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	for range runs {
		fn()
	}
	runtime.ReadMemStats(&m1)
	return (m1.TotalAlloc - m0.TotalAlloc) / runs
}
