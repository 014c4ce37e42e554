package ingest_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/introreg/nir/internal/ingest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// faultOn makes the rules panic folding the events with the ids (rules.SetFaultForTest)
// until the test ends.
func faultOn(t *testing.T, ids ...string) (restore func()) {
	t.Helper()
	restore = rules.SetFaultForTest(func(ev *nirv1.Event) bool {
		for _, id := range ids {
			if ev.GetId() == id {
				return true
			}
		}
		return false
	})
	t.Cleanup(restore)
	return restore
}

// TestService_FoldFault: an event stored for a person that the rules panic on (as a bug in
// them might: one stored by a nird without the bug, folded by one with it) does not stop the
// append path: the person's history, folded for the next append, leaves it out
// (rules.State.Faults) and the append is judged and stored; a retry of the faulted event is
// still its original position.
// Not parallel: the fault hook is the rules package's, for every fold in the process.
func TestService_FoldFault(t *testing.T) {
	ctx := context.Background()
	before, store := newService(t)
	id, reg := person(5, false)
	pos, err := before.Append(ctx, oslo, []*nirv1.Registration{reg})
	if err != nil {
		t.Fatal(err)
	}
	key := pos[0].PersonKey
	bad := offer(id)
	badPos, err := before.Append(ctx, oslo, []*nirv1.Registration{bad})
	if err != nil {
		t.Fatal(err)
	}
	faultOn(t, bad.GetEvent().GetId())
	svc := serviceOn(t, store) // a nird with the bug: its cache never folded the event
	good := offer(id)
	for range 2 { // from the stream, then from the history cache
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

// TestService_FoldFaultRefused: a new event the rules panic on is refused before anything
// is stored, alone or after other events of its request, for a new person and for a cached
// one, with a *FoldFaultError naming its registration and nothing personal: stored, it would
// be left out of every read model. The person's other appends go on, and the same request
// is stored once the rules no longer fail on it.
// Not parallel: the fault hook is the rules package's, for every fold in the process.
func TestService_FoldFaultRefused(t *testing.T) {
	ctx := context.Background()
	svc, store := newService(t)
	id, reg := person(6, false)
	lastSeq := func() uint64 {
		t.Helper()
		seq, err := store.LastSeq(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return seq
	}
	refused := func(what string, regs []*nirv1.Registration, index int) {
		t.Helper()
		before := lastSeq()
		_, err := svc.Append(ctx, oslo, regs)
		var fe *ingest.FoldFaultError
		if !errors.Is(err, ingest.ErrFoldFault) || !errors.As(err, &fe) || fe.Index != index ||
			!strings.HasPrefix(err.Error(), "registrations[") || strings.Contains(err.Error(), id) {
			t.Fatalf("%s: append = %v; want ErrFoldFault naming registrations[%d], no national id", what, err, index)
		}
		if after := lastSeq(); after != before {
			t.Fatalf("%s: the stream went from %d to %d; nothing may be stored", what, before, after)
		}
	}

	restore := faultOn(t, reg.GetEvent().GetId())
	refused("a new person's registration", []*nirv1.Registration{reg}, 0)
	restore()
	pos, err := svc.Append(ctx, oslo, []*nirv1.Registration{reg})
	if err != nil {
		t.Fatalf("the registration once the rules take it: %v", err)
	}
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{offer(id)}); err != nil {
		t.Fatal(err)
	}

	bad, good := offer(id), offer(id)
	faultOn(t, bad.GetEvent().GetId())
	refused("one event of a cached person", []*nirv1.Registration{bad}, 0)
	refused("the second event of a request", []*nirv1.Registration{good, bad}, 1)
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{good}); err != nil {
		t.Fatalf("the person's next append: %v", err)
	}
	// Another nird (no cached state) refuses it too, and counts it.
	rec := &recorder{}
	other := serviceOn(t, store, func(c *ingest.Config) { c.Observer = rec })
	if _, err := other.Append(ingest.WithTransport(ctx, ingest.TransportNATS), oslo, []*nirv1.Registration{bad}); !errors.Is(err, ingest.ErrFoldFault) {
		t.Fatalf("append by another nird = %v; want ErrFoldFault", err)
	}
	if n := rec.counts["foldfault nats kommune"]; n != 1 {
		t.Fatalf("fold faults counted %d times (all: %v); want 1", n, rec.counts)
	}
	st := fold(t, ctx, store, pos[0].PersonKey)
	if len(st.Faults) != 0 || len(st.Offers) != 2 || st.Faulted(bad.GetEvent().GetId()) {
		t.Fatalf("faults %+v, %d offers; want the two offers stored and no fault", st.Faults, len(st.Offers))
	}
}
