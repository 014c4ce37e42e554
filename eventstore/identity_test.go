package eventstore_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/natstest"
	"github.com/introreg/nir/internal/storetest"
	"github.com/introreg/nir/internal/syncbuf"
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

// TestStore_StreamMetadataDamaged: the stream's metadata file in the embedded store damaged
// (or removed): the NATS server does not load the stream, and Open's create makes it anew
// over the message blocks left in its directory, so every message is still there. Before,
// the re-created stream got a new id and the caller's metadata as if new: the read models
// and every snapshot looked built from another stream (rebuilt, taken out of service), and
// the person key's fingerprint vouched for whatever key nird was started with. Now the
// stream gets back the id the last checkpoint names (a new one without checkpoints), the
// caller's metadata is not written, the identity is not New, and an error is logged.
func TestStore_StreamMetadataDamaged(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name        string
		checkpoint  bool
		damage      func(path string) error
		wantKeepsID bool
	}{
		{"Flipped", true, natstest.FlipMiddle, true},
		{"Removed", true, os.Remove, true},
		{"NoCheckpoint", false, natstest.FlipMiddle, false},
		{"BothStreams", true, func(path string) error {
			// The checkpoint stream's metadata damaged as well: its re-creation brings
			// the checkpoints back first.
			other := filepath.Join(filepath.Dir(filepath.Dir(path)), eventstore.CheckpointStreamName, "meta.inf")
			return errors.Join(natstest.FlipMiddle(path), natstest.FlipMiddle(other))
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "js")
			s, err := eventstore.Open(ctx, eventstore.Config{Dir: dir, Metadata: map[string]string{"nir_test": "v"}})
			if err != nil {
				t.Fatal(err)
			}
			key := personKey("meta")
			if _, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: key, Events: events(key, 5)}); err != nil {
				t.Fatal(err)
			}
			if tc.checkpoint {
				storetest.CheckpointThrough(t, s, 5, nil)
			}
			before := s.Identity()
			s.Close()
			if err := tc.damage(filepath.Join(dir, "jetstream", "$G", "streams", eventstore.StreamName, "meta.inf")); err != nil {
				t.Fatal(err)
			}

			var logs syncbuf.Buffer
			s, err = eventstore.Open(ctx, eventstore.Config{Dir: dir, Metadata: map[string]string{"nir_test": "other"},
				Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if hist, last := mustRead(t, s, key); len(hist) != 5 || last != 5 {
				t.Fatalf("after the re-creation the person has %d events through seq %d, want 5 through 5", len(hist), last)
			}
			id := s.Identity()
			if id.New || id.Metadata["nir_test"] != "" || len(id.ID) != 32 || (id.ID == before.ID) != tc.wantKeepsID {
				t.Errorf("identity after the re-creation = %+v; want not new, without the caller's metadata, id kept %v (was %s)", id, tc.wantKeepsID, before.ID)
			}
			if now, err := s.CurrentIdentity(ctx); err != nil || now.ID != id.ID {
				t.Errorf("the stream's id now: %+v, %v; want %s", now, err, id.ID)
			}
			if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "re-created it over its message blocks") || !strings.Contains(l, "messages=5") {
				t.Errorf("the re-creation was not logged as an error:\n%s", l)
			}
		})
	}
}
