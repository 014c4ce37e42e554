package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/introreg/nir/internal/chaos"
)

func init() { benchCommands["cluster"] = runBenchCluster }

const benchClusterUsage = `usage: nirbench cluster [--events N] [--queries Q] [--clients C] [--rounds R] [--nirds K] [--json]

Measures the register as processes, over HTTP, in turns: one nird with its embedded NATS
(every write fsynced), then three NATS nodes from deploy/nats (R3, sync always) with K nird
and the clients spread over them; R rounds of each. Ingest is one registration of a new
person per call from C clients; queries are GetPerson by national id of those persons. On
one machine the cluster runs three servers' work on the same CPUs, so read the ratio
cluster / single, not the figures. Builds nats-server and nird; run from the source tree.
`

func runBenchCluster(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench cluster", flag.ContinueOnError)
	fs.SetOutput(stderr)
	events := fs.Int("events", 3000, "registrations per ingest measurement")
	queries := fs.Int("queries", 6000, "reads per query measurement")
	clients := fs.Int("clients", 32, "concurrent clients")
	rounds := fs.Int("rounds", 2, "rounds of single node then cluster")
	nirds := fs.Int("nirds", 2, "nird processes on the cluster")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	fs.Usage = func() { fmt.Fprint(stderr, benchClusterUsage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return errUsage
	}
	if *events < *clients || *queries < *clients || *clients < 1 || *rounds < 1 || *nirds < 1 {
		fmt.Fprintln(stderr, "bench cluster: --events and --queries ≥ --clients ≥ 1, --rounds and --nirds ≥ 1")
		return errUsage
	}
	dir, err := os.MkdirTemp("", "nir-bench-cluster")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	log := slog.New(slog.NewTextHandler(stderr, nil))
	bins, err := chaos.Build(ctx, filepath.Join(dir))
	if err != nil {
		return err
	}
	rep, err := chaos.Bench(ctx, chaos.BenchOptions{Dir: dir, Bins: bins, Events: *events, Queries: *queries, Clients: *clients,
		Rounds: *rounds, Nirds: *nirds, Log: func(msg string, args ...any) { log.Info(msg, args...) }})
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, rep)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "setup\tround\twhat\tops\tper s\tp50 ms\tp99 ms\terrors\t")
	for _, r := range rep.Results {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%.0f\t%.1f\t%.1f\t%d\t\n", r.Setup, r.Round, r.What, r.Ops, r.PerSec, r.P50ms, r.P99ms, r.Errors)
	}
	tw.Flush()
	fmt.Fprintf(stdout, "cluster (3 nodes, %d nird) / single node, medians: ingest %.2f, queries %.2f\n", rep.Nirds, rep.IngestRatio, rep.QueryRatio)
	return nil
}
