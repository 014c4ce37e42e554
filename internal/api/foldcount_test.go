package api_test

import (
	"context"
	"testing"

	"connectrpc.com/connect"

	"github.com/introreg/nir/internal/foldcount"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestAPI_FoldLinearInRetractions: History (the person's stream) and AuditHistory (the read
// models) fold the person's whole history for the access rules folding each event a bounded
// number of times however many retractions it holds (rules.State.ApplyAll), where folding it
// with Apply one event at a time re-folds the log at every retraction (foldcount.Linear). A
// kommune could otherwise make every read of its own person slow (helper-121's audit).
// Not parallel: the fault hook is the rules package's, for every fold in the process.
func TestAPI_FoldLinearInRetractions(t *testing.T) {
	ctx := context.Background()
	w := startAccess(t)
	p := w.person(t, relOwn)
	// 400 offers, each retracted by the next event, in requests of 50 pairs.
	for range 8 {
		var regs []*nirv1.Registration
		for range 50 {
			o := accessEv(p.key, "0301", accessOffer("2024-03-01"))
			regs = append(regs, o, accessEv(p.key, "0301", accessRetract(o.Event.Id)))
		}
		w.must(t, atOslo, regs...)
	}
	w.caughtUp(t)
	stored, _, err := w.store.Read(ctx, p.key)
	if err != nil {
		t.Fatal(err)
	}
	ref := &nirv1.PersonRef{PersonKey: p.key}
	foldcount.Linear(t, p.key, len(stored),
		foldcount.Op{Name: "History", Run: func() error {
			_, err := w.reg(atOslo).History(ctx, connect.NewRequest(&nirv1.HistoryRequest{Person: ref}))
			return err
		}},
		foldcount.Op{Name: "AuditHistory", Run: func() error {
			_, err := w.query(atOslo).AuditHistory(ctx, connect.NewRequest(&nirv1.AuditHistoryRequest{Person: ref}))
			return err
		}},
	)
}
