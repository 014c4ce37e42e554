package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"connectrpc.com/connect"
	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/introreg/nir/internal/nirdtest"
	"github.com/introreg/nir/internal/regfile"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
	"github.com/introreg/nir/rules"
)

// These tests run nirctl against a real nird process (built from cmd/nird, embedded
// JetStream in a temporary directory, development mode: every caller is the system
// principal), as an operator would.

// TestMain lets a test run this test binary as the nirctl command (a child process that a
// test can kill), which saves building nirctl: with NIRCTL_TEST_AS_MAIN=1 it is main().
func TestMain(m *testing.M) {
	if os.Getenv("NIRCTL_TEST_AS_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(nirdtest.Main(m))
}

// nirctlCommand returns a command that runs nirctl with args in a child process.
func nirctlCommand(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), "NIRCTL_TEST_AS_MAIN=1")
	return cmd
}

// testNird is a nird process for the import tests.
type testNird struct {
	*nirdtest.Nird
	url string
}

// startTestNird starts nird on a fresh data directory with extra flags and waits until it
// serves HTTP. It is killed when the test ends.
func startTestNird(t *testing.T, extra ...string) *testNird {
	t.Helper()
	// No rate limit: the checks read every person's history at once, right after an import
	// that used the token's burst.
	n := nirdtest.Start(t, append([]string{"--data", t.TempDir(), "--rate-limit", "0"}, extra...)...)
	return &testNird{Nird: n, url: n.URL()}
}

func (n *testNird) client() nirv1connect.RegistrationServiceClient {
	return nirv1connect.NewRegistrationServiceClient(http.DefaultClient, n.url)
}

// nirctl runs nirctl in-process against n and returns stdout, stderr and the error.
func (n *testNird) nirctl(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), append([]string{"--server", n.url, "--token", ""}, args...), &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

// importPerson is a person of a test input: the national id and the lines that register it.
type importPerson struct {
	id string
}

// writeJSONLInput writes persons registrations (person registered, then an offer) as
// protojson lines, with comments and blank lines between, and the offers of every third
// person with an explicit id. It returns the path, the persons and the number of
// registrations.
func writeJSONLInput(t *testing.T, persons, salt int) (string, []importPerson, int) {
	t.Helper()
	var b strings.Builder
	b.WriteString("# test input for nirctl import\n\n")
	var ps []importPerson
	regs := 0
	for i := range persons {
		id := rules.SyntheticFodselsnummer(rules.MustDate(1980+i%20, time.Month(1+i%12), 1+i%28), i+salt)
		ps = append(ps, importPerson{id: id})
		reg := &nirv1.Registration{Event: &nirv1.Event{Kommune: "0301", Payload: &nirv1.Event_PersonRegistered{PersonRegistered: &nirv1.PersonRegistered{
			Fodselsnummer: id, BirthDate: rules.MustDate(1980+i%20, time.Month(1+i%12), 1+i%28).Proto(), Sex: nirv1.Sex_SEX_FEMALE,
			PermitDate: rules.MustDate(2024, 1, 10).Proto(), PermitBasis: nirv1.PermitBasis_PERMIT_BASIS_ASYL_28,
			ArrivalDate: rules.MustDate(2023, 12, 1).Proto(), SettlementDate: rules.MustDate(2024, 2, 1).Proto(),
			SettlementKommune: "0301", SettledByAgreement: true,
		}}}}
		offer := &nirv1.Registration{Person: &nirv1.PersonRef{NationalId: id}, Event: &nirv1.Event{Kommune: "0301",
			Payload: &nirv1.Event_OfferRegistered{OfferRegistered: &nirv1.OfferRegistered{Programme: nirv1.Programme_PROGRAMME_INTRO, Date: rules.MustDate(2024, 3, 1).Proto()}}}}
		if i%3 == 0 {
			offer.Event.Id = ulid.Make().String()
		}
		for _, r := range []*nirv1.Registration{reg, offer} {
			line, err := protojson.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			b.Write(line)
			b.WriteByte('\n')
			regs++
		}
		if i%10 == 9 {
			b.WriteString("\n# next ten\n")
		}
	}
	path := filepath.Join(t.TempDir(), "input.jsonl")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, ps, regs
}

// expectedIDs returns the event id every registration line of path must be stored under:
// its own, or the one derived from the file's hash and the line number.
func expectedIDs(t *testing.T, path string) map[string]int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	want := map[string]int{}
	err = regfile.ReadJSONL(data, func(l regfile.Line) error {
		id := l.Registration.GetEvent().GetId()
		if id == "" {
			id = derivedEventID(sum, l.Number)
		}
		want[id] = l.Number
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return want
}

// storedIDs reads every person's history and returns how often each event id is stored.
func storedIDs(t *testing.T, n *testNird, persons []importPerson) map[string]int {
	t.Helper()
	got := map[string]int{}
	for _, p := range persons {
		res, err := n.client().History(context.Background(), connect.NewRequest(&nirv1.HistoryRequest{Person: &nirv1.PersonRef{NationalId: p.id}}))
		if connect.CodeOf(err) == connect.CodeNotFound {
			continue
		}
		if err != nil {
			t.Fatalf("history: %v", err)
		}
		for _, e := range res.Msg.GetEvents() {
			got[e.GetEvent().GetId()]++
		}
	}
	return got
}

func checkStoredOnce(t *testing.T, n *testNird, path string, persons []importPerson) {
	t.Helper()
	want := expectedIDs(t, path)
	got := storedIDs(t, n, persons)
	for id, line := range want {
		switch got[id] {
		case 1:
		case 0:
			t.Errorf("line %d (event %s) is not stored", line, id)
		default:
			t.Errorf("line %d (event %s) is stored %d times", line, id, got[id])
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			t.Errorf("event %s is stored but comes from no line of the input", id)
		}
	}
}

var countsRE = regexp.MustCompile(`(\d+) stored, (\d+) already stored, (\d+) skipped`)

// parseCounts reads the summary line of a file's import.
func parseCounts(t *testing.T, out string) (stored, dup, skipped int) {
	t.Helper()
	m := countsRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no summary in output %q", out)
	}
	fmt.Sscan(m[1], &stored)
	fmt.Sscan(m[2], &dup)
	fmt.Sscan(m[3], &skipped)
	return
}

func readState(t *testing.T, path string) *importState {
	t.Helper()
	st, err := loadImportState(path)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// stateKey is input's key in a state file.
func stateKey(t *testing.T, input string) string {
	t.Helper()
	abs, err := filepath.Abs(input)
	if err != nil {
		t.Fatal(err)
	}
	return filePathKey(abs)
}

func TestImport_JSONL(t *testing.T) {
	n := startTestNird(t)
	input, persons, regs := writeJSONLInput(t, 40, 0)
	state := filepath.Join(t.TempDir(), "import.state")

	t.Run("OK", func(t *testing.T) {
		out, _, err := n.nirctl(t, "import", "--state", state, "--batch", "7", input)
		if err != nil {
			t.Fatal(err)
		}
		if s, d, k := parseCounts(t, out); s != regs || d != 0 || k != 0 {
			t.Fatalf("counts stored=%d dup=%d skipped=%d, want %d/0/0 (%q)", s, d, k, regs, out)
		}
		checkStoredOnce(t, n, input, persons)
		if fst := readState(t, state).Files[stateKey(t, input)]; fst == nil || !fst.Done {
			t.Fatalf("state after a complete import: %+v", fst)
		}
	})

	t.Run("Progress", func(t *testing.T) {
		// Only with --progress (stderr is a buffer here, not a terminal) is a bar drawn.
		_, quiet, err := n.nirctl(t, "import", input)
		if err != nil {
			t.Fatal(err)
		}
		_, loud, err := n.nirctl(t, "import", "--progress", input)
		if err != nil {
			t.Fatal(err)
		}
		if quiet != "" || !strings.Contains(loud, filepath.Base(input)) || !strings.Contains(loud, "%") {
			t.Fatalf("stderr without --progress %q; with --progress %q", quiet, loud)
		}
	})

	t.Run("Stdin", func(t *testing.T) {
		// The same input piped twice: known by its content, so the second run finds it done;
		// every line is already stored from the file import (same content, same ids).
		st := filepath.Join(t.TempDir(), "stdin.state")
		for i, want := range []string{fmt.Sprintf("-: 0 stored, %d already stored", regs), "-: already imported completely"} {
			cmd := nirctlCommand(t, "--server", n.url, "import", "--state", st, "-")
			f, err := os.Open(input)
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stdin = f
			out, err := cmd.CombinedOutput()
			f.Close()
			if err != nil || !strings.Contains(string(out), want) {
				t.Fatalf("run %d: %v, output %q, want %q", i+1, err, out, want)
			}
		}
	})

	t.Run("CompleteFileIsSkipped", func(t *testing.T) {
		out, _, err := n.nirctl(t, "import", "--state", state, input)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "already imported completely") {
			t.Fatalf("output %q", out)
		}
	})

	t.Run("ReimportWithoutState", func(t *testing.T) {
		// Without the state everything is sent again and comes back "already stored".
		out, _, err := n.nirctl(t, "import", "--batch", "50", input)
		if err != nil {
			t.Fatal(err)
		}
		if s, d, k := parseCounts(t, out); s != 0 || d != regs || k != 0 {
			t.Fatalf("counts stored=%d dup=%d skipped=%d, want 0/%d/0", s, d, k, regs)
		}
		checkStoredOnce(t, n, input, persons)
	})

	t.Run("StateBehindTheServer", func(t *testing.T) {
		// A run that died after the server stored a batch but before the state recorded it:
		// the state says line 20, the server has everything. The re-run skips up to line 20
		// and reports the rest as already stored.
		key := stateKey(t, input)
		st := readState(t, state)
		st.Files[key].AckedLine, st.Files[key].Done = 20, false
		if err := st.save(state); err != nil {
			t.Fatal(err)
		}
		out, _, err := n.nirctl(t, "import", "--state", state, "--batch", "9", input)
		if err != nil {
			t.Fatal(err)
		}
		s, d, k := parseCounts(t, out)
		if s != 0 || k == 0 || d == 0 || s+d+k != regs {
			t.Fatalf("counts stored=%d dup=%d skipped=%d of %d", s, d, k, regs)
		}
		checkStoredOnce(t, n, input, persons)
	})

	t.Run("ChangedFileRefused", func(t *testing.T) {
		changed := filepath.Join(t.TempDir(), "changed.jsonl")
		data, _ := os.ReadFile(input)
		if err := os.WriteFile(changed, data, 0o600); err != nil {
			t.Fatal(err)
		}
		st2 := filepath.Join(t.TempDir(), "state2")
		// Interrupted import of the first lines: a state that acknowledges up to line 5.
		sum := sha256.Sum256(data)
		st := &importState{Version: importStateVersion, Files: map[string]*importFileState{stateKey(t, changed): {SHA256: fmt.Sprintf("%x", sum), AckedLine: 5}}}
		if err := st.save(st2); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(changed, append([]byte("# an edit\n"), data...), 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err := n.nirctl(t, "import", "--state", st2, changed)
		if err == nil || !strings.Contains(err.Error(), "changed since its import began") {
			t.Fatalf("import of a changed file: %v", err)
		}
	})
}

// interruptImport starts nirctl import in a child process and sends it sig once the state
// acknowledges at least line atLeast. It returns the process's output and exit code.
func interruptImport(t *testing.T, n *testNird, state, input string, sig syscall.Signal, atLeast int) (string, int) {
	t.Helper()
	key := stateKey(t, input)
	cmd := nirctlCommand(t, "--server", n.url, "import", "--state", state, "--batch", "1", input)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if b, err := os.ReadFile(state); err == nil {
			var st importState
			if json.Unmarshal(b, &st) == nil && st.Files[key] != nil && st.Files[key].AckedLine >= atLeast {
				break
			}
		}
		select {
		case <-exited:
			t.Fatalf("nirctl import finished before it could be interrupted: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the import did not acknowledge line %d within 60s", atLeast)
		}
		time.Sleep(time.Millisecond)
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("nirctl import did not exit within 30s of %v", sig)
	}
	if st := readState(t, state).Files[key]; st == nil || st.Done {
		t.Fatalf("state after %v: %+v, want an unfinished import", sig, st)
	}
	return out.String(), cmd.ProcessState.ExitCode()
}

// TestImport_InterruptedProcess interrupts a running nirctl import twice, first with SIGINT
// (Ctrl-C: it stops and says how to resume), then with SIGKILL (a crash), and finishes it
// with a third run on the same state: every line ends up stored exactly once, and each run
// skips what the earlier ones acknowledged.
func TestImport_InterruptedProcess(t *testing.T) {
	n := startTestNird(t)
	input, persons, regs := writeJSONLInput(t, 150, 1000)
	state := filepath.Join(t.TempDir(), "import.state")
	key := stateKey(t, input)

	out, code := interruptImport(t, n, state, input, syscall.SIGINT, 40)
	if code != 1 || !strings.Contains(out, "run again with the same --state to resume") {
		t.Fatalf("after SIGINT: exit code %d, output %q", code, out)
	}
	afterInt := readState(t, state).Files[key].AckedLine

	out, code = interruptImport(t, n, state, input, syscall.SIGKILL, afterInt+40)
	if code == 0 {
		t.Fatalf("after SIGKILL: exit code 0, output %q", out)
	}
	acked := readState(t, state).Files[key].AckedLine

	stdout, _, err := n.nirctl(t, "import", "--state", state, "--batch", "25", input)
	if err != nil {
		t.Fatal(err)
	}
	s, d, k := parseCounts(t, stdout)
	if k == 0 || s == 0 || s+d+k != regs {
		t.Fatalf("re-run after the kill (acknowledged to line %d): stored=%d dup=%d skipped=%d of %d", acked, s, d, k, regs)
	}
	// At most the one registration in flight at the kill can have been stored unacknowledged.
	if d > 1 {
		t.Errorf("%d registrations reported already stored; only the 1 in flight could be", d)
	}
	t.Logf("SIGINT after line %d, SIGKILL after line %d; last run: %d stored, %d already stored, %d skipped", afterInt, acked, s, d, k)
	checkStoredOnce(t, n, input, persons)
}

func TestImport_CSV(t *testing.T) {
	n := startTestNird(t)
	a := rules.SyntheticFodselsnummer(rules.MustDate(1985, 5, 5), 1)
	b := rules.SyntheticDNummer(rules.MustDate(1991, 11, 20), 2)
	input := filepath.Join(t.TempDir(), "hours.csv")
	csvText := "type,national_id,kommune,birth_date,sex,permit_date,permit_basis,arrival_date,settlement_date,settled_by_agreement,scheme,vedtak_type,vedtak_date,start_date,end_date,hours_type,month,hours,absence_hours,event_id\n" +
		"person_registered," + a + ",0301,1985-05-05,FEMALE,2024-01-10,ASYL_28,2023-12-01,2024-02-01,ja,,,,,,,,,,\n" +
		"person_registered," + b + ",4601,1991-11-20,male,2024-01-15,PERMIT_BASIS_OVERFORING_35,2024-01-20,2024-02-01,true,,,,,,,,,,\n" +
		"training_vedtak," + a + ",0301,,,,,,,,RETT_OG_PLIKT,TILDELING,2024-02-15,2024-03-01,2027-02-28,,,,,\n" +
		"training_vedtak," + b + ",4601,,,,,,,,RETT_OG_PLIKT,TILDELING,2024-02-15,2024-03-01,2027-02-28,,,,,\n" +
		"training_hours," + a + ",0301,,,,,,,,,,,,,NORSK,2024-03,40,2,\n" +
		"training_hours," + a + ",0301,,,,,,,,,,,,,SAMFUNNSKUNNSKAP_MODUL_1,2024-04,12.5,0,\n" +
		"training_hours," + b + ",4601,,,,,,,,,,,,,NORSK,2024-04,\"30,5\",,01J0000000000000000000CSV1\n"
	if err := os.WriteFile(input, []byte(csvText), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := n.nirctl(t, "import", "--batch", "3", input)
	if err != nil {
		t.Fatal(err)
	}
	if s, d, k := parseCounts(t, out); s != 7 || d != 0 || k != 0 {
		t.Fatalf("counts %d/%d/%d, want 7 stored (%q)", s, d, k, out)
	}
	res, err := n.client().History(context.Background(), connect.NewRequest(&nirv1.HistoryRequest{Person: &nirv1.PersonRef{NationalId: b}}))
	if err != nil {
		t.Fatal(err)
	}
	evs := res.Msg.GetEvents()
	if len(evs) != 3 {
		t.Fatalf("D-nummer person has %d events, want 3", len(evs))
	}
	pr := evs[0].GetEvent().GetPersonRegistered()
	if pr.GetDNummer() != b || pr.GetFodselsnummer() != "" || pr.GetSex() != nirv1.Sex_SEX_MALE ||
		pr.GetPermitBasis() != nirv1.PermitBasis_PERMIT_BASIS_OVERFORING_35 || pr.GetSettlementKommune() != "4601" || !pr.GetSettledByAgreement() {
		t.Errorf("person registered from CSV = %v", pr)
	}
	th := evs[2].GetEvent().GetTrainingHoursRegistered()
	if th.GetHours() != 30.5 || th.GetMonth().GetYear() != 2024 || th.GetMonth().GetMonth() != 4 || evs[2].GetEvent().GetId() != "01J0000000000000000000CSV1" {
		t.Errorf("training hours from CSV = %v (id %s)", th, evs[2].GetEvent().GetId())
	}

	// A second import of the same file stores nothing.
	out, _, err = n.nirctl(t, "import", input)
	if err != nil {
		t.Fatal(err)
	}
	if s, d, _ := parseCounts(t, out); s != 0 || d != 7 {
		t.Fatalf("re-import counts stored=%d dup=%d, want 0/7", s, d)
	}
}

func TestImport_Errors(t *testing.T) {
	n := startTestNird(t)
	dir := t.TempDir()
	id := rules.SyntheticFodselsnummer(rules.MustDate(1985, 5, 5), 3)
	bad := id[:10] + string('0'+(id[10]-'0'+1)%10)
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good, _, _ := writeJSONLInput(t, 3, 500)
	goodData, _ := os.ReadFile(good)
	// Line 9 is refused by the regelmotor (a second registration of the first person).
	refused := write("refused.jsonl", string(goodData)+strings.SplitN(string(goodData), "\n", 4)[2]+"\n")

	cases := []struct {
		name  string
		args  []string
		want  []string // substrings of the error
		clean bool     // the error must not hold the national id
	}{
		{"bad CSV national id", []string{write("bad.csv", "type,national_id,kommune\nperson_registered,"+bad+",0301\n")}, []string{"line 2", "national_id"}, true},
		{"unknown CSV column", []string{write("col.csv", "type,national_id,kommune,shoe_size\n")}, []string{"line 1", "shoe_size"}, true},
		{"missing CSV column", []string{write("miss.csv", "type,kommune\n")}, []string{"national_id"}, true},
		{"unknown CSV type", []string{write("type.csv", "type,national_id,kommune\nvacation,"+id+",0301\n")}, []string{"line 2", "vacation"}, true},
		{"bad enum", []string{write("enum.csv", "type,national_id,kommune,sex\nperson_registered,"+id+",0301,OTHER\n")}, []string{"line 2", "sex"}, true},
		{"not protojson", []string{write("x.jsonl", "# fine\n{\"event\": 1}\n")}, []string{"line 2"}, true},
		{"server refuses a line", []string{"--batch", "100", refused}, []string{"line 9", "failed_precondition", "NIR-R002", "nothing of the file is stored"}, true},
		// After batches were stored, the error says up to which line and that the rest goes
		// in a new file: corrected in place, the file derives other ids, and a run without
		// --state stored its first lines again (found on 2026-12-07 in a hunt).
		{"server refuses a line after stored batches", []string{"--batch", "2", refused}, []string{"line 9", "NIR-R002", "stored up to line 8", "the lines after line 8, corrected, in a new file"}, true},
		{"batch too large", []string{"--batch", "1001", good}, []string{"--batch"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := n.nirctl(t, append([]string{"import"}, c.args...)...)
			if err == nil {
				t.Fatal("import succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if c.clean && (strings.Contains(err.Error(), id) || strings.Contains(err.Error(), bad)) {
				t.Errorf("error holds a national id: %q", err)
			}
		})
	}
}

func TestDerivedEventID(t *testing.T) {
	a := sha256.Sum256([]byte("file a"))
	b := sha256.Sum256([]byte("file b"))
	seen := map[string]bool{}
	for _, sum := range [][32]byte{a, b} {
		for line := 1; line <= 1000; line++ {
			id := derivedEventID(sum, line)
			if !rules.ValidULID(id) {
				t.Fatalf("derived id %q is not a canonical ULID", id)
			}
			if id != derivedEventID(sum, line) {
				t.Fatalf("derived id not deterministic")
			}
			if seen[id] {
				t.Fatalf("derived id %s repeats", id)
			}
			seen[id] = true
		}
	}
}

// TestImport_DerivedIDsAsKommune: a kommune's import of lines without event ids stores them
// under the ids derived from the file, and a second import finds them stored. Found on
// 2026-12-07 (a walk through the README): the register keeps ULIDs of exactly midnight UTC
// for the regelmotor's computed terminations, and the derived ids (time 0, 1970-01-01
// midnight) were refused for every line ("has a ULID time of exactly midnight UTC"); the
// other import tests import as the development mode's system principal, which that check
// does not concern.
func TestImport_DerivedIDsAsKommune(t *testing.T) {
	n := startTestNird(t)
	input, persons, regs := writeJSONLInput(t, 6, 7)
	for i, want := range [][2]int{{regs, 0}, {0, regs}} {
		out, _, err := n.nirctl(t, "--token", "kommune:0301", "import", input)
		if err != nil {
			t.Fatalf("import %d as kommune 0301: %v", i+1, err)
		}
		if s, d, k := parseCounts(t, out); s != want[0] || d != want[1] || k != 0 {
			t.Fatalf("import %d as kommune 0301: stored=%d dup=%d skipped=%d, want %d/%d/0 (%q)", i+1, s, d, k, want[0], want[1], out)
		}
	}
	// history takes --json after the person, and its sequences are numbers. Found on
	// 2026-12-07 by the same walk: "flag provided but not defined: -json", and
	// "sequence":"24175" where the README promises numbers.
	out, _, err := n.nirctl(t, "--token", "kommune:0301", "history", persons[0].id, "--json")
	if err != nil {
		t.Fatalf("history --json: %v", err)
	}
	if !strings.Contains(out, "personRegistered") || !regexp.MustCompile(`"sequence":[0-9]`).MatchString(out) || strings.Contains(out, `"sequence":"`) {
		t.Errorf("history --json printed %q; want the person's events with numeric sequences", out)
	}
}

// TestImport_FileCheckedBeforeAnythingIsSent: a file with a line the reader refuses is
// refused whole, before any batch is sent, and the error names the file and the line. Before,
// the batches before the bad line were stored; the corrected file has another hash, so its
// derived ids differ, and importing it (without --state, or as a new file) stored those lines
// a second time.
func TestImport_FileCheckedBeforeAnythingIsSent(t *testing.T) {
	n := startTestNird(t)
	input, persons, regs := writeJSONLInput(t, 5, 2000)
	data, err := os.ReadFile(input)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	if err := os.WriteFile(bad, append(data, `{"event":{"kommune":"0301","trainingHoursRegistered":{"hours":"NaN"}}}`+"\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	badLine := strings.Count(string(data), "\n") + 1
	_, _, err = n.nirctl(t, "import", "--batch", "2", bad)
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), fmt.Sprintf("line %d:", badLine)) {
		t.Fatalf("err = %v, want %s line %d named", err, bad, badLine)
	}
	if got := storedIDs(t, n, persons); len(got) != 0 {
		t.Fatalf("%d events of the refused file stored, want none", len(got))
	}
	// The corrected file: every line stored once.
	out, _, err := n.nirctl(t, "import", "--batch", "2", input)
	if err != nil {
		t.Fatal(err)
	}
	if s, d, _ := parseCounts(t, out); s != regs || d != 0 {
		t.Fatalf("corrected file: stored=%d dup=%d, want %d/0", s, d, regs)
	}
	checkStoredOnce(t, n, input, persons)
}

// TestImport_InputsThatNeverEnd: import holds its input in memory, so it refuses a device
// (/dev/zero, read until memory ran out before) and reads a pipe or standard input only up
// to its limit; a pipe within it (a FIFO, <(…)) is imported as a file is.
func TestImport_InputsThatNeverEnd(t *testing.T) {
	cmd := nirctlCommand(t, "--server", "http://127.0.0.1:1", "import", "/dev/zero")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	kill := time.AfterFunc(20*time.Second, func() { _ = cmd.Process.Kill() })
	err := cmd.Wait()
	kill.Stop()
	if err == nil || !strings.Contains(out.String(), "/dev/zero: not a file or a pipe") {
		t.Errorf("import /dev/zero: %v, output %q; want it refused at once", err, out.String())
	}

	fifo := filepath.Join(t.TempDir(), "input.jsonl")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	go func() {
		if f, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
			_, _ = f.WriteString("# a pipe of no registrations\n")
			f.Close()
		}
	}()
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"--server", "http://127.0.0.1:1", "import", fifo}, &stdout, &stderr); err != nil || !strings.Contains(stdout.String(), "0 stored") {
		t.Errorf("import of a FIFO: %v, output %q", err, stdout.String())
	}

	im := &importer{state: &importState{Files: map[string]*importFileState{}}, batch: 1, maxInput: 1024,
		stdin:  io.MultiReader(strings.NewReader(strings.Repeat("# endless\n", 1<<16)), iotest.ErrReader(errors.New("read on past the limit"))),
		stdout: io.Discard, stderr: io.Discard}
	if _, err := im.importFile(context.Background(), "-", "jsonl"); err == nil || !strings.Contains(err.Error(), "more than import reads (1024 bytes)") {
		t.Errorf("stdin over the limit: %v", err)
	}
}

// TestImport_FileNamesShownWithoutIDs: a case system may name a file by the person it is
// about, and a drop directory's names are the sender's: import and append print a file's
// name in their summaries, progress bar and errors (the job log) with a national id masked
// and control characters escaped (a terminal obeys them). Before, both went out as written,
// the id also in the path an open error repeats, and until 2026-12-07 in the path a read
// error repeats (a file that opens and then fails, as on a failing disk).
func TestImport_FileNamesShownWithoutIDs(t *testing.T) {
	fnr := rules.SyntheticFodselsnummer(rules.MustDate(1990, 3, 4), 7)
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A file that opens and fails when read (/proc/self/mem at offset 0: EIO), whose read
	// error repeats the path as the open error does.
	unreadable := filepath.Join(dir, "vedtak_"+fnr+"_unreadable.jsonl")
	if err := os.Symlink("/proc/self/mem", unreadable); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{
		write("vedtak_"+fnr+"\x1b[2J.jsonl", "# nothing to send\n"),
		write("vedtak_"+fnr[:6]+"-"+fnr[6:]+".csv", "type,national_id,kommune\nvacation,x,0301\n"),
		filepath.Join(dir, "vedtak_"+fnr+"_missing.jsonl"),
		unreadable,
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), []string{"--server", "http://127.0.0.1:1", "import", "--progress", "--state", filepath.Join(dir, "state"), path}, &stdout, &stderr)
		all := stdout.String() + stderr.String() + fmt.Sprint(err)
		if !strings.HasSuffix(path, ".csv") { // append reads protojson lines only
			err = run(context.Background(), []string{"--server", "http://127.0.0.1:1", "append", path}, &stdout, &stderr)
			all += stdout.String() + stderr.String() + fmt.Sprint(err)
		}
		if !strings.Contains(all, "vedtak_") {
			t.Errorf("import %q printed %q: the file is not named", filepath.Base(path), all)
		}
		digits := strings.Map(func(r rune) rune {
			if '0' <= r && r <= '9' {
				return r
			}
			return -1
		}, all)
		if strings.Contains(digits, fnr) || strings.Contains(all, "\x1b[2J") {
			t.Errorf("import %q printed %q", filepath.Base(path), all)
		}
	}
}
