// Command nirbench measures the register against the engines it is built on, in the same
// run and in turns, so that same-run ratios say what nir's own code costs: appends against
// bare JetStream (ingest), a rebuild of the read models against a bare ordered replay
// (rebuild), nir against a PostgreSQL events table (peer), and a 3-node cluster with two
// nird against one node (cluster). It is for developers and capacity planning and stays
// out of nirctl, which carries only what case systems and operators run.
//
//	go run ./cmd/nirbench ingest|rebuild|peer|cluster [flags]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/introreg/nir/internal/bench"
)

// benchCommands holds the benchmarks; each file registers its own here.
var benchCommands = map[string]func(ctx context.Context, args []string, stdout, stderr io.Writer) error{
	"ingest": runBenchIngest,
}

const usage = `usage: nirbench ingest|rebuild|peer|cluster [flags]   (nirbench COMMAND -h for its flags)

Measures nir against the engines it is built on, in the same run and in turns, so that only
same-run ratios count (disk speed drifts by the minute):
  ingest   appends through nir's append path against bare JetStream publishes
  rebuild  rebuilding the read models against a bare ordered replay of the stream
  peer     nir against the PostgreSQL events table (scripts/bench-postgres), in rounds
  cluster  a 3-node NATS cluster with two nird against one node

A tool for developers and capacity planning, kept out of nirctl, which carries only what
case systems and operators run.`

// run runs one benchmark; errUsage means the usage was printed (exit status 2).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprintln(stdout, usage)
		return nil
	}
	if len(args) == 0 || benchCommands[args[0]] == nil {
		fmt.Fprintln(stderr, usage)
		return errUsage
	}
	return benchCommands[args[0]](ctx, args[1:], stdout, stderr)
}

// errUsage marks a usage error: the usage was printed (exit status 2).
var errUsage = errors.New("usage")

// errHelp marks a request for help (-h): the usage was printed, and that is no error.
var errHelp = errors.New("help")

// badArgs is a benchmark's answer to wrong arguments (err is the flag package's, which has
// printed the usage); with err nil the arguments parsed but are wrong.
func badArgs(fs *flag.FlagSet, err error) error {
	switch {
	case errors.Is(err, flag.ErrHelp):
		return errHelp
	case err != nil:
		return errUsage
	}
	fs.Usage()
	return errUsage
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, errHelp):
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "nirbench:", err)
		os.Exit(1)
	}
}

func runBenchIngest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench ingest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opt bench.IngestOptions
	fs.IntVar(&opt.Events, "events", 20000, "events per scenario")
	fs.IntVar(&opt.Batch, "batch", 100, "registrations per batched append")
	fs.IntVar(&opt.Clients, "clients", 0, "concurrent single-event clients (0 skips the concurrency scenarios)")
	fs.IntVar(&opt.EventsPerPerson, "events-per-person", 10, "events per synthetic person")
	fs.IntVar(&opt.Rounds, "rounds", 6, "slices each compared scenario runs in, taking turns, in the reverse order every other round (nir and bare see the same disk; even counts give each scenario each slot equally often)")
	fs.BoolVar(&opt.NewIDs, "new-ids", false, "register each person with a D-nummer beside its fødselsnummer: every registration claims a further id (one more message per person)")
	fs.StringVar(&opt.Dir, "dir", "", "scratch directory for the embedded server (default: a temporary directory)")
	fs.IntVar(&opt.GroupCommit.MaxEvents, "group-max-events", 0, "group commit: events per coalesced batch (0 = nird's default)")
	fs.DurationVar(&opt.GroupCommit.MaxWait, "group-max-wait", 0, "group commit: how long a batch may wait for more appends (0 = default, negative = never)")
	fs.IntVar(&opt.GroupCommit.MaxInflight, "group-inflight", 0, "group commit: batches in flight at once (0 = default)")
	fs.IntVar(&opt.GroupCommit.PlainMax, "group-plain-max", 0, "group commit: up to this many lone events go as plain publishes (0 = default, negative = never)")
	fs.BoolVar(&opt.GroupCommit.SendWhole, "group-send-whole", false, "group commit: send a batch's messages only once it is complete (for comparison)")
	scenarios := fs.String("scenarios", "", "comma-separated scenarios to run (default all but store-single): nir-single, nir-batch, bare-sync, bare-batch, nir-concurrent, bare-concurrent, bare-coalesced, store-single (the event store's Append alone, run with nir-single and bare-sync)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file (server and nir in one process)")
	memProfile := fs.String("memprofile", "", "write an allocation profile of the run to this file (server and nir in one process)")
	traceFile := fs.String("trace", "", "write an execution trace of the run to this file (go tool trace; its -pprof=sync, syscall and sched views show where the appends wait)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: nirbench ingest [--events N] [--batch B] [--clients C] [--scenarios S,...] [--cpuprofile F] [--memprofile F] [--trace F] [--json]")
		fmt.Fprintln(stderr, "Runs in-process against an embedded JetStream server with nird's durability; needs no nird.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return badArgs(fs, err)
	}
	if *scenarios != "" {
		opt.Scenarios = strings.Split(*scenarios, ",")
	}
	for _, r := range []struct {
		path  string
		start func(io.Writer) error
		stop  func()
	}{{*cpuProfile, pprof.StartCPUProfile, pprof.StopCPUProfile}, {*traceFile, trace.Start, trace.Stop}} {
		stop, err := record(r.path, r.start, r.stop)
		if err != nil {
			return err
		}
		defer stop()
	}
	rep, err := bench.Ingest(ctx, opt, func(name string) { fmt.Fprintf(stderr, "bench ingest: %s …\n", name) })
	if err != nil {
		return err
	}
	if *memProfile != "" {
		if err := writeHeapProfile(*memProfile); err != nil {
			return err
		}
	}
	if *asJSON {
		return writeJSON(stdout, rep)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "scenario\tevents\tseconds\tevents/s\tp50 ms\tp99 ms\tevents/batch\t\n")
	for _, r := range rep.Results {
		perBatch := "-"
		if r.EventsPerBatch > 0 {
			perBatch = fmt.Sprintf("%.1f", r.EventsPerBatch)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.0f\t%.2f\t%.2f\t%s\t\n", r.Name, r.Events, r.Seconds, r.EventsPerSec, r.LatencyP50ms, r.LatencyP99ms, perBatch)
	}
	tw.Flush()
	for k, v := range rep.Ratios {
		over := "nir / bare"
		if k == "store-single" {
			over = "event store / bare"
		}
		fmt.Fprintf(stdout, "ratio %s (%s): %.2f\n", k, over, v)
	}
	fmt.Fprintf(stdout, "%d-byte events; %s; %d CPUs, %s\n", rep.EventBytes, rep.Durability, rep.Machine.CPUs, rep.Machine.Go)
	return nil
}

// writeHeapProfile writes the allocations sampled since the start (go tool pprof
// -sample_index=alloc_space shows where the run allocated).
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeJSON prints v as indented JSON, the --json output of the bench commands.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// record starts a recording of the run (a CPU profile, an execution trace) into the file at
// path and returns what stops it and closes the file; nothing when path is empty.
func record(path string, start func(io.Writer) error, stop func()) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := start(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { stop(); f.Close() }, nil
}
