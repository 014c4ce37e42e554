// Package foldcount bounds how many times an operation folds a person's events with the
// regelmotor, for tests that a person's whole history is folded in time linear in its
// events however many retractions it holds (rules.State.ApplyAll).
package foldcount

import (
	"sync/atomic"
	"testing"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// Op is an operation that folds a person's history.
type Op struct {
	Name string
	Run  func() error
}

// Linear runs ops in order and fails tb unless each folds an event of the person with key
// personKey, and no more than 3×events of them in all (events: how many the person has, so
// three folds an event). It counts through rules.SetFaultForTest, whose hook the regelmotor
// asks once for every event it folds: folding a history with rules.State.Apply one event at
// a time re-folds the log at every retraction, about n²/2 events for n retractions. The
// hook is the process's, and restored when Linear returns: tb must not be parallel.
func Linear(tb testing.TB, personKey string, events int, ops ...Op) {
	tb.Helper()
	if personKey == "" {
		tb.Fatal("foldcount: no person key")
	}
	var n atomic.Int64
	restore := rules.SetFaultForTest(func(ev *nirv1.Event) bool {
		if ev.GetPersonKey() == personKey {
			n.Add(1)
		}
		return false
	})
	defer restore()
	for _, op := range ops {
		n.Store(0)
		if err := op.Run(); err != nil {
			tb.Fatalf("%s: %v", op.Name, err)
		}
		if got := n.Load(); got == 0 || got > 3*int64(events) {
			tb.Errorf("%s: the person's %d events were folded %d times, want some, and at most 3 times each", op.Name, events, got)
		}
	}
}
