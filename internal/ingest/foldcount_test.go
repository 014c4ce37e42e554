package ingest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/introreg/nir/internal/foldcount"
	"github.com/introreg/nir/internal/ingest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestService_FoldLinearInRetractions: the append path folds a person's whole history read
// from the stream (FoldHistory; the history cache's fill, for an append after a restart)
// folding each event a bounded number of times however many retractions it holds
// (rules.State.ApplyAll), where folding it with Apply one event at a time re-folds the log
// at every retraction (foldcount.Linear). A kommune could otherwise make every append for
// its own person slow (helper-121's audit).
// Not parallel: the fault hook is the rules package's, for every fold in the process.
func TestService_FoldLinearInRetractions(t *testing.T) {
	ctx := context.Background()
	svc, store := newService(t)
	id, reg := person(61, false)
	pos, err := svc.Append(ctx, oslo, []*nirv1.Registration{reg})
	if err != nil {
		t.Fatal(err)
	}
	key := pos[0].PersonKey
	// 400 offers, each retracted by the next event, in requests of 50 pairs.
	for range 8 {
		var regs []*nirv1.Registration
		for range 50 {
			o := offer(id)
			regs = append(regs, o, retractOn(key, o.Event.Id))
		}
		if _, err := svc.Append(ctx, oslo, regs); err != nil {
			t.Fatal(err)
		}
	}
	history, _, err := store.Read(ctx, key)
	if err != nil || len(history) != 801 {
		t.Fatalf("read %d events, %v", len(history), err)
	}
	foldcount.Linear(t, key, len(history),
		foldcount.Op{Name: "FoldHistory", Run: func() error {
			if st := ingest.FoldHistory(key, history); len(st.Retracted) != 400 {
				return fmt.Errorf("%d events retracted, want 400", len(st.Retracted))
			}
			return nil
		}},
		foldcount.Op{Name: "AppendAfterRestart", Run: func() error {
			_, err := serviceOn(t, store).Append(ctx, oslo, []*nirv1.Registration{offer(id)})
			return err
		}},
	)
}
