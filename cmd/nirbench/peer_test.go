package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBenchPeer runs bench peer against a stand-in for scripts/bench-postgres that reports
// a fixed PostgreSQL figure: every round measures nir and the bare engine for real, and the
// ratios are theirs over that figure; a missing PostgreSQL (exit 2) is named.
func TestBenchPeer(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "bench-postgres")
	script := `#!/bin/sh
echo '{"results":[{"name":"pg-concurrent-4","events":40,"seconds":1,"events_per_sec":100,"latency_p50_ms":1,"latency_p99_ms":2}]}'
`
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"peer", "--clients", "4", "--events", "40", "--rounds", "2", "--postgres-script", fake, "--json"}, &out, &errb); err != nil {
		t.Fatalf("bench peer: %v\n%s", err, errb.String())
	}
	var rep peerReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, out.String())
	}
	if len(rep.Rounds) != 2 {
		t.Fatalf("%d rounds, want 2", len(rep.Rounds))
	}
	for i, r := range rep.Rounds {
		by := map[string]float64{}
		for _, x := range r.Results {
			by[x.Name] = x.EventsPerSec
		}
		if by["nir-concurrent-4"] <= 0 || by["bare-coalesced-4"] <= 0 || by["pg-concurrent-4"] != 100 {
			t.Fatalf("round %d results %+v", i, r.Results)
		}
		if r.NirPerPG != by["nir-concurrent-4"]/100 || r.CeilingPerPG != by["bare-coalesced-4"]/100 {
			t.Errorf("round %d ratios %v, %v from %v", i, r.NirPerPG, r.CeilingPerPG, by)
		}
	}
	if want := median([]float64{rep.Rounds[0].NirPerPG, rep.Rounds[1].NirPerPG}); rep.MedianNirPerPG != want {
		t.Errorf("median nir / PostgreSQL %v, want %v", rep.MedianNirPerPG, want)
	}

	missing := filepath.Join(dir, "no-postgres")
	if err := os.WriteFile(missing, []byte("#!/bin/sh\nexit 2\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := run(context.Background(), []string{"peer", "--clients", "4", "--events", "8", "--rounds", "1", "--postgres-script", missing}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "apt-get install postgresql") {
		t.Errorf("without PostgreSQL: %v, want the install hint", err)
	}
}

func TestMedian(t *testing.T) {
	for _, tt := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
