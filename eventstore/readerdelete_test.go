package eventstore_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/introreg/nir/eventstore"
)

// recordHandler keeps the messages of the log records it is given.
type recordHandler struct {
	mu   *sync.Mutex
	msgs *[]string
}

func (h recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.msgs = append(*h.msgs, r.Message)
	return nil
}
func (h recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h recordHandler) WithGroup(string) slog.Handler      { return h }

// TestStore_ReaderConsumerDeleteQuiet: a read-only store's ordered consumer is replaced
// (here: deleted by an operator, as after missed heartbeats or a reconnect), and nats.go asks
// to delete the consumer it replaces, which a read-only user may not. nats.go's default
// handler wrote the server's refusal to stderr: nirctl verify through the reader context
// printed a permissions violation, then "ok". The refusal is now logged at debug level and
// nothing is written to stderr.
func TestStore_ReaderConsumerDeleteQuiet(t *testing.T) {
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(),
		NoLog: true, NoSigs: true, DisableJetStreamBanner: true,
		Users: []*server.User{
			{Username: "admin", Password: "admin"},
			{Username: "reader", Password: "reader", Permissions: &server.Permissions{
				Publish: &server.SubjectPermission{Allow: []string{">"}, Deny: []string{"$JS.API.CONSUMER.DELETE.>"}}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	t.Cleanup(srv.Shutdown)
	ctx := context.Background()
	w, err := eventstore.Open(ctx, eventstore.Config{URL: srv.ClientURL(), NATSOptions: []nats.Option{nats.UserInfo("admin", "admin")}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	key := personKey("reader-delete")
	if _, err := w.Append(ctx, eventstore.PersonAppend{PersonKey: key, Events: events(key, 1)}); err != nil {
		t.Fatal(err)
	}

	// The NATS client's default handler writes to the process's stderr.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stderr
	os.Stderr = pw
	captured := make(chan string)
	go func() {
		b, _ := io.ReadAll(pr)
		captured <- string(b)
	}()
	restore := func() string {
		if os.Stderr == pw {
			os.Stderr = saved
			pw.Close()
			return <-captured
		}
		return ""
	}
	defer restore()

	var (
		mu   sync.Mutex
		msgs []string
	)
	r, err := eventstore.Open(ctx, eventstore.Config{URL: srv.ClientURL(), ReadOnly: true, Logger: slog.New(recordHandler{&mu, &msgs}),
		NATSOptions: []nats.Option{nats.UserInfo("reader", "reader")}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	stop, err := r.Notify(func() {})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	// An operator deletes the reader's consumer: nats.go replaces it, deleting the old one.
	nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo("admin", "admin"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	stream, err := js.Stream(ctx, eventstore.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	names := stream.ConsumerNames(ctx)
	deleted := 0
	for name := range names.Name() {
		if err := stream.DeleteConsumer(ctx, name); err != nil {
			t.Fatal(err)
		}
		deleted++
	}
	if deleted == 0 {
		t.Fatal("the reader's ordered consumer is not on the stream")
	}
	refused := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			if strings.Contains(m, "refused the deletion") {
				return true
			}
		}
		return false
	}
	for deadline := time.Now().Add(20 * time.Second); !refused(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the server's refusal of the replaced consumer's deletion was not logged within 20 s; stderr:\n%s", restore())
		}
	}
	if out := restore(); strings.Contains(strings.ToLower(out), "permission") {
		t.Errorf("a read-only store wrote a permissions violation to stderr:\n%s", out)
	}
}
