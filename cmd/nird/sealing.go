package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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
	var keys *eventstore.KeyStore
	err = startRetry(ctx, log, "open the data keys", cfg.NATSURL != "", func() error {
		var err error
		keys, err = store.OpenKeyStore(ctx, master)
		return err
	})
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

// startRetry runs a step of the start until it succeeds, with a cluster (external NATS)
// trying it again while the cluster is not ready: servers just restarted, a stream still
// electing its leader ("JetStream system temporarily unavailable", a request that timed out).
// An error waiting does not mend (a refused login, a bad configuration, a wrong key) ends it
// at once; so does ctx, or startWait. Without a cluster (the embedded server) step runs
// once. The fault-injection suite saw nird exit at a restart while a node was down, leaving
// nobody to take the regelmotor's lease.
func startRetry(ctx context.Context, log *slog.Logger, what string, cluster bool, step func() error) error {
	deadline := time.Now().Add(startWait)
	for {
		err := step()
		if err == nil || !cluster || !transientStart(err) || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		log.Warn("the cluster is not ready; trying again", "step", what, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// transientStart reports whether a start-up step failed because the cluster was not ready.
func transientStart(err error) bool {
	var apiErr *jetstream.APIError
	switch {
	case errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeJetStreamNotEnabled:
		return false
	case errors.As(err, &apiErr) && apiErr.ErrorCode == jsClusterNoPeers:
		// A cluster still forming: its meta leader does not know enough servers yet to
		// place a replicated stream. (Too many replicas for the cluster fails the same way,
		// after startWait.)
		return true
	case errors.As(err, &apiErr):
		return apiErr.Code == 503 // JetStream system temporarily unavailable (10008)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout), errors.Is(err, jetstream.ErrNoStreamResponse):
		return true
	}
	return strings.Contains(err.Error(), "temporarily unavailable")
}

// jsClusterNoPeers is nats-server's JSClusterNoPeersErr, "no suitable peers for placement"
// (nats.go names no constant for it).
const jsClusterNoPeers jetstream.ErrorCode = 10005

// startWait bounds how long a start-up step waits for a cluster whose servers are still
// electing a stream's leader: each attempt is bounded by the store's request timeout.
const startWait = 2 * time.Minute
