package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"connectrpc.com/connect"
	"github.com/oklog/ulid/v2"

	"github.com/introreg/nir/internal/personkey"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

func init() {
	register("person", "one person from the read models: show, deadlines, history (audit); merge and unmerge two persons", runPerson)
}

// runMerge records the merge of two persons found to be one, or its retraction (DOMAIN.md
// Product decisions 15): args are SURVIVOR ABSORBED-KEY for merge, SURVIVOR MERGE-EVENT-ID for
// unmerge.
func runMerge(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("person "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	kommune := fs.String("kommune", "", "kommunenummer the event is recorded for: the surviving person's kommune (required)")
	reason := fs.String("reason", "", "why (free text, no personal data)")
	fs.Usage = func() {
		if cmd == "merge" {
			fmt.Fprintln(stderr, "usage: nirctl person merge SURVIVOR ABSORBED-PERSON-KEY --kommune K [--reason TEXT]")
			fmt.Fprintln(stderr, "The absorbed person's events and ids go to the survivor; the absorbed person is closed.")
		} else {
			fmt.Fprintln(stderr, "usage: nirctl person unmerge SURVIVOR MERGE-EVENT-ID --kommune K [--reason TEXT]")
			fmt.Fprintln(stderr, "Retracts the merge; the absorbed person is its own again.")
		}
		fs.PrintDefaults()
	}
	pos, err := parseArgs(fs, args)
	if err != nil || len(pos) != 2 {
		return badArgs(fs, err)
	}
	if *kommune == "" {
		fmt.Fprintf(stderr, "nirctl person %s: --kommune is required\n", cmd)
		return errUsage
	}
	ev := &nirv1.Event{Id: ulid.Make().String(), Kommune: *kommune}
	if cmd == "merge" {
		if !personkey.IsKey(pos[1]) {
			fmt.Fprintln(stderr, "nirctl person merge: the absorbed person is named by its person key (64 lowercase hex characters)")
			return errUsage
		}
		ev.Payload = &nirv1.Event_PersonsMerged{PersonsMerged: &nirv1.PersonsMerged{AbsorbedPersonKey: pos[1], Reason: *reason}}
	} else {
		ev.Payload = &nirv1.Event_EventRetracted{EventRetracted: &nirv1.EventRetracted{EventId: pos[1], Reason: *reason}}
	}
	res, err := registrationClient(ctx).Append(ctx, connect.NewRequest(&nirv1.AppendRequest{
		Registrations: []*nirv1.Registration{{Person: personRef(pos[0]), Event: ev}}}))
	if err != nil {
		return callErr("person "+cmd, err)
	}
	p := res.Msg.GetPositions()[0]
	verb := "merged into"
	if cmd == "unmerge" {
		verb = "unmerged from"
	}
	fmt.Fprintf(stdout, "%s person %s: event %s at sequence %d\n", verb, p.GetPersonKey(), p.GetEventId(), p.GetSequence())
	return nil
}

func runPerson(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	usage := func() {
		fmt.Fprintln(stderr, "usage: nirctl person show|deadlines|history PERSON [flags]")
		fmt.Fprintln(stderr, "       nirctl person merge|unmerge SURVIVOR ABSORBED-KEY|MERGE-EVENT-ID --kommune K [--reason TEXT]")
		fmt.Fprintln(stderr, "PERSON is a national id (kommune tokens) or a 64-hex person key.")
	}
	if len(args) == 0 {
		usage()
		return errUsage
	}
	if args[0] == "merge" || args[0] == "unmerge" {
		return runMerge(ctx, args[0], args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("person "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	snapshot := fs.String("snapshot", "", "read a named as-of snapshot instead of the live models")
	asJSON := fs.Bool("json", false, "print protojson")
	var now *string
	var within *int
	if args[0] == "deadlines" {
		now = fs.String("now", "", "date the statuses are computed for (YYYY-MM-DD; default today in Oslo)")
		within = fs.Int("within-days", 0, "warning period for due_soon (default 30)")
	}
	fs.Usage = func() { usage(); fs.PrintDefaults() }
	pos, err := parseArgs(fs, args[1:])
	if err != nil || len(pos) != 1 {
		return badArgs(fs, err)
	}
	ref := personRef(pos[0])
	client := queryClient(ctx)
	switch args[0] {
	case "show":
		res, err := client.GetPerson(ctx, connect.NewRequest(&nirv1.GetPersonRequest{Person: ref, Snapshot: *snapshot}))
		if err != nil {
			return callErr("person show", err)
		}
		if *asJSON {
			return printJSON(stdout, res.Msg.GetPerson())
		}
		return printPersonRow(stdout, res.Msg.GetPerson())
	case "deadlines":
		d, err := parseDateFlag("now", *now)
		if err != nil {
			return err
		}
		res, err := client.PersonDeadlines(ctx, connect.NewRequest(&nirv1.PersonDeadlinesRequest{Person: ref, Now: d, WithinDays: int32(*within), Snapshot: *snapshot}))
		if err != nil {
			return callErr("person deadlines", err)
		}
		if *asJSON {
			return printJSON(stdout, res.Msg)
		}
		fmt.Fprintf(stdout, "person %s on %s\n", res.Msg.GetPersonKey(), dateText(res.Msg.GetNow()))
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "DEADLINE\tDATE\tSTATE\tDAYS_LEFT\tNOTE")
		for _, dl := range res.Msg.GetDeadlines() {
			days := ""
			if dl.GetDate() != nil {
				days = fmt.Sprint(dl.GetDaysLeft())
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", strings.ToLower(enumText(dl.GetKind(), "DEADLINE_KIND_")), dateText(dl.GetDate()),
				strings.ToLower(enumText(dl.GetState(), "DEADLINE_STATE_")), days, dl.GetReasonNb())
		}
		return tw.Flush()
	case "history":
		res, err := client.AuditHistory(ctx, connect.NewRequest(&nirv1.AuditHistoryRequest{Person: ref, Snapshot: *snapshot}))
		if err != nil {
			return callErr("person history", err)
		}
		if *asJSON {
			for _, e := range res.Msg.GetEntries() {
				if err := printJSON(stdout, e); err != nil {
					return err
				}
			}
			return nil
		}
		fmt.Fprintf(stdout, "person %s\n", res.Msg.GetPersonKey())
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tRECORDED_AT\tACTOR\tKOMMUNE\tEVENT\tEFFECTIVE\tCORRECTED_BY")
		for _, e := range res.Msg.GetEntries() {
			ev := e.GetEvent()
			var corr []string
			for _, c := range e.GetCorrectedBy() {
				corr = append(corr, fmt.Sprintf("%s by seq %d", c.GetKind(), c.GetSequence()))
			}
			eff := "yes"
			if !e.GetEffective() {
				eff = "no"
			}
			at := ""
			if ev.GetRecordedAt() != nil {
				at = ev.GetRecordedAt().AsTime().UTC().Format("2006-01-02T15:04:05Z")
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.GetSequence(), at, ev.GetActor().GetSubject(), ev.GetKommune(),
				e.GetKind(), eff, strings.Join(corr, "; "))
		}
		return tw.Flush()
	}
	usage()
	return errUsage
}

// printPersonRow prints a person row as "field: value" lines, leaving out empty fields.
func printPersonRow(w io.Writer, r *nirv1.PersonRow) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	yes := func(b bool) string {
		if b {
			return "ja"
		}
		return "nei"
	}
	line("person_key", r.GetPersonKey())
	line("national_id", r.GetNationalId())
	line("kommune", r.GetKommune())
	line("birth_date", dateText(r.GetBirthDate()))
	line("law", enumText(r.GetLaw(), "LAW_"))
	line("permit_date", dateText(r.GetPermitDate()))
	line("settlement_date", dateText(r.GetSettlementDate()))
	line("programme_vedtak", yes(r.GetProgrammeVedtak()))
	line("programme_kommune", r.GetProgrammeKommune())
	line("programme_start", dateText(r.GetProgrammeStart()))
	line("programme_end", dateText(r.GetProgrammeEnd()))
	line("sluttmal", enumText(r.GetSluttmal(), "SLUTTMAL_"))
	line("termination_date", dateText(r.GetTerminationDate()))
	line("termination_reason", enumText(r.GetTerminationReason(), "TERMINATION_REASON_"))
	line("training_vedtak", yes(r.GetTrainingVedtak()))
	line("training_scheme", enumText(r.GetTrainingScheme(), "TRAINING_SCHEME_"))
	line("norsk_hours", fmt.Sprintf("%.2f", r.GetNorskHours()))
	line("samfunnskunnskap_hours", fmt.Sprintf("%.2f", r.GetSamfunnskunnskapHours()))
	line("norsk_deadline", dateText(r.GetNorskDeadline()))
	line("norsk_deadline_note", r.GetNorskDeadlineNote())
	line("start_deadline", dateText(r.GetStartDeadline()))
	return tw.Flush()
}
