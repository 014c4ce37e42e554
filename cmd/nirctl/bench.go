package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"text/tabwriter"

	"github.com/introreg/nir/internal/bench"
)

func init() {
	register("bench", "measure nir against bare JetStream, bbolt and PostgreSQL, and a cluster against one node (bench ingest | rebuild | peer | cluster)", runBench)
}

// benchCommands holds the bench subcommands; bench rebuild registers itself here.
var benchCommands = map[string]func(ctx context.Context, args []string, stdout, stderr io.Writer) error{
	"ingest": runBenchIngest,
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || benchCommands[args[0]] == nil {
		fmt.Fprintln(stderr, "usage: nirctl bench ingest|rebuild|peer|cluster [flags]")
		return errUsage
	}
	return benchCommands[args[0]](ctx, args[1:], stdout, stderr)
}

func runBenchIngest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench ingest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opt bench.IngestOptions
	fs.IntVar(&opt.Events, "events", 20000, "events per scenario")
	fs.IntVar(&opt.Batch, "batch", 100, "registrations per batched append")
	fs.IntVar(&opt.Clients, "clients", 0, "concurrent single-event clients (0 skips the concurrency scenarios)")
	fs.IntVar(&opt.EventsPerPerson, "events-per-person", 10, "events per synthetic person")
	fs.IntVar(&opt.Rounds, "rounds", 5, "slices each compared scenario runs in, taking turns (nir and bare see the same disk)")
	fs.StringVar(&opt.Dir, "dir", "", "scratch directory for the embedded server (default: a temporary directory)")
	fs.IntVar(&opt.GroupCommit.MaxEvents, "group-max-events", 0, "group commit: events per coalesced batch (0 = nird's default)")
	fs.DurationVar(&opt.GroupCommit.MaxWait, "group-max-wait", 0, "group commit: how long a batch may wait for more appends (0 = default, negative = never)")
	fs.IntVar(&opt.GroupCommit.MaxInflight, "group-inflight", 0, "group commit: batches in flight at once (0 = default)")
	fs.IntVar(&opt.GroupCommit.PlainMax, "group-plain-max", 0, "group commit: up to this many lone events go as plain publishes (0 = default, negative = never)")
	fs.BoolVar(&opt.GroupCommit.SendWhole, "group-send-whole", false, "group commit: send a batch's messages only once it is complete (for comparison)")
	scenarios := fs.String("scenarios", "", "comma-separated scenarios to run (default all): nir-single, nir-batch, bare-sync, bare-batch, nir-concurrent, bare-concurrent, bare-coalesced")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file (server and nir in one process)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: nirctl bench ingest [--events N] [--batch B] [--clients C] [--scenarios S,...] [--cpuprofile F] [--json]")
		fmt.Fprintln(stderr, "Runs in-process against an embedded JetStream server with nird's durability; needs no nird.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return badArgs(fs, err)
	}
	if *scenarios != "" {
		opt.Scenarios = strings.Split(*scenarios, ",")
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	rep, err := bench.Ingest(ctx, opt, func(name string) { fmt.Fprintf(stderr, "bench ingest: %s …\n", name) })
	if err != nil {
		return err
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
		fmt.Fprintf(stdout, "ratio %s (nir / bare): %.2f\n", k, v)
	}
	fmt.Fprintf(stdout, "%d-byte events; %s; %d CPUs, %s\n", rep.EventBytes, rep.Durability, rep.Machine.CPUs, rep.Machine.Go)
	return nil
}

// writeJSON prints v as indented JSON, the --json output of the bench commands.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
