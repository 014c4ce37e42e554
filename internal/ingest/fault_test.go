package ingest_test

import (
	"context"
	"testing"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// TestService_FoldFault: an event stored for a person that the rules panic on (as a bug in
// them might; rules.SetFaultForTest) does not stop the append path: the person's history,
// folded for the next append, leaves it out (rules.State.Faults) and the append is judged and
// stored; a retry of the faulted event is still its original position.
// Not parallel: the fault hook is the rules package's, for every fold in the process.
func TestService_FoldFault(t *testing.T) {
	ctx := context.Background()
	svc, store := newService(t)
	id, reg := person(5, false)
	pos, err := svc.Append(ctx, oslo, []*nirv1.Registration{reg})
	if err != nil {
		t.Fatal(err)
	}
	key := pos[0].PersonKey
	bad := offer(id)
	t.Cleanup(rules.SetFaultForTest(func(ev *nirv1.Event) bool { return ev.GetId() == bad.GetEvent().GetId() }))
	badPos, err := svc.Append(ctx, oslo, []*nirv1.Registration{bad})
	if err != nil {
		t.Fatalf("append of the event the rules fail on: %v", err)
	}
	good := offer(id)
	for range 2 { // from the history cache, and with one event more
		p, err := svc.Append(ctx, oslo, []*nirv1.Registration{good})
		if err != nil {
			t.Fatalf("append after the faulted event: %v", err)
		}
		if p[0].Sequence <= badPos[0].Sequence {
			t.Fatalf("positions %v after %v", p, badPos)
		}
		good = offer(id)
	}
	again, err := svc.Append(ctx, oslo, []*nirv1.Registration{bad})
	if err != nil || !again[0].Duplicate || again[0].Sequence != badPos[0].Sequence {
		t.Fatalf("retry of the faulted event = %v, %v; want its original position", again, err)
	}
	st := fold(t, ctx, store, key)
	if len(st.Faults) != 1 || st.Faults[0].Seq != badPos[0].Sequence || len(st.Offers) != 2 {
		t.Fatalf("faults %+v, %d offers; want the faulted event alone left out", st.Faults, len(st.Offers))
	}
}
