package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRecording: the recordings of a stage (CPU profile, execution trace, allocations) are
// written whole, and one whose writes fail (a full disk: /dev/full) fails the stage, naming
// the file. Before 2026-12-07 the CPU profile's and the trace's write and close errors were
// dropped (the profiler and the tracer write from their own goroutines and drop theirs), so
// a full disk left a truncated profile and the benchmark succeeded.
func TestRecording(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		dir := t.TempDir()
		cpu, tr, allocs := filepath.Join(dir, "cpu"), filepath.Join(dir, "trace"), filepath.Join(dir, "allocs")
		finish, err := recording(cpu, tr, allocs)()
		if err != nil {
			t.Fatal(err)
		}
		if err := finish(); err != nil {
			t.Fatalf("finish: %v", err)
		}
		for _, p := range []string{cpu, tr, allocs, allocs + ".base"} {
			if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
				t.Errorf("%s: %v; want a recording written", filepath.Base(p), err)
			}
		}
	})
	const full = "/dev/full"
	if _, err := os.Stat(full); err != nil {
		t.Skipf("no %s to fail the writes (%v): a Linux device", full, err)
	}
	for _, tc := range []struct{ name, cpu, tr string }{
		{"CPUProfileDiskFull", full, ""},
		{"TraceDiskFull", "", full},
	} {
		t.Run(tc.name, func(t *testing.T) {
			finish, err := recording(tc.cpu, tc.tr, "")()
			if err != nil {
				t.Fatal(err)
			}
			if err := finish(); err == nil || !strings.Contains(err.Error(), full) {
				t.Errorf("finish of a recording into %s: %v; want an error naming it", full, err)
			}
		})
	}
}
