package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
	"github.com/introreg/nir/rules"
)

func init() {
	register("projections", "read models (operator): status, verify, rebuild, snapshots, snapshot create|delete", runProjections)
}

func adminClient(ctx context.Context, streaming bool) nirv1connect.AdminServiceClient {
	hc := httpClient(ctx)
	if streaming {
		hc = streamingHTTPClient(ctx) // a rebuild may take longer than the client timeout
	}
	return nirv1connect.NewAdminServiceClient(hc, serverURL(ctx))
}

func runProjections(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	usage := func() {
		fmt.Fprintln(stderr, "usage: nirctl projections status [--json]")
		fmt.Fprintln(stderr, "       nirctl projections verify [--fold] [--json]")
		fmt.Fprintln(stderr, "       nirctl projections rebuild [--model NAME] [--from-stream]")
		fmt.Fprintln(stderr, "       nirctl projections snapshots")
		fmt.Fprintln(stderr, "       nirctl projections snapshot create NAME (--cutoff YYYY-MM-DD | --recorded-until RFC3339) [--replace] [--from-stream]")
		fmt.Fprintln(stderr, "       nirctl projections snapshot delete NAME")
	}
	if len(args) == 0 {
		usage()
		return errUsage
	}
	switch args[0] {
	case "status":
		return runProjectionsStatus(ctx, args[1:], stdout, stderr)
	case "verify":
		return runProjectionsVerify(ctx, args[1:], stdout, stderr)
	case "rebuild":
		return runProjectionsRebuild(ctx, args[1:], stdout, stderr)
	case "snapshots":
		res, err := adminClient(ctx, false).ListSnapshots(ctx, connect.NewRequest(&nirv1.ListSnapshotsRequest{}))
		if err != nil {
			return callErr("projections snapshots", err)
		}
		return printSnapshots(stdout, res.Msg.GetSnapshots())
	case "snapshot":
		if len(args) >= 2 && args[1] == "create" {
			return runSnapshotCreate(ctx, args[2:], stdout, stderr)
		}
		if len(args) == 3 && args[1] == "delete" {
			if _, err := adminClient(ctx, false).DeleteSnapshot(ctx, connect.NewRequest(&nirv1.DeleteSnapshotRequest{Name: args[2]})); err != nil {
				return callErr("projections snapshot delete", err)
			}
			fmt.Fprintf(stdout, "deleted snapshot %s\n", args[2])
			return nil
		}
	}
	usage()
	return errUsage
}

func printSnapshots(w io.Writer, snaps []*nirv1.SnapshotInfo) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SNAPSHOT\tRECORDED UNTIL\tCHECKPOINT\tSIZE\tFINAL")
	for _, s := range snaps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.GetName(), cutoffText(s), checkpointText(s.GetCheckpoint()), byteSize(s.GetFileSize()), finalText(s))
	}
	return tw.Flush()
}

// cutoffText shows a snapshot's cut-off in Oslo time.
func cutoffText(s *nirv1.SnapshotInfo) string {
	if s.GetRecordedUntil() == nil {
		return "(not recorded)"
	}
	return s.GetRecordedUntil().AsTime().In(osloZone()).Format("2006-01-02 15:04:05 MST")
}

// finalText says whether a snapshot holds its cut-off's final figures: one made before its
// cut-off had settled says until when it is provisional.
func finalText(s *nirv1.SnapshotInfo) string {
	if s.GetProvisionalUntil() == nil {
		return "yes"
	}
	return "no: make it again after " + s.GetProvisionalUntil().AsTime().In(osloZone()).Format("2006-01-02 15:04:05 MST")
}

func checkpointText(c uint64) string {
	if c == 0 {
		return "0 (no event)"
	}
	return fmt.Sprint(c)
}

func osloZone() *time.Location { return rules.Norway }

func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func runProjectionsStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("projections status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print protojson")
	if pos, err := parseArgs(fs, args); err != nil || len(pos) != 0 {
		return badArgs(fs, err)
	}
	res, err := adminClient(ctx, false).ProjectionStatus(ctx, connect.NewRequest(&nirv1.ProjectionStatusRequest{}))
	if err != nil {
		return callErr("projections status", err)
	}
	st := res.Msg
	if *asJSON {
		return printJSON(stdout, st)
	}
	fmt.Fprintf(stdout, "stream last sequence %d, lag %d, file %s, %d events applied since start (%.1f s)\n",
		st.GetLastSequence(), st.GetLag(), byteSize(st.GetFileSize()), st.GetEventsApplied(), st.GetApplySeconds())
	if r := st.GetRepairing(); r != "" {
		fmt.Fprintf(stdout, "NOT SERVED until rebuilt: %s\n", r)
	}
	if st.GetRebuilding() {
		fmt.Fprintf(stdout, "rebuild running: %s\n", progressText(st.GetRebuildProgress()))
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MODEL\tCHECKPOINT\tSCHEMA")
	for _, m := range st.GetModels() {
		fmt.Fprintf(tw, "%s\t%d\t%d\n", m.GetName(), m.GetCheckpoint(), m.GetSchemaVersion())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if n := st.GetQuarantinedTotal(); n > 0 {
		fmt.Fprintf(stdout, "\n%d stream messages quarantined (not usable events, skipped by every read model; nats stream get %s SEQ shows one):\n", n, "NIR_EVENTS")
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQUENCE\tREASON")
		for _, q := range st.GetQuarantined() {
			fmt.Fprintf(tw, "%d\t%s\n", q.GetSequence(), q.GetReason())
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if shown := len(st.GetQuarantined()); uint64(shown) < n {
			fmt.Fprintf(stdout, "(the first %d shown)\n", shown)
		}
	}
	if len(st.GetSnapshots()) > 0 {
		fmt.Fprintln(stdout)
		return printSnapshots(stdout, st.GetSnapshots())
	}
	return nil
}

func progressText(p *nirv1.Progress) string {
	if p == nil {
		return "starting"
	}
	pct := 0.0
	if p.GetTotal() > 0 {
		pct = 100 * float64(p.GetDone()) / float64(p.GetTotal())
	}
	eta := time.Duration(p.GetEtaSeconds() * float64(time.Second)).Round(time.Second)
	// The fold phase counts persons, and its rate is of persons (the web console's text says
	// so too). Found on 2026-12-07 by a walk through the README: "2073/2073 events" of a
	// stream of 55 420.
	what, unit := "events stored", "events"
	switch p.GetPhase() {
	case "fold":
		what, unit = "persons folded", "persons"
	case "":
		what = "events" // a nird before the phase was sent
	}
	return fmt.Sprintf("%d/%d %s (%.0f%%), %.0f %s/s, ETA %s", p.GetDone(), p.GetTotal(), what, pct, p.GetEventsPerSecond(), unit, eta)
}

func runProjectionsRebuild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("projections rebuild", flag.ContinueOnError)
	fs.SetOutput(stderr)
	model := fs.String("model", "", "model to rebuild (all models share one file and are rebuilt together)")
	fromStream := fs.Bool("from-stream", false, "read the whole stream, not the live file's events that the stream's last signed checkpoint vouches for")
	if pos, err := parseArgs(fs, args); err != nil || len(pos) != 0 {
		return badArgs(fs, err)
	}
	t0 := time.Now()
	stream, err := adminClient(ctx, true).Rebuild(ctx, connect.NewRequest(&nirv1.RebuildRequest{Model: *model, FromStream: *fromStream}))
	if err != nil {
		return callErr("projections rebuild", err)
	}
	defer stream.Close()
	bar := newProgress(stderr, "rebuild", "events", 0)
	for stream.Receive() {
		m := stream.Msg()
		if m.GetFinished() {
			bar.finish()
			fmt.Fprintf(stdout, "rebuilt and swapped in at checkpoint %d in %s (%s)\n", m.GetCheckpoint(),
				time.Since(t0).Round(time.Millisecond), progressText(m.GetProgress()))
			fmt.Fprintln(stdout, readFrom(m.GetProgress().GetFromFileThrough()))
			return nil
		}
		pr := m.GetProgress()
		bar.set(int64(pr.GetDone()), int64(pr.GetTotal()), progressText(pr))
	}
	bar.finish()
	if err := stream.Err(); err != nil {
		return callErr("projections rebuild", err)
	}
	return fmt.Errorf("projections rebuild: the stream ended before the rebuild finished")
}

// readFrom says where a rebuild or an as-of replay read its events.
func readFrom(fromFileThrough uint64) string {
	if fromFileThrough == 0 {
		return "the whole stream read"
	}
	return fmt.Sprintf("events through seq %d taken from the live file, checked against the stream's signed checkpoint; the stream read after it", fromFileThrough)
}

func runSnapshotCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("projections snapshot create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cutoff := fs.String("cutoff", "", "keep events recorded up to the end of this day in Oslo (YYYY-MM-DD), e.g. the last day of February")
	until := fs.String("recorded-until", "", "exact cut-off instead of --cutoff (RFC 3339)")
	replace := fs.Bool("replace", false, "replace a snapshot of the same name (without it, an existing name is refused)")
	fromStream := fs.Bool("from-stream", false, "read the stream up to the cut-off, not the live file's events that the stream's last signed checkpoint before it vouches for")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: nirctl projections snapshot create NAME (--cutoff YYYY-MM-DD | --recorded-until RFC3339) [--replace] [--from-stream]")
		fs.PrintDefaults()
	}
	pos, err := parseArgs(fs, args)
	if err != nil || len(pos) != 1 {
		return badArgs(fs, err)
	}
	if (*cutoff == "") == (*until == "") {
		// Named here by its flags: the server's refusal names its request fields.
		return usageError(fs, "give one of --cutoff and --recorded-until")
	}
	req := &nirv1.CreateSnapshotRequest{Name: pos[0], Replace: *replace, FromStream: *fromStream}
	if req.CutoffDate, err = parseDateFlag("cutoff", *cutoff); err != nil {
		return err
	}
	if *until != "" {
		t, err := time.Parse(time.RFC3339Nano, *until)
		if err != nil {
			return fmt.Errorf("--recorded-until: %q is not an RFC 3339 time", *until)
		}
		req.RecordedUntil = timestamppb.New(t)
	}
	stream, err := adminClient(ctx, true).CreateSnapshot(ctx, connect.NewRequest(req))
	if err != nil {
		return callErr("projections snapshot create", err)
	}
	defer stream.Close()
	bar := newProgress(stderr, "replay", "events", 0)
	var fromFile uint64
	for stream.Receive() {
		m := stream.Msg()
		fromFile = max(fromFile, m.GetProgress().GetFromFileThrough())
		if m.GetFinished() {
			bar.finish()
			snap := m.GetSnapshot()
			fmt.Fprintf(stdout, "snapshot %s kept: events recorded until %s, checkpoint %d (%s)\n", snap.GetName(), cutoffText(snap), snap.GetCheckpoint(), byteSize(snap.GetFileSize()))
			fmt.Fprintln(stdout, readFrom(fromFile))
			if snap.GetCheckpoint() == 0 {
				fmt.Fprintln(stderr, "nirctl: warning: the snapshot keeps no event: every event in the register was recorded after its cut-off, so all its figures are zero")
			}
			return nil
		}
		pr := m.GetProgress()
		bar.set(int64(pr.GetDone()), int64(pr.GetTotal()), progressText(pr))
	}
	bar.finish()
	if err := stream.Err(); err != nil {
		return callErr("projections snapshot create", err)
	}
	return fmt.Errorf("projections snapshot create: the stream ended before the replay finished")
}

// errDamaged is returned (exit status 1) when verify found a problem.
var errDamaged = fmt.Errorf("projections verify: the read models are damaged or do not belong to the stream; nird rebuilds them from the stream")

func runProjectionsVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("projections verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print protojson")
	fold := fs.Bool("fold", false, "also fold the stream afresh up to the models' checkpoint and compare (a rebuild's work; the models stay in service)")
	if pos, err := parseArgs(fs, args); err != nil || len(pos) != 0 {
		return errUsage
	}
	// A large file takes a while: no client timeout.
	res, err := adminClient(ctx, true).VerifyProjections(ctx, connect.NewRequest(&nirv1.VerifyProjectionsRequest{CompareFold: *fold}))
	if err != nil {
		return callErr("projections verify", err)
	}
	v := res.Msg
	if *asJSON {
		if err := printJSON(stdout, v); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "checked %s: %d pages, %d values and their checksums, bbolt's consistency check, schema and checkpoints, the stream's identity, in %.1f s\n",
			byteSize(v.GetFileSize()), v.GetPages(), v.GetValues(), v.GetSeconds())
		if f := v.GetFold(); f != nil && f.GetEqual() {
			fmt.Fprintf(stdout, "read models at sequence %d: equal to a fresh fold of the stream (sha256 %s; fold %.1f s)\n", f.GetCheckpoint(), f.GetLiveDigest(), f.GetSeconds())
		}
		for _, p := range v.GetProblems() {
			fmt.Fprintf(stdout, "PROBLEM: %s\n", p)
		}
		if r := v.GetRepairing(); r != "" {
			fmt.Fprintf(stdout, "not served until rebuilt from the stream: %s\n", r)
		}
		if len(v.GetProblems()) == 0 {
			fmt.Fprintln(stdout, "ok")
		}
	}
	if len(v.GetProblems()) > 0 {
		return errDamaged
	}
	return nil
}
