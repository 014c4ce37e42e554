package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/introreg/nir/internal/chaos"
)

func init() {
	register("chaos", "fault injection: a 3-node NATS cluster and several nird, broken while clients append; a Jepsen-style check", runChaos)
}

const chaosUsage = `usage: nirctl chaos [--duration 10m] [--sync always|default] [--nirds 3] [--clients 6]
                    [--faults kind,…] [--hold 6s] [--seed N] [--out DIR]

Builds nats-server (the version go.mod pins) and nird, starts three NATS nodes from
deploy/nats/cluster-*.conf (ports and stores moved, every route through a proxy) and several
nird connected to them through proxies, runs case-system clients appending over HTTP and
NATS with retries of the same event ids, and a nemesis injecting one fault at a time for
--duration. Then it heals everything, lets the clients finish, and checks: every
acknowledged event stored once at its acknowledged sequence, each person's events in
acknowledgement order, nothing stored that was refused or never acknowledged, read-your-
writes on another nird, the regelmotor's terminations (none twice, none missed), the lease
handed over within its bound, and every nird's read models equal to a clean build. The
history (history.jsonl), the verdict (verdict.json) and a summary (summary.txt) go to --out;
the exit status is 1 when the checker found anything. Run from the source tree.

Faults: ` + "kill-node kill-leader kill-nird kill-lease-holder pause-node pause-nird partition-node reset-node isolate-nird reset-nird clock-skew rebuild-nird" + `
(an operator's rebuild of one nird's read models while registrations go on), and with
--sync default also power-loss (a node killed and its store files cut back to their
sizes of 1-10 seconds before: the writes JetStream's default had not yet fsynced) and
power-loss-all (every node at once, each losing its own seconds).
`

func runChaos(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	duration := fs.Duration("duration", 10*time.Minute, "length of the fault phase")
	syncMode := fs.String("sync", "always", "the nodes' sync_interval: always (deploy/nats) or default (JetStream's, every 2 minutes)")
	nirds := fs.Int("nirds", 3, "nird processes")
	clients := fs.Int("clients", 6, "concurrent case-system clients")
	faults := fs.String("faults", "", "comma-separated fault kinds (default all)")
	hold := fs.Duration("hold", 6*time.Second, "longest a fault lasts")
	seed := fs.Uint64("seed", uint64(time.Now().UnixNano()), "orders the faults and picks their targets")
	out := fs.String("out", "", "directory for the processes' files and the report (default chaos-<time>)")
	fs.Usage = func() { fmt.Fprint(stderr, chaosUsage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return errUsage
	}
	if *syncMode != "always" && *syncMode != "default" {
		fmt.Fprintln(stderr, "chaos: --sync is always or default")
		return errUsage
	}
	if *nirds < 2 || *clients < 1 || *duration < 10*time.Second {
		fmt.Fprintln(stderr, "chaos: --nirds ≥ 2, --clients ≥ 1, --duration ≥ 10s")
		return errUsage
	}
	var kinds []string
	if *faults != "" {
		known := map[string]bool{chaos.PowerLoss: *syncMode == "default", chaos.PowerLossAll: *syncMode == "default"}
		for _, k := range chaos.AllFaults {
			known[k] = true
		}
		for k := range strings.SplitSeq(*faults, ",") {
			if !known[k] {
				fmt.Fprintf(stderr, "chaos: --faults: unknown fault %q\n", k)
				return errUsage
			}
			kinds = append(kinds, k)
		}
	}
	dir := *out
	if dir == "" {
		dir = "chaos-" + time.Now().UTC().Format("20060102T150405")
	}
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		return err
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	log.Info("building nats-server and nird", "dir", filepath.Join(dir, "bin"))
	bins, err := chaos.Build(ctx, filepath.Join(dir, "bin"))
	if err != nil {
		return err
	}
	v, err := chaos.Run(ctx, chaos.Options{Dir: dir, Bins: bins, Nirds: *nirds, DefaultSync: *syncMode == "default",
		Duration: *duration, Clients: *clients, Faults: kinds, Hold: *hold, Seed: *seed, Log: log})
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, v.Summary())
	fmt.Fprintf(stdout, "report: %s\n", filepath.Join(dir, "verdict.json"))
	if !v.Valid {
		return errors.New("chaos: the checker found anomalies")
	}
	return nil
}
