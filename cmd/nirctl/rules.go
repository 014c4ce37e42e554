package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

func init() {
	register("rules", "explain a person's law, deadlines and refusals", runRules)
}

const rulesUsage = `usage: nirctl rules explain --now DATE [--json] [FILE]   a person's law, schemes, deadlines, refusals
       nirctl rules versions                               the rule versions and their validity
       nirctl rules codes                                  the refusal codes`

// errSeveralPersons is returned when the input of `rules explain` holds more than one person.
var errSeveralPersons = errors.New("the input holds events of more than one person; explain one at a time")

// runRules is `nirctl rules explain --now DATE [--json] [FILE]`: it reads one person's events
// (protojson nir.v1.Registration lines as `nirctl append` takes them, or nir.v1.StoredEvent
// lines as `nirctl history` prints them; stdin without FILE) and prints what the regelmotor
// says: law, schemes, deadlines with statuses, refusals and due computed terminations, each with
// its rule, version and DOMAIN.md section. It works offline: nothing is sent to nird.
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
	nowFlag := fs.String("now", time.Now().Format("2006-01-02"), "the date to explain the person at (YYYY-MM-DD)")
	asJSON := fs.Bool("json", false, "print a nir.v1.PersonStatus as protojson")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: nirctl rules explain --now DATE [--json] [FILE]   (stdin without FILE)")
		fmt.Fprintln(stderr, "Each line is a nir.v1.Registration (as for append) or a nir.v1.StoredEvent (as history prints), in stream order.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		return errUsage
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
	events, err := readPersonEvents(r)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	ex := rules.Explain(events, now)
	if *asJSON {
		b, err := protojson.MarshalOptions{Multiline: true}.Marshal(ex.Proto())
		if err != nil {
			return fmt.Errorf("marshal status: %w", err)
		}
		_, err = fmt.Fprintln(stdout, string(b))
		return err
	}
	_, err = io.WriteString(stdout, ex.Text())
	return err
}

// readPersonEvents reads Registration or StoredEvent lines; blank lines and # comments are
// skipped. The person key comes from the event, else from the registration's person ref.
func readPersonEvents(r io.Reader) ([]*nirv1.Event, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 8<<20)
	var events []*nirv1.Event
	key := ""
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var ev *nirv1.Event
		reg := &nirv1.Registration{}
		if err := protojson.Unmarshal([]byte(line), reg); err == nil && reg.GetEvent() != nil {
			ev = reg.GetEvent()
			if ev.GetPersonKey() == "" {
				ev.PersonKey = reg.GetPerson().GetPersonKey()
			}
		} else {
			stored := &nirv1.StoredEvent{}
			if err2 := protojson.Unmarshal([]byte(line), stored); err2 != nil || stored.GetEvent() == nil {
				if err == nil {
					err = errors.New("no event")
				}
				return nil, fmt.Errorf("line %d: not a Registration or StoredEvent: %w", n, err)
			}
			ev = stored.GetEvent()
		}
		if k := ev.GetPersonKey(); k != "" {
			if key != "" && k != key {
				return nil, fmt.Errorf("line %d: %w", n, errSeveralPersons)
			}
			key = k
		}
		events = append(events, ev)
	}
	return events, sc.Err()
}
