package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBenchIngest_Trace runs a tiny bench ingest with --trace: the file is an execution trace
// that go tool trace reads (its header names the Go version), so the appends' waits can be
// looked at (issue 17).
func TestBenchIngest_Trace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ingest.trace")
	var out, errb bytes.Buffer
	args := []string{"ingest", "--events", "20", "--rounds", "2", "--scenarios", "nir-single,bare-sync", "--dir", t.TempDir(), "--trace", path}
	if err := run(context.Background(), args, &out, &errb); err != nil {
		t.Fatalf("bench ingest: %v\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), "ratio single") {
		t.Errorf("no single ratio in the report:\n%s", out.String())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("go 1.")) || len(data) < 1024 {
		t.Fatalf("not an execution trace: %d bytes, starting %q", len(data), data[:min(len(data), 16)])
	}
}
