package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// CheckpointConfig configures the checkpoints nird publishes (eventstore.RunCheckpoints), on
// one nird at a time: the holder of the "checkpoints" lease.
type CheckpointConfig struct {
	// KeyFile is the signing key; "" = <data>/checkpoint.key.
	KeyFile string
	// Every is how many new events make a checkpoint (0: by time only); Interval the
	// longest new events wait for one.
	Every    int
	Interval time.Duration
}

// checkpointKeyName is the checkpoint signing key's file in the data directory, unless
// --checkpoint-key names another.
const checkpointKeyName = "checkpoint.key"

// checkpointKeyPath is the signing key's file: --checkpoint-key, or <data>/checkpoint.key.
func checkpointKeyPath(cfg Config) string {
	if cfg.Checkpoint.KeyFile != "" {
		return cfg.Checkpoint.KeyFile
	}
	return filepath.Join(cfg.Data, checkpointKeyName)
}

// loadCheckpointKey reads the ed25519 signing key of the checkpoints: the 32-byte seed in
// hex on one line, in a file nobody else may read. A missing file is made (mode 0600) when
// create is set. Several nird on one stream should share the key (the same file on each),
// so that every checkpoint verifies against one public key.
func loadCheckpointKey(path string, create bool) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && create {
		seed := make([]byte, ed25519.SeedSize)
		if _, err := rand.Read(seed); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("--checkpoint-key: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("--checkpoint-key: %w", err)
		}
		_, err = fmt.Fprintln(f, hex.EncodeToString(seed))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
			return nil, fmt.Errorf("--checkpoint-key: %w", err)
		}
		return ed25519.NewKeyFromSeed(seed), nil
	}
	if err != nil {
		return nil, fmt.Errorf("--checkpoint-key: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("--checkpoint-key: %s may be read by others (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	seed, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("--checkpoint-key: %s does not hold a %d-byte ed25519 seed in hex", path, ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}
