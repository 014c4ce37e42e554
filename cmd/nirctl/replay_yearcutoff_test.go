package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/demo"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// TestReplay_YearCutOffIsTheLastDayOfFebruaryInOslo checks the cut-off `nirctl replay --year Y`
// takes by itself (DOMAIN.md Product decisions 7, section 6.3: data year Y closes on the last
// day of February of Y+1): every event recorded on that day in Oslo is kept, to its last
// nanosecond, and none recorded from the first instant of 1 March in Oslo, nor one recorded on
// 28 February in UTC that is 1 March in Oslo. Found by mutation testing on 2026-12-07: a cut-off
// at midnight itself, a year's cut-off a year late, an event recorded at the cut-off's very
// instant left out (eventstore's Replay), and a report that could not be written
// reported as written, each passed every test (TestReplay gives --recorded-until or --cutoff).
func TestReplay_YearCutOffIsTheLastDayOfFebruaryInOslo(t *testing.T) {
	ctx := context.Background()
	storeDir := t.TempDir()
	st, err := eventstore.Open(ctx, eventstore.Config{Dir: storeDir})
	if err != nil {
		t.Fatal(err)
	}
	oslo := rules.Norway
	march1 := time.Date(2023, 3, 1, 0, 0, 0, 0, oslo)
	recorded := map[string]time.Time{
		"yearcut-lastinstant": march1.Add(-time.Nanosecond),                   // kept
		"yearcut-midnight":    march1,                                         // left out
		"yearcut-utcfeb28":    time.Date(2023, 2, 28, 23, 30, 0, 0, time.UTC), // 00:30 on 1 March in Oslo: left out
		"yearcut-nextyear":    time.Date(2024, 2, 1, 12, 0, 0, 0, oslo),       // left out
	}
	keys := []string{"yearcut-lastinstant", "yearcut-midnight", "yearcut-utcfeb28", "yearcut-nextyear"}
	i := 0
	var last uint64
	for evs := range demo.Generate(5, len(keys), rules.MustDate(2022, 6, 1)) {
		pk := keys[i]
		for _, ev := range evs {
			ev.PersonKey = pk
			ev.RecordedAt = timestamppb.New(recorded[pk])
			ev.Actor = &nirv1.Actor{Subject: "test", Role: nirv1.ActorRole_ACTOR_ROLE_KOMMUNE}
		}
		seqs, err := st.Append(ctx, eventstore.PersonAppend{PersonKey: pk, Events: evs})
		if err != nil {
			t.Fatal(err)
		}
		last = seqs[len(seqs)-1].Seq
		i++
	}
	// A history load: the stream received them now, long after their recorded times.
	if err := st.MarkBackdated(ctx, last); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	if err := runReplay(ctx, []string{"--year", "2022", "--store", storeDir, "--out", out, "--quiet"}, &stdout, &stderr); err != nil {
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
	var got []string
	for _, r := range rows[1:] {
		got = append(got, r[0])
	}
	if want := []string{"yearcut-lastinstant"}; !slices.Equal(got, want) {
		t.Errorf("replay --year 2022 kept the persons %v, want %v (recorded by the end of 28 February 2023 in Oslo)", got, want)
	}

	// Figures that cannot be written fail the replay (a file where the directory would be).
	blocked := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocked, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	if err := runReplay(ctx, []string{"--year", "2022", "--store", storeDir, "--out", blocked, "--quiet"}, &stdout, &stderr); err == nil {
		t.Errorf("replay --out to a file, not a directory, succeeded: %s", stdout.String())
	}
}
