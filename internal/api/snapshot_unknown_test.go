package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect"

	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/projections"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// liveCounting is a QuerySource that counts the reads of the live models.
type liveCounting struct {
	QuerySource
	live atomic.Int64
}

func (c *liveCounting) Use(snapshot string, fn func(db *projections.DB) error) error {
	if snapshot == "" {
		c.live.Add(1)
	}
	return c.QuerySource.Use(snapshot, fn)
}

// TestQuery_UnknownSnapshotReadsNothingLive: a kommune's person list and CSV export from a
// snapshot nobody made are NotFound without a read of the live models. Before, the
// kommune's live list (every person it has, for the snapshot's rows to be kept to) was read
// first, a valid request's work for a name anyone may make up.
func TestQuery_UnknownSnapshotReadsNothingLive(t *testing.T) {
	w := startQuery(t)
	src := &liveCounting{QuerySource: w.proj}
	q := NewQuery(QueryConfig{Source: src, Now: w.q.now})
	ctx := auth.NewContext(context.Background(), auth.Principal{Name: "oslo", Role: auth.RoleKommune, Kommune: oslo})
	_, err := q.ListPersons(ctx, connect.NewRequest(&nirv1.ListPersonsRequest{Kommune: oslo, Snapshot: "none-such"}))
	if connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("ListPersons: %v, want NotFound", err)
	}
	rec := httptest.NewRecorder()
	q.ExportHandler().ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodGet, ExportPersonsPath+"?kommune="+oslo+"&snapshot=none-such", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("CSV export: HTTP %d %q, want 404", rec.Code, rec.Body)
	}
	if n := src.live.Load(); n != 0 {
		t.Errorf("%d reads of the live models for a snapshot nobody made, want 0", n)
	}
	// A control: for a snapshot that exists, the live list is read, once by each.
	stream, err := w.admin(qtOperator).CreateSnapshot(context.Background(), connect.NewRequest(&nirv1.CreateSnapshotRequest{Name: "made", CutoffDate: qd("2023-02-28")}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := drain(stream); err != nil {
		t.Fatal(err)
	}
	if _, err := q.ListPersons(ctx, connect.NewRequest(&nirv1.ListPersonsRequest{Kommune: oslo, Snapshot: "made"})); err != nil {
		t.Fatal(err)
	}
	rec = httptest.NewRecorder()
	q.ExportHandler().ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodGet, ExportPersonsPath+"?kommune="+oslo+"&snapshot=made", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("CSV export of a snapshot: HTTP %d %q", rec.Code, rec.Body)
	}
	if n := src.live.Load(); n != 2 {
		t.Errorf("%d reads of the live models for a snapshot's list and CSV, want 2", n)
	}
}
