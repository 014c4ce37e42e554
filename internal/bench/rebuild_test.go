package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestRebuild runs the rebuild benchmark end to end on a tiny population, then again on the
// kept directory: the report must be complete, the rebuilt models must equal a catch-up of
// the same stream, and the second run must reuse the stream instead of loading it again.
// The figures themselves are measured with `nirbench rebuild`, not asserted here.
func TestRebuild(t *testing.T) {
	dir := t.TempDir()
	opt := RebuildOptions{Persons: 150, Dir: dir, Queries: 20, CSVRuns: 2, Verify: true}

	tests := []struct {
		name   string
		loaded bool
		runs   int
	}{
		{"Load", true, 1},
		{"ReuseKeptDir", false, 2}, // and best of two runs
	}
	var events uint64
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opt.Runs = tt.runs
			t0 := time.Now()
			rep, err := Rebuild(context.Background(), opt, func(s string) { t.Logf("%v %s", time.Since(t0).Round(time.Millisecond), s) })
			if err != nil {
				t.Fatal(err)
			}
			p := rep.Population
			if p.Loaded != tt.loaded || p.Persons != 150 || p.Events < 150*10 || p.StreamBytes == 0 {
				t.Errorf("population = %+v, want loaded=%v, 150 persons, at least 1500 events", p, tt.loaded)
			}
			if tt.loaded {
				events = p.Events
				if p.LoadEventsPerSec <= 0 || p.LoadBatches == 0 {
					t.Errorf("load figures missing: %+v", p)
				}
			} else if p.Events != events {
				t.Errorf("reused stream has %d events, the loaded one had %d", p.Events, events)
			}
			want := []string{"bare-replay", "bare-replay-decode", fmt.Sprintf("bare-replay-parallel-%d", max(2, runtime.NumCPU())), "store-replay", "verify", "rebuild", "rebuild-unopened"}
			if len(rep.Results) != len(want) {
				t.Fatalf("%d results, want %d", len(rep.Results), len(want))
			}
			for i, r := range rep.Results {
				if r.Name != want[i] || uint64(r.Events) != p.Events || r.EventsPerSec <= 0 || r.CPUSeconds <= 0 || r.EventsPerCPUSec <= 0 {
					t.Errorf("result %d = %+v, want %s over %d events", i, r, want[i], p.Events)
				}
			}
			if rep.Ratio <= 0 || rep.RatioDecode <= 0 || rep.RatioCPU <= 0 || rep.RatioVerify <= 0 || rep.RatioParallel <= 0 || rep.ModelsBytes == 0 {
				t.Errorf("ratio %v, ratio with decoding %v, ratio in CPU %v, models %d bytes", rep.Ratio, rep.RatioDecode, rep.RatioCPU, rep.ModelsBytes)
			}
			if m := rep.Memory; m.PeakRSSBytes == 0 || m.PeakAnonRSSBytes == 0 || m.PeakHeapBytes == 0 || m.ProcessMaxRSSBytes == 0 {
				t.Errorf("memory = %+v", m)
			}
			// The share puts at least a fifth of the persons in the kommune (some of the
			// population is not settled yet and has no bostedskommune).
			q := rep.Query
			if q.Kommune != "0301" || q.Persons < 30 || q.Queries != 20 || q.P50ms < 0 || q.P99ms < q.P50ms || q.MaxMs < q.P99ms {
				t.Errorf("query = %+v", q)
			}
			if len(q.ByQuery) != len(benchQueries(q.Kommune, opt.Now)) {
				t.Errorf("%d queries broken down, want one per query of benchQueries", len(q.ByQuery))
			}
			for _, k := range q.ByQuery {
				if k.Query == "" || k.Runs == 0 || k.Rows > q.Persons || k.MaxMs < k.P50ms {
					t.Errorf("query breakdown %+v", k)
				}
			}
			if c := rep.CSV; c.Rows != q.Persons || c.RowsPerSec <= 0 || c.SortedRowsPerSec <= 0 || c.Bytes == 0 {
				t.Errorf("csv = %+v, want %d rows", c, q.Persons)
			}
			if rep.Verified == nil || !*rep.Verified {
				t.Errorf("rebuilt models differ from a catch-up of the same stream (verified = %v)", rep.Verified)
			}
			if len(rep.Goals) != 7 {
				t.Errorf("%d goals, want 7", len(rep.Goals))
			}
			// The rebuild from the live file took every event from it (the stage fails
			// otherwise), and the models verified above are its.
			if ff := rep.FromFile; ff.Name != "rebuild-from-file" || uint64(ff.Events) != p.Events || ff.EventsPerSec <= 0 || rep.BareInTurns.EventsPerSec <= 0 || rep.RatioFromFile <= 0 || rep.MemoryFromFile.PeakRSSBytes == 0 {
				t.Errorf("rebuild from the live file = %+v, bare in turns %+v, ratio %v", ff, rep.BareInTurns, rep.RatioFromFile)
			}
			if af := rep.AsOfFromFile; af.Name != "as-of-from-file" || uint64(af.Events) != p.Events || af.EventsPerSec <= 0 || rep.RatioAsOfFromFile <= 0 || rep.AsOfBareInTurns.EventsPerSec <= 0 {
				t.Errorf("as-of replay from the live file = %+v, ratio %v", af, rep.RatioAsOfFromFile)
			}
			if rep.RatioSealing <= 0 {
				t.Errorf("ratio of the rebuild to the one without opening: %v", rep.RatioSealing)
			}
			var text strings.Builder
			if err := WriteRebuildText(&text, rep); err != nil {
				t.Fatal(err)
			}
			for _, s := range []string{"bare-replay", "rebuild", "ratio", "goals:", "person list", "CSV export", "rebuild from the live file"} {
				if !strings.Contains(text.String(), s) {
					t.Errorf("text report lacks %q:\n%s", s, text.String())
				}
			}
		})
	}

	// Only what comparing builds of the rebuild from the live file needs: the bare replay, the
	// live models' one rebuild from the stream, and the stages from the live file in turns.
	t.Run("FromFileOnly", func(t *testing.T) {
		only := opt
		only.Verify, only.FromFileOnly, only.Runs = false, true, 2
		rep, err := Rebuild(context.Background(), only, nil)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, r := range rep.Results {
			names = append(names, r.Name)
		}
		if strings.Join(names, ",") != "bare-replay,rebuild" {
			t.Errorf("results %v, want the bare replay and the rebuild only", names)
		}
		if ff := rep.FromFile; uint64(ff.Events) != rep.Population.Events || rep.RatioFromFile <= 0 || rep.RatioAsOfFromFile <= 0 {
			t.Errorf("rebuild from the live file = %+v, ratio %v, as-of ratio %v", ff, rep.RatioFromFile, rep.RatioAsOfFromFile)
		}
		if rep.Query.Queries != 0 || rep.CSV.Rows != 0 || rep.Verified != nil || len(rep.Goals) != 2 {
			t.Errorf("measured more than the from-file stages: %d queries, %d CSV rows, verified %v, %d goals", rep.Query.Queries, rep.CSV.Rows, rep.Verified, len(rep.Goals))
		}
		var text strings.Builder
		if err := WriteRebuildText(&text, rep); err != nil {
			t.Fatal(err)
		}
		if s := text.String(); !strings.Contains(s, "rebuild from the live file") || strings.Contains(s, "person list") || strings.Contains(s, "decryption adds") {
			t.Errorf("text report:\n%s", s)
		}
		only.Verify = true
		if _, err := Rebuild(context.Background(), only, nil); err == nil {
			t.Error("verify with from-file-only was accepted")
		}
	})

	t.Run("OtherPopulationRefused", func(t *testing.T) {
		other := opt
		other.Seed = 2
		if _, err := Rebuild(context.Background(), other, nil); err == nil {
			t.Fatal("a kept directory holding another population was accepted")
		}
	})
	if _, err := os.Stat(filepath.Join(dir, rebuildMarker)); err != nil {
		t.Errorf("no population marker in the kept directory: %v", err)
	}
}

// TestTimePrepared_PrepareNotTimed: a stage's clock runs from after its prepare to before
// its finish, so what only the measurement needs (memory returned to the OS before a
// peak-memory sample, profiles) is not counted against nir where the bare replays it is
// compared with pay nothing of the kind. Monotonic times, no bound on how long anything takes.
func TestTimePrepared_PrepareNotTimed(t *testing.T) {
	var prepared, finishing time.Time
	var order []string
	prepare := func() (func() error, error) {
		order = append(order, "prepare")
		time.Sleep(50 * time.Millisecond)
		prepared = time.Now()
		return func() error {
			finishing = time.Now()
			order = append(order, "finish")
			time.Sleep(50 * time.Millisecond)
			return nil
		}, nil
	}
	st, err := timePrepared("stage", prepare, func() (int, error) {
		order = append(order, "run")
		return 7, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(order, ","); got != "prepare,run,finish" {
		t.Fatalf("order %s, want prepare,run,finish", got)
	}
	if st.Events != 7 {
		t.Errorf("events %d, want 7", st.Events)
	}
	if window := finishing.Sub(prepared); time.Duration(st.Seconds*float64(time.Second)) > window {
		t.Errorf("stage timed %.4f s, more than the %.4f s between prepare's end and finish's start: prepare or finish is inside the clock", st.Seconds, window.Seconds())
	}

	failing := func() (func() error, error) { return nil, fmt.Errorf("no profile file") }
	ran := false
	if _, err := timePrepared("stage", failing, func() (int, error) { ran = true; return 0, nil }); err == nil || !strings.Contains(err.Error(), "stage: no profile file") {
		t.Errorf("a failing prepare: err %v, want it named with the stage", err)
	}
	if ran {
		t.Error("the stage ran after its prepare failed")
	}
}

// TestTimePrepared_EveryStageSampled: the rebuilds from the stream and from the live file
// ran a memory sampler (a goroutine reading the runtime's metrics and /proc/self/status every
// 20 ms, a reset of the resident set's high-water mark before, a getrusage after) inside
// their clock, and the bare replays they are divided by (and the unopened rebuild, for the
// sealing ratio) ran none; the bare ones did not return the heap's free pages to the OS
// before their clock either, and so paid no page faults for a heap grown again. Found on
// 2026-12-07 in a review of TestTimePrepared_PrepareNotTimed. Now every stage is timed the
// same way: the free pages returned before it, sampled from the heap in use while it runs,
// its sampler started before and stopped after its clock, and its peak memory is reported
// with it.
func TestTimePrepared_EveryStageSampled(t *testing.T) {
	const held = 32 << 20
	var keep []byte
	st, err := timeStage("bare", func() (int, error) {
		keep = make([]byte, held)
		for i := range keep {
			keep[i] = byte(i) // resident, not only reserved
		}
		return 1, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	runtime.KeepAlive(keep)
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Memory *Memory `json:"memory"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Memory == nil {
		t.Fatalf("a stage timed by timeStage has no memory sample: %s", b)
	}
	if got.Memory.PeakHeapBytes < held || got.Memory.PeakRSSBytes < held {
		t.Errorf("a stage that held %d bytes sampled a peak heap of %d and RSS of %d bytes", held, got.Memory.PeakHeapBytes, got.Memory.PeakRSSBytes)
	}
}
