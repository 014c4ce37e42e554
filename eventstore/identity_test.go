package eventstore_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/natstest"
)

// TestStore_Identity: Open records a random id and the caller's metadata when it creates the
// stream, finds them again on every later Open (also after a restart of the embedded
// server), and a stream deleted and re-created has another identity.
func TestStore_Identity(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "js")
	open := func() *eventstore.Store {
		t.Helper()
		s, err := eventstore.Open(ctx, eventstore.Config{Dir: dir, Metadata: map[string]string{"nir_test": "v"}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	first := s.Identity()
	if !first.New || len(first.ID) != 32 || first.Metadata["nir_test"] != "v" || first.Created.IsZero() || first.String() != first.ID {
		t.Fatalf("identity of a created stream = %+v", first)
	}
	key := personKey("identity")
	if _, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: key, Events: events(key, 1)}); err != nil {
		t.Fatal(err)
	}
	raw, err := s.RawAt(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := eventstore.Decode(1, raw); err != nil || ev.GetPersonKey() != key {
		t.Fatalf("RawAt(1) decodes to %v, %v", ev, err)
	}
	if _, err := s.RawAt(ctx, 2); !errors.Is(err, eventstore.ErrNoMessage) {
		t.Fatalf("RawAt past the end: %v, want ErrNoMessage", err)
	}
	s.Close()

	s = open()
	again := s.Identity()
	if again.New || again.ID != first.ID || !again.Created.Equal(first.Created) {
		t.Fatalf("identity after a restart = %+v, want %+v (not new)", again, first)
	}
	s.Close()

	// Deleted and re-created by hand (on a server that lets the test do it).
	srv := natstest.RunServer(t, natstest.Options{})
	s, err = eventstore.Open(ctx, eventstore.Config{URL: srv.ClientURL()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	before := s.Identity()
	js, err := jetstream.New(natstest.Connect(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(ctx, eventstore.StreamName); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: eventstore.StreamName, Subjects: []string{"nir.ev.*"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	now, err := s.CurrentIdentity(ctx)
	if err != nil || now.String() == before.String() || now.ID != "" {
		t.Fatalf("identity of a re-created stream = %+v, %v; want another than %v, without id", now, err, before)
	}
}

// TestStore_ReadOnly: a read-only Open needs the stream and changes nothing.
func TestStore_ReadOnly(t *testing.T) {
	ctx := context.Background()
	srv := natstest.RunServer(t, natstest.Options{})
	if _, err := eventstore.Open(ctx, eventstore.Config{URL: srv.ClientURL(), ReadOnly: true}); !errors.Is(err, eventstore.ErrInvalid) {
		t.Fatalf("read-only Open without a stream: %v, want ErrInvalid", err)
	}
	w, err := eventstore.Open(ctx, eventstore.Config{URL: srv.ClientURL()})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r, err := eventstore.Open(ctx, eventstore.Config{URL: srv.ClientURL(), ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Identity().ID != w.Identity().ID || r.Identity().New {
		t.Errorf("read-only identity %+v, want %+v", r.Identity(), w.Identity())
	}
	if r.Identity().String() != w.Identity().String() {
		t.Errorf("identity strings differ")
	}
}
