package ingest

import (
	"context"
	"errors"
	"testing"
)

// TestPersonLocks_Reused: the person locks a request held are kept for the next requests'
// persons once nobody holds or waits for them (issue 17: two allocations less an append),
// and a kept lock is as good as new: it keeps a second request out while a request holds its
// person (a request waiting with its context ended gets the context's error), and frees the
// person when the holder is done, also after such a waiter gave up.
func TestPersonLocks_Reused(t *testing.T) {
	var l personLocks
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	for round, keys := range [][]string{{"b", "a", "b"}, {"c"}, {"a", "d"}} {
		h, err := l.lock(context.Background(), append([]string(nil), keys...))
		if err != nil {
			t.Fatalf("round %d: lock %v: %v", round, keys, err)
		}
		for _, k := range keys {
			// Only the context can end the wait: the person is held.
			if w, err := l.lock(ended, []string{k}); !errors.Is(err, context.Canceled) {
				t.Fatalf("round %d: a second request for %s while it is held: %v, %v; want context.Canceled", round, k, w, err)
			}
		}
		h.unlock()
		for _, k := range keys {
			h, err := l.lock(context.Background(), []string{k})
			if err != nil {
				t.Fatalf("round %d: lock %s after the holder is done: %v", round, k, err)
			}
			h.unlock()
		}
		l.mu.Lock()
		held, free := len(l.held), len(l.free)
		l.mu.Unlock()
		if held != 0 || free == 0 || free > 2 {
			t.Fatalf("round %d: %d persons held, %d locks kept; want none held, the locks of the last request kept", round, held, free)
		}
	}
}
