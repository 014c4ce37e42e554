package rules

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

var update = flag.Bool("update", false, "rewrite the expected output of rules/testdata scenarios")

// TestScenarios runs the readable scenario files in testdata/ (a small datadriven runner in the
// style of cockroachdb/pebble's datadriven). Each file is one person. A block is
//
//	command key=value ...
//	input lines (protojson nirv1.Registration, the lines `nirctl append` takes)
//	----
//	expected output lines
//
// ending at a blank line. Commands:
//
//	events              append the input events to the history without checking them
//	append now=DATE     check the input events as one batch; append them if none is refused
//	explain now=DATE    the person's law, schemes, programmes, deadlines, refusals and due terminations
//	deadlines now=DATE  the deadlines only
//	due now=DATE [append]  the computed terminations due; with append, store them as the worker
//	                    does, through nird's static validation (ValidateEvent): one it refuses is
//	                    not stored and the field errors follow it
//	nextdue             the earliest date a computed termination becomes due
//	validate            nird's static validation of the input events (ValidateEvent): the
//	                    field errors, or "valid"
//	suppress min=N [relations=T:A+B;…]  disclosure control of a table (Suppress): the input
//	                    is a header "area parent counter…" and one line per area (parent "-"
//	                    for the root); the output is the table as published, «:» suppressed
//
// In input lines, $computed stands for the id of the latest TerminationComputed in the history.
// Run `go test ./rules -run TestScenarios -update` to rewrite the expected output, then review
// the diff: the expected output is the specification a domain expert signs off.
func TestScenarios(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenario files: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			t.Parallel()
			runScenario(t, f)
		})
	}
}

type block struct {
	cmd      string
	args     map[string]string
	flags    map[string]bool
	input    []string
	expected []string
	line     int
	// comments are the lines before the block, kept when rewriting.
	comments []string
}

func parseScenario(t *testing.T, path string) ([]*block, []string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blocks []*block
	var pending []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	var cur *block
	state := 0 // 0 between blocks, 1 input, 2 expected
	for sc.Scan() {
		n++
		line := sc.Text()
		switch state {
		case 0:
			if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
				pending = append(pending, line)
				continue
			}
			fields := strings.Fields(line)
			cur = &block{cmd: fields[0], args: map[string]string{}, flags: map[string]bool{}, line: n, comments: pending}
			pending = nil
			for _, a := range fields[1:] {
				if k, v, ok := strings.Cut(a, "="); ok {
					cur.args[k] = v
				} else {
					cur.flags[a] = true
				}
			}
			blocks = append(blocks, cur)
			state = 1
		case 1:
			if line == "----" {
				state = 2
				continue
			}
			cur.input = append(cur.input, line)
		case 2:
			// A blank line or a comment ends the expected output, so -update never swallows
			// the next block's comment.
			if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
				state = 0
				pending = append(pending, line)
				continue
			}
			cur.expected = append(cur.expected, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return blocks, pending
}

func runScenario(t *testing.T, path string) {
	blocks, trailer := parseScenario(t, path)
	key := "pk-" + strings.TrimSuffix(filepath.Base(path), ".txt")
	var history []*nirv1.Event
	for _, b := range blocks {
		got := runBlock(t, path, b, key, &history)
		if *update {
			b.expected = got
			continue
		}
		if strings.Join(got, "\n") != strings.Join(b.expected, "\n") {
			t.Errorf("%s:%d: %s\n--- got\n%s\n--- want\n%s", path, b.line, b.cmd, strings.Join(got, "\n"), strings.Join(b.expected, "\n"))
		}
	}
	if *update {
		var out strings.Builder
		for _, b := range blocks {
			for _, c := range b.comments {
				out.WriteString(c + "\n")
			}
			out.WriteString(b.cmd)
			for _, k := range sortedKeys(b.args) {
				fmt.Fprintf(&out, " %s=%s", k, b.args[k])
			}
			for _, k := range sortedKeys(b.flags) {
				out.WriteString(" " + k)
			}
			out.WriteString("\n")
			for _, l := range b.input {
				out.WriteString(l + "\n")
			}
			out.WriteString("----\n")
			for _, l := range b.expected {
				out.WriteString(l + "\n")
			}
		}
		for _, c := range trailer {
			out.WriteString(c + "\n")
		}
		if err := os.WriteFile(path, []byte(strings.TrimRight(out.String(), "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	for i := range ks {
		for j := i + 1; j < len(ks); j++ {
			if ks[j] < ks[i] {
				ks[i], ks[j] = ks[j], ks[i]
			}
		}
	}
	return ks
}

func parseEvents(t *testing.T, path string, b *block, key string, history []*nirv1.Event) []*nirv1.Event {
	t.Helper()
	computed := ""
	for _, ev := range history {
		if ev.GetTerminationComputed() != nil {
			computed = ev.GetId()
		}
	}
	var out []*nirv1.Event
	for i, l := range b.input {
		l = strings.ReplaceAll(l, "$computed", computed)
		var reg nirv1.Registration
		if err := protojson.Unmarshal([]byte(l), &reg); err != nil {
			t.Fatalf("%s:%d: %v", path, b.line+1+i, err)
		}
		ev := reg.GetEvent()
		if ev.GetPersonKey() == "" {
			ev.PersonKey = key
		}
		out = append(out, ev)
	}
	return out
}

func nowArg(t *testing.T, path string, b *block) Date {
	t.Helper()
	d, err := ParseDate(b.args["now"])
	if err != nil {
		t.Fatalf("%s:%d: now: %v", path, b.line, err)
	}
	return d
}

func runBlock(t *testing.T, path string, b *block, key string, history *[]*nirv1.Event) []string {
	t.Helper()
	lines := func(s string) []string { return strings.Split(strings.TrimRight(s, "\n"), "\n") }
	switch b.cmd {
	case "events":
		*history = append(*history, parseEvents(t, path, b, key, *history)...)
		return nil
	case "append":
		evs := parseEvents(t, path, b, key, *history)
		rs := Check(Fold(key, *history), evs, nowArg(t, path, b))
		if len(rs) == 0 {
			*history = append(*history, evs...)
			return []string{"accepted"}
		}
		var out []string
		for _, r := range rs {
			out = append(out, fmt.Sprintf("refused %s: %s", r.EventID, r.MessageNB))
		}
		return out
	case "merge":
		// The input lines are the absorbed person's events; the merge (id=) copies them as
		// nird does (DOMAIN.md Product decisions 15), if CheckMerge allows it.
		absorbedKey := key + "-absorbed"
		absorbed := parseEvents(t, path, b, absorbedKey, nil)
		merge := &nirv1.Event{Id: b.args["id"], PersonKey: key, Kommune: absorbed[0].GetKommune(), Payload: &nirv1.Event_PersonsMerged{
			PersonsMerged: &nirv1.PersonsMerged{AbsorbedPersonKey: absorbedKey, AbsorbedEvents: absorbed}}}
		st := Fold(key, *history)
		rs := CheckMerge(st, Fold(absorbedKey, absorbed), merge)
		rs = append(rs, Check(st, []*nirv1.Event{merge}, nowArg(t, path, b))...)
		if len(rs) == 0 {
			*history = append(*history, merge)
			return []string{"merged"}
		}
		var out []string
		for _, r := range rs {
			out = append(out, fmt.Sprintf("refused %s: %s", r.EventID, r.MessageNB))
		}
		return out
	case "explain":
		return lines(Explain(*history, nowArg(t, path, b)).Text())
	case "deadlines":
		var out []string
		for _, d := range Evaluate(Fold(key, *history), nowArg(t, path, b)).Deadlines {
			out = append(out, DeadlineText(d))
		}
		return out
	case "due":
		due := DueTerminations(Fold(key, *history), nowArg(t, path, b))
		if len(due) == 0 {
			return []string{"none"}
		}
		var out []string
		for _, ev := range due {
			out = append(out, TerminationText(ev))
			if !b.flags["append"] {
				continue
			}
			if err := ValidateEvent(ev); err != nil {
				var fes FieldErrors
				if !errors.As(err, &fes) {
					t.Fatalf("%s:%d: %v", path, b.line, err)
				}
				for _, fe := range fes {
					out = append(out, fmt.Sprintf("  refused by nird's validation: %s %s: %s", fe.Field, fe.Code, fe.Msg))
				}
				continue
			}
			*history = append(*history, ev)
		}
		return out
	case "validate":
		var out []string
		for _, ev := range parseEvents(t, path, b, key, *history) {
			var fes FieldErrors
			if err := ValidateEvent(ev); errors.As(err, &fes) {
				for _, fe := range fes {
					out = append(out, fmt.Sprintf("invalid %s: %s %s: %s", ev.GetId(), fe.Field, fe.Code, fe.Msg))
				}
				continue
			}
			out = append(out, "valid "+ev.GetId())
		}
		return out
	case "suppress":
		return suppressBlock(t, path, b)
	case "nextdue":
		if d, ok := NextDue(Fold(key, *history)); ok {
			return []string{d.String()}
		}
		return []string{"none"}
	}
	t.Fatalf("%s:%d: unknown command %q", path, b.line, b.cmd)
	return nil
}

// suppressBlock runs the suppress command: a table in, the published table out.
func suppressBlock(t *testing.T, path string, b *block) []string {
	t.Helper()
	if len(b.input) < 2 {
		t.Fatalf("%s:%d: suppress needs a header and rows", path, b.line)
	}
	header := strings.Fields(b.input[0])
	counters := header[2:]
	col := map[string]int{}
	for i, c := range counters {
		col[c] = i
	}
	tab := &DisclosureTable{Counts: make([]bool, len(counters))}
	for i := range tab.Counts {
		tab.Counts[i] = true
	}
	if rel := b.args["relations"]; rel != "" {
		for _, r := range strings.Split(rel, ";") {
			total, parts, _ := strings.Cut(r, ":")
			cr := CounterRelation{Total: col[total]}
			for _, p := range strings.Split(parts, "+") {
				cr.Parts = append(cr.Parts, col[p])
			}
			tab.Relations = append(tab.Relations, cr)
		}
	}
	index := map[string]int{}
	var names []string
	for _, l := range b.input[1:] {
		f := strings.Fields(l)
		parent := -1
		if f[1] != "-" {
			parent = index[f[1]]
		}
		index[f[0]] = len(names)
		names = append(names, f[0])
		tab.Parent = append(tab.Parent, parent)
		var row []int64
		for _, v := range f[2:] {
			var n int64
			fmt.Sscan(v, &n)
			row = append(row, n)
		}
		tab.Values = append(tab.Values, row)
	}
	var min int64
	fmt.Sscan(b.args["min"], &min)
	sup := Suppress(tab, min)
	out := []string{b.input[0]}
	for a, name := range names {
		parent := "-"
		if p := tab.Parent[a]; p >= 0 {
			parent = names[p]
		}
		line := name + " " + parent
		for c, v := range tab.Values[a] {
			if sup[a][c] {
				line += " :"
			} else {
				line += fmt.Sprintf(" %d", v)
			}
		}
		out = append(out, line)
	}
	return out
}
