package main

import (
	"strings"
	"testing"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestProgressText_Phase: a rebuild's progress counts events while they are stored and persons
// while they are folded, and says which. Found on 2026-12-07 by a walk through the README:
// the fold phase printed "2073/2073 events (100%)" for a stream of 55 420 events.
func TestProgressText_Phase(t *testing.T) {
	for _, c := range []struct {
		phase string
		want  string
	}{
		{"store", "100/400 events stored (25%), 50 events/s"},
		{"fold", "100/400 persons folded (25%), 50 persons/s"},
		{"", "100/400 events (25%), 50 events/s"},
	} {
		got := progressText(&nirv1.Progress{Done: 100, Total: 400, EventsPerSecond: 50, Phase: c.phase})
		if !strings.HasPrefix(got, c.want) {
			t.Errorf("phase %q: %q, want it to begin %q", c.phase, got, c.want)
		}
	}
}
