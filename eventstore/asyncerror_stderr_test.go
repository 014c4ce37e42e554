package eventstore_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/introreg/nir/eventstore"
)

// TestStore_StderrErrorRedacted: a store with no Logger (nirctl's) writes the connection's
// asynchronous errors to stderr, and wrote them as the server gave them: a permissions
// violation on a person's subject printed the person key, which the same line logged by
// nird (with a Logger) redacts. The stderr line is now redacted as the logged one is.
func TestStore_StderrErrorRedacted(t *testing.T) {
	key := personKey("stderr-redacted")
	subject, err := eventstore.Subject(key)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(),
		NoLog: true, NoSigs: true, DisableJetStreamBanner: true,
		Users: []*server.User{{Username: "writer", Password: "writer", Permissions: &server.Permissions{
			Publish: &server.SubjectPermission{Allow: []string{">"}, Deny: []string{subject}}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	t.Cleanup(srv.Shutdown)

	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stderr
	os.Stderr = pw
	var (
		mu  sync.Mutex
		out bytes.Buffer
	)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		buf := make([]byte, 4096)
		for {
			n, err := pr.Read(buf)
			mu.Lock()
			out.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		os.Stderr = saved
		pw.Close()
		<-copied
		_, _ = io.Copy(io.Discard, pr)
	}()
	printed := func() string {
		mu.Lock()
		defer mu.Unlock()
		return out.String()
	}

	ctx := context.Background()
	s, err := eventstore.Open(ctx, eventstore.Config{URL: srv.ClientURL(), RequestTimeout: time.Second,
		NATSOptions: []nats.Option{nats.UserInfo("writer", "writer")}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	actx, cancel := context.WithTimeout(ctx, time.Second)
	_, err = s.Append(actx, eventstore.PersonAppend{PersonKey: key, Events: events(key, 1)})
	cancel()
	if err == nil {
		t.Fatal("an append to a subject the user may not publish to was stored")
	}
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(strings.ToLower(printed()), "permissions violation"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the server's refusal was not written to stderr within 20 s; stderr:\n%s", printed())
		}
	}
	if got := printed(); strings.Contains(got, key) {
		t.Errorf("stderr holds the person key:\n%s", got)
	}
}
