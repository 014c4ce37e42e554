package main

import (
	"context"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/introreg/nir/internal/demo"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

var demoOutRE = regexp.MustCompile(`appended (\d+) persons, (\d+) events \((\d+) already stored\)`)

func demoCounts(t *testing.T, out string) (persons, events, dup int) {
	t.Helper()
	m := demoOutRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no summary in %q", out)
	}
	persons, _ = strconv.Atoi(m[1])
	events, _ = strconv.Atoi(m[2])
	dup, _ = strconv.Atoi(m[3])
	return
}

func TestDemo(t *testing.T) {
	n := startTestNird(t)
	now := rules.DateFromTime(time.Now().In(time.UTC)).AddDays(-2).String()
	const persons, seed = 60, 7
	var want [][]*nirv1.Event
	wantEvents := 0
	for evs := range demo.Generate(seed, persons, rules.MustParseDate(now)) {
		want = append(want, evs)
		wantEvents += len(evs)
	}

	out, _, err := n.nirctl(t, "demo", "--persons", "60", "--seed", "7", "--now", now, "--batch", "97", "--concurrency", "3")
	if err != nil {
		t.Fatal(err)
	}
	if p, e, d := demoCounts(t, out); p != persons || e != wantEvents || d != 0 {
		t.Fatalf("summary %d persons %d events %d duplicates, want %d/%d/0 (%q)", p, e, d, persons, wantEvents, out)
	}
	// Every person is stored with its events in order, and nothing else.
	for i, evs := range want {
		id := demo.Registrations(evs)[0].GetPerson().GetNationalId()
		res, err := n.client().History(context.Background(), connect.NewRequest(&nirv1.HistoryRequest{Person: &nirv1.PersonRef{NationalId: id}}))
		if err != nil {
			t.Fatalf("person %d: %v", i, err)
		}
		got := res.Msg.GetEvents()
		if len(got) != len(evs) {
			t.Fatalf("person %d: %d events stored, generated %d", i, len(got), len(evs))
		}
		for j := range evs {
			if got[j].GetEvent().GetId() != evs[j].GetId() {
				t.Fatalf("person %d event %d: stored %s, generated %s", i, j, got[j].GetEvent().GetId(), evs[j].GetId())
			}
		}
	}

	// The same command again stores nothing: the population's ids are deterministic.
	out, _, err = n.nirctl(t, "demo", "--persons", "60", "--seed", "7", "--now", now)
	if err != nil {
		t.Fatal(err)
	}
	if p, e, d := demoCounts(t, out); p != persons || e != wantEvents || d != wantEvents {
		t.Fatalf("re-run: %d persons %d events %d duplicates, want all %d already stored", p, e, d, wantEvents)
	}

	// --out writes the same registrations as lines that nirctl import accepts (all stored
	// already, so all reported as such).
	file := filepath.Join(t.TempDir(), "demo.jsonl")
	if _, _, err := n.nirctl(t, "demo", "--persons", "60", "--seed", "7", "--now", now, "--out", file); err != nil {
		t.Fatal(err)
	}
	out, _, err = n.nirctl(t, "import", file)
	if err != nil {
		t.Fatal(err)
	}
	if s, d, _ := parseCounts(t, out); s != 0 || d != wantEvents {
		t.Fatalf("import of the --out file: stored %d, already stored %d, want 0/%d", s, d, wantEvents)
	}
}

func TestDemo_Errors(t *testing.T) {
	n := &testNird{url: "http://127.0.0.1:1"} // never reached: the flags are refused first
	for _, args := range [][]string{
		{"demo"},
		{"demo", "--persons", "0"},
		{"demo", "--persons", "5", "--batch", "0"},
		{"demo", "--persons", "5", "--concurrency", "0"},
		{"demo", "--persons", "5", "--now", "2024-13-01"},
		{"demo", "--persons", "5", "extra"},
	} {
		if _, _, err := n.nirctl(t, args...); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	// A server that is not there: the error says how far it got.
	_, _, err := n.nirctl(t, "demo", "--persons", "3")
	if err == nil || !strings.Contains(err.Error(), "0 persons, 0 events appended before the error") {
		t.Fatalf("demo against no server: %v", err)
	}
}
