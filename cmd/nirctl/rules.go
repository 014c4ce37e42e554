package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/regfile"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

func init() {
	register("rules", "explain a person's law, deadlines and refusals", runRules)
}

const rulesUsage = `usage: nirctl rules explain --now DATE [--as kommune:NNNN|system] [--person-key-file F] [--json] [FILE]
                                                    what nird would answer, and the person's law, schemes, deadlines
       nirctl rules versions                               the rule versions and their validity
       nirctl rules codes                                  the refusal codes`

// errSeveralPersons is returned when the input of `rules explain` holds more than one person.
var errSeveralPersons = errors.New("the input holds events of more than one person; explain one at a time")

// runRules is `nirctl rules explain --now DATE [FILE]`: a preview of what nird would answer,
// offline. It reads one person's lines (stdin without FILE): nir.v1.StoredEvent lines (as
// `nirctl history` prints them) are the person's stored history; nir.v1.Registration lines
// (as `nirctl append` takes them) are registrations, each sent as its own request through
// nird's own append path (internal/api and internal/ingest: validation of ids, national ids,
// kommunenummer and dates, the person key, the regelmotor's checks, a kommune's reach) over an
// in-memory copy of the history. It prints nird's answer to each registration, refusals with
// their rules, and then law, schemes, deadlines and due computed terminations folded from the
// history and the accepted registrations only. Nothing is sent to nird.
func runRules(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, rulesUsage)
		return errUsage
	}
	switch args[0] {
	case "explain":
	case "versions":
		for _, v := range rules.Versions() {
			to := "…"
			if !v.ValidTo.IsZero() {
				to = v.ValidTo.String()
			}
			fmt.Fprintf(stdout, "%-44s %s – %-10s %-40s %s\n", v.ID, v.ValidFrom, to, v.Section, v.Summary)
		}
		return nil
	case "codes":
		for _, c := range rules.Codes() {
			fmt.Fprintf(stdout, "%s  %-34s %-40s %s\n", c.Code, c.Rule, c.Section, c.MessageEN)
		}
		return nil
	default:
		fmt.Fprintln(stderr, rulesUsage)
		return errUsage
	}
	fs := flag.NewFlagSet("rules explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	nowFlag := fs.String("now", time.Now().Format("2006-01-02"), "the register's date: the rules run, and accepted events are recorded, on it (YYYY-MM-DD)")
	as := fs.String("as", "", `send the registrations as "kommune:NNNN" or "system" (default: the kommune of the first registration)`)
	keyFile := fs.String("person-key-file", "", "nird's person key secret (data/personkey.secret), so national ids give nird's person keys; without it a throwaway secret is used")
	asJSON := fs.Bool("json", false, "print a nir.v1.PersonStatus as protojson, with each registration's outcome")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: nirctl rules explain --now DATE [--as kommune:NNNN|system] [--person-key-file F] [--json] [FILE]   (stdin without FILE)")
		fmt.Fprintln(stderr, "StoredEvent lines (as history prints them) are the stored history; Registration lines (as append takes them) are sent, one request each, through nird's append path offline.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		return badArgs(fs, err)
	}
	now, err := rules.ParseDate(*nowFlag)
	if err != nil {
		return fmt.Errorf("--now: %w", err)
	}
	if fs.NArg() > 1 {
		fs.Usage()
		return errUsage
	}
	r := io.Reader(os.Stdin)
	name := "stdin"
	if fs.NArg() == 1 && fs.Arg(0) != "-" {
		f, err := os.Open(fs.Arg(0))
		if err != nil {
			return err
		}
		defer f.Close()
		r, name = f, fs.Arg(0)
	}
	in, err := readExplainInput(r)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	principal, err := explainPrincipal(*as, in.regs)
	if err != nil {
		return err
	}
	cfg := previewConfig{Principal: principal, Now: now}
	if *keyFile != "" {
		if cfg.Keys, err = loadKeys(*keyFile); err != nil {
			return err
		}
	}
	pv, err := newPreview(cfg)
	if err != nil {
		return err
	}
	for _, ev := range in.history {
		if err := pv.seed(ev); err != nil {
			return fmt.Errorf("%s: stored event %s: %w", name, ev.GetId(), err)
		}
	}
	var outcomes []*nirv1.RegistrationOutcome
	for _, l := range in.regs {
		if l.err != nil {
			outcomes = append(outcomes, &nirv1.RegistrationOutcome{Line: int32(l.line), Code: connect.CodeInvalidArgument.String(),
				// protojson varies its messages' spaces on purpose; keep the words.
				Message: "not a nir.v1.Registration: " + rules.RedactInput(strings.Join(strings.Fields(l.err.Error()), " "))})
			continue
		}
		outcomes = append(outcomes, pv.send(l.line, l.reg))
	}
	keys := pv.persons()
	if len(keys) > 1 {
		return errSeveralPersons
	}
	key := ""
	if len(keys) == 1 {
		key = keys[0]
	}
	ex := rules.ExplainStored(key, pv.events(key), now)
	if *asJSON {
		ps := ex.Proto()
		ps.Registrations = outcomes
		for _, o := range outcomes {
			ps.Refusals = append(ps.Refusals, o.GetRefusals()...)
		}
		b, err := protojson.MarshalOptions{Multiline: true}.Marshal(ps)
		if err != nil {
			return fmt.Errorf("marshal status: %w", err)
		}
		_, err = fmt.Fprintln(stdout, string(b))
		return err
	}
	fmt.Fprintf(stdout, "as %s, %d stored events, %d registrations\n", principal, len(in.history), len(in.regs))
	for _, o := range outcomes {
		fmt.Fprintln(stdout, outcomeText(o))
	}
	_, err = io.WriteString(stdout, ex.Text())
	return err
}

// explainInput is the input of `rules explain`: stored history and registrations.
type explainInput struct {
	history []*nirv1.Event
	regs    []regLine
}

type regLine struct {
	line int
	reg  *nirv1.Registration
	err  error // the line is not a Registration nird's JSON codec would take
}

// readExplainInput reads StoredEvent lines (the history; they have a "sequence") and
// Registration lines; blank lines and # comments are skipped. A Registration line that does
// not parse (an unknown field, a wrong type) is kept as an invalid registration, as nird would
// refuse it; the history must come first and parse.
func readExplainInput(r io.Reader) (*explainInput, error) {
	in := &explainInput{}
	err := regfile.ScanLines(r, func(n int, _ int64, line []byte) error {
		var top map[string]json.RawMessage
		if err := json.Unmarshal(line, &top); err != nil {
			return fmt.Errorf("line %d: not JSON: %w", n, err)
		}
		if _, stored := top["sequence"]; stored {
			if len(in.regs) > 0 {
				return fmt.Errorf("line %d: a stored event after a registration; give the history first", n)
			}
			ev := &nirv1.StoredEvent{}
			if err := protojson.Unmarshal(line, ev); err != nil || ev.GetEvent() == nil {
				if err == nil {
					err = errors.New("no event")
				}
				return fmt.Errorf("line %d: not a StoredEvent: %s", n, rules.RedactInput(err.Error()))
			}
			in.history = append(in.history, ev.GetEvent())
			return nil
		}
		reg := &nirv1.Registration{}
		err := protojson.Unmarshal(line, reg)
		in.regs = append(in.regs, regLine{line: n, reg: reg, err: err})
		return nil
	})
	if err != nil {
		return nil, err
	}
	keys := map[string]bool{}
	for _, ev := range in.history {
		keys[ev.GetPersonKey()] = true
	}
	if len(keys) > 1 {
		return nil, errSeveralPersons
	}
	return in, nil
}

// explainPrincipal is the principal of --as, or a kommune principal of the first
// registration's kommune (a case system's own), or the system principal without one.
func explainPrincipal(as string, regs []regLine) (auth.Principal, error) {
	p := auth.Principal{Name: "nirctl-rules-explain"}
	switch {
	case as == "system":
		p.Role = auth.RoleSystem
	case strings.HasPrefix(as, "kommune:"):
		p.Role, p.Kommune = auth.RoleKommune, strings.TrimPrefix(as, "kommune:")
		if len(p.Kommune) != 4 {
			return p, fmt.Errorf("--as %q: want kommune:NNNN or system", as)
		}
	case as == "":
		p.Role = auth.RoleSystem
		for _, l := range regs {
			if k := l.reg.GetEvent().GetKommune(); l.err == nil && k != "" {
				p.Role, p.Kommune = auth.RoleKommune, k
				break
			}
		}
	default:
		return p, fmt.Errorf("--as %q: want kommune:NNNN or system", as)
	}
	return p, nil
}
