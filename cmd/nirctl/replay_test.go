package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/demo"
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
	err = runReplay(ctx, []string{"--year", "2022", "--store", storeDir, "--out", out, "--recorded-until", cutoff.Format(time.RFC3339Nano), "--quiet"}, &stdout, &stderr)
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
	if err := runReplay(ctx, []string{"--year", "2022"}, &stdout, &stderr); err != errUsage {
		t.Errorf("missing flags: %v, want usage error", err)
	}
}
