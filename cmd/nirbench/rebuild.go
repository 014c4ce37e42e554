package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/introreg/nir/internal/bench"
	"github.com/introreg/nir/rules"
)

func init() { benchCommands["rebuild"] = runBenchRebuild }

const benchRebuildUsage = `usage: nirbench rebuild [--persons P] [--json] [--keep-dir DIR] [flags]

Generates a synthetic population (internal/demo: all three laws, moves, corrections; about
25 events per person), loads it into an embedded JetStream server with nird's durability,
then measures in one run: the bare ordered-consumer replay of the stream, the rebuild of
all read models from the stream (events/s and the ratio to the bare replay), peak memory
during the rebuild, the rebuild and an as-of replay that take the live file's events the
stream's signed checkpoint vouches for (each in turns with a bare replay; the checkpoints
are made first, as nird makes them), person-list query latency and CSV export on the largest
kommune. It prints the
register's performance goals (rebuild ratio, peak memory, query p99, CSV rows/s)
with pass or fail. Runs in-process; needs no nird.

With --keep-dir the loaded stream is kept in DIR and reused by later runs with the same
population flags, so only the first run pays for loading.

With --scale P1,P2,… the whole measurement runs for each population size in turn (with
--keep-dir, each in DIR/persons-P) and a table of the rebuild's events/s, its ratio to the
bare replay and its peak memory per size follows, so that the cost's growth shows: about
100 000, 1 000 000 and 3 000 000 events with --scale 4000,40000,120000.
`

func runBenchRebuild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench rebuild", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opt bench.RebuildOptions
	fs.IntVar(&opt.Persons, "persons", bench.DefaultRebuildPersons, "persons in the synthetic population")
	fs.Int64Var(&opt.Seed, "seed", bench.DefaultRebuildSeed, "seed of the population")
	nowFlag := fs.String("now", bench.DefaultRebuildNow.String(), "the population's today (YYYY-MM-DD)")
	fs.StringVar(&opt.Kommune, "kommune", bench.DefaultRebuildKommune, "kommune the query and CSV figures are measured on")
	fs.Float64Var(&opt.KommuneShare, "kommune-share", bench.DefaultRebuildShare, "share of persons living in --kommune (persons are moved there until it is reached; negative: the generator's spread)")
	fs.StringVar(&opt.Dir, "keep-dir", "", "keep the loaded stream in DIR and reuse it (default: a temporary directory, removed)")
	fs.IntVar(&opt.LoadConcurrency, "load-concurrency", bench.DefaultLoadConcurrency, "atomic batches in flight while loading")
	fs.IntVar(&opt.Queries, "queries", bench.DefaultRebuildQueries, "person-list queries timed")
	fs.IntVar(&opt.CSVRuns, "csv-runs", bench.DefaultRebuildCSVRuns, "CSV exports of the kommune timed")
	fs.IntVar(&opt.Runs, "runs", 1, "runs of each replay and of the rebuild; the fastest is reported (a shared machine slows some runs)")
	fs.IntVar(&opt.StateCache, "state-cache", 0, "person states the rebuild keeps between transactions (0: the projections default, as nird runs it)")
	fs.BoolVar(&opt.Verify, "verify", false, "also catch the models up in a second directory and check they equal the rebuilt ones")
	scale := fs.String("scale", "", "comma-separated population sizes to measure in turn, instead of --persons (e.g. 4000,40000,120000)")
	fs.StringVar(&opt.Trace, "trace", "", "write an execution trace of the rebuild from the live file to `FILE` (go tool trace)")
	fs.StringVar(&opt.CPUProfile, "cpuprofile", "", "write the rebuild's CPU profile to `FILE`, and the rebuild from the live file's to FILE.from-file (go tool pprof)")
	fs.BoolVar(&opt.FromFileOnly, "from-file-only", false, "measure only the rebuild and the as-of replay from the live file, each in turns with a bare replay (to compare builds: about half the time)")
	fs.StringVar(&opt.MemProfile, "memprofile", "", "write the allocations of the rebuild from the live file to `FILE`, and those before it to FILE.base (go tool pprof -sample_index=alloc_space -base FILE.base FILE)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	fs.Usage = func() {
		fmt.Fprint(stderr, benchRebuildUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return badArgs(fs, err)
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	if opt.Persons < 1 {
		return fmt.Errorf("--persons: %d is not a positive number", opt.Persons)
	}
	now, err := rules.ParseDate(*nowFlag)
	if err != nil {
		return fmt.Errorf("--now: %w", err)
	}
	opt.Now = now
	if *scale != "" {
		return runRebuildScale(ctx, opt, *scale, *asJSON, stdout, stderr)
	}
	rep, err := bench.Rebuild(ctx, opt, func(s string) { fmt.Fprintf(stderr, "bench rebuild: %s …\n", s) })
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, rep)
	}
	return bench.WriteRebuildText(stdout, rep)
}

// runRebuildScale measures the rebuild for each population size of list and prints the
// scale curve.
func runRebuildScale(ctx context.Context, opt bench.RebuildOptions, list string, asJSON bool, stdout, stderr io.Writer) error {
	var sizes []int
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("--scale: %q is not a positive number of persons", f)
		}
		sizes = append(sizes, n)
	}
	keep := opt.Dir
	var reps []*bench.RebuildReport
	for _, n := range sizes {
		o := opt
		o.Persons = n
		if keep != "" {
			o.Dir = filepath.Join(keep, fmt.Sprintf("persons-%d", n))
		}
		rep, err := bench.Rebuild(ctx, o, func(s string) { fmt.Fprintf(stderr, "bench rebuild (%d persons): %s …\n", n, s) })
		if err != nil {
			return fmt.Errorf("%d persons: %w", n, err)
		}
		reps = append(reps, rep)
		if !asJSON {
			if err := bench.WriteRebuildText(stdout, rep); err != nil {
				return err
			}
			fmt.Fprintln(stdout)
		}
	}
	if asJSON {
		return writeJSON(stdout, reps)
	}
	return bench.WriteScaleText(stdout, reps)
}
