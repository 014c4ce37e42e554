package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// ruleKey is the person key of ruleInput.
const ruleKey = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9"

// ruleInput is an IntroL person (DOMAIN.md 1.1, 1.4) whose programme ran out on 2022-10-01
// (Product decisions 4, 5a): three stored events as `nirctl history` prints them, then one
// registration of a sluttmål the IntroL matrix refuses (NIR-R010).
const ruleInput = `# one person: StoredEvent lines as history prints them, then a Registration line as append takes
{"sequence":"1","event":{"id":"01GB0000000000000000000001","personKey":"` + ruleKey + `","kommune":"5001","personRegistered":{"fodselsnummer":"03838800288","birthDate":{"year":1988,"month":3,"day":3},"sex":"SEX_FEMALE","permitDate":{"year":2019,"month":5,"day":1},"permitBasis":"PERMIT_BASIS_ASYL_28","arrivalDate":{"year":2018,"month":11,"day":1},"settlementDate":{"year":2019,"month":8,"day":1},"settlementKommune":"5001","settledByAgreement":true}}}
{"sequence":"2","event":{"id":"01GB0000000000000000000002","personKey":"` + ruleKey + `","kommune":"5001","programmeVedtakRegistered":{"type":"PROGRAMME_VEDTAK_TYPE_TILDELING","vedtakDate":{"year":2019,"month":9,"day":20},"fromDate":{"year":2019,"month":10,"day":1}}}}
{"sequence":"3","event":{"id":"01GB0000000000000000000003","personKey":"` + ruleKey + `","kommune":"5001","programmeVedtakRegistered":{"type":"PROGRAMME_VEDTAK_TYPE_UTVIDELSE","vedtakDate":{"year":2021,"month":9,"day":1},"fromDate":{"year":2021,"month":10,"day":1},"extensionMonths":12}}}
{"person":{"personKey":"` + ruleKey + `"},"event":{"id":"01GB0000000000000000000004","kommune":"5001","sluttmalRegistered":{"sluttmal":"SLUTTMAL_ARBEID","date":{"year":2019,"month":10,"day":15}}}}
`

func writeInput(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "person.jsonl")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRunRules_Explain covers `nirctl rules explain` (issue 3.8) in text and JSON form.
func TestRunRules_Explain(t *testing.T) {
	t.Parallel()
	path := writeInput(t, ruleInput)
	t.Run("Text", func(t *testing.T) {
		var out, errOut bytes.Buffer
		if err := runRules(context.Background(), []string{"explain", "--now", "2022-10-05", path}, &out, &errOut); err != nil {
			t.Fatalf("runRules: %v (%s)", err, errOut.String())
		}
		for _, want := range []string{
			"law: INTROL [lovvalg/1900-01-01, DOMAIN.md 1.1]",
			"line 5 01GB0000000000000000000004: refused; NIR-R010",
			"deadline PROGRAMME_END 5001/2019-10-01: OVERDUE 2022-10-01",
			"due: ",
			"FRIST_UTLOPT IKKE_REGISTRERT at 2022-10-01",
		} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("output lacks %q:\n%s", want, out.String())
			}
		}
	})
	t.Run("JSON", func(t *testing.T) {
		var out, errOut bytes.Buffer
		if err := runRules(context.Background(), []string{"explain", "--now", "2022-10-05", "--json", path}, &out, &errOut); err != nil {
			t.Fatalf("runRules: %v (%s)", err, errOut.String())
		}
		var ps nirv1.PersonStatus
		if err := protojson.Unmarshal(out.Bytes(), &ps); err != nil {
			t.Fatalf("output is not a PersonStatus: %v\n%s", err, out.String())
		}
		if ps.GetLaw() != nirv1.Law_LAW_INTROL || ps.GetPersonKey() != ruleKey {
			t.Errorf("law %v key %q", ps.GetLaw(), ps.GetPersonKey())
		}
		if len(ps.GetRefusals()) != 1 || ps.GetRefusals()[0].GetCode() != "NIR-R010" || ps.GetRefusals()[0].GetSection() == "" {
			t.Errorf("refusals = %v", ps.GetRefusals())
		}
		if rs := ps.GetRegistrations(); len(rs) != 1 || rs[0].GetAccepted() || rs[0].GetCode() != "failed_precondition" || rs[0].GetLine() != 5 {
			t.Errorf("registrations = %v", rs)
		}
		for _, p := range ps.GetProgrammes() {
			if p.GetSluttmal() != nirv1.Sluttmal_SLUTTMAL_UNSPECIFIED {
				t.Errorf("the refused sluttmål was folded: %v", p)
			}
		}
		due := ps.GetDueTerminations()
		if len(due) != 1 || due[0].GetTerminationComputed().GetReason() != nirv1.TerminationReason_TERMINATION_REASON_IKKE_REGISTRERT ||
			due[0].GetActor().GetRole() != nirv1.ActorRole_ACTOR_ROLE_SYSTEM {
			t.Errorf("due = %v", due)
		}
	})
}

// TestRunRules_Tables lists the rule versions (issue 3.7) and the refusal codes (issue 3.4).
func TestRunRules_Tables(t *testing.T) {
	t.Parallel()
	tests := []struct {
		sub  string
		want []string
	}{
		{"versions", []string{"norskfrist-il/2023-08-01", "timer-samfunnskunnskap/2022-01-01", "lovvalg/2022-03-11"}},
		{"codes", []string{"NIR-R001", "NIR-R023", "DOMAIN.md Product decisions 5"}},
	}
	for _, tt := range tests {
		t.Run(tt.sub, func(t *testing.T) {
			t.Parallel()
			var out, errOut bytes.Buffer
			if err := runRules(context.Background(), []string{tt.sub}, &out, &errOut); err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("%s lacks %q:\n%s", tt.sub, w, out.String())
				}
			}
		})
	}
}

func TestRunRules_Errors(t *testing.T) {
	t.Parallel()
	two := strings.Replace(ruleInput, `"id":"01GB0000000000000000000002","personKey":"`+ruleKey, `"id":"01GB0000000000000000000002","personKey":"`+strings.Repeat("b", 64), 1)
	tests := []struct {
		name string
		args []string
		want error
	}{
		{"NoSubcommand", nil, errUsage},
		{"UnknownSubcommand", []string{"frobnicate"}, errUsage},
		{"BadNow", []string{"explain", "--now", "2022-02-30", writeInput(t, ruleInput)}, nil},
		{"SeveralPersons", []string{"explain", "--now", "2022-10-05", writeInput(t, two)}, errSeveralPersons},
		{"NotJSON", []string{"explain", "--now", "2022-10-05", writeInput(t, "not json\n")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out, errOut bytes.Buffer
			err := runRules(context.Background(), tt.args, &out, &errOut)
			if err == nil {
				t.Fatalf("runRules(%v) succeeded:\n%s", tt.args, out.String())
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestReadExplainInput_AsImportReadsLines: rules explain reads the lines of the files append
// and import take as they do: a leading byte-order mark and CRLF line ends (Notepad,
// PowerShell) are read, and a line too long is refused naming its line. Before, the mark
// made line 1 "not JSON", and a long line ended the read with "token too long" of no line.
func TestReadExplainInput_AsImportReadsLines(t *testing.T) {
	in, err := readExplainInput(strings.NewReader("\ufeff" + strings.ReplaceAll(ruleInput, "\n", "\r\n")))
	if err != nil || len(in.history) != 3 || len(in.regs) != 1 || in.regs[0].line != 5 || in.regs[0].err != nil {
		t.Errorf("input with a byte-order mark and CRLF: %+v, err %v; want 3 stored events and the registration of line 5", in, err)
	}
	_, err = readExplainInput(strings.NewReader("{}\n{\"event\":{\"correlationId\":\"" + strings.Repeat("x", 9<<20) + "\"}}\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "line 2: ") {
		t.Errorf("a line of 9 MiB: err = %.100v, want line 2 named", err)
	}
}
