package bench

import (
	"context"
	"strings"
	"testing"
)

// TestIngest runs every scenario on a few events: the benchmark must work end to end (its
// figures are measured with `nirbench ingest`, not asserted here).
func TestIngest(t *testing.T) {
	rep, err := Ingest(context.Background(), IngestOptions{Events: 60, Batch: 20, Clients: 4, Dir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"nir-single", "bare-sync", "nir-batch", "bare-batch", "nir-concurrent-4", "bare-concurrent-4", "bare-coalesced-4"}
	if len(rep.Results) != len(want) {
		t.Fatalf("%d results, want %d", len(rep.Results), len(want))
	}
	for i, r := range rep.Results {
		if r.Name != want[i] || r.Events != 60 || r.EventsPerSec <= 0 || r.LatencyP50ms <= 0 {
			t.Errorf("result %d = %+v", i, r)
		}
	}
	for _, k := range []string{"single", "batch", "concurrent", "coalesced"} {
		if rep.Ratios[k] <= 0 {
			t.Errorf("ratio %s = %v", k, rep.Ratios[k])
		}
	}
	if rep.EventBytes < 100 {
		t.Errorf("event size %d bytes: the sample is not a stamped event", rep.EventBytes)
	}
}

// TestIngestScenarios: a selection runs only the named scenarios and reports the ratio
// whose two sides ran; an unknown name is refused with the known ones.
func TestIngestScenarios(t *testing.T) {
	rep, err := Ingest(context.Background(), IngestOptions{Events: 40, Clients: 4, Dir: t.TempDir(), Scenarios: []string{"nir-concurrent", "bare-concurrent"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 2 || rep.Results[0].Name != "nir-concurrent-4" || rep.Results[1].Name != "bare-concurrent-4" {
		t.Fatalf("results %+v, want nir-concurrent-4 and bare-concurrent-4", rep.Results)
	}
	if len(rep.Ratios) != 1 || rep.Ratios["concurrent"] <= 0 {
		t.Errorf("ratios %v, want only concurrent", rep.Ratios)
	}
	_, err = Ingest(context.Background(), IngestOptions{Events: 10, Dir: t.TempDir(), Scenarios: []string{"nir-fast"}}, nil)
	if err == nil || !strings.Contains(err.Error(), `"nir-fast"`) || !strings.Contains(err.Error(), "bare-sync") {
		t.Errorf("unknown scenario: err = %v, want it named with the known ones", err)
	}
}

// TestIngestNewIDs: with a D-nummer beside every fødselsnummer each registration claims a
// further id; the synthetic ids never collide, so every append is stored.
// TestIngestStoreSingle: store-single runs only when named, between nir-single and bare-sync,
// and its ratio to bare-sync is reported beside the single ratio (two persons a slice, each
// appended with its own check); the default run leaves it out (TestIngest).
func TestIngestStoreSingle(t *testing.T) {
	rep, err := Ingest(context.Background(), IngestOptions{Events: 40, Rounds: 2, Dir: t.TempDir(), Scenarios: []string{"bare-sync", "store-single", "nir-single"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"nir-single", "store-single", "bare-sync"}
	if len(rep.Results) != len(want) {
		t.Fatalf("%d results, want %d: %+v", len(rep.Results), len(want), rep.Results)
	}
	for i, r := range rep.Results {
		if r.Name != want[i] || r.Events != 40 || r.EventsPerSec <= 0 {
			t.Errorf("result %d = %+v", i, r)
		}
	}
	if len(rep.Ratios) != 2 || rep.Ratios["single"] <= 0 || rep.Ratios["store-single"] <= 0 {
		t.Errorf("ratios %v, want single and store-single", rep.Ratios)
	}
}

func TestIngestNewIDs(t *testing.T) {
	rep, err := Ingest(context.Background(), IngestOptions{Events: 300, Batch: 50, Dir: t.TempDir(), NewIDs: true, Scenarios: []string{"nir-single", "nir-batch"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 2 || rep.Results[0].Events != 300 || rep.Results[1].Events != 300 || !rep.Options.NewIDs {
		t.Fatalf("results %+v", rep.Results)
	}
}
