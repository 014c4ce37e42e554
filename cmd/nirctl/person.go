package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"connectrpc.com/connect"
	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/proto"

	"github.com/introreg/nir/internal/personkey"
	"github.com/introreg/nir/rules"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

func init() {
	register("person", "one person from the read models: show, deadlines, history (audit); merge and unmerge two persons; erase one", runPerson)
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
	ref, err := personRef(ctx, pos[0])
	if err != nil {
		return err
	}
	res, err := registrationClient(ctx).Append(ctx, connect.NewRequest(&nirv1.AppendRequest{
		Registrations: []*nirv1.Registration{{Person: ref, Event: ev}}}))
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

// runErase records the erasure of a person (DOMAIN.md Product decisions 15): nird destroys the
// data keys that seal the person's national ids and birth date, which then read as «slettet»
// everywhere; the statistics do not change. Operators only. It cannot be undone.
func runErase(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("person erase", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kommune := fs.String("kommune", "", "kommunenummer the event is recorded for: the person's kommune (required)")
	reason := fs.String("reason", "", "why: the retention rule or the legal basis (free text, no personal data; required, but with --due)")
	due := fs.Bool("due", false, "the persons nird's retention rule (--retention-years) makes due for erasure, instead of PERSON")
	dry := fs.Bool("dry-run", false, "with --due: list them, erase nothing")
	now := fs.String("now", "", "with --due: the date the rule is applied on (YYYY-MM-DD; default today in Oslo)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: nirctl person erase PERSON --kommune K --reason TEXT")
		fmt.Fprintln(stderr, "       nirctl person erase --due [--dry-run] [--now YYYY-MM-DD]")
		fmt.Fprintln(stderr, "Destroys the person's data key: its national ids and birth date read as «slettet» for good.")
		fmt.Fprintln(stderr, "Sent again for an erased person, it finishes destroying keys a failure left.")
		fs.PrintDefaults()
	}
	pos, err := parseArgs(fs, args)
	if *due {
		if err != nil || len(pos) != 0 || *kommune != "" {
			return badArgs(fs, err)
		}
		return eraseDue(ctx, *now, *dry, *reason, stdout)
	}
	if err != nil || len(pos) != 1 || *dry || *now != "" {
		return badArgs(fs, err)
	}
	if *kommune == "" || *reason == "" {
		fmt.Fprintln(stderr, "nirctl person erase: --kommune and --reason are required")
		return errUsage
	}
	ev := &nirv1.Event{Id: ulid.Make().String(), Kommune: *kommune,
		Payload: &nirv1.Event_PersonErased{PersonErased: &nirv1.PersonErased{Reason: *reason}}}
	ref, err := personRef(ctx, pos[0])
	if err != nil {
		return err
	}
	res, err := registrationClient(ctx).Append(ctx, connect.NewRequest(&nirv1.AppendRequest{
		Registrations: []*nirv1.Registration{{Person: ref, Event: ev}}}))
	if err != nil {
		return callErr("person erase", err)
	}
	p := res.Msg.GetPositions()[0]
	how := "erased"
	if p.GetDuplicate() {
		how = "was erased already (its keys are destroyed now)"
	}
	fmt.Fprintf(stdout, "person %s %s: event %s at sequence %d\n", p.GetPersonKey(), how, p.GetEventId(), p.GetSequence())
	return nil
}

// eraseDue lists the persons due for erasure under nird's retention rule and, unless dry,
// erases each, one request per person, so that one refusal stops none of the others; the
// first error is returned after all were tried.
//
// The list is computed on the read models, which may lag the stream, and erasing many persons
// takes a while: so right before each erasure the rule is applied again to that person (on
// the read models as they are then; one person's fold, so that N persons due cost N folds,
// not N listings of the register), and a person no longer due (active since) is left, reported
// "not due any more", which is no error. Found on 2026-12-06 (review of the identity
// lifecycle): before, a person who became active after the listing was erased all the same.
// The window left is the read models' lag at the second listing: the API has no way to make
// the erasure itself conditional on the rule (ListErasureDue gives no person's last sequence
// to send as expected_last_sequence, and an erasure request has no «if still due» field).
func eraseDue(ctx context.Context, now string, dry bool, reason string, stdout io.Writer) error {
	req := &nirv1.ListErasureDueRequest{}
	if now != "" {
		d, err := rules.ParseDate(now)
		if err != nil {
			return fmt.Errorf("--now: %w", err)
		}
		req.Now = d.Proto()
	}
	list := func(personKey string) (*nirv1.ListErasureDueResponse, error) {
		r := proto.Clone(req).(*nirv1.ListErasureDueRequest)
		r.PersonKey = personKey
		res, err := adminClient(ctx, false).ListErasureDue(ctx, connect.NewRequest(r))
		if err != nil {
			return nil, err
		}
		return res.Msg, nil
	}
	m, err := list("")
	if err != nil {
		return callErr("person erase --due", err)
	}
	fmt.Fprintf(stdout, "retention rule: %d years after the last activity, applied on %s (read models at sequence %d): %d persons due\n",
		m.GetRetentionYears(), dateText(m.GetNow()), m.GetCheckpoint(), len(m.GetPersons()))
	if reason == "" {
		reason = fmt.Sprintf("oppbevaringstid: %d år etter siste aktivitet", m.GetRetentionYears())
	}
	if !dry {
		afterDueListing()
	}
	var first error
	for _, p := range m.GetPersons() {
		if dry {
			fmt.Fprintf(stdout, "due %s kommune %s last activity %s\n", p.GetPersonKey(), p.GetKommune(), dateText(p.GetLastActivity()))
			continue
		}
		again, err := list(p.GetPersonKey())
		if err != nil {
			fmt.Fprintf(stdout, "not erased %s: %v\n", p.GetPersonKey(), err)
			if first == nil {
				first = callErr("person erase --due", err)
			}
			continue
		}
		if !slices.ContainsFunc(again.GetPersons(), func(q *nirv1.ErasureDue) bool {
			return q.GetPersonKey() == p.GetPersonKey() && q.GetKommune() == p.GetKommune()
		}) {
			fmt.Fprintf(stdout, "not erased %s: not due any more (read models at sequence %d)\n", p.GetPersonKey(), again.GetCheckpoint())
			continue
		}
		ev := &nirv1.Event{Id: ulid.Make().String(), Kommune: p.GetKommune(),
			Payload: &nirv1.Event_PersonErased{PersonErased: &nirv1.PersonErased{Reason: reason}}}
		r, err := registrationClient(ctx).Append(ctx, connect.NewRequest(&nirv1.AppendRequest{
			Registrations: []*nirv1.Registration{{Person: &nirv1.PersonRef{PersonKey: p.GetPersonKey()}, Event: ev}}}))
		if err != nil {
			if recordedErasure(err) {
				// Stored all the same (a data key it destroys is damaged, or not destroyed
				// yet): the message says what is left for the operator.
				fmt.Fprintf(stdout, "erased %s, but: %v\n", p.GetPersonKey(), err)
			} else {
				fmt.Fprintf(stdout, "not erased %s: %v\n", p.GetPersonKey(), err)
			}
			if first == nil {
				first = callErr("person erase --due", err)
			}
			continue
		}
		fmt.Fprintf(stdout, "erased %s: event %s at sequence %d\n", p.GetPersonKey(), r.Msg.GetPositions()[0].GetEventId(), r.Msg.GetPositions()[0].GetSequence())
	}
	return first
}

// afterDueListing is called by eraseDue between its listing and the erasures (a test's hook:
// a person becomes active there).
var afterDueListing = func() {}

// recordedErasure reports whether err answers an erasure that nird stored although not every
// data key it names was destroyed (DataLoss for a key damaged on disk, Unavailable for one to
// destroy by sending the erasure again): nird's message for both begins so.
func recordedErasure(err error) bool {
	var ce *connect.Error
	return errors.As(err, &ce) && (ce.Code() == connect.CodeDataLoss || ce.Code() == connect.CodeUnavailable) &&
		strings.HasPrefix(ce.Message(), "the erasure is recorded")
}

func runPerson(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	usage := func() {
		fmt.Fprintln(stderr, "usage: nirctl person show|deadlines|history PERSON [flags]")
		fmt.Fprintln(stderr, "       nirctl person merge|unmerge SURVIVOR ABSORBED-KEY|MERGE-EVENT-ID --kommune K [--reason TEXT]")
		fmt.Fprintln(stderr, "       nirctl person erase PERSON --kommune K --reason TEXT")
		fmt.Fprintln(stderr, "PERSON is a national id (kommune tokens) or a 64-hex person key; - reads it from stdin (keeps a national id out of the command line).")
	}
	if len(args) == 0 {
		usage()
		return errUsage
	}
	if args[0] == "merge" || args[0] == "unmerge" {
		return runMerge(ctx, args[0], args[1:], stdout, stderr)
	}
	if args[0] == "erase" {
		return runErase(ctx, args[1:], stdout, stderr)
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
	ref, err := personRef(ctx, pos[0])
	if err != nil {
		return err
	}
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
