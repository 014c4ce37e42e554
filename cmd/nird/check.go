package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/nats-io/nkeys"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/personkey"
	"github.com/introreg/nir/sealing"
	"github.com/introreg/nir/smallfile"
)

// checked is what preflight found, for run to go on with.
type checked struct {
	authn   *auth.Authenticator
	keyFile string // the person key secret's path
}

// preflight runs every check of the configuration that the start runs before it opens the
// store or binds a port: the flags (Config.Validate, done by parseConfig: listen addresses,
// development mode on loopback only, group commit bounds, limits, NATS users), the data
// directory, the token file, the person key file, and the NATS credential, key and CA files
// (nird's and the ingress's). nird --check-config runs it and exits; run runs it first, so
// the two cannot drift apart. What it cannot know without starting (a port taken now, the
// data directory locked by a running nird) run checks next, before anything is started.
func preflight(cfg Config, log *slog.Logger) (checked, error) {
	if err := cfg.Validate(); err != nil {
		return checked{}, err
	}
	if err := checkDataDir(cfg.Data, !cfg.CheckOnly, log); err != nil {
		return checked{}, err
	}
	authn, err := authenticator(cfg, log)
	if err != nil {
		return checked{}, err
	}
	keyFile := cfg.PersonKeyFile
	if keyFile == "" {
		keyFile = filepath.Join(cfg.Data, personkey.FileName)
	}
	// An existing key file is read as the start reads it; a missing one is created there.
	// --check-config changes nothing: it says what the start would make private.
	if _, err := os.Stat(keyFile); !errors.Is(err, os.ErrNotExist) {
		load := personkey.Load
		if cfg.CheckOnly {
			load = personkey.Inspect
		}
		k, err := load(keyFile)
		if err != nil {
			return checked{}, fmt.Errorf("--person-key-file: %w", err)
		}
		logLoadNote(k, log)
		warnOwner(log, "--person-key-file", k.OwnerNote())
	}
	// The master key likewise (DOMAIN.md Product decisions 15): from NIR_MASTER_KEY, or its
	// file if it is there; made at start if not.
	if p := masterKeyPath(cfg); fileExists(p) || os.Getenv(sealing.MasterKeyEnv) != "" {
		if _, err := sealing.LoadMaster(p, false); err != nil {
			return checked{}, fmt.Errorf("--master-key-file: %w", err)
		}
		if _, env := os.LookupEnv(sealing.MasterKeyEnv); !env {
			warnOwnerOf(log, "--master-key-file", p)
		}
	}
	// The checkpoint key likewise: read if it is there, made at start if not.
	if p := checkpointKeyPath(cfg); fileExists(p) {
		if _, err := loadCheckpointKey(p, false); err != nil {
			return checked{}, err
		}
		warnOwnerOf(log, "--checkpoint-key", p)
	}
	opts, err := natsOptions(cfg)
	if err != nil {
		return checked{}, err
	}
	if cfg.NATSURL != "" {
		// The ingress's own credentials, read as prepareNATS reads them. (On the embedded
		// server nird makes the users' keys itself, at start, in <data>/nats.)
		if _, err := clientOptions("--nats-ingress", cfg.NATSURL, cfg.NATSIngressCreds, cfg.NATSIngressUser, cfg.NATSIngressPassword, cfg.NATSIngressNKey, cfg.NATSCA); err != nil {
			return checked{}, err
		}
	}
	sc := eventstore.Config{Dir: filepath.Join(cfg.Data, "jetstream"), URL: cfg.NATSURL, Listen: cfg.NATSListen, Replicas: cfg.Replicas, DuplicateWindow: cfg.DuplicateWindow, GroupCommit: cfg.Group, NATSOptions: opts}
	if err := sc.Validate(); err != nil {
		flag := "--nats-url"
		if cfg.NATSURL == "" {
			flag = "--nats-listen"
		}
		return checked{}, fmt.Errorf("%s: %w", flag, err)
	}
	return checked{authn: authn, keyFile: keyFile}, nil
}

// checkDataDir refuses a data directory that is not a directory, and makes one of nird's
// own that others may write to private to them (chmod o-w), saying so: anyone could put a
// master key, person key, lock file or NATS seed of their own in it before nird makes one,
// or replace one, and every key file's mode check was moot (a sticky bit keeps nird's
// files, not the names it has not made yet). One of another owner is only warned about: a
// Kubernetes emptyDir is root's, mode 0777, and its others are the pod's own containers. A
// shared one (sticky and writable by others, as /tmp is) is refused, whoever owns it: others
// may make any name nird has not made yet in it, and its mode is not nird's to change (nird
// run as root owns /tmp, and made it o-w for every user of the machine). A missing one is
// made later (mode 0700), which is why the refusal of a shared one names a subdirectory for
// --data; one in a shared directory must be nird's user's (checkSharedParent). nird does not
// move into one by itself: every path (the default key files, nirctl --store, the backups'
// scripts) names the data directory as configured, and a directory it chose below a shared
// one another user may have made first. Without fix (nird --check-config, which must change
// nothing) it only says what the start would change.
func checkDataDir(dir string, fix bool, log *slog.Logger) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("--data: %w", err)
	case !fi.IsDir():
		return fmt.Errorf("--data: %s is not a directory", dir)
	}
	if err := checkSharedParent(dir, fi); err != nil {
		return err
	}
	switch {
	case fi.Mode().Perm()&0o002 == 0:
		return nil
	case fi.Mode()&os.ModeSticky != 0:
		return fmt.Errorf("--data: %s is a shared directory (mode %v, as /tmp and a Kubernetes emptyDir of medium Memory are): anyone may put files of their own in it, a key among them; point --data at a subdirectory, e.g. --data %s, which nird creates mode 0700",
			dir, fi.Mode(), filepath.Join(dir, "nird"))
	}
	if uid, _, ok := smallfile.Owner(fi); ok && uid == os.Geteuid() {
		mode := fi.Mode() & (os.ModePerm | os.ModeSticky | os.ModeSetgid) &^ 0o002
		if !fix {
			log.Warn("the data directory is writable by others, who could put keys of their own in it; the start will make it private to them (chmod o-w)", "dir", dir, "mode", fi.Mode().String(), "would_be", mode.String())
			return nil
		}
		if err := os.Chmod(dir, mode); err != nil {
			return fmt.Errorf("--data: %s may be written by others (mode %v) and could not be made private to them: %w; chmod o-w %s", dir, fi.Mode(), err, dir)
		}
		log.Warn("the data directory was writable by others, who could put keys of their own in it; made it private to them", "dir", dir, "mode", fi.Mode().String(), "now", mode.String())
		return nil
	}
	log.Warn("the data directory may be written by others, who could put keys of their own in it, and is not nird's to change; chmod o-w it unless its others are nird's own (a Kubernetes emptyDir)", "dir", dir, "mode", fi.Mode().String())
	return nil
}

// checkSharedParent refuses a data directory (fi, at dir) in a shared directory (sticky and
// writable by others, as /tmp and a Kubernetes emptyDir of medium Memory are) that is not
// nird's user's: anyone may have made it there before nird did, with keys of their own in
// it, and the refusal of the shared directory itself names such a subdirectory for --data.
func checkSharedParent(dir string, fi os.FileInfo) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("--data: %w", err)
	}
	parent := filepath.Dir(abs)
	pfi, err := os.Stat(parent)
	if err != nil || pfi.Mode()&os.ModeSticky == 0 || pfi.Mode().Perm()&0o002 == 0 {
		return nil
	}
	if uid, _, ok := smallfile.Owner(fi); ok && uid != os.Geteuid() {
		return fmt.Errorf("--data: %s lies in the shared directory %s (mode %v) and belongs to uid %d, not to nird's user: anyone may have made it there first, with keys of their own in it; remove it and let nird make it (mode 0700)", dir, parent, pfi.Mode(), uid)
	}
	return nil
}

// warnOwner logs note, what is wrong with a key file's owner (smallfile.OwnerNote), if any.
// Such a file is not refused: deploy/compose's secrets are the operator's own files, which
// nird reads through their group (a Kubernetes Secret's files are root's).
func warnOwner(log *slog.Logger, flag, note string) {
	if note != "" {
		log.Warn("a key file belongs to another user than nird's and root", "flag", flag, "detail", note)
	}
}

// warnOwnerOf is warnOwner for the key file at path, which was read and checked just now
// (by a loader that does not return what it read): looked up again, for the log only.
func warnOwnerOf(log *slog.Logger, flag, path string) {
	if fi, err := os.Stat(path); err == nil {
		warnOwner(log, flag, smallfile.OwnerNote(fi, path))
	}
}

// checkCreds reads a NATS credentials file as the client will when it connects: a user JWT
// and the user's nkey seed.
func checkCreds(path string) error {
	b, err := smallfile.Read(path, 64<<10)
	if err != nil {
		return err
	}
	if _, err := nkeys.ParseDecoratedJWT(b); err != nil {
		return fmt.Errorf("%s: no user JWT: %w", path, err)
	}
	kp, err := nkeys.ParseDecoratedUserNKey(b)
	if err != nil {
		return fmt.Errorf("%s: no user nkey seed: %w", path, err)
	}
	kp.Wipe()
	return nil
}

// fileExists reports whether path names something (an error other than not-existing counts
// as existing, so that reading it reports the error).
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, os.ErrNotExist)
}
