package main

import (
	"crypto/ed25519"
	"fmt"
	"path/filepath"
	"time"

	"github.com/introreg/nir/eventstore"
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

// loadCheckpointKey is eventstore.LoadCheckpointKey, its errors naming the flag.
func loadCheckpointKey(path string, create bool) (ed25519.PrivateKey, error) {
	key, err := eventstore.LoadCheckpointKey(path, create)
	if err != nil {
		return nil, fmt.Errorf("--checkpoint-key: %w", err)
	}
	return key, nil
}
