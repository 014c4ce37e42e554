package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateExplain = flag.Bool("update-explain", false, "rewrite the expected output of testdata/explain scenarios")

// TestRulesExplainScenarios runs the scenario files in testdata/explain: each holds one
// `nirctl rules explain` command line, its input lines (the file it reads) and, after "----",
// the expected output. $KEYFILE in the command stands for a person key secret file, so
// computed termination ids are stable. Run with -update-explain to rewrite the expectations,
// then review the diff.
func TestRulesExplainScenarios(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "explain", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenario files: %v", err)
	}
	keyFile := filepath.Join(t.TempDir(), "personkey.secret")
	if err := os.WriteFile(keyFile, []byte(hex.EncodeToString([]byte("explain scenario key, not real!!"))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			t.Parallel()
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var head, cmd, input, want []string
			state := 0
			sc := bufio.NewScanner(bytes.NewReader(b))
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				l := sc.Text()
				switch {
				case state == 0 && strings.HasPrefix(l, "nirctl rules "):
					cmd, state = strings.Fields(strings.TrimPrefix(l, "nirctl rules ")), 1
					head = append(head, l)
				case state == 0:
					head = append(head, l)
				case state == 1 && l == "----":
					state = 2
				case state == 1:
					input = append(input, l)
				default:
					want = append(want, l)
				}
			}
			if state != 2 {
				t.Fatalf("%s: want a command, input and ----", f)
			}
			in := filepath.Join(t.TempDir(), "input.jsonl")
			if err := os.WriteFile(in, []byte(strings.Join(input, "\n")+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			for i, a := range cmd {
				cmd[i] = strings.ReplaceAll(a, "$KEYFILE", keyFile)
			}
			var out, errOut bytes.Buffer
			if err := runRules(context.Background(), append(cmd, in), &out, &errOut); err != nil {
				t.Fatalf("nirctl rules %v: %v (%s)", cmd, err, errOut.String())
			}
			// protojson puts a no-break space after "proto:" in its errors in some builds
			// and a space in others (on purpose, so that nobody compares its messages);
			// the scenario files hold a space.
			got := strings.ReplaceAll(strings.TrimRight(out.String(), "\n"), "\u00a0", " ")
			if *updateExplain {
				text := strings.Join(head, "\n") + "\n" + strings.Join(input, "\n") + "\n----\n" + got + "\n"
				if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			// protojson's error messages use a space or a no-break space at random per
			// binary (to keep callers from matching them); the scenario means either.
			if nbsp := strings.NewReplacer("\u00a0", " "); nbsp.Replace(got) != nbsp.Replace(strings.Join(want, "\n")) {
				t.Errorf("%s:\n--- got\n%s\n--- want\n%s", f, got, strings.Join(want, "\n"))
			}
		})
	}
}
