package main

import (
	"context"
	"errors"
	"io"
	"testing"
)

// TestChaos_Usage: bad flags are refused before anything is built or started.
func TestChaos_Usage(t *testing.T) {
	for _, args := range [][]string{
		{"--sync", "sometimes"},
		{"--nirds", "1"},
		{"--duration", "1s"},
		{"--faults", "kill-node,flood"},
		{"extra"},
	} {
		if err := runChaos(context.Background(), args, io.Discard, io.Discard); !errors.Is(err, errUsage) {
			t.Errorf("chaos %q = %v, want a usage error", args, err)
		}
	}
}
