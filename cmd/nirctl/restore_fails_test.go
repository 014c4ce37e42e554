package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/natstest"
)

// TestRestoreFailingInTheStoreFails: a restore refused by its target after the backup was
// checked (here an empty cluster stream made for another register: its person key's
// fingerprint is not the backup's) fails `nirctl restore`, so that a script stops there, and
// says how far it got. Found by mutation testing on 2026-12-07: runRestore returning success
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
	if strings.Contains(stdout.String(), "restored sequences") {
		t.Errorf("the refused restore said it restored: %q", stdout.String())
	}
}
