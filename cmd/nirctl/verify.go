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
	"strings"

	"connectrpc.com/connect"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/verify"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/sealing"
)

func init() {
	register("verify", "operator: check the event stream: every event decodes, no id twice, every person's tamper-evident chain intact", runVerify)
}

const verifyUsage = `usage: nirctl verify (--nats-context FILE | --nats URL | --store DATA) [--checkpoint FILE]... [--public-key HEX]
                     [--from-checkpoint FILE|last] [--models] [--json] [--quiet]

Walks the whole event stream, read-only, and checks that every message is an event of its
subject's person, that no event id is stored twice, and that every person's chain is intact:
each event nird appends names the SHA-256 of the person's previous stored message
(prev_hash), so a message changed, removed or inserted after the fact shows at the next
event of its person. Reports each problem with its sequence and person key (never a
national id) and exits 1 if there is any, 0 if none.

The chain cannot show a change to a person's last event; the checkpoints can: nird
publishes, every few thousand events, a signed running digest of the whole stream, and
verify compares the stream with each (and with --checkpoint files written by nirctl
checkpoint and kept elsewhere), so a message changed, removed or inserted at or before a
checkpoint's sequence is found. --public-key pins the key every checkpoint must be signed
with (nird logs it at start). --from-checkpoint walks only what came after a checkpoint
(a daily check of the day's events): what lies before it is taken on its signature.

A checkpoint or a persons' data key (the bucket NIR_KEYS) that the server counts but cannot
read back, damaged on disk, is a problem too (checkpoint-unreadable with its sequence in
NIR_CHECKPOINTS, data-key-damaged with the key's id): a backup refuses to go without it
unless told to (nirctl backup --accept-damaged).

Works against a running nird (its
reader credentials) and a stopped one's data directory (--store). The read models are
compared with a fresh fold of the stream too: with --store by nirctl itself, in a temporary
directory; with a running nird and --models by nird, asked through its API (--server, an
operator's --token), which folds the stream up to its models' checkpoint beside them while
they stay in service.
`

var errProblems = errors.New("the stream has problems")

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	src := addNATSSource(fs, "data directory of a stopped nird, instead of --nats")
	asJSON := fs.Bool("json", false, "print the report as JSON (for monitoring)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	var cpFiles listFlag
	fs.Var(&cpFiles, "checkpoint", "a checkpoint `FILE` written by nirctl checkpoint to compare the stream with (repeatable)")
	pubKey := fs.String("public-key", "", "ed25519 public key (hex) every checkpoint must be signed with")
	from := fs.String("from-checkpoint", "", "walk only what came after a checkpoint: a `FILE` written by nirctl checkpoint, or last (the newest stored one whose signature holds); what lies before it is taken on its signature")
	liveModels := fs.Bool("models", false, "with a running nird: have it compare its read models with a fresh fold (--server, an operator's --token)")
	fs.Usage = func() { fmt.Fprint(stderr, verifyUsage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 || src.given() == (*src.store != "") {
		return badArgs(fs, err)
	}
	url, natsOpts, err := src.options()
	if err != nil {
		return err
	}
	if *pubKey != "" {
		if _, err := parsePublicKey(*pubKey); err != nil {
			return err
		}
	}
	if *liveModels && *src.store != "" {
		return errors.New("--models: for a running nird; with --store the read models are compared anyway")
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
	for _, f := range cpFiles {
		cp, err := readCheckpointFile("--checkpoint", f)
		if err != nil {
			return err
		}
		opt.Checkpoints = append(opt.Checkpoints, cp)
	}
	if *pubKey != "" {
		if opt.PublicKey, err = parsePublicKey(*pubKey); err != nil {
			return err
		}
	}
	switch {
	case *from == "last":
		cps, err := store.Checkpoints(ctx)
		if err != nil {
			return err
		}
		for i := len(cps) - 1; i >= 0 && opt.From == nil; i-- {
			if cp := cps[i].Checkpoint; cp != nil && eventstore.CheckSignature(cp, opt.PublicKey) == nil {
				opt.From = cp
			}
		}
		if opt.From == nil {
			return errors.New("--from-checkpoint last: the stream has no checkpoint whose signature holds (with --public-key: by that key)")
		}
	case *from != "":
		if opt.From, err = readCheckpointFile("--from-checkpoint", *from); err != nil {
			return err
		}
	}
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
			open, closeKeys, err := storeOpener(ctx, store, filepath.Dir(jsDir))
			if err != nil {
				return err
			}
			defer closeKeys()
			mc, err := verify.Models(ctx, store, path, "", open)
			if err != nil {
				return err
			}
			models = &mc
		}
	}
	if *liveModels {
		res, err := adminClient(ctx, true).VerifyProjections(ctx, connect.NewRequest(&nirv1.VerifyProjectionsRequest{CompareFold: true}))
		if err != nil {
			return callErr("verify --models", err)
		}
		models = &verify.ModelsCheck{Path: "nird at " + serverURL(ctx)}
		if f := res.Msg.GetFold(); f != nil {
			models.Checkpoint, models.Compared, models.Equal = f.GetCheckpoint(), true, f.GetEqual()
			models.Live, models.Fresh = f.GetLiveDigest(), f.GetFreshDigest()
		}
		if len(res.Msg.GetProblems()) > 0 {
			models.Compared, models.Equal = true, false
			models.Detail = strings.Join(res.Msg.GetProblems(), "; ")
		} else if r := res.Msg.GetRepairing(); r != "" {
			models.Detail = "not compared: nird is rebuilding them (" + r + ")"
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
		switch {
		case rep.Checkpoints == 0:
			fmt.Fprintln(stdout, "checkpoints: none to compare with (nird makes them as events arrive)")
		case rep.CheckpointThrough > 0:
			fmt.Fprintf(stdout, "checkpoints: %d compared; the stream matches them through sequence %d\n", rep.Checkpoints, rep.CheckpointThrough)
		default:
			fmt.Fprintf(stdout, "checkpoints: %d compared; none matched\n", rep.Checkpoints)
		}
		if rep.DataKeys > 0 {
			fmt.Fprintf(stdout, "data keys: %d read\n", rep.DataKeys)
		}
		for _, p := range rep.Problems {
			where := fmt.Sprintf("seq %d", p.Seq)
			switch {
			case p.KeyID != "":
				where = "data key " + p.KeyID
			case p.Checkpoint != 0:
				where = fmt.Sprintf("checkpoint %d", p.Checkpoint)
			case p.PersonKey != "":
				where += " person " + p.PersonKey
			}
			fmt.Fprintf(stdout, "PROBLEM %s: %s: %s\n", where, p.Kind, p.Detail)
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

// storeOpener returns what opens the sealed identities of a stopped nird's stream for a fold
// (DOMAIN.md Product decisions 15): its data keys, opened with the master key of its data
// directory (master.key) or NIR_MASTER_KEY. A stream without a data-key bucket (stored before
// identities were sealed) needs none: nil.
func storeOpener(ctx context.Context, store *eventstore.Store, dataDir string) (func(*nirv1.Event) error, func(), error) {
	master, err := sealing.LoadMaster(filepath.Join(dataDir, "master.key"), false)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, func() {}, nil
		}
		return nil, nil, fmt.Errorf("the master key (%s in the data directory, or %s): %w", "master.key", sealing.MasterKeyEnv, err)
	}
	keys, err := store.OpenKeyStore(ctx, master)
	if errors.Is(err, eventstore.ErrNoKeyBucket) {
		return nil, func() {}, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return sealing.Events{Keys: keys}.Opener(), func() { keys.Close() }, nil
}
