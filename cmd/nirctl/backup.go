package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/backup"
	"github.com/introreg/nir/internal/datadir"
	"github.com/introreg/nir/internal/natsauth"
)

func init() {
	register("backup", "operator: a consistent copy of the event stream into a new directory, while nird runs", runBackup)
	register("restore", "operator: a backup into an empty data directory or cluster, whole or up to a sequence or time", runRestore)
}

// natsSource are the flags that reach a stream: a NATS server (URL or nats CLI context) or a
// stopped nird's data directory.
type natsSource struct {
	url, context, store *string
}

func addNATSSource(fs *flag.FlagSet, storeHelp string) natsSource {
	return natsSource{
		url:     fs.String("nats", os.Getenv("NIR_NATS_URL"), "NATS URL of the event stream (env NIR_NATS_URL)"),
		context: fs.String("nats-context", os.Getenv("NIR_NATS_CONTEXT"), "nats CLI context file with the URL and credentials, e.g. the reader's that nird writes to <data>/nats/reader.json (env NIR_NATS_CONTEXT)"),
		store:   fs.String("store", "", storeHelp),
	}
}

func (n natsSource) given() bool { return *n.url != "" || *n.context != "" }

func (n natsSource) options() (string, []nats.Option, error) {
	url := *n.url
	if *n.context == "" {
		return url, nil, nil
	}
	curl, opts, err := natsauth.ReadContext(*n.context)
	if err != nil {
		return "", nil, fmt.Errorf("--nats-context: %w", err)
	}
	if url == "" {
		url = curl
	}
	return url, opts, nil
}

const backupUsage = `usage: nirctl backup (--nats-context FILE | --nats URL | --store DATA) [--checkpoint-key FILE] [--after PREVIOUS] DIR

Copies the event stream as it stands when the backup starts into DIR, a new directory
(mode 0700, files 0600: the events hold national ids). Appends that arrive meanwhile go into
the next backup, so nird keeps running. With --after, only the events after an earlier
backup's (an incremental backup; restore the full one and its increments in order).

The backup holds the stream's messages byte for byte with their sequences, the persons' data
keys as stored (wrapped with the master key, which the backup never holds), and a manifest
(sequence range, times, the stream's identity, the person key's fingerprint, never the key,
and the SHA-256 of the events file). Keep the person key (personkey.secret) in the secret
store it came from: without it the restored register cannot find persons by national id.

--checkpoint-key (nird's checkpoint signing key, data/checkpoint.key) seals the manifest: it
signs the manifest, which holds the SHA-256 of the events and of the data keys beside the
checkpoints, so that nirctl restore --public-key can tell a keys file altered or swapped by
whoever can write the backup (a key marked destroyed or dropped: its person would read as
erased or unreadable). The checkpoints the backup carries must be signed by that key. A backup
without the seal is refused by nirctl restore --public-key.

A data key or checkpoint the register holds but cannot read back (damaged on disk) fails the
backup, naming it (a key by its id) and writing nothing: a backup without it would hold less
than the register, and a restore of it would read what the key sealed as erased. Keep the
earlier backups, which hold it. --accept-damaged key:ID,checkpoint:N backs up the rest,
recording those named as damaged in the manifest (a restore takes such a key from an earlier
backup of its chain, or stores it as damaged); an incremental backup accepts what its earlier
one recorded.
`

func runBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	src := addNATSSource(fs, "data directory of a stopped nird, instead of --nats")
	after := fs.String("after", "", "an earlier backup directory: copy only what came after it")
	through := fs.Uint64("through", 0, "copy up to this stream sequence, at most the last (default the last)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	keyFile := fs.String("checkpoint-key", "", "nird's checkpoint signing key `FILE` (data/checkpoint.key): seals the manifest, data keys included, for nirctl restore --public-key")
	var accept acceptList
	fs.Var(&accept, "accept-damaged", "back up without these damaged data keys and checkpoints, recording them: `key:ID,checkpoint:N,…` as a refused backup names them (repeatable)")
	fs.Usage = func() { fmt.Fprint(stderr, backupUsage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 || src.given() == (*src.store != "") {
		return badArgs(fs, err)
	}
	dir := fs.Arg(0)
	var opt backup.Options
	if *after != "" {
		prev, err := backup.Open(*after)
		if err != nil {
			return fmt.Errorf("--after: %w", err)
		}
		opt.After = &prev.Manifest
	}
	opt.Through = *through
	opt.AcceptDamagedKeys, opt.AcceptUnreadableCheckpoints = accept.keys, accept.checkpoints
	if *keyFile != "" {
		k, err := eventstore.LoadCheckpointKey(*keyFile, false)
		if err != nil {
			return fmt.Errorf("--checkpoint-key: %w", err)
		}
		opt.Key = k
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
	var bar *progress
	if !*quiet {
		bar = newProgress(stderr, "backup", "events", 0)
		opt.Progress = func(done, total uint64) {
			bar.set(int64(done), int64(total), fmt.Sprintf("sequence %d of %d", done, total))
		}
	}
	m, err := backup.Write(ctx, store, dir, opt)
	if bar != nil {
		bar.finish()
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: sequences %d to %d (%d events, %d bytes), stream %s, received %s to %s\nsha256 %s\n",
		dir, m.FirstSeq, m.LastSeq, m.Count, m.Events.Bytes, m.StreamID,
		m.FirstTime.Format(time.RFC3339), m.LastTime.Format(time.RFC3339), m.Events.SHA256)
	if m.Seal == nil {
		fmt.Fprintf(stderr, "WARNING: this backup is not sealed (no --checkpoint-key): no signature covers its data keys (%s), and nirctl restore --public-key refuses it\n", backup.KeysFile)
	}
	if len(m.DamagedKeys) > 0 || len(m.UnreadableCheckpoints) > 0 {
		fmt.Fprintf(stderr, "WARNING: this backup holds less than the register: damaged on disk and left out (recorded in its manifest): data keys %v, checkpoints %v of %s; keep the earlier backups that hold them\n",
			m.DamagedKeys, m.UnreadableCheckpoints, eventstore.CheckpointStreamName)
	}
	return nil
}

// acceptList is --accept-damaged: key:ID and checkpoint:N, comma-separated, repeatable.
type acceptList struct {
	keys        []string
	checkpoints []uint64
}

func (a *acceptList) String() string { return "" }

func (a *acceptList) Set(v string) error {
	for _, item := range strings.Split(v, ",") {
		kind, val, _ := strings.Cut(strings.TrimSpace(item), ":")
		switch {
		case kind == "key" && val != "":
			a.keys = append(a.keys, val)
		case kind == "checkpoint":
			n, err := strconv.ParseUint(val, 10, 64)
			if err != nil || n == 0 {
				return fmt.Errorf("%q: a checkpoint is named by its sequence in %s, a number from 1", item, eventstore.CheckpointStreamName)
			}
			a.checkpoints = append(a.checkpoints, n)
		default:
			return fmt.Errorf("%q: want key:ID or checkpoint:N", item)
		}
	}
	return nil
}

const restoreUsage = `usage: nirctl restore (--data DIR | --nats URL [--nats-context FILE] [--replicas 3]) [--to-seq N | --until TIME] [--public-key HEX] BACKUP [INCREMENT ...]

Restores a backup, and the incremental backups that continue it in order, into an empty
data directory (then start nird on it) or into an empty cluster (the stream is created with
--replicas, by a NATS user that may manage it: nird's). Every file is checked whole first
(its SHA-256 and each record's checksum); a damaged backup is refused and nothing is
written. Each event is stored at the sequence it had, so the restored register is the same
register: nird rebuilds its read models from it.

Each checkpoint the backups carry is compared with the digest of their messages through its
sequence, and must cover more than the one before it; one that does not is refused,
naming it, and nothing is written (one that does not name the one before it is a warning). --public-key (nird's checkpoint key, which it
logs at start) also refuses a checkpoint not signed by that key, backups that carry no
checkpoint, and a backup whose manifest is not sealed by that key (nirctl backup
--checkpoint-key): the seal covers the data keys (keys.json), which no checkpoint does, so a
key marked destroyed, dropped, added or taken from another backup is refused, naming the
file; it warns of the sequences after the last checkpoint. Without it, a backup whose manifest and checkpoints were rewritten together by whoever
can write the backup is restored (keep a checkpoint elsewhere, nirctl checkpoint, and check
the restored register with nirctl verify --checkpoint).

--to-seq and --until restore the register as it stood at an earlier point (a bad import
to undo): the events up to that sequence, or received by the stream by that time. A time
among the sequences the register received in an earlier restore is refused: give --to-seq.

A restore stopped half-way leaves a register nird refuses to start on; run the same restore
--data again into it and it starts over.

Before starting nird, put the register's person key at DIR/personkey.secret (or give
--person-key-file): nird refuses a key whose fingerprint is not the backup's. Put its master
key at DIR/master.key (or give --master-key-file or NIR_MASTER_KEY): the backup's data keys
open with it alone, and nird refuses a master key that does not open them. Persons erased in
the restored stream stay erased: their data keys are not restored.
`

func runRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "an empty (or new) data directory for nird")
	src := natsSource{url: fs.String("nats", "", "NATS URL of an empty cluster, instead of --data"),
		context: fs.String("nats-context", "", "nats CLI context file with the URL and the credentials of a user that may create the stream")}
	replicas := fs.Int("replicas", 3, "with --nats: the stream's replicas")
	toSeq := fs.Uint64("to-seq", 0, "restore up to this stream sequence")
	until := fs.String("until", "", "restore what the stream had received by this time (RFC 3339, e.g. 2026-12-02T18:00:00+01:00)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	pubKey := fs.String("public-key", "", "ed25519 public key (hex) every checkpoint the backups carry must be signed with (nird logs it at start)")
	fs.Usage = func() { fmt.Fprint(stderr, restoreUsage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil || fs.NArg() == 0 || src.given() == (*data != "") {
		return badArgs(fs, err)
	}
	var u backup.Until
	u.Seq = *toSeq
	if *until != "" {
		t, err := time.Parse(time.RFC3339Nano, *until)
		if err != nil {
			return fmt.Errorf("--until: %q is not an RFC 3339 time", *until)
		}
		u.Time = t
	}
	// Check every backup whole before touching the target.
	var chain []*backup.Backup
	for _, dir := range fs.Args() {
		b, err := backup.Open(dir)
		if err != nil {
			return err
		}
		chain = append(chain, b)
	}
	var key ed25519.PublicKey
	if *pubKey != "" {
		k, err := parsePublicKey(*pubKey)
		if err != nil {
			return err
		}
		key = k
	}
	// Everything a restore refuses is refused here, before --data or the cluster is touched:
	// opening the store creates the stream with the manifest's metadata, which a refused
	// restore must not leave behind.
	vouched, err := backup.Verify(chain, u, key)
	if err != nil {
		return err
	}
	if n, err := backup.BrokenLinks(chain); err == nil && n > 0 {
		fmt.Fprintf(stderr, "WARNING: %d of the checkpoints the backups carry do not name the one before them (a checkpoint left out, or a register restored once with an unreadable checkpoint): each was compared with the digest of the messages it covers; nirctl verify reports the gap after the restore\n", n)
	}
	md := maps.Clone(chain[0].Manifest.Metadata)
	delete(md, eventstore.MetaStreamID)         // the restored stream is a new instance
	delete(md, eventstore.MetaBackdatedThrough) // Import marks what it restores
	delete(md, eventstore.MetaRestoreUnfinished)
	cfg := eventstore.Config{Metadata: md}
	if *data != "" {
		notEmpty := emptyDataDir(*data)
		if err := os.MkdirAll(*data, 0o700); err != nil {
			return err
		}
		unlock, err := datadir.Lock(*data)
		if err != nil {
			return errors.Join(notEmpty, fmt.Errorf("--data: %w", err))
		}
		defer unlock()
		cfg.Dir = filepath.Join(*data, "jetstream")
		if notEmpty != nil {
			// Only what a restore stopped half-way left is started over.
			if err := startOver(ctx, cfg, stderr); err != nil {
				return errors.Join(notEmpty, err)
			}
		}
	} else {
		url, opts, err := src.options()
		if err != nil {
			return err
		}
		cfg.URL, cfg.NATSOptions, cfg.Replicas = url, opts, *replicas
	}
	store, err := eventstore.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	var progressFn func(done, total uint64)
	var bar *progress
	if !*quiet {
		bar = newProgress(stderr, "restore", "events", 0)
		progressFn = func(done, total uint64) {
			bar.set(int64(done), int64(total), fmt.Sprintf("sequence %d of %d", done, total))
		}
	}
	last, err := backup.Restore(ctx, store, chain, u, progressFn)
	if bar != nil {
		bar.finish()
	}
	if err != nil {
		if errors.Is(err, eventstore.ErrRestoreUnfinished) || errors.Is(err, backup.ErrUntilBackdated) || errors.Is(err, backup.ErrCheckpointMismatch) {
			return err
		}
		if errors.Is(err, eventstore.ErrNotEmpty) {
			return fmt.Errorf("%w (nothing was restored)", err)
		}
		return restoreStopped(ctx, store, last, err)
	}
	fmt.Fprintf(stdout, "restored sequences 1 to %d of %d", last, chain[len(chain)-1].Manifest.LastSeq)
	if fp := chain[0].Manifest.Metadata["nir_person_key"]; fp != "" { // nird's fingerprint entry
		fmt.Fprintf(stdout, "; the register's person key has fingerprint %s", fp)
	}
	fmt.Fprintln(stdout)
	if lost := backup.LostKeys(chain); len(lost) > 0 {
		fmt.Fprintf(stderr, "WARNING: the data keys %v were damaged in the register when the backup was made, and no backup given holds them whole: they are stored as damaged, and what they sealed reads as unreadable; restore again giving an earlier backup chain that holds them to get them back\n", lost)
	}
	if seqs := backup.RepeatedIDs(chain, u); len(seqs) > 0 {
		fmt.Fprintf(stderr, "WARNING: %d message(s) repeat the Nats-Msg-Id of an earlier one (an event id stored twice, which nirctl verify reports as duplicate-id): JetStream refuses a repeated id in a restore, so they were restored without that header, their subjects and data as they were; sequences %s\n",
			len(seqs), firstSeqs(seqs, 20))
	}
	for _, b := range chain {
		if cps := b.Manifest.UnreadableCheckpoints; len(cps) > 0 {
			fmt.Fprintf(stderr, "WARNING: %s lacks the checkpoints %v of %s (damaged in the register when it was made): nirctl verify reports the next one as not naming its predecessor\n", b.Dir, cps, eventstore.CheckpointStreamName)
		}
	}
	if key != nil && last > vouched {
		fmt.Fprintf(stderr, "WARNING: sequences %d to %d (%d) come after the last signed checkpoint the backups carry (through sequence %d), and no seal covers them: nothing vouches for them, and nird signs its next checkpoint over them; check them by other means (nirctl verify --checkpoint with a checkpoint kept elsewhere)\n",
			vouched+1, last, last-vouched, vouched)
	}
	if *data != "" {
		// The checkpoint key too: without it nird makes a new one, and the checkpoints it
		// signs then verify against another public key than the register's (found on
		// 2026-12-07 by a walk through the README).
		fmt.Fprintf(stdout, "next: put the person key at %s (or give nird --person-key-file), the master key at %s (or give nird --master-key-file) and the checkpoint signing key at %s (or give nird --checkpoint-key; without it nird makes a new one, with another public key), then: nird --data %s\n",
			filepath.Join(*data, "personkey.secret"), filepath.Join(*data, "master.key"), filepath.Join(*data, "checkpoint.key"), *data)
	}
	return nil
}

// firstSeqs lists the first n of seqs, and how many more there are.
func firstSeqs(seqs []uint64, n int) string {
	if len(seqs) <= n {
		return fmt.Sprint(seqs)
	}
	return fmt.Sprintf("%v and %d more", seqs[:n], len(seqs)-n)
}

// startOver removes the store directory of a data directory that holds only what a restore
// stopped half-way stored (eventstore.MetaRestoreUnfinished), so that the restore starts
// over; any other store there is a register, which is left as it is (an error).
func startOver(ctx context.Context, cfg eventstore.Config, stderr io.Writer) error {
	if _, err := os.Stat(cfg.Dir); err != nil {
		return errors.New("it holds no store of an unfinished restore")
	}
	store, err := eventstore.Open(ctx, eventstore.Config{Dir: cfg.Dir})
	if err != nil {
		return fmt.Errorf("its store: %w", err)
	}
	uerr := store.UnfinishedRestore(ctx)
	if err := store.Close(); err != nil {
		return err
	}
	if !errors.Is(uerr, eventstore.ErrRestoreUnfinished) {
		return errors.Join(errors.New("it holds a register, not an unfinished restore"), uerr)
	}
	fmt.Fprintf(stderr, "%s holds a restore that did not finish: removing it, to start over\n", cfg.Dir)
	return os.RemoveAll(cfg.Dir)
}

// restoreStopped is the error of a restore that stopped after sequence last. Whether the
// target is marked unfinished is asked of it: a refusal before the first write (a target
// made for another register) leaves it unmarked, nothing restored, and its own advice
// stands. A batch whose acknowledgement was lost may be stored past last
// (eventstore.Store.Import); a marked target stays unfinished either way.
func restoreStopped(ctx context.Context, store *eventstore.Store, last uint64, err error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if store.UnfinishedRestore(ctx) == nil {
		return fmt.Errorf("restore stopped after sequence %d, before its first write (the target is not marked unfinished): %w", last, err)
	}
	return fmt.Errorf("restore stopped after sequence %d, or a batch later (the target stays unfinished: nird will not start on it; run the restore again): %w", last, err)
}

// emptyDataDir refuses a data directory that holds anything but nothing: a restore never
// mixes with a register already there.
func emptyDataDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("--data: %w", err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("--data: %s is not empty (%d entries): restore only into an empty or new directory", dir, len(entries))
	}
	return nil
}
