package backup_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/backup"
)

// TestOpen_RefusesARecordTheStreamCannotHold: a backup whose events file holds a record no
// NATS stream of the register can hold, rewritten with every checksum, size and digest to
// match (a subject outside nir.ev.<token>, such as a JetStream API subject, or a header name
// NATS cannot send), is refused by Open, naming the file and the record, before a restore
// writes anything. Found on 2026-12-07 (adversarial review of backup and restore): such a
// backup passed Open and Verify, which a restore relies on to refuse a backup before its
// first write, and its records were to be published as they were.
func TestOpen_RefusesARecordTheStreamCannotHold(t *testing.T) {
	for name, edit := range map[string]func(r *eventstore.RawMessage){
		"API subject":       func(r *eventstore.RawMessage) { r.Subject = "$JS.API.STREAM.DELETE." + eventstore.StreamName },
		"two tokens":        func(r *eventstore.RawMessage) { r.Subject += ".x" },
		"no person":         func(r *eventstore.RawMessage) { r.Subject = "nir.ev." },
		"space":             func(r *eventstore.RawMessage) { r.Subject = "nir.ev.a b" },
		"header name":       func(r *eventstore.RawMessage) { r.Header = nats.Header{"Bad Name": {"x"}} },
		"header name colon": func(r *eventstore.RawMessage) { r.Header = nats.Header{"Nats-Msg-Id:x": {"x"}} },
		"header name slash": func(r *eventstore.RawMessage) { r.Header = nats.Header{"Nats/Msg-Id": {"x"}} },
	} {
		t.Run(name, func(t *testing.T) {
			dir := writeBackup(t, 3)
			if err := backup.Forge(dir, func(r *eventstore.RawMessage) {
				if r.Seq == 2 {
					edit(r)
				}
			}); err != nil {
				t.Fatal(err)
			}
			b, err := backup.Open(dir)
			if err == nil {
				_, verr := backup.Verify([]*backup.Backup{b}, backup.Until{}, nil)
				t.Fatalf("a backup with a record the stream cannot hold (%s) was opened (Verify: %v)", name, verr)
			}
			if !strings.Contains(err.Error(), filepath.Join(dir)) || !strings.Contains(err.Error(), backup.EventsFile) || !strings.Contains(err.Error(), "record 2") {
				t.Errorf("Open: %v; want the file and record 2 named", err)
			}
		})
	}
	// The forger itself leaves a sound backup sound.
	dir := writeBackup(t, 3)
	if err := backup.Forge(dir, func(*eventstore.RawMessage) {}); err != nil {
		t.Fatal(err)
	}
	b := openBackup(t, dir)
	if _, err := backup.Restore(context.Background(), openStore(t), []*backup.Backup{b}, backup.Until{}, nil); err != nil {
		t.Errorf("restore of a backup rewritten unchanged: %v", err)
	}
}
