package rules

import (
	"runtime"
	"strings"
	"testing"
)

// TestMaskGroupedIDs_MemoryOfALongLine: the scan of a line holds a few of its digit groups
// at a time, not all of them. RedactIDs runs on what a client sends (a URL path of up to a
// MiB in the guard's log line, a decoder's error); before 2026-12-07 the scan kept every
// group of the line, 24 bytes for each 2 bytes of "1 1 1 …", and a 1 MiB path cost 66 MiB.
// Not parallel, so that no other test allocates while it measures.
func TestMaskGroupedIDs_MemoryOfALongLine(t *testing.T) {
	for _, unit := range []string{"1 ", "1.2.3.", "12 345 ", "1%20"} {
		s := strings.Repeat(unit, (1<<20)/len(unit))
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		out := maskGroupedIDs(s, "<redacted>")
		runtime.ReadMemStats(&after)
		if out != s {
			t.Errorf("maskGroupedIDs(%q…) masked something", s[:20])
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
			t.Errorf("maskGroupedIDs of a MiB of %q allocated %d KiB, want at most 64 KiB", unit, n>>10)
		}
	}
}
