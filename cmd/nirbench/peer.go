package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"text/tabwriter"

	"github.com/introreg/nir/internal/bench"
)

func init() { benchCommands["peer"] = runBenchPeer }

const benchPeerUsage = `usage: nirbench peer [--clients C] [--events N] [--rounds R] [--postgres-script PATH] [--json]

Compares nir with a PostgreSQL events table (the peer a register would otherwise be built on) in turns, so that both see the same
disk: R rounds, each measuring nir-concurrent-C, bare-concurrent-C and bare-coalesced-C
(bench ingest) and then pg-concurrent-C (scripts/bench-postgres, which needs PostgreSQL 15:
apt-get install postgresql). Prints each round and the median ratios nir / PostgreSQL and
bare-coalesced / PostgreSQL (the engine's ceiling against the peer).
`

// peerRound is one round of bench peer.
type peerRound struct {
	Results []bench.Result `json:"results"`
	// NirPerPG and CeilingPerPG are nir-concurrent and bare-coalesced events/s over
	// PostgreSQL's in this round.
	NirPerPG     float64 `json:"nir_per_postgres"`
	CeilingPerPG float64 `json:"ceiling_per_postgres"`
}

type peerReport struct {
	Clients            int         `json:"clients"`
	EventsPerRound     int         `json:"events_per_round"`
	Rounds             []peerRound `json:"rounds"`
	MedianNirPerPG     float64     `json:"median_nir_per_postgres"`
	MedianCeilingPerPG float64     `json:"median_ceiling_per_postgres"`
}

func runBenchPeer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench peer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	clients := fs.Int("clients", 64, "concurrent one-event clients")
	events := fs.Int("events", 10000, "events per scenario per round")
	rounds := fs.Int("rounds", 3, "rounds, each nir and the bare engine then PostgreSQL")
	script := fs.String("postgres-script", "scripts/bench-postgres", "the PostgreSQL peer benchmark")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	fs.Usage = func() { fmt.Fprint(stderr, benchPeerUsage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return badArgs(fs, err)
	}
	if *clients < 1 || *events < *clients || *rounds < 1 {
		fmt.Fprintln(stderr, "bench peer: --clients ≥ 1, --events ≥ --clients and --rounds ≥ 1")
		return errUsage
	}
	rep := peerReport{Clients: *clients, EventsPerRound: *events}
	nirName, ceilName, pgName := fmt.Sprintf("nir-concurrent-%d", *clients), fmt.Sprintf("bare-coalesced-%d", *clients), fmt.Sprintf("pg-concurrent-%d", *clients)
	for r := range *rounds {
		fmt.Fprintf(stderr, "bench peer: round %d of %d …\n", r+1, *rounds)
		ing, err := bench.Ingest(ctx, bench.IngestOptions{Events: *events, Clients: *clients,
			Scenarios: []string{"nir-concurrent", "bare-concurrent", "bare-coalesced"}}, nil)
		if err != nil {
			return err
		}
		pg, err := runPostgresPeer(ctx, *script, *clients, *events, stderr)
		if err != nil {
			return err
		}
		round := peerRound{Results: append(ing.Results, pg...)}
		by := map[string]float64{}
		for _, x := range round.Results {
			by[x.Name] = x.EventsPerSec
		}
		if by[pgName] <= 0 {
			return fmt.Errorf("bench peer: %s printed no %s result", *script, pgName)
		}
		round.NirPerPG, round.CeilingPerPG = by[nirName]/by[pgName], by[ceilName]/by[pgName]
		rep.Rounds = append(rep.Rounds, round)
	}
	var nir, ceil []float64
	for _, r := range rep.Rounds {
		nir, ceil = append(nir, r.NirPerPG), append(ceil, r.CeilingPerPG)
	}
	rep.MedianNirPerPG, rep.MedianCeilingPerPG = median(nir), median(ceil)
	if *asJSON {
		return writeJSON(stdout, rep)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "round\tscenario\tevents/s\tp50 ms\tp99 ms\t\n")
	for i, r := range rep.Rounds {
		for _, x := range r.Results {
			fmt.Fprintf(tw, "%d\t%s\t%.0f\t%.2f\t%.2f\t\n", i+1, x.Name, x.EventsPerSec, x.LatencyP50ms, x.LatencyP99ms)
		}
	}
	tw.Flush()
	for i, r := range rep.Rounds {
		fmt.Fprintf(stdout, "round %d: nir / PostgreSQL %.2f, ceiling / PostgreSQL %.2f\n", i+1, r.NirPerPG, r.CeilingPerPG)
	}
	fmt.Fprintf(stdout, "median: nir / PostgreSQL %.2f, bare-coalesced (the engine's ceiling) / PostgreSQL %.2f\n", rep.MedianNirPerPG, rep.MedianCeilingPerPG)
	return nil
}

// runPostgresPeer runs the PostgreSQL peer's concurrent scenario and returns its results.
func runPostgresPeer(ctx context.Context, script string, clients, events int, stderr io.Writer) ([]bench.Result, error) {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, script, "--clients", fmt.Sprint(clients), "--events", fmt.Sprint(events), "--scenarios", "concurrent", "--json")
	cmd.Stdout, cmd.Stderr = &out, stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 2 {
			return nil, fmt.Errorf("bench peer: %s: PostgreSQL is not installed (apt-get install postgresql)", script)
		}
		return nil, fmt.Errorf("bench peer: %s: %w", script, err)
	}
	var rep struct {
		Results []bench.Result `json:"results"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		return nil, fmt.Errorf("bench peer: %s printed no JSON report: %w", script, err)
	}
	return rep.Results, nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
