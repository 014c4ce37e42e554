package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/natstest"
)

// TestRestoreFailingInTheStoreFails: a restore refused by its target after the backup was
// checked (here an empty cluster stream made for another register: its person key's
// fingerprint is not the backup's) fails `nirctl restore`, so that a script stops there, and
// says how far it got, and not that the target is unfinished. Found by mutation testing on 2026-12-07: runRestore returning success
// for such an error passed every test.
func TestRestoreFailingInTheStoreFails(t *testing.T) {
	ctx := context.Background()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	full := restoreRefusedSource(t, 3, 0, key)
	srv := natstest.RunServer(t, natstest.Options{NoSync: true})
	other, err := eventstore.Open(ctx, eventstore.Config{URL: srv.ClientURL(), Metadata: map[string]string{"nir_person_key_fingerprint": "another-register"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	err = runRestore(ctx, []string{"--nats", srv.ClientURL(), "--replicas", "1", "--quiet", full}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "restore stopped after sequence 0") || !strings.Contains(err.Error(), "another-register") {
		t.Errorf("restore into a stream made for another register: %v (stdout %q); want it to fail, saying so", err, stdout.String())
	}
	// Refused before its first write, the target is not marked unfinished: the message must
	// not say it is, nor to run the restore again, which the refusal's own advice (delete
	// the stream) contradicts (a review of cc0a560, 2026-12-07).
	if err != nil && (strings.Contains(err.Error(), "stays unfinished") || strings.Contains(err.Error(), "run the restore again")) {
		t.Errorf("a restore refused before its first write: %v; want no claim that the target stays unfinished", err)
	}
	if strings.Contains(stdout.String(), "restored sequences") {
		t.Errorf("the refused restore said it restored: %q", stdout.String())
	}
}

// TestRestoreStoppedSaysWhatTheTargetIs: the message of a stopped restore says the target
// stays unfinished when it is marked so (BeginRestore), and that it is not when it is not.
func TestRestoreStoppedSaysWhatTheTargetIs(t *testing.T) {
	ctx := context.Background()
	srv := natstest.RunServer(t, natstest.Options{NoSync: true})
	store, err := eventstore.Open(ctx, eventstore.Config{URL: srv.ClientURL()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	stop := errors.New("stopped")
	if err := restoreStopped(ctx, store, 0, stop); !errors.Is(err, stop) || !strings.Contains(err.Error(), "not marked unfinished") {
		t.Errorf("an unmarked target: %v; want it said not marked unfinished", err)
	}
	if err := store.BeginRestore(ctx); err != nil {
		t.Fatal(err)
	}
	if err := restoreStopped(ctx, store, 7, stop); !errors.Is(err, stop) || !strings.Contains(err.Error(), "after sequence 7, or a batch later") || !strings.Contains(err.Error(), "stays unfinished") {
		t.Errorf("a target marked unfinished: %v; want it said to stay unfinished, maybe a batch past 7", err)
	}
}
