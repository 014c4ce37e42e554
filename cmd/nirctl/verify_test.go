package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/introreg/nir/eventstore"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/oklog/ulid/v2"
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
