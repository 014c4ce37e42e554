package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/introreg/nir/internal/bench"
	"github.com/introreg/nir/rules"
)

func init() { benchCommands["rebuild"] = runBenchRebuild }

const benchRebuildUsage = `usage: nirbench rebuild [--persons P] [--json] [--keep-dir DIR] [flags]

Generates a synthetic population (internal/demo: all three laws, moves, corrections; about
25 events per person), loads it into an embedded JetStream server with nird's durability,
then measures in one run: the bare ordered-consumer replay of the stream, the rebuild of
all read models (events/s and the ratio to the bare replay), peak memory during the
rebuild, person-list query latency and CSV export on the largest kommune. It prints the
register's performance goals (rebuild ratio, peak memory, query p99, CSV rows/s)
with pass or fail. Runs in-process; needs no nird.

With --keep-dir the loaded stream is kept in DIR and reused by later runs with the same
population flags, so only the first run pays for loading.
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
	fs.StringVar(&opt.CPUProfile, "cpuprofile", "", "write the rebuild's CPU profile to `FILE` (go tool pprof)")
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
	rep, err := bench.Rebuild(ctx, opt, func(s string) { fmt.Fprintf(stderr, "bench rebuild: %s …\n", s) })
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, rep)
	}
	return bench.WriteRebuildText(stdout, rep)
}
