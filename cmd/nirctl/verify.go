package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/verify"
)

func init() {
	register("verify", "operator: check the event stream: every event decodes, no id twice, every person's tamper-evident chain intact", runVerify)
}

const verifyUsage = `usage: nirctl verify (--nats-context FILE | --nats URL | --store DATA) [--json] [--quiet]

Walks the whole event stream, read-only, and checks that every message is an event of its
subject's person, that no event id is stored twice, and that every person's chain is intact:
each event nird appends names the SHA-256 of the person's previous stored message
(prev_hash), so a message changed, removed or inserted after the fact shows at the next
event of its person. Reports each problem with its sequence and person key (never a
national id) and exits 1 if there is any, 0 if none. Works against a running nird (its
reader credentials) and a stopped one's data directory (--store); with --store it also
folds the stream afresh into a temporary directory and compares the read models with it.
`

var errProblems = errors.New("the stream has problems")

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	src := addNATSSource(fs, "data directory of a stopped nird, instead of --nats")
	asJSON := fs.Bool("json", false, "print the report as JSON (for monitoring)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	fs.Usage = func() { fmt.Fprint(stderr, verifyUsage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 || src.given() == (*src.store != "") {
		return badArgs(fs, err)
	}
	url, natsOpts, err := src.options()
	if err != nil {
		return err
	}
	jsDir := ""
	if *src.store != "" {
		d, unlock, err := offlineStore(*src.store)
		if err != nil {
			return err
		}
		defer unlock()
		jsDir = d
	}
	store, err := eventstore.Open(ctx, eventstore.Config{URL: url, Dir: jsDir, ReadOnly: true, NATSOptions: natsOpts})
	if err != nil {
		return err
	}
	defer store.Close()
	var opt verify.Options
	var bar *progress
	if !*quiet {
		bar = newProgress(stderr, "verify", "events", 0)
		opt.Progress = func(done, total uint64) {
			bar.set(int64(done), int64(total), fmt.Sprintf("sequence %d of %d", done, total))
		}
	}
	rep, err := verify.Stream(ctx, store, opt)
	if bar != nil {
		bar.finish()
	}
	if err != nil {
		return err
	}
	// With the store in hand, the read models are checked too: equal to a fresh fold.
	var models *verify.ModelsCheck
	if jsDir != "" {
		path := filepath.Join(filepath.Dir(jsDir), "projections", "models.db")
		if _, err := os.Stat(path); err == nil {
			mc, err := verify.Models(ctx, store, path, "")
			if err != nil {
				return err
			}
			models = &mc
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if rep.Problems == nil {
			rep.Problems = []verify.Problem{}
		}
		out := struct {
			verify.Report
			Models *verify.ModelsCheck `json:"models,omitempty"`
		}{rep, models}
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "sequences %d to %d: %d messages, %d persons, %d events linked in their person's chain; %.1f s (%.0f events/s)\n",
			rep.FirstSeq, rep.LastSeq, rep.Messages, rep.Persons, rep.Linked, rep.Seconds, rep.EventsPerSec)
		for _, p := range rep.Problems {
			fmt.Fprintf(stdout, "PROBLEM seq %d person %s: %s: %s\n", p.Seq, p.PersonKey, p.Kind, p.Detail)
		}
		switch {
		case models == nil:
		case !models.Compared:
			fmt.Fprintf(stdout, "read models %s: %s\n", models.Path, models.Detail)
		case models.Equal:
			fmt.Fprintf(stdout, "read models %s at sequence %d: equal to a fresh fold of the stream (sha256 %s)\n", models.Path, models.Checkpoint, models.Live)
		default:
			fmt.Fprintf(stdout, "PROBLEM read models %s: %s\n", models.Path, models.Detail)
		}
		if rep.OK() && (models == nil || !models.Compared || models.Equal) {
			fmt.Fprintln(stdout, "ok: no problems")
		}
	}
	if models != nil && models.Compared && !models.Equal {
		return fmt.Errorf("%w: the read models differ from a fresh fold", errProblems)
	}
	if !rep.OK() {
		return fmt.Errorf("%w: %d (%d persons' chains broken)", errProblems, len(rep.Problems), rep.BrokenPersons)
	}
	return nil
}
