package eventstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/natstest"
)

// TestStore_LargestBatch: one Append of MaxBatchEvents events is stored, on the embedded
// server (Config.Dir) and on a server configured as deploy/nats's are (natstest); the most
// registrations the API takes in one request make up to that many events (internal/ingest).
// Before 2026-12-08 the embedded server had the NATS default, 1000, and so did
// MaxBatchEvents, below what such a request makes.
func TestStore_LargestBatch(t *testing.T) {
	if natstest.BatchLimit != eventstore.MaxBatchEvents {
		t.Fatalf("natstest's batch limit %d, eventstore.MaxBatchEvents %d: the test servers are not configured as nird's", natstest.BatchLimit, eventstore.MaxBatchEvents)
	}
	embedded, err := eventstore.Open(context.Background(), eventstore.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = embedded.Close() })
	external, _ := openStore(t, nil)
	for name, s := range map[string]*eventstore.Store{"embedded": embedded, "external": external} {
		key := personKey("largest-" + name)
		pos, err := s.Append(context.Background(), eventstore.PersonAppend{PersonKey: key, Events: events(key, eventstore.MaxBatchEvents)})
		if err != nil || len(pos) != eventstore.MaxBatchEvents {
			t.Errorf("%s: an append of %d events: %d positions, %v", name, eventstore.MaxBatchEvents, len(pos), err)
		}
	}
}

// TestStore_ServerBatchLimitBelow: on a NATS server left at its default atomic batch limit
// (1000), an append past it is ErrTooLarge, nothing stored, and the error tells the operator
// which setting to raise to what: every large request is refused until then.
func TestStore_ServerBatchLimitBelow(t *testing.T) {
	srv := natstest.RunServer(t, natstest.Options{DefaultBatchLimit: true})
	s, err := eventstore.Open(context.Background(), eventstore.Config{URL: srv.ClientURL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	key := personKey("past-the-server")
	_, err = s.Append(context.Background(), eventstore.PersonAppend{PersonKey: key, Events: events(key, 1001)})
	if !errors.Is(err, eventstore.ErrTooLarge) || !strings.Contains(err.Error(), "jetstream { limits { batch { max_msgs: 3000 } } }") {
		t.Fatalf("1001 events on a server of the default batch limit: %v; want ErrTooLarge naming the setting", err)
	}
	if last := mustLastSeq(t, s); last != 0 {
		t.Errorf("the refused append left the stream at %d", last)
	}
}
