package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/introreg/nir/eventstore"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestVerify_Store: nirctl verify on a stopped store: a stream with one event changed is
// reported with its sequence and person key, and the command fails; the original passes.
func TestVerify_Store(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "js")
	st, err := eventstore.Open(ctx, eventstore.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	const key = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	var last uint64
	for range 3 {
		ev := &nirv1.Event{Id: ulid.Make().String(), PersonKey: key, Kommune: "0301", Actor: &nirv1.Actor{Subject: "t"},
			Payload: &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: "4601", Date: &nirv1.Date{Year: 2024, Month: 1, Day: 1}}}}
		pos, err := st.Append(ctx, eventstore.PersonAppend{PersonKey: key, ExpectedLastSeq: eventstore.Expect(last), Events: []*nirv1.Event{ev}})
		if err != nil {
			t.Fatal(err)
		}
		last = pos[0].Seq
	}
	var msgs []eventstore.RawMessage
	if _, err := st.Export(ctx, 0, 0, func(m eventstore.RawMessage) error { m.Data = bytes.Clone(m.Data); msgs = append(msgs, m); return nil }); err != nil {
		t.Fatal(err)
	}
	st.Close()
	var out, errb bytes.Buffer
	if err := runVerify(ctx, []string{"--store", dir, "--quiet"}, &out, &errb); err != nil || !strings.Contains(out.String(), "ok: no problems") {
		t.Fatalf("verify of an intact stream: %v\n%s", err, out.String())
	}

	// A copy with the first event changed (the kommune), as someone with the files could.
	ev, _ := eventstore.Decode(1, msgs[0].Data)
	ev.Kommune = "5001"
	msgs[0].Data, _ = eventstore.Encode(ev)
	bad := filepath.Join(t.TempDir(), "js")
	cp, err := eventstore.Open(ctx, eventstore.Config{Dir: bad})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cp.Import(ctx, func(yield func(eventstore.RawMessage, error) bool) {
		for _, m := range msgs {
			if !yield(m, nil) {
				return
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	cp.Close()
	out.Reset()
	err = runVerify(ctx, []string{"--store", bad, "--quiet"}, &out, &errb)
	if !errors.Is(err, errProblems) || !strings.Contains(out.String(), "PROBLEM seq 2 person "+key+": chain-broken") {
		t.Errorf("verify of a changed stream: %v\n%s", err, out.String())
	}
}

// TestCheckpoint_HandedOut: an operator writes the last checkpoint to a file (nirctl
// checkpoint) and keeps it elsewhere; later, a copy of the stream with the last event
// changed, which no chain shows, is caught by verify --checkpoint, and an edited file is
// refused.
func TestCheckpoint_HandedOut(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "js")
	st, err := eventstore.Open(ctx, eventstore.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	const key = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for range 3 {
		ev := &nirv1.Event{Id: ulid.Make().String(), PersonKey: key, Kommune: "0301", Actor: &nirv1.Actor{Subject: "t"},
			Payload: &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: "4601", Date: &nirv1.Date{Year: 2024, Month: 1, Day: 1}}}}
		if _, err := st.Append(ctx, eventstore.PersonAppend{PersonKey: key, Events: []*nirv1.Event{ev}}); err != nil {
			t.Fatal(err)
		}
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	rctx, stop := context.WithCancel(ctx)
	made := make(chan struct{}, 1)
	go st.RunCheckpoints(rctx, eventstore.CheckpointOptions{Every: 1, Poll: 5 * time.Millisecond, Key: priv,
		Made: func(cp *nirv1.Checkpoint) {
			if cp.GetStreamSeq() == 3 {
				made <- struct{}{}
			}
		}})
	select {
	case <-made:
	case <-time.After(30 * time.Second):
		t.Fatal("no checkpoint")
	}
	stop()
	var msgs []eventstore.RawMessage
	if _, err := st.Export(ctx, 0, 0, func(m eventstore.RawMessage) error { m.Data = bytes.Clone(m.Data); msgs = append(msgs, m); return nil }); err != nil {
		t.Fatal(err)
	}
	st.Close()

	file := filepath.Join(t.TempDir(), "checkpoint.json")
	var out, errb bytes.Buffer
	if err := runCheckpoint(ctx, []string{"--store", dir, "--out", file}, &out, &errb); err != nil {
		t.Fatalf("nirctl checkpoint: %v %s", err, errb.String())
	}
	pubHex := hex.EncodeToString(pub)
	if err := runVerify(ctx, []string{"--store", dir, "--quiet", "--checkpoint", file, "--public-key", pubHex}, &out, &errb); err != nil ||
		!strings.Contains(out.String(), "checkpoints: 2 compared; the stream matches them through sequence 3") {
		t.Fatalf("verify of the intact stream: %v\n%s", err, out.String())
	}

	// From the last checkpoint on: nothing after it, nothing to report.
	out.Reset()
	if err := runVerify(ctx, []string{"--store", dir, "--quiet", "--from-checkpoint", "last", "--public-key", pubHex}, &out, &errb); err != nil || !strings.Contains(out.String(), ": 0 messages") {
		t.Fatalf("verify --from-checkpoint last: %v\n%s", err, out.String())
	}

	// The last event changed in a copy: the chain has nothing after it to break.
	ev, _ := eventstore.Decode(3, msgs[2].Data)
	ev.Kommune = "5001"
	msgs[2].Data, _ = eventstore.Encode(ev)
	bad := filepath.Join(t.TempDir(), "js")
	cp, err := eventstore.Open(ctx, eventstore.Config{Dir: bad})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cp.Import(ctx, func(yield func(eventstore.RawMessage, error) bool) {
		for _, m := range msgs {
			if !yield(m, nil) {
				return
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	cp.Close()
	out.Reset()
	if err := runVerify(ctx, []string{"--store", bad, "--quiet"}, &out, &errb); err != nil {
		t.Fatalf("without the checkpoint the change is invisible (the test's premise): %v\n%s", err, out.String())
	}
	out.Reset()
	err = runVerify(ctx, []string{"--store", bad, "--quiet", "--checkpoint", file, "--public-key", pubHex}, &out, &errb)
	if !errors.Is(err, errProblems) || !strings.Contains(out.String(), "PROBLEM seq 3: checkpoint-mismatch") {
		t.Errorf("verify of the changed copy with the checkpoint: %v\n%s", err, out.String())
	}

	// An edited checkpoint file is refused, naming the fields.
	b, _ := os.ReadFile(file)
	if err := os.WriteFile(file, bytes.Replace(b, []byte(`"stream_seq": 3`), []byte(`"stream_seq": 2`), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := runVerify(ctx, []string{"--store", dir, "--quiet", "--checkpoint", file}, &out, &errb); err == nil || !strings.Contains(err.Error(), "do not agree with field encoding") {
		t.Errorf("edited checkpoint file: %v", err)
	}
	if err := runVerify(ctx, []string{"--store", dir, "--public-key", "abc"}, &out, &errb); err == nil || !strings.Contains(err.Error(), "--public-key") {
		t.Errorf("bad public key: %v", err)
	}
}
