package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/introreg/nir/internal/nirdtest"
)

// TestVerify_ReaderContext: nirctl verify through the read-only user's context (what nird
// writes for the nats CLI and nirctl) says "ok" and nothing else. It once printed, before
// "ok", a permissions violation for deleting its ordered consumer: nats.go deletes the
// consumer it replaces, and the reader may delete none (its consumers go by their inactive
// threshold); the NATS client wrote the server's refusal straight to stderr.
func TestVerify_ReaderContext(t *testing.T) {
	n := nirdtest.Start(t, "--data", t.TempDir(), "--demo", "40")
	// The NATS client's own complaints go to the process's stderr, not to the command's.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stderr
	os.Stderr = w
	captured := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		captured <- string(b)
	}()
	var stdout, stderr bytes.Buffer
	err = runVerify(context.Background(), []string{"--nats-context", n.NATSContext("reader"), "--quiet"}, &stdout, &stderr)
	os.Stderr = saved
	w.Close()
	process := <-captured
	if err != nil || !strings.Contains(stdout.String(), "ok: no problems") {
		t.Fatalf("verify as reader: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	for _, out := range []string{stderr.String(), process} {
		if strings.Contains(strings.ToLower(out), "permission") {
			t.Errorf("verify as reader printed a permissions error:\n%s", out)
		}
	}
}
