package eventstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrNoRoom says that the server refused to store: its disk, or the storage JetStream
// allows itself, is full. Nothing of the refused append was stored.
var ErrNoRoom = errors.New("eventstore: the event store has no room for more events")

// ErrWriteFailed says that the embedded server failed to write to its disk (a full disk,
// an I/O error). A stream that failed a write stores nothing more until its server
// restarts, even once the disk has room again: nats-server keeps the error.
var ErrWriteFailed = errors.New("eventstore: the embedded server failed to write to its disk and stores nothing more until it restarts")

// writeWatchInterval is how often WatchWrites asks the embedded server.
var writeWatchInterval = 2 * time.Second

// WatchWrites returns ErrWriteFailed (with the server's words) once the embedded server
// reports a write error on one of its streams (the events, the data keys, the leases), and
// nil when ctx ends. With an external server it only waits for ctx: a replicated stream's
// node that fails a write steps down, and another node takes over.
//
// nird ends when it returns an error, so that its supervisor starts it again: a restart is
// the only way the embedded server clears the error, and without one every later append
// would wait for an answer the server never sends.
func (s *Store) WatchWrites(ctx context.Context) error {
	if s.srv == nil {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(writeWatchInterval)
	defer t.Stop()
	for {
		if err := s.writeError(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// writeError asks the embedded server's health check for a stream's write error.
func (s *Store) writeError() error {
	h := s.srv.Healthz(&server.HealthzOptions{Details: true})
	for _, e := range h.Errors {
		if e.Type == server.HealthzErrorStream && strings.Contains(e.Error, "write error") {
			return fmt.Errorf("%w: %s", ErrWriteFailed, e.Error)
		}
	}
	return nil
}

// The server's codes for a refusal for want of storage (nats-server's errors.json), which
// classify makes errKindNoRoom: when the disk is full at its start, JetStream allows itself
// no more than 75 % of what was free.
const (
	jsErrAccountResourcesExceeded jetstream.ErrorCode = 10002
	jsErrInsufficientResources    jetstream.ErrorCode = 10023
	jsErrStorageResourcesExceeded jetstream.ErrorCode = 10047
)
