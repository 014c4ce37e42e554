package eventstore_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/natstest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// openStore opens a store on a fresh embedded test server (natstest) and closes it when
// the test ends.
func openStore(tb testing.TB, mod func(*eventstore.Config)) (*eventstore.Store, *server.Server) {
	tb.Helper()
	srv := natstest.RunServer(tb, natstest.Options{})
	cfg := eventstore.Config{URL: srv.ClientURL()}
	if mod != nil {
		mod(&cfg)
	}
	s, err := eventstore.Open(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s, srv
}

// personKey makes a person key shaped like nird's (hex of a keyed hash).
func personKey(name string) string {
	h := sha256.Sum256([]byte("test-key:" + name))
	return hex.EncodeToString(h[:])
}

// newEvent makes a complete event for person key, recorded now.
func newEvent(key string) *nirv1.Event {
	return newEventAt(key, time.Now())
}

func newEventAt(key string, recorded time.Time) *nirv1.Event {
	return &nirv1.Event{
		Id:         ulid.Make().String(),
		PersonKey:  key,
		Kommune:    "0301",
		Actor:      &nirv1.Actor{Subject: "test"},
		RecordedAt: timestamppb.New(recorded),
		Payload: &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{
			ToKommune: "4601",
			Date:      &nirv1.Date{Year: 2024, Month: 3, Day: 1},
		}},
	}
}

func events(key string, n int) []*nirv1.Event {
	out := make([]*nirv1.Event, n)
	for i := range out {
		out[i] = newEvent(key)
	}
	return out
}

// mustRead reads a person or fails the test.
func mustRead(tb testing.TB, s *eventstore.Store, key string) ([]eventstore.Stored, uint64) {
	tb.Helper()
	evs, last, err := s.Read(context.Background(), key)
	if err != nil {
		tb.Fatalf("Read: %v", err)
	}
	return evs, last
}

func mustLastSeq(tb testing.TB, s *eventstore.Store) uint64 {
	tb.Helper()
	seq, err := s.LastSeq(context.Background())
	if err != nil {
		tb.Fatalf("LastSeq: %v", err)
	}
	return seq
}

func ids(evs []eventstore.Stored) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Event.GetId()
	}
	return out
}

// eventualTimeout is how long a test waits for what another key store's watch or a
// notification must bring: such a fact holds within milliseconds on an idle machine, and a
// watch that never delivers it still fails the test; but a loaded 2-core CI machine under the
// race detector took longer than 10-20 s for such waits (a7ef0c8), so they get 30 s, not 5.
const eventualTimeout = 30 * time.Second

// eventually polls cond until it holds or the deadline passes.
func eventually(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not reached within %s", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// setupTimeout bounds what a test does to get a store to the state it tests (opening it,
// the embedded server's start and the streams' check; writing what is later damaged): a
// loaded CI machine under the race detector can take longer than the short request timeout
// (1 s) the damage tests give the reads they test, and a store opened with no deadline gets
// only that request timeout for its opening (storetest.OpenAt failed so in CI, on opening).
// The reads under test keep the store's own request timeout.
const setupTimeout = time.Minute

// setupCtx is a context of setupTimeout, cancelled when the test ends.
func setupCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	t.Cleanup(cancel)
	return ctx
}

// openLogged opens a store with cfg, logging into the buffer it returns, and closes it when
// the test ends. The opening has setupTimeout; the store's requests have cfg's timeout.
func openLogged(t *testing.T, cfg eventstore.Config) (*eventstore.Store, *lockedBuffer) {
	t.Helper()
	logs := new(lockedBuffer)
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	s, err := eventstore.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, logs
}
