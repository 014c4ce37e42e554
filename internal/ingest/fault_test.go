package ingest_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/oklog/ulid/v2"

	"github.com/introreg/nir/internal/access"
	"github.com/introreg/nir/internal/auth"
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
	// Another nird (no cached state) refuses it too, counts it and logs it by event id and
	// the panic's type.
	rec := &recorder{}
	var logged strings.Builder
	other := serviceOn(t, store, func(c *ingest.Config) {
		c.Observer, c.Logger = rec, slog.New(slog.NewTextHandler(&logged, nil))
	})
	if _, err := other.Append(ingest.WithTransport(ctx, ingest.TransportNATS), oslo, []*nirv1.Registration{bad}); !errors.Is(err, ingest.ErrFoldFault) {
		t.Fatalf("append by another nird = %v; want ErrFoldFault", err)
	}
	if n := rec.counts["foldfault nats kommune"]; n != 1 {
		t.Fatalf("fold faults counted %d times (all: %v); want 1", n, rec.counts)
	}
	if l := logged.String(); !strings.Contains(l, "event_id="+bad.GetEvent().GetId()) || !strings.Contains(l, "panic=panic(rules.errFaultForTest)") || strings.Contains(l, id) {
		t.Fatalf("log %q: want the event id and the panic's type, no national id", l)
	}
	st := fold(t, ctx, store, pos[0].PersonKey)
	if len(st.Faults) != 0 || len(st.Offers) != 2 || st.Faulted(bad.GetEvent().GetId()) {
		t.Fatalf("faults %+v, %d offers; want the two offers stored and no fault", st.Faults, len(st.Offers))
	}
}

// TestService_MergeLeavesFaultedOut: a merge copies what the fold of the absorbed person
// counts, not an event of it the fold leaves out (rules.State.Faults): copied, that event
// would fault the merge itself, and the merge could never be stored.
// Not parallel: the fault hook is the rules package's, for every fold in the process.
func TestService_MergeLeavesFaultedOut(t *testing.T) {
	ctx := context.Background()
	before, store := newService(t)
	dnr, fnr, _, pos := registeredTwice(t, before, 61)
	bad, good := offer(fnr), offer(fnr)
	if _, err := before.Append(ctx, oslo, []*nirv1.Registration{bad, good}); err != nil {
		t.Fatal(err)
	}
	faultOn(t, bad.GetEvent().GetId())
	svc := serviceOn(t, store) // a nird with the bug
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{mergeReg(dnr, pos[1].PersonKey)}); err != nil {
		t.Fatalf("merging a person with an event the fold leaves out: %v", err)
	}
	st := fold(t, ctx, store, pos[0].PersonKey)
	merge := st.Log()[len(st.Log())-1].Event.GetPersonsMerged()
	var copied []string
	for _, e := range merge.GetAbsorbedEvents() {
		copied = append(copied, e.GetId())
	}
	if len(copied) != 2 || copied[1] != good.GetEvent().GetId() || len(st.Faults) != 0 || len(st.Offers) != 1 {
		t.Fatalf("the merge copied %v (faults %+v, %d offers); want the registration and the good offer", copied, st.Faults, len(st.Offers))
	}
}

// TestService_ErasureAfterFaultedErasure: a stored erasure the fold leaves out
// (rules.State.Faults) did not erase the person, so another erasure is stored and erases,
// instead of being answered as the first one's duplicate while the person stays unerased.
// Not parallel: the fault hook is the rules package's, for every fold in the process.
func TestService_ErasureAfterFaultedErasure(t *testing.T) {
	ctx := context.Background()
	before, store := newService(t)
	id, reg := person(62, false)
	pos, err := before.Append(ctx, oslo, []*nirv1.Registration{reg})
	if err != nil {
		t.Fatal(err)
	}
	key := pos[0].PersonKey
	operator := access.For(auth.Principal{Name: "drift", Role: auth.RoleOperator})
	erase := func() *nirv1.Registration {
		return &nirv1.Registration{Person: &nirv1.PersonRef{NationalId: id}, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301",
			Payload: &nirv1.Event_PersonErased{PersonErased: &nirv1.PersonErased{Reason: "ønsket slettet"}}}}
	}
	first := erase()
	if _, err := before.Append(ctx, operator, []*nirv1.Registration{first}); err != nil {
		t.Fatal(err)
	}
	faultOn(t, first.GetEvent().GetId())
	if st := fold(t, ctx, store, key); st.Erased || !st.Faulted(first.GetEvent().GetId()) {
		t.Fatalf("erased %v, faults %+v; want the erasure left out", st.Erased, st.Faults)
	}
	second := erase()
	p, err := serviceOn(t, store).Append(ctx, operator, []*nirv1.Registration{second})
	if err != nil || p[0].Duplicate || p[0].EventId != second.GetEvent().GetId() {
		t.Fatalf("erasure after a faulted one = %v, %v; want it stored", p, err)
	}
	if st := fold(t, ctx, store, key); !st.Erased {
		t.Fatal("the person is not erased")
	}
}
