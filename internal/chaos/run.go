// Package chaos breaks a running register to see what survives: three NATS servers built
// from the module's nats-server, configured from deploy/nats's cluster files, an R3 stream,
// several nird processes, case-system clients appending over HTTP and NATS with retries of
// the same event ids, and a nemesis that kills, pauses, partitions and skews them one fault at
// a time. A checker then compares what the clients were told with the stream and with every
// nird's read models, Jepsen-style, and writes the history and the verdict to files.
//
// Run is the whole experiment; `go test ./internal/chaos` runs a short one (CI) and `nirctl
// chaos --duration 10m` a long one.
package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/introreg/nir/rules"
)

// Options configure Run.
type Options struct {
	// Dir holds the processes' files and the report (history.jsonl, verdict.json,
	// summary.txt). It must exist.
	Dir string
	// Bins are nats-server and nird (Build).
	Bins Binaries
	// Nirds is the number of nird processes (default 3).
	Nirds int
	// DefaultSync runs the nodes at JetStream's default sync_interval instead of always.
	DefaultSync bool
	// Duration is the fault phase's shortest length; it goes on until every kind of fault
	// has been injected once, up to three times Duration.
	Duration time.Duration
	// Clients append concurrently (default 6), pausing Think between requests.
	Clients int
	Think   time.Duration
	// Faults are the kinds injected (default AllFaults); Hold bounds each (default 6s).
	Faults []string
	Hold   time.Duration
	// Seed orders the faults and picks their targets.
	Seed uint64
	// LeaseTTL is the regelmotor lease's term (default 3s).
	LeaseTTL time.Duration
	// Log receives progress; nil discards.
	Log *slog.Logger
}

// Run starts a cluster, runs the workload with the nemesis for Duration, heals, lets every
// client finish its scripts, waits for the read models and the regelmotor, checks, writes the
// report into Dir, and stops every process. The error is for a run that could not be made
// (a process that would not start); what the checker finds is in the Verdict.
func Run(ctx context.Context, opt Options) (*Verdict, error) {
	if opt.Nirds == 0 {
		opt.Nirds = 3
	}
	if opt.Clients == 0 {
		opt.Clients = 6
	}
	if opt.Faults == nil {
		opt.Faults = AllFaults
		if opt.DefaultSync {
			// Without sync always, a machine's power loss can take acknowledged writes.
			opt.Faults = append(append([]string(nil), AllFaults...), PowerLoss, PowerLossAll)
		}
	}
	if opt.LeaseTTL == 0 {
		opt.LeaseTTL = 3 * time.Second
	}
	log := opt.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	v := &Verdict{Start: time.Now().UTC(), Seed: opt.Seed, FaultTime: opt.Duration.String(), Sync: "always", Faults: map[string]int{}, Probes: map[string]int{}, Digests: map[string]string{}}
	if opt.DefaultSync {
		v.Sync = "default (2m)"
	}
	// nird 2 runs with its clock 7 minutes ahead from the start; the nemesis skews others.
	c, err := NewCluster(ClusterOptions{Dir: opt.Dir, Bins: opt.Bins, Nirds: opt.Nirds, DefaultSync: opt.DefaultSync,
		LeaseTTL: opt.LeaseTTL, RegelmotorInterval: time.Second, ClockOffsets: []time.Duration{0, 7 * time.Minute}, Log: log})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	log.Info("starting the cluster", "dir", opt.Dir, "nodes", len(c.Nodes), "nirds", len(c.Nirds), "sync", v.Sync)
	if err := c.Start(ctx); err != nil {
		return nil, err
	}

	wl := NewWorkload(c, opt.Clients, opt.Think)
	wctx, stopClients := context.WithCancel(ctx)
	defer stopClients()
	wdone := make(chan error, 1)
	go func() { wdone <- wl.Run(wctx) }()
	sleep(ctx, 2*time.Second)

	nem := NewNemesis(c, opt.Faults, opt.Seed)
	if opt.Hold > 0 {
		nem.Hold = opt.Hold
	}
	nem.log = func(msg string, args ...any) { log.Info(msg, args...) }
	log.Info("fault phase", "duration", opt.Duration, "faults", strings.Join(opt.Faults, ","))
	// The phase lasts Duration, and on (up to three times as long) until every kind has been
	// injected once: under CI's load (the race detector, other packages' tests) the faults
	// and the settling between them take longer, and a minute once covered 9 of 12 kinds.
	started := time.Now()
	nctx, cancel := context.WithCancel(ctx)
	go func() {
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-nctx.Done():
				return
			case <-tick.C:
				if el := time.Since(started); el >= 3*opt.Duration || el >= opt.Duration && nem.Covered() {
					cancel()
					return
				}
			}
		}
	}()
	nem.Run(nctx)
	cancel()
	v.FaultTime = time.Since(started).Round(time.Second).String()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	// Final phase: every link up, every process running; clients finish their scripts.
	log.Info("healed; waiting for the cluster")
	for k := range c.Nirds {
		if err := c.WaitReady(ctx, k, 90*time.Second); err != nil {
			// The register did not come back by itself: that is the finding; the stream
			// cannot be checked.
			stopClients()
			<-wdone
			v.add(NotRecovered, "%v", err)
			for _, f := range nem.Faults() {
				if f.Err == "" {
					v.Faults[f.Kind]++
				} else {
					v.FaultErrors++
				}
			}
			v.Outcomes, v.Via = map[string]int{}, map[string]int{}
			for _, op := range wl.Ops() {
				v.Ops++
				v.Outcomes[string(op.Outcome)]++
				if op.Outcome == OK {
					v.Acknowledged++
					v.Via[op.Via]++
				}
			}
			v.Persons = len(wl.Persons())
			if err := writeReport(opt.Dir, v, wl, nem.Faults()); err != nil {
				return v, err
			}
			return v, nil
		}
	}
	wl.Finish()
	finishBy := time.Now().Add(90 * time.Second)
	for wl.Pending() > 0 && time.Now().Before(finishBy) && ctx.Err() == nil {
		sleep(ctx, 200*time.Millisecond)
	}
	stopClients()
	if err := <-wdone; err != nil {
		return nil, err
	}
	workloadEnd := time.Now()
	log.Info("workload done", "persons", len(wl.Persons()), "unfinished", wl.Pending())

	// The read models converge, and the regelmotor gets to every due person.
	conv, convErr := converge(ctx, c, 60*time.Second)
	if convErr != nil {
		v.add(NotConverged, "%v", convErr)
	} else {
		v.Convergence = conv.Sub(workloadEnd).Round(time.Millisecond).String()
	}
	if holders := c.HoldersNow(ctx); len(holders) != 1 {
		v.add(LeaseHolders, "holders at the end: %v", holders)
	}

	today := rules.DateFromTime(time.Now())
	if err := checkStream(ctx, v, c.Admin(), wl.Persons(), wl.Ops(), today); err != nil {
		return nil, err
	}
	for _, p := range wl.Probes() {
		v.Probes[p.Outcome]++
		if p.Outcome == "stale" {
			v.add(StaleRead, "person %d on %s with min_sequence %d: %s", p.Person, p.Nird, p.MinSeq, p.Err)
		}
	}
	faults := nem.Faults()
	bound := opt.LeaseTTL + opt.LeaseTTL/4 + 3*time.Second
	for _, f := range faults {
		if f.Err != "" {
			v.FaultErrors++
			continue
		}
		v.Faults[f.Kind]++
		if f.Kind == KillLeaseHolder || f.Kind == PauseNird {
			if f.Takeover == 0 {
				v.add(SlowTakeover, "%s of %s: %s", f.Kind, f.Target, f.Note)
			} else {
				v.Takeovers = append(v.Takeovers, f.Takeover.Round(time.Millisecond).String())
				if f.Takeover > bound {
					v.add(SlowTakeover, "%s of %s: taken over after %v, bound %v", f.Kind, f.Target, f.Takeover, bound)
				}
			}
		}
	}

	// What the replays met: sequences the replicas did not give, taken from the stream
	// leader, and any the leader lost (counted since each nird's last start).
	for k, n := range c.Nirds {
		m, err := c.Metrics(ctx, k)
		if err != nil {
			continue
		}
		v.LeaderFills += int(metricValue(leaderFillsRE, m))
		if missing := int(metricValue(missingRE, m)); missing > 0 {
			v.Missing += missing
			v.add(SequenceMissing, "%s: %d stream sequence(s) missing from the stream leader's store (its log names them)", n.Name, missing)
		}
	}

	// Every nird's read models, and a clean build from the stream, hold the same.
	if convErr == nil {
		clean, err := cleanDigest(ctx, c.Admin(), filepath.Join(opt.Dir, "clean"), c.MasterKeyFile())
		if err != nil {
			return nil, err
		}
		v.Digests["clean build"] = clean
		for k, n := range c.Nirds {
			if err := c.SignalNird(k, syscall.SIGTERM); err != nil {
				v.add(Diverged, "%s: stop: %v", n.Name, err)
				continue
			}
			d, err := digest(filepath.Join(opt.Dir, n.Name, "data", "projections", "models.db"))
			if err != nil {
				v.add(Diverged, "%s: %v", n.Name, err)
				continue
			}
			v.Digests[n.Name] = d
			if d != clean {
				v.add(Diverged, "%s: digest %s, clean build %s", n.Name, d[:12], clean[:12])
			}
		}
	}
	v.Valid = len(v.Anomalies) == 0
	if err := writeReport(opt.Dir, v, wl, faults); err != nil {
		return v, err
	}
	return v, nil
}

var (
	checkpointRE   = regexp.MustCompile(`(?m)^nir_projection_checkpoint (\S+)$`)
	passesRE       = regexp.MustCompile(`(?m)^nir_regelmotor_passes_total (\S+)$`)
	failedPassesRE = regexp.MustCompile(`(?m)^nir_regelmotor_failed_passes_total (\S+)$`)
	leaderFillsRE  = regexp.MustCompile(`(?m)^nir_store_replay_leader_fills_total (\S+)$`)
	missingRE      = regexp.MustCompile(`(?m)^nir_store_replay_missing_total (\S+)$`)
)

// metricValue is the value regexp re finds in m, 0 if none.
func metricValue(re *regexp.Regexp, m string) float64 {
	sub := re.FindStringSubmatch(m)
	if sub == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(sub[1], 64)
	return v
}

// converge waits until the stream has stopped growing (the regelmotor has appended what is
// due) and every nird's read models have applied all of it; it returns when that was first
// seen. A quiet stream alone does not show that the regelmotor has nothing left (a pass
// can stall, or fail on every try): the nird's regelmotor metrics must also show two passes
// ended since the stream went quiet, none of them failed.
func converge(ctx context.Context, c *Cluster, bound time.Duration) (time.Time, error) {
	deadline := time.Now().Add(bound)
	var stableSince time.Time
	var lastSeen uint64
	var passesAt, failedAt float64 // the nird's regelmotor passes when the stream went quiet
	for {
		last, err := c.Admin().LastSeq(ctx)
		all := err == nil
		var behind []string
		var passes, failed float64
		for k, n := range c.Nirds {
			m, merr := c.Metrics(ctx, k)
			sub := checkpointRE.FindStringSubmatch(m)
			if merr != nil || sub == nil {
				all = false
				behind = append(behind, n.Name+": no metrics")
				continue
			}
			if ck, _ := strconv.ParseFloat(sub[1], 64); uint64(ck) != last {
				all = false
				behind = append(behind, fmt.Sprintf("%s at %d", n.Name, uint64(ck)))
			}
			passes += metricValue(passesRE, m)
			failed += metricValue(failedPassesRE, m)
		}
		switch {
		case !all:
			stableSince = time.Time{}
		case last != lastSeen || stableSince.IsZero() || passes < passesAt || failed != failedAt:
			// Quiet from now on, counting passes from here (a failed pass, or a nird
			// restarted, counts again from its end).
			stableSince, lastSeen, passesAt, failedAt = time.Now(), last, passes, failed
		case time.Since(stableSince) > 4*time.Second && passes-passesAt >= 2:
			// Two regelmotor passes, none failed, and nothing new: all that is due is stored.
			return stableSince, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return time.Time{}, fmt.Errorf("stream at %d (%v), read models: %s; regelmotor passes %.0f (%.0f failed), %.0f since the stream went quiet",
				last, err, strings.Join(behind, ", "), passes, failed, passes-passesAt)
		}
		sleep(ctx, 250*time.Millisecond)
	}
}

// historyLine is one line of history.jsonl: an attempt, a probe or a fault, by time.
type historyLine struct {
	At    time.Time `json:"at"`
	Type  string    `json:"type"`
	Op    *Op       `json:"op,omitempty"`
	Probe *Probe    `json:"probe,omitempty"`
	Fault *Fault    `json:"fault,omitempty"`
}

func writeReport(dir string, v *Verdict, wl *Workload, faults []Fault) error {
	var lines []historyLine
	for _, op := range wl.Ops() {
		lines = append(lines, historyLine{At: op.Start, Type: "append", Op: &op})
	}
	for _, p := range wl.Probes() {
		lines = append(lines, historyLine{At: p.At, Type: "probe", Probe: &p})
	}
	for _, f := range faults {
		lines = append(lines, historyLine{At: f.Start, Type: "fault", Fault: &f})
	}
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].At.Before(lines[j].At) })
	hf, err := os.Create(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		return err
	}
	enc := json.NewEncoder(hf)
	for _, l := range lines {
		if err := enc.Encode(l); err != nil {
			hf.Close()
			return err
		}
	}
	if err := hf.Close(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "verdict.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "summary.txt"), []byte(v.Summary()), 0o644)
}

// Summary is the verdict in a few lines.
func (v *Verdict) Summary() string {
	var b strings.Builder
	valid := "VALID"
	if !v.Valid {
		valid = fmt.Sprintf("INVALID (%d anomalies)", len(v.Anomalies))
	}
	fmt.Fprintf(&b, "chaos run %s: %s\n", v.Start.Format(time.RFC3339), valid)
	fmt.Fprintf(&b, "sync_interval %s; fault phase %s; seed %d\n", v.Sync, v.FaultTime, v.Seed)
	var fs []string
	total := 0
	for _, k := range sortedKeys(v.Faults) {
		fs = append(fs, fmt.Sprintf("%s %d", k, v.Faults[k]))
		total += v.Faults[k]
	}
	fmt.Fprintf(&b, "faults injected: %d (%s); not injected: %d\n", total, strings.Join(fs, ", "), v.FaultErrors)
	var os []string
	for _, k := range sortedKeys(v.Outcomes) {
		os = append(os, fmt.Sprintf("%s %d", k, v.Outcomes[k]))
	}
	fmt.Fprintf(&b, "append attempts: %d (%s); persons %d (%d with a termination due)\n", v.Ops, strings.Join(os, ", "), v.Persons, v.PersonsDue)
	var via []string
	for _, k := range sortedKeys(v.Via) {
		via = append(via, fmt.Sprintf("%s %d", k, v.Via[k]))
	}
	fmt.Fprintf(&b, "events acknowledged: %d (%d were retries found stored); via %s\n", v.Acknowledged, v.DuplicateAcks, strings.Join(via, ", "))
	fmt.Fprintf(&b, "stream: %d events, %d computed terminations\n", v.StreamEvents, v.ComputedTerminated)
	var ps []string
	for _, k := range sortedKeys(v.Probes) {
		ps = append(ps, fmt.Sprintf("%s %d", k, v.Probes[k]))
	}
	fmt.Fprintf(&b, "read-your-writes probes: %s\n", strings.Join(ps, ", "))
	fmt.Fprintf(&b, "regelmotor lease takeovers: %s\n", strings.Join(v.Takeovers, ", "))
	fmt.Fprintf(&b, "replays: %d sequences taken from the stream leader, %d missing there (since each nird's last start)\n", v.LeaderFills, v.Missing)
	fmt.Fprintf(&b, "read models converged %s after the workload; %d digests (nird and clean build) ", v.Convergence, len(v.Digests))
	seen := map[string]bool{}
	for _, d := range v.Digests {
		seen[d] = true
	}
	if len(seen) == 1 {
		b.WriteString("all equal\n")
	} else {
		fmt.Fprintf(&b, "%d different\n", len(seen))
	}
	for i, a := range v.Anomalies {
		if i == 50 {
			fmt.Fprintf(&b, "… and %d more (verdict.json)\n", len(v.Anomalies)-50)
			break
		}
		fmt.Fprintf(&b, "ANOMALY %s: %s\n", a.Kind, a.Detail)
	}
	return b.String()
}
