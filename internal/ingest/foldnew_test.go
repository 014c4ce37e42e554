package ingest_test

import (
	"context"
	"maps"
	"reflect"
	"testing"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// TestService_CachedFoldOfNewEvents: the state the history cache keeps after single appends,
// which folded each new event before the stream gave it its sequence, is the fold of the
// person's stored history at the stream's sequences, while two persons' appends interleave
// (so that no event's sequence is the one its person's state expected). Without that, the
// next append would be judged on a state that differs from every reader's.
func TestService_CachedFoldOfNewEvents(t *testing.T) {
	ctx := context.Background()
	svc, store := newService(t)
	a, b := longHistory(71, 12), longHistory(72, 12)
	var keys [2]string
	for i := range a {
		for p, regs := range [][]*nirv1.Registration{a, b} {
			pos, err := svc.Append(ctx, oslo, regs[i:i+1])
			if err != nil {
				t.Fatalf("person %d, event %d: %v", p, i, err)
			}
			keys[p] = pos[0].PersonKey
			cached, n := svc.FoldedForTest(keys[p])
			want := fold(t, ctx, store, keys[p])
			if cached == nil || n != i+1 {
				t.Fatalf("person %d, event %d: the cache keeps a fold of %d events, want %d", p, i, n, i+1)
			}
			sameFold(t, cached, want)
		}
	}
}

// sameFold fails t unless got and want applied the same events at the same sequences and
// derived the same training hours.
func sameFold(t *testing.T, got, want *rules.State) {
	t.Helper()
	seqs := func(s *rules.State) (log []uint64, ids []string, events map[string]uint64) {
		events = map[string]uint64{}
		for _, le := range s.Log() {
			log, ids = append(log, le.Seq), append(ids, le.Event.GetId())
		}
		for id, le := range s.Events {
			events[id] = le.Seq
		}
		return log, ids, events
	}
	gl, gi, ge := seqs(got)
	wl, wi, we := seqs(want)
	if got.LastSeq != want.LastSeq || !reflect.DeepEqual(gl, wl) || !reflect.DeepEqual(gi, wi) || !maps.Equal(ge, we) {
		t.Fatalf("the cached fold applied %v at %v (last %d), the stream's %v at %v (last %d)", gi, gl, got.LastSeq, wi, wl, want.LastSeq)
	}
	if !reflect.DeepEqual(got.Training.Hours, want.Training.Hours) || !reflect.DeepEqual(got.Training.AbsenceHours, want.Training.AbsenceHours) {
		t.Fatalf("the cached fold's hours %v differ from the stream's %v", got.Training.Hours, want.Training.Hours)
	}
}
