package eventstore

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/introreg/nir/internal/natstest"
)

// TestUnanswered: on a replicated stream, no responders to a direct get is waited out, up to
// the request timeout and no longer; on one server, and for any other error, it is returned
// at once.
func TestUnanswered(t *testing.T) {
	noResp := fmt.Errorf("eventstore: read: %w", nats.ErrNoResponders)
	one := &Store{cfg: Config{RequestTimeout: time.Second}}
	var waited time.Duration
	if one.unanswered(noResp, &waited) {
		t.Error("one server: no responders waited out; the stream is gone there")
	}
	three := &Store{cfg: Config{RequestTimeout: time.Second}, replicated: true}
	if three.unanswered(errors.New("timeout"), &waited) || three.unanswered(nil, &waited) {
		t.Error("another error, or none, taken for no responders")
	}
	tries := 0
	for three.unanswered(noResp, &waited) {
		tries++
		if tries > 1000 {
			t.Fatal("no responders waited out for ever")
		}
	}
	if want := int(time.Second / retryPause); tries != want {
		t.Errorf("no responders asked again %d times, want %d (the request timeout's worth of pauses)", tries, want)
	}
}

// TestCreatedStream: the stream another process has just created is waited for while it
// answers "not found", and returned once it is there; a stream that never comes ends with the
// deadline.
func TestCreatedStream(t *testing.T) {
	srv := natstest.RunServer(t, natstest.Options{})
	s, err := Open(context.Background(), Config{URL: srv.ClientURL()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go func() {
		time.Sleep(300 * time.Millisecond)
		if _, err := s.js.CreateStream(ctx, jetstream.StreamConfig{Name: "NIR_LATE", Subjects: []string{"late.>"}}); err != nil {
			t.Errorf("create: %v", err)
		}
	}()
	start := time.Now()
	st, err := s.createdStream(ctx, "NIR_LATE")
	if err != nil || st.CachedInfo().Config.Name != "NIR_LATE" {
		t.Fatalf("createdStream = %v, %v; want the stream once made", st, err)
	}
	if time.Since(start) < 250*time.Millisecond {
		t.Errorf("returned after %v, before the stream existed", time.Since(start))
	}
	short, cancelShort := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancelShort()
	if _, err := s.createdStream(short, "NIR_NEVER"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a stream that never comes: %v, want the deadline", err)
	}
}
