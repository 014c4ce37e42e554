package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/introreg/nir/rules"
)

// TestImport_StateHoldsNoFileName: a case system may name a file, or its directory, by the
// person it is about. The --state file keeps no name of an input, so no national id, and a
// run with it still resumes after the acknowledged lines; so does a run with a state of
// version 1, which keyed files by their absolute paths: it is rewritten without them as
// soon as it is read, before anything is sent. Before, the state held every input's absolute
// path, the id in it.
func TestImport_StateHoldsNoFileName(t *testing.T) {
	n := startTestNird(t)
	fnr := rules.SyntheticFodselsnummer(rules.MustDate(1990, 3, 4), 11)
	generated, persons, regs := writeJSONLInput(t, 6, 3000)
	data, err := os.ReadFile(generated)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "sak "+fnr[:6]+"-"+fnr[6:])
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	input := filepath.Join(dir, "vedtak_"+fnr+".jsonl")
	if err := os.WriteFile(input, data, 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(t.TempDir(), "import.state")
	abs, err := filepath.Abs(input)
	if err != nil {
		t.Fatal(err)
	}
	// acked is a state acknowledging line 8 of the input, in version 1 or the current one:
	// lines 3 to 8 are the first six registrations (lines 1 and 2 a comment and a blank).
	sum := sha256.Sum256(data)
	acked := func(version int, key string) {
		t.Helper()
		b, err := json.Marshal(map[string]any{"version": version, "files": map[string]any{
			key: map[string]any{"sha256": hex.EncodeToString(sum[:]), "acked_line": 8},
		}})
		if err == nil {
			err = os.WriteFile(state, b, 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	// noName fails the test if the state names the input, and returns its only entry's key.
	noName := func(when string) string {
		t.Helper()
		b, err := os.ReadFile(state)
		if err != nil {
			t.Fatal(err)
		}
		digits := strings.Map(func(r rune) rune {
			if '0' <= r && r <= '9' {
				return r
			}
			return -1
		}, string(b))
		if strings.Contains(digits, fnr) || strings.Contains(string(b), "vedtak_") {
			t.Fatalf("%s: the state names the input: %s", when, b)
		}
		var st importState
		if err := json.Unmarshal(b, &st); err != nil || len(st.Files) != 1 || st.Version != importStateVersion {
			t.Fatalf("%s: state %s (%v), want one input of version %d", when, b, err, importStateVersion)
		}
		for k := range st.Files {
			return k
		}
		return ""
	}
	resumes := func(when string) {
		t.Helper()
		out, _, err := n.nirctl(t, "import", "--state", state, "--batch", "4", input)
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if s, d, k := parseCounts(t, out); k != 6 || s+d != regs-6 {
			t.Fatalf("%s: stored=%d dup=%d skipped=%d, want 6 skipped of %d (%q)", when, s, d, k, regs, out)
		}
		noName(when + ", after the run")
	}

	if _, _, err := n.nirctl(t, "import", "--state", state, "--batch", "4", input); err != nil {
		t.Fatal(err)
	}
	key := noName("a complete import")
	checkStoredOnce(t, n, input, persons)

	acked(importStateVersion, key)
	resumes("a run after line 8 was acknowledged")

	// A state of version 1, left by an import interrupted before nirctl was upgraded: read
	// and rewritten without the path even by a run that sends nothing (nird unreachable).
	acked(1, abs)
	_, _, err = runNirctl(t, "--server", "http://127.0.0.1:1", "import", "--state", state, input)
	if err == nil || !strings.Contains(err.Error(), "stored up to line 8") {
		t.Fatalf("import with nird unreachable: %v, want the acknowledged line 8 named", err)
	}
	if got := noName("a version 1 state, once read"); got != key {
		t.Fatalf("a version 1 state is keyed %s, the current one %s", got, key)
	}
	acked(1, abs)
	resumes("a run with a version 1 state")
	checkStoredOnce(t, n, input, persons)
}

// runNirctl runs nirctl in-process with args and returns stdout, stderr and the error.
func runNirctl(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr strings.Builder
	err := run(t.Context(), args, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}
