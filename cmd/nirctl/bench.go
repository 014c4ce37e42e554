package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/introreg/nir/internal/bench"
)

func init() {
	register("bench", "measure nir against bare JetStream and bbolt (bench ingest | bench rebuild)", runBench)
}

// benchCommands holds the bench subcommands; bench rebuild registers itself here.
var benchCommands = map[string]func(ctx context.Context, args []string, stdout, stderr io.Writer) error{
	"ingest": runBenchIngest,
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || benchCommands[args[0]] == nil {
		fmt.Fprintln(stderr, "usage: nirctl bench ingest|rebuild [flags]")
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
	fs.StringVar(&opt.Dir, "dir", "", "scratch directory for the embedded server (default: a temporary directory)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: nirctl bench ingest [--events N] [--batch B] [--clients C] [--json]")
		fmt.Fprintln(stderr, "Runs in-process against an embedded JetStream server with nird's durability; needs no nird.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	rep, err := bench.Ingest(ctx, opt, func(name string) { fmt.Fprintf(stderr, "bench ingest: %s …\n", name) })
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "scenario\tevents\tseconds\tevents/s\tp50 ms\tp99 ms\t\n")
	for _, r := range rep.Results {
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.0f\t%.2f\t%.2f\t\n", r.Name, r.Events, r.Seconds, r.EventsPerSec, r.LatencyP50ms, r.LatencyP99ms)
	}
	tw.Flush()
	for k, v := range rep.Ratios {
		fmt.Fprintf(stdout, "ratio %s (nir / bare): %.2f\n", k, v)
	}
	fmt.Fprintf(stdout, "%d-byte events; %s; %d CPUs, %s\n", rep.EventBytes, rep.Durability, rep.Machine.CPUs, rep.Machine.Go)
	return nil
}
