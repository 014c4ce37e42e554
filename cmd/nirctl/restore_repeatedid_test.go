package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/backup"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestRestoreWarnsOfARepeatedID: nirctl restore of a register that holds one event id on two
// persons (stored for the second after the dedupe window) restores every event, and warns
// that the repeat (sequence 2) was restored without its Nats-Msg-Id header. Before
// (2026-12-07), it stopped at the first batch, unfinished: JetStream refuses a batch that
// holds an id twice.
func TestRestoreWarnsOfARepeatedID(t *testing.T) {
	ctx := context.Background()
	src, err := eventstore.Open(ctx, eventstore.Config{Dir: filepath.Join(t.TempDir(), "js"), DuplicateWindow: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	id := ulid.Make().String()
	for i := range 3 {
		h := sha256.Sum256(fmt.Append(nil, "repeated id person ", i))
		pk := hex.EncodeToString(h[:])
		ev := &nirv1.Event{Id: id, PersonKey: pk, Kommune: "0301", Actor: &nirv1.Actor{Subject: "test"}, RecordedAt: timestamppb.Now(),
			Payload: &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: "4601", Date: &nirv1.Date{Year: 2024, Month: 3, Day: 1}}}}
		if i == 2 {
			ev.Id = ulid.Make().String()
		}
		if _, err := src.Append(ctx, eventstore.PersonAppend{PersonKey: pk, Events: []*nirv1.Event{ev}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond) // past the dedupe window
	}
	full := filepath.Join(t.TempDir(), "full")
	if _, err := backup.Write(ctx, src, full, backup.Options{}); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if err := runRestore(ctx, []string{"--data", filepath.Join(t.TempDir(), "data"), "--quiet", full}, &stdout, &stderr); err != nil {
		t.Fatalf("restore of a register holding an event id twice: %v", err)
	}
	if !strings.Contains(stdout.String(), "restored sequences 1 to 3 of 3") {
		t.Errorf("stdout %q; want all 3 sequences restored", stdout.String())
	}
	if w := stderr.String(); !strings.Contains(w, "1 message(s) repeat the Nats-Msg-Id") || !strings.Contains(w, "sequences [2]") || strings.Contains(w, id) {
		t.Errorf("stderr %q; want a warning naming sequence 2, not the id", w)
	}
}
