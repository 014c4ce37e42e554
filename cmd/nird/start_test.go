package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// TestTransientStart: the start-up steps wait for a cluster that is not ready (a leader
// being elected, servers not yet known to the meta leader, so an R3 stream finds no
// peers), and give up at once on what waiting does not mend.
func TestTransientStart(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}, true},
		{fmt.Errorf("eventstore: create stream NIR_EVENTS: %w", &jetstream.APIError{Code: 400, ErrorCode: 10005, Description: "no suitable peers for placement"}), true},
		{context.DeadlineExceeded, true},
		{&jetstream.APIError{Code: 503, ErrorCode: jetstream.JSErrCodeJetStreamNotEnabled}, false},
		{&jetstream.APIError{Code: 400, ErrorCode: jetstream.JSErrCodeBadRequest, Description: "bad request"}, false},
		{errors.New("nats: Authorization Violation"), false},
	} {
		if got := transientStart(c.err); got != c.want {
			t.Errorf("transientStart(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// TestNird_RemovesKeyLeftovers: the temporary files a start killed while it wrote a key file
// left in the data directory or its NATS seeds' (part of a key nothing uses,
// smallfile.WriteNew's) are removed
// by the next start, and said so; a name that only resembles theirs is kept. Before, they
// stayed for ever.
func TestNird_RemovesKeyLeftovers(t *testing.T) {
	data := t.TempDir()
	if err := os.Mkdir(filepath.Join(data, "nats"), 0o700); err != nil {
		t.Fatal(err)
	}
	leftovers := []string{".personkey.secret.tmp123", ".master.key.tmp4567", ".checkpoint.key.tmp89", "nats/.reader.nk.tmp42"}
	for _, name := range append([]string{".personkey.secret.tmp-notours"}, leftovers...) {
		if err := os.WriteFile(filepath.Join(data, name), []byte("0123"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	n := startNird(t, data)
	for _, name := range leftovers {
		if _, err := os.Lstat(filepath.Join(data, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still in the data directory after the start (%v)", name, err)
		}
		if !slices.ContainsFunc(n.Logs(), func(l string) bool { return strings.Contains(l, name) }) {
			t.Errorf("the start's log does not name %s", name)
		}
	}
	if _, err := os.Lstat(filepath.Join(data, ".personkey.secret.tmp-notours")); err != nil {
		t.Errorf("a file not named as WriteNew names its temporary files was removed: %v", err)
	}
}
