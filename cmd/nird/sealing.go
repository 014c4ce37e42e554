package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/sealing"
)

// masterKeyFileName is the master key's file in the data directory, unless --master-key-file
// or NIR_MASTER_KEY says otherwise.
const masterKeyFileName = "master.key"

// masterKeyPath is the master key's file: --master-key-file, else <data>/master.key.
func masterKeyPath(cfg Config) string {
	if cfg.MasterKeyFile != "" {
		return cfg.MasterKeyFile
	}
	return filepath.Join(cfg.Data, masterKeyFileName)
}

// openSealing loads the master key and opens the store of the persons' data keys
// (DOMAIN.md Product decisions 15). A master key file made now, for a key store that holds
// keys it does not open, is removed again: nird refuses to start rather than read every
// person as erased.
func openSealing(ctx context.Context, cfg Config, store *eventstore.Store, log *slog.Logger) (*eventstore.KeyStore, sealing.Events, error) {
	path := masterKeyPath(cfg)
	_, statErr := os.Stat(path)
	_, fromEnv := os.LookupEnv(sealing.MasterKeyEnv)
	fresh := errors.Is(statErr, os.ErrNotExist) && !fromEnv
	master, err := sealing.LoadMaster(path, true)
	if err != nil {
		return nil, sealing.Events{}, fmt.Errorf("--master-key-file: %w", err)
	}
	keys, err := openKeyStore(ctx, store, master, log)
	if err != nil {
		if fresh {
			os.Remove(path)
		}
		if errors.Is(err, eventstore.ErrMasterKey) {
			return nil, sealing.Events{}, fmt.Errorf("--master-key-file: %w: give nird the master key the register was started with (a backup of %s, or NIR_MASTER_KEY)", err, masterKeyFileName)
		}
		return nil, sealing.Events{}, fmt.Errorf("data keys: %w", err)
	}
	return keys, sealing.Events{Keys: keys}, nil
}

// keyStoreWait bounds how long nird waits at start for the data-key bucket of a cluster whose
// servers are still electing its leader (a bucket just made by another nird, servers just
// started): each attempt is bounded by the store's request timeout.
const keyStoreWait = 2 * time.Minute

// openKeyStore opens the data keys, trying again while the cluster is not ready. A wrong
// master key or a bucket that cannot be used is not retried.
func openKeyStore(ctx context.Context, store *eventstore.Store, master *sealing.Key, log *slog.Logger) (*eventstore.KeyStore, error) {
	deadline := time.Now().Add(keyStoreWait)
	for {
		keys, err := store.OpenKeyStore(ctx, master)
		if err == nil || errors.Is(err, eventstore.ErrMasterKey) || errors.Is(err, eventstore.ErrInvalid) || ctx.Err() != nil || time.Now().After(deadline) {
			return keys, err
		}
		log.Warn("the data-key bucket is not available yet; trying again", "bucket", eventstore.KeyBucket, "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
