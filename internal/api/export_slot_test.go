package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/introreg/nir/internal/auth"
)

// stalledClient is a CSV client that stops reading: its first Write reports on writing and
// then waits for release, holding the export (and its slot) in flight.
type stalledClient struct {
	header  http.Header
	once    sync.Once
	writing chan struct{}
	release chan struct{}
}

func (c *stalledClient) Header() http.Header { return c.header }
func (c *stalledClient) WriteHeader(int)     {}
func (c *stalledClient) Write(p []byte) (int, error) {
	c.once.Do(func() { close(c.writing) })
	<-c.release
	return len(p), nil
}

// TestQuery_ExportSlotsAreThePrincipals: the CSV exports a principal has in flight are
// counted for the principal, whatever it asks for: an analyst whose export of one kommune
// is held by a client that stopped reading is refused (429) an export of another kommune,
// while another principal is served. Mutation testing (2026-12-07): the export's slot keyed
// on the request instead of the principal passed every test (TestQuery_ExportsPerPrincipal
// counts the slots, not which key the handler takes them under), and then one principal
// holds a temporary file of a whole list per kommune and filter.
func TestQuery_ExportSlotsAreThePrincipals(t *testing.T) {
	w := startQueryConfig(t, QueryConfig{MaxExportsPerPrincipal: 1})
	bg := context.Background()
	analyst := auth.NewContext(bg, auth.Principal{Name: "analyst", Role: auth.RoleAnalyst})
	export := func(ctx context.Context, rw http.ResponseWriter, query string) {
		w.q.ExportHandler().ServeHTTP(rw, httptest.NewRequest(http.MethodGet, ExportPersonsPath+"?"+query, nil).WithContext(ctx))
	}
	stalled := &stalledClient{header: http.Header{}, writing: make(chan struct{}), release: make(chan struct{})}
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		export(analyst, stalled, "kommune="+oslo)
	}()
	select {
	case <-stalled.writing:
	case <-ended:
		t.Fatal("the first export ended without writing")
	}
	for _, query := range []string{"kommune=" + bergen, "kommune=" + oslo + "&desc=true"} {
		rec := httptest.NewRecorder()
		export(analyst, rec, query)
		if rec.Code != http.StatusTooManyRequests {
			t.Errorf("the analyst's second export (%s) with one in flight: %d, want 429", query, rec.Code)
		}
	}
	rec := httptest.NewRecorder()
	export(auth.NewContext(bg, auth.Principal{Name: "oslo", Role: auth.RoleKommune, Kommune: oslo}), rec, "")
	if rec.Code != http.StatusOK {
		t.Errorf("another principal's export beside it: %d, want 200: %s", rec.Code, rec.Body)
	}
	close(stalled.release)
	<-ended
	rec = httptest.NewRecorder()
	export(analyst, rec, "kommune="+bergen)
	if rec.Code != http.StatusOK {
		t.Errorf("the analyst's export once the first ended: %d, want 200: %s", rec.Code, rec.Body)
	}
}
