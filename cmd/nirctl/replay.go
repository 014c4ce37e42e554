package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/datadir"
	"github.com/introreg/nir/internal/feed"
	"github.com/introreg/nir/internal/natsauth"
	"github.com/introreg/nir/projections"
	"github.com/introreg/nir/rules"
)

func init() {
	register("replay", "offline as-of replay of a data year from the event stream, written as JSON and CSV to a directory", runReplay)
}

// runReplay replays the stream as of a recorded-time cut-off into a temporary read-model file,
// with the same code as nird's live models, and writes the year's statistics, report of
// terminated participants and person list (analyst view) to --out (DOMAIN.md 6.3, Product
// decisions 7). It reads the stream directly (packages, not the API), so it needs the NATS URL
// of the cluster or, with nird stopped, its JetStream directory.
func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	year := fs.Int("year", 0, "data year (required)")
	cutoff := fs.String("cutoff", "", "keep events recorded up to the end of this day in Oslo (YYYY-MM-DD); default the last day of February of year+1, the ajourføring deadline")
	until := fs.String("recorded-until", "", "exact cut-off instead of --cutoff (RFC 3339)")
	now := fs.String("now", "", "date for the deadline statuses in persons.csv (YYYY-MM-DD); default the cut-off date")
	out := fs.String("out", "", "directory to write statistics.{json,csv}, terminated.{json,csv} and persons.csv to (required)")
	natsURL := fs.String("nats", os.Getenv("NIR_NATS_URL"), "NATS URL of the event stream (env NIR_NATS_URL)")
	natsContext := fs.String("nats-context", os.Getenv("NIR_NATS_CONTEXT"), "nats CLI context file with the URL and credentials, e.g. the reader's that nird writes to <data>/nats/reader.json (env NIR_NATS_CONTEXT)")
	storeDir := fs.String("store", "", "data directory (or its jetstream directory) of a stopped nird, instead of --nats")
	skew := fs.Duration("clock-skew", feed.DefaultClockSkew, "how long after an event's recorded_at the stream may have received it (as nird's --as-of-clock-skew): the replay reads the stream this far past the cut-off and keeps the events recorded at or before it")
	quiet := fs.Bool("quiet", false, "no progress bar")
	minCount := fs.Int64("min-count", rules.DefaultMinCount, "statistics: counts of 1 to this minus 1, and what would reveal them, are written as «:» (DOMAIN.md Product decisions 14); 1 suppresses nothing")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: nirctl replay --year YYYY --out DIR (--nats-context FILE | --nats URL | --store DIR) [--cutoff YYYY-MM-DD | --recorded-until RFC3339] [--now YYYY-MM-DD]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		return badArgs(fs, err)
	}
	// Each missing flag by name (found on 2026-12-07 by a walk through the README: the usage
	// alone did not say which was missing).
	switch {
	case *year < 1900:
		return usageError(fs, "--year: the data year is required (e.g. --year 2022)")
	case *out == "":
		return usageError(fs, "--out: the directory to write the figures to is required")
	case (*natsURL == "" && *natsContext == "") == (*storeDir == ""):
		return usageError(fs, "one source is required: --nats-context FILE, --nats URL, or --store DIR")
	}
	if *skew < 0 || *skew > feed.MaxClockSkew {
		return fmt.Errorf("--clock-skew: %v is not between 0 and %v", *skew, feed.MaxClockSkew)
	}
	var natsOpts []nats.Option
	if *natsContext != "" {
		url, opts, err := natsauth.ReadContext(*natsContext)
		if err != nil {
			return fmt.Errorf("--nats-context: %w", err)
		}
		if *natsURL == "" {
			*natsURL = url
		}
		natsOpts = opts
	}
	oslo := rules.Norway
	var err error
	day := rules.LastDayOfFebruary(*year + 1)
	if *cutoff != "" {
		if day, err = rules.ParseDate(*cutoff); err != nil {
			return fmt.Errorf("--cutoff: %q is not a date (YYYY-MM-DD)", *cutoff)
		}
	}
	recordedUntil := time.Date(day.Y, day.M, day.D, 0, 0, 0, 0, oslo).AddDate(0, 0, 1).Add(-time.Nanosecond)
	if *until != "" {
		if recordedUntil, err = time.Parse(time.RFC3339Nano, *until); err != nil {
			return fmt.Errorf("--recorded-until: %q is not an RFC 3339 time", *until)
		}
		day = rules.DateFromTime(recordedUntil.In(oslo))
	}
	statusDay := day
	if *now != "" {
		if statusDay, err = rules.ParseDate(*now); err != nil {
			return fmt.Errorf("--now: %q is not a date (YYYY-MM-DD)", *now)
		}
	}

	jsDir := ""
	if *storeDir != "" {
		dir, unlock, err := offlineStore(*storeDir)
		if err != nil {
			return err
		}
		defer unlock()
		jsDir = dir
	}
	store, err := eventstore.Open(ctx, eventstore.Config{URL: *natsURL, Dir: jsDir, ReadOnly: true, NATSOptions: natsOpts})
	if err != nil {
		return err
	}
	defer store.Close()
	f, err := feed.New(store)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.SetClockSkew(*skew); err != nil {
		return fmt.Errorf("--clock-skew: %w", err)
	}
	tmp, err := os.MkdirTemp("", "nirctl-replay-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	p, err := projections.New(f, projections.Options{Dir: tmp})
	if err != nil {
		return err
	}
	defer p.Close()

	opt := projections.AsOfOptions{RecordedUntil: recordedUntil}
	var bar *progress
	streamLast, err := f.LastSeq(ctx)
	if err != nil {
		return err
	}
	if !*quiet {
		bar = newProgress(stderr, "replay", "events", int64(streamLast))
	}
	var read uint64 // the messages the replay read: up to the cut-off's sequence bound
	opt.Progress = func(pr projections.Progress) {
		if pr.Phase == projections.PhaseStore {
			read = max(read, pr.Done)
		}
		if bar != nil {
			bar.set(int64(pr.Done), int64(pr.Total), fmt.Sprintf("%s %d of %d", pr.Phase, pr.Done, pr.Total))
		}
	}
	started := time.Now()
	db, err := p.AsOf(ctx, opt)
	took := time.Since(started)
	if bar != nil {
		bar.finish()
	}
	if err != nil {
		return err
	}
	quarantined, qerr := db.Quarantined(10)
	if qerr == nil && db.QuarantinedCount() > 0 {
		fmt.Fprintf(stderr, "%d stream messages quarantined (not usable events), skipped as nird's read models skip them; first sequences:", db.QuarantinedCount())
		for _, q := range quarantined {
			fmt.Fprintf(stderr, " %d (%s)", q.Seq, q.Reason)
		}
		fmt.Fprintln(stderr)
	}
	kept, kerr := db.Checkpoint()
	if kerr != nil {
		db.Close()
		return kerr
	}
	if t, ok := db.Provisional(); ok {
		fmt.Fprintf(stderr, "nirctl: warning: the cut-off %s had not settled: an event recorded by it may still reach the stream until %s (the clock skew allowed for); these figures are provisional, replay again after that for the final ones\n", recordedUntil.Format(time.RFC3339), t.Format(time.RFC3339))
	}
	if kept == 0 {
		fmt.Fprintf(stderr, "nirctl: warning: the cut-off %s keeps no event: every event in the stream was recorded after it, so every figure is zero\n", recordedUntil.Format(time.RFC3339))
	}
	if err := ctx.Err(); err != nil {
		// Stopped (Ctrl-C, SIGTERM) once the replay was done: no report files either, and
		// the exit status says the replay did not finish.
		db.Close()
		return fmt.Errorf("replay stopped before the report was written: %w", err)
	}
	files, werr := db.WriteReport(*out, *year, statusDay, *minCount)
	cerr := db.Close()
	if err := errors.Join(werr, cerr); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "data year %d as recorded until %s: read %d of the stream's %d messages (to the cut-off's bound), %d events kept, in %.1f s:\n",
		*year, recordedUntil.Format(time.RFC3339), read, streamLast, kept, took.Seconds())
	for _, name := range files {
		fmt.Fprintln(stdout, " ", name)
	}
	return nil
}

// offlineStore resolves --store, nird's data directory or the jetstream directory in it,
// to the JetStream directory. It refuses a path that holds no NIR_EVENTS stream (rather than
// replaying an empty stream into empty figures), and locks the data directory as nird does,
// so that it refuses while nird runs on it, and nird cannot start while the replay runs.
func offlineStore(dir string) (jsDir string, unlock func(), err error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return "", nil, fmt.Errorf("--store: %w", err)
	}
	if !fi.IsDir() {
		return "", nil, fmt.Errorf("--store: %s is not a directory", dir)
	}
	data, jsDir := dir, filepath.Join(dir, "jetstream")
	if _, err := os.Stat(filepath.Join(dir, datadir.LockFile)); err != nil {
		data, jsDir = filepath.Dir(dir), dir // the jetstream directory itself
	}
	if m, _ := filepath.Glob(filepath.Join(jsDir, "jetstream", "*", "streams", eventstore.StreamName)); len(m) == 0 {
		return "", nil, fmt.Errorf("--store: no %s stream in %s (give the data directory of a nird, or its jetstream directory)", eventstore.StreamName, dir)
	}
	unlock = func() {}
	if _, err := os.Stat(filepath.Join(data, datadir.LockFile)); err == nil {
		unlock, err = datadir.Lock(data)
		if errors.Is(err, datadir.ErrInUse) {
			return "", nil, fmt.Errorf("--store: %s is in use by a running nird; stop it first, or replay from its NATS server with --nats", data)
		}
		if err != nil {
			return "", nil, err
		}
	}
	return jsDir, unlock, nil
}
