package rules

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// TestSuppressContext_Stops: a caller that has gone stops the suppression (it costs about a
// second of CPU on a national table); with a live context SuppressContext is Suppress.
func TestSuppressContext_Stops(t *testing.T) {
	t.Parallel()
	tab := &DisclosureTable{Parent: []int{-1, 0, 0, 1, 1, 1, 2, 2}, Counts: []bool{true},
		Values: [][]int64{{143}, {53}, {90}, {3}, {20}, {30}, {40}, {50}}}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if sup, err := SuppressContext(ctx, tab, 5); !errors.Is(err, context.Canceled) || sup != nil {
		t.Errorf("cancelled: %v, %v; want no cells and context.Canceled", sup, err)
	}
	sup, err := SuppressContext(context.Background(), tab, 5)
	if err != nil || fmt.Sprint(sup) != fmt.Sprint(Suppress(tab, 5)) {
		t.Errorf("SuppressContext = %v, %v; Suppress = %v", sup, err, Suppress(tab, 5))
	}
}
