package api

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/introreg/nir/projections"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// stepWaiter is read models whose checkpoint a test moves.
type stepWaiter struct {
	ckpt  atomic.Uint64
	moved chan struct{}
}

func (w *stepWaiter) WaitFor(ctx context.Context, seq uint64) error {
	for w.ckpt.Load() < seq {
		select {
		case <-w.moved:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (w *stepWaiter) Stats() projections.Stats { return projections.Stats{Checkpoint: w.ckpt.Load()} }

func TestMinSequence(t *testing.T) {
	w := &stepWaiter{moved: make(chan struct{})}
	w.ckpt.Store(10)
	var served atomic.Int32
	next := func(context.Context, connect.AnyRequest) (connect.AnyResponse, error) {
		served.Add(1)
		return connect.NewResponse(&nirv1.GetPersonResponse{}), nil
	}
	h := MinSequence(w, 100*time.Millisecond)(next)
	cases := []struct {
		name string
		req  connect.AnyRequest
		code connect.Code // 0 = served
	}{
		{"NoField", connect.NewRequest(&nirv1.GetPersonRequest{}), 0},
		{"Reached", connect.NewRequest(&nirv1.ListPersonsRequest{MinSequence: 10}), 0},
		{"NotReached", connect.NewRequest(&nirv1.StatisticsRequest{MinSequence: 11}), connect.CodeUnavailable},
		{"WithSnapshot", connect.NewRequest(&nirv1.AuditHistoryRequest{MinSequence: 1, Snapshot: "2022@2023-02-28"}), connect.CodeInvalidArgument},
		{"OtherProcedure", connect.NewRequest(&nirv1.HistoryRequest{}), 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := served.Load()
			_, err := h(context.Background(), c.req)
			switch {
			case c.code == 0 && (err != nil || served.Load() != before+1):
				t.Fatalf("err %v, served %d; want served", err, served.Load()-before)
			case c.code != 0 && (connect.CodeOf(err) != c.code || served.Load() != before):
				t.Fatalf("err %v; want %v and not served", err, c.code)
			}
		})
	}

	t.Run("WokenWhenApplied", func(t *testing.T) {
		h := MinSequence(w, 10*time.Second)(next)
		done := make(chan error, 1)
		go func() {
			_, err := h(context.Background(), connect.NewRequest(&nirv1.PersonDeadlinesRequest{MinSequence: 12}))
			done <- err
		}()
		select {
		case err := <-done:
			t.Fatalf("answered before the read models reached 12: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		w.ckpt.Store(12)
		close(w.moved)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}
