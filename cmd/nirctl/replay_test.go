package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/datadir"
	"github.com/introreg/nir/internal/demo"
	"github.com/introreg/nir/internal/nirdtest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// TestReplay appends a demo population to an embedded store, half of the persons recorded
// after the cut-off, and checks that `nirctl replay` writes the year's files from only the
// events recorded up to the cut-off (DOMAIN.md 6.3, Product decisions 7).
func TestReplay(t *testing.T) {
	ctx := context.Background()
	storeDir := t.TempDir()
	st, err := eventstore.Open(ctx, eventstore.Config{Dir: storeDir})
	if err != nil {
		t.Fatal(err)
	}
	// The store resolves the cut-off against its own clock, so recorded times are real:
	// the first half of the persons is recorded before the cut-off, the rest after it.
	var cutoff time.Time
	const persons = 40
	i := 0
	for evs := range demo.Generate(3, persons, rules.MustDate(2023, 1, 1)) {
		pk := fmt.Sprintf("replaytest%03d", i)
		if i == persons/2 {
			cutoff = time.Now()
			for !time.Now().After(cutoff.Add(10 * time.Millisecond)) {
				time.Sleep(time.Millisecond) // recorded times after the cut-off differ from it
			}
		}
		for _, ev := range evs {
			ev.PersonKey = pk
			ev.RecordedAt = timestamppb.Now()
			ev.Actor = &nirv1.Actor{Subject: "test", Role: nirv1.ActorRole_ACTOR_ROLE_KOMMUNE}
		}
		if _, err := st.Append(ctx, eventstore.PersonAppend{PersonKey: pk, Events: evs}); err != nil {
			t.Fatal(err)
		}
		i++
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	// No clock skew: the store received the later half within the default skew of the
	// cut-off, and the replay is to show that it reads only to the cut-off's bound.
	err = runReplay(ctx, []string{"--year", "2022", "--store", storeDir, "--out", out, "--recorded-until", cutoff.Format(time.RFC3339Nano), "--clock-skew", "0s", "--quiet"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, stderr.String())
	}
	f, err := os.Open(filepath.Join(out, "persons.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := len(rows) - 1; got != persons/2 {
		t.Errorf("persons.csv has %d persons, want the %d recorded before the cut-off", got, persons/2)
	}
	for _, r := range rows[1:] {
		var n int
		if _, err := fmt.Sscanf(r[0], "replaytest%03d", &n); err != nil || n >= persons/2 {
			t.Errorf("person %s was recorded after the cut-off", r[0])
		}
	}
	var rep struct {
		Year int `json:"year"`
	}
	b, err := os.ReadFile(filepath.Join(out, "terminated.json"))
	if err != nil || json.Unmarshal(b, &rep) != nil || rep.Year != 2022 {
		t.Errorf("terminated.json = %s, %v", b, err)
	}
	for _, name := range []string{"statistics.json", "statistics.csv", "terminated.csv"} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Error(err)
		}
	}
	// It reads only up to the cut-off's bound, and says how much it read (issue 17).
	var read, total, kept int
	var secs float64
	if i := bytes.Index(stdout.Bytes(), []byte("read ")); i < 0 {
		t.Errorf("replay does not say what it read: %s", stdout.String())
	} else if _, err := fmt.Sscanf(stdout.String()[i:], "read %d of the stream's %d messages (to the cut-off's bound), %d events kept, in %f s", &read, &total, &kept, &secs); err != nil || read >= total || read == 0 || kept == 0 {
		t.Errorf("replay read %d of %d messages, kept %d (%v): want only those up to the cut-off\n%s", read, total, kept, err, stdout.String())
	}
	if bytes.Contains(stderr.Bytes(), []byte("keeps no event")) {
		t.Errorf("a replay that keeps persons warned that it keeps none: %s", stderr.String())
	}
	// A cut-off before every event keeps nothing, and says so.
	stderr.Reset()
	if err := runReplay(ctx, []string{"--year", "2022", "--store", storeDir, "--out", t.TempDir(), "--cutoff", "2001-02-28", "--quiet"}, &stdout, &stderr); err != nil {
		t.Fatalf("replay before every event: %v", err)
	}
	if !bytes.Contains(stderr.Bytes(), []byte("keeps no event")) {
		t.Errorf("a replay that keeps nothing did not say so: %q", stderr.String())
	}
	// With the default skew it reads the later half too, and keeps the same persons.
	out2 := t.TempDir()
	if err := runReplay(ctx, []string{"--year", "2022", "--store", storeDir, "--out", out2, "--recorded-until", cutoff.Format(time.RFC3339Nano), "--quiet"}, &stdout, &stderr); err != nil {
		t.Fatalf("replay with the default clock skew: %v", err)
	}
	for _, name := range []string{"persons.csv", "statistics.csv", "terminated.csv"} {
		a, _ := os.ReadFile(filepath.Join(out, name))
		b, err := os.ReadFile(filepath.Join(out2, name))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs with the default clock skew (%v)", name, err)
		}
	}
	if err := runReplay(ctx, []string{"--year", "2022", "--store", storeDir, "--out", t.TempDir(), "--clock-skew", "-1s"}, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), "--clock-skew") {
		t.Errorf("negative --clock-skew: %v, want an error naming the flag", err)
	}
	if err := runReplay(ctx, []string{"--year", "2022"}, &stdout, &stderr); !errors.Is(err, errUsage) {
		t.Errorf("missing flags: %v, want usage error", err)
	}
}

// TestReplay_Store: --store refuses a path without a stream (instead of creating it and
// writing empty figures), refuses a data directory a running nird holds, and replays past
// messages that are not usable events, saying how many it skipped.
func TestReplay_Store(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	unlock, err := datadir.Lock(data) // as nird leaves it: a lock file in the data directory
	if err != nil {
		t.Fatal(err)
	}
	st, err := eventstore.Open(ctx, eventstore.Config{Dir: filepath.Join(data, "jetstream")})
	if err != nil {
		t.Fatal(err)
	}
	for evs := range demo.Generate(5, 3, rules.MustDate(2023, 1, 1)) {
		for _, ev := range evs {
			ev.PersonKey, ev.RecordedAt = "replaystore", timestamppb.Now()
		}
		if _, err := st.Append(ctx, eventstore.PersonAppend{PersonKey: "replaystore", Events: evs[:1]}); err != nil {
			t.Fatal(err)
		}
		break
	}
	js, err := jetstream.New(st.Conn())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "nir.ev.replaystore", []byte{0xff, 0xff}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	replay := func(store string) (string, error) {
		var stdout, stderr bytes.Buffer
		err := runReplay(ctx, []string{"--year", "2022", "--store", store, "--out", t.TempDir(), "--quiet", "--recorded-until", "2100-01-01T00:00:00Z"}, &stdout, &stderr)
		return stderr.String(), err
	}

	missing := filepath.Join(t.TempDir(), "no", "such", "dir")
	if _, err := replay(missing); err == nil {
		t.Errorf("replay of a nonexistent --store succeeded")
	}
	if _, err := os.Stat(missing); err == nil {
		t.Errorf("replay created the nonexistent --store directory")
	}
	empty := t.TempDir()
	if _, err := replay(empty); err == nil || !strings.Contains(err.Error(), "no NIR_EVENTS stream") {
		t.Errorf("replay of a directory without a stream: %v, want a refusal naming the stream", err)
	}
	if _, err := replay(data); err == nil || !strings.Contains(err.Error(), "in use by a running nird") {
		t.Errorf("replay of a data directory nird holds: %v, want a refusal", err)
	}
	unlock()
	for _, dir := range []string{data, filepath.Join(data, "jetstream")} {
		stderr, err := replay(dir)
		if err != nil {
			t.Fatalf("replay --store %s: %v", dir, err)
		}
		if !strings.Contains(stderr, "1 stream messages quarantined") {
			t.Errorf("replay does not report the quarantined message:\n%s", stderr)
		}
	}
}

// TestReplay_ReaderContext replays from a running nird's embedded server over its NATS
// listener, as the read-only user whose context nird writes: the reader's permissions are
// enough for a replay (stream info, direct gets, an ordered consumer).
func TestReplay_ReaderContext(t *testing.T) {
	n := nirdtest.Start(t, "--data", t.TempDir(), "--demo", "40")
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	year := time.Now().Year() - 1
	args := []string{"--year", fmt.Sprint(year), "--nats-context", n.NATSContext("reader"), "--out", out,
		"--recorded-until", time.Now().Format(time.RFC3339Nano), "--quiet"}
	if err := runReplay(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("replay as reader: %v\n%s", err, stderr.String())
	}
	b, err := os.ReadFile(filepath.Join(out, "persons.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if rows := bytes.Count(b, []byte("\n")); rows < 2 {
		t.Errorf("persons.csv of %d from 40 demo persons has %d lines", year, rows)
	}
}
