package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/backup"
	"github.com/introreg/nir/internal/nirdtest"
	"github.com/introreg/nir/internal/storetest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestRestoreStartsOverAnUnfinishedOne: a restore stopped after storing the events (killed,
// a NATS timeout) left a data directory that nird started on (every person's data key then
// read as lost on disk) and that a second restore refused as not empty. The state is made
// here as the stopped restore leaves it (the event stream marked, the events stored, no
// data keys or checkpoints), not by killing a nirctl: a restore of a test's size finishes
// before a kill can land reliably between its steps (internal/backup TestRestoreStoppedHalfWay
// stops one between its steps). nird now refuses to start on it, saying the restore did not
// finish and to restore again; nirctl restore --data into it starts over and restores it
// whole; a data directory holding a finished register is still refused.
func TestRestoreStartsOverAnUnfinishedOne(t *testing.T) {
	ctx := context.Background()
	src, err := eventstore.Open(ctx, eventstore.Config{Dir: filepath.Join(t.TempDir(), "js")})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var persons []string
	for i := range 3 {
		h := sha256.Sum256(fmt.Append(nil, "unfinished restore person ", i))
		pk := hex.EncodeToString(h[:])
		persons = append(persons, pk)
		for range 40 {
			ev := &nirv1.Event{Id: ulid.Make().String(), PersonKey: pk, Kommune: "0301", Actor: &nirv1.Actor{Subject: "test"},
				RecordedAt: timestamppb.New(time.Now()),
				Payload:    &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: "4601", Date: &nirv1.Date{Year: 2024, Month: 3, Day: 1}}}}
			if _, err := src.Append(ctx, eventstore.PersonAppend{PersonKey: pk, Events: []*nirv1.Event{ev}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	storetest.CheckpointThrough(t, src, 120, nil)
	master := storetest.NewMaster(t)
	ks, err := src.OpenKeyStore(ctx, master)
	if err != nil {
		t.Fatal(err)
	}
	for _, pk := range persons {
		if _, err := ks.Ensure(ctx, pk); err != nil {
			t.Fatal(err)
		}
	}
	ks.Close()
	full := filepath.Join(t.TempDir(), "full")
	if _, err := backup.Write(ctx, src, full, backup.Options{}); err != nil {
		t.Fatal(err)
	}

	// The data directory as a restore stopped after the events leaves it.
	data := t.TempDir()
	dst, err := eventstore.Open(ctx, eventstore.Config{Dir: filepath.Join(data, "jetstream")})
	if err != nil {
		t.Fatal(err)
	}
	if err := dst.BeginRestore(ctx); err != nil {
		t.Fatal(err)
	}
	var msgs []eventstore.RawMessage
	if _, err := src.Export(ctx, 0, 0, func(m eventstore.RawMessage) error { msgs = append(msgs, m); return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Import(ctx, func(yield func(eventstore.RawMessage, error) bool) {
		for _, m := range msgs {
			if !yield(m, nil) {
				return
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	dst.Close()

	// nird refuses to start on it.
	out, err := exec.Command(nirdtest.Build(t, nirdtest.NirdPackage), "--data", data, "--http", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0", "--admin", "").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "did not finish") || !strings.Contains(string(out), "restore --data again") {
		t.Errorf("nird on a half-restored data directory: %v; want a refusal saying the restore did not finish and to restore again:\n%s", err, out)
	}

	// A restore into it starts over.
	var stdout, stderr bytes.Buffer
	if err := runRestore(ctx, []string{"--data", data, "--quiet", full}, &stdout, &stderr); err != nil {
		t.Fatalf("restore into the half-restored data directory: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "restored sequences 1 to 120 of 120") {
		t.Errorf("restore: %s", stdout.String())
	}
	got, err := eventstore.Open(ctx, eventstore.Config{Dir: filepath.Join(data, "jetstream")})
	if err != nil {
		t.Fatal(err)
	}
	if err := got.UnfinishedRestore(ctx); err != nil {
		t.Errorf("the register restored again: %v", err)
	}
	if last, err := got.LastSeq(ctx); err != nil || last != 120 {
		t.Errorf("the register restored again holds %d events (%v), want 120", last, err)
	}
	if cps, err := got.Checkpoints(ctx); err != nil || len(cps) != 1 {
		t.Errorf("the register restored again holds %d checkpoints (%v), want 1", len(cps), err)
	}
	gks, err := got.OpenKeyStore(ctx, master)
	if err != nil {
		t.Fatal(err)
	}
	for _, pk := range persons {
		if _, err := gks.Key(ctx, pk); err != nil {
			t.Errorf("data key of %s in the register restored again: %v", pk, err)
		}
	}
	gks.Close()
	got.Close()

	// A finished register is never started over.
	err = runRestore(ctx, []string{"--data", data, "--quiet", full}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "not empty") || errors.Is(err, eventstore.ErrRestoreUnfinished) {
		t.Errorf("restore into a data directory holding a restored register: %v; want it refused as not empty", err)
	}
}
