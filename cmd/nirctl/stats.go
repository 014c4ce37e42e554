package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"connectrpc.com/connect"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

func init() {
	register("stats", "statistics of a data year per kommune, fylke or the nation", runStats)
	register("report", "reports: terminated (participants whose programme ended in a year)", runReport)
}

func runStats(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("stats", flag.ContinueOnError)
	fs.SetOutput(stderr)
	year := fs.Int("year", 0, "data year (required)")
	level := fs.String("level", "nation", "kommune, fylke or nation")
	area := fs.String("area", "", "one kommunenummer or fylkesnummer (default all the caller may see)")
	snapshot := fs.String("snapshot", "", `read a named as-of snapshot, e.g. the official figures "2022@2023-02-28"`)
	asJSON := fs.Bool("json", false, "print rows as protojson lines")
	current := fs.Bool("current-structure", false, "report on today's kommune structure instead of the data year's (the mapping is shown)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: nirctl stats --year YEAR [--level kommune|fylke|nation] [--area AREA] [--snapshot NAME] [--current-structure] [--json]")
		fs.PrintDefaults()
	}
	if pos, err := parseArgs(fs, args); err != nil || len(pos) != 0 {
		return badArgs(fs, err)
	}
	if *year == 0 {
		return usageError(fs, "--year: the data year is required (e.g. --year 2023)")
	}
	lv, err := enumFlag("level", nirv1.StatisticsLevel_value, "STATISTICS_LEVEL_", *level)
	if err != nil {
		return err
	}
	res, err := queryClient(ctx).Statistics(ctx, connect.NewRequest(&nirv1.StatisticsRequest{
		Year: int32(*year), Level: nirv1.StatisticsLevel(lv), Area: *area, Snapshot: *snapshot, CurrentStructure: *current}))
	if err != nil {
		return callErr("stats", err)
	}
	if *asJSON {
		for _, r := range res.Msg.GetRows() {
			if err := printJSON(stdout, r); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "AREA\tNAME\tPARTICIPANTS\tNEW\tONGOING\tTERMINATED\tREGISTERED\tCOMPUTED\tNOT_REGISTERED\tWORK_OR_EDU\tSHARE\tNORSK_HOURS\tTRAINING_STARTED\tWITHIN_3M\t")
	for _, r := range res.Msg.GetRows() {
		a := r.GetArea()
		if a == "" {
			a = "nation"
		}
		// A field withheld by disclosure control is «:» (DOMAIN.md Product decisions 14).
		sup := map[string]bool{}
		for _, f := range r.GetSuppressed() {
			sup[f] = true
		}
		n := func(field string, v int64) string {
			if sup[field] {
				return ":"
			}
			return fmt.Sprint(v)
		}
		pct := func(field string, v float64) string {
			if sup[field] {
				return ":"
			}
			return fmt.Sprintf("%.1f%%", 100*v)
		}
		hours := ":"
		if !sup["norsk_hours"] {
			hours = fmt.Sprintf("%.2f", r.GetNorskHours())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", a, areaName(r, *year), n("participants", r.GetParticipants()),
			n("new_programmes", r.GetNewProgrammes()), n("ongoing", r.GetOngoing()), n("terminated", r.GetTerminated()),
			n("terminated_registered", r.GetTerminatedRegistered()), n("terminated_computed", r.GetTerminatedComputed()),
			n("reason_not_registered", r.GetReasonNotRegistered()), n("direct_work_or_education", r.GetDirectWorkOrEducation()),
			pct("share_direct_work_or_education", r.GetShareDirectWorkOrEducation()), hours,
			n("training_started", r.GetTrainingStarted()), pct("share_training_started_within_3_months", r.GetShareTrainingStartedWithin_3Months()))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if f := res.Msg.GetFootnote(); f != "" {
		fmt.Fprintf(stdout, "\n%s (threshold %d)\n", f, res.Msg.GetMinCount())
	}
	return writeMappings(stdout, res.Msg)
}

// areaName is the name of a row's kommune or fylke as it was at the end of the data year
// (the row's structure), or its latest name; "Norge" for the nation.
func areaName(r *nirv1.StatisticsRow, year int) string {
	on := rules.MustDate(year, 12, 31)
	switch r.GetLevel() {
	case nirv1.StatisticsLevel_STATISTICS_LEVEL_NATION:
		return "Norge"
	case nirv1.StatisticsLevel_STATISTICS_LEVEL_FYLKE:
		if f, err := rules.LookupFylke(r.GetArea(), on); err == nil {
			return f.Name
		}
	case nirv1.StatisticsLevel_STATISTICS_LEVEL_KOMMUNE:
		if k, err := rules.LookupKommune(r.GetArea(), on); err == nil {
			return k.Name
		}
		if ps, err := rules.KommunePeriods(r.GetArea()); err == nil && len(ps) > 0 {
			return ps[len(ps)-1].Name
		}
	}
	return ""
}

// writeMappings prints the kommune structure the rows follow and the numbers reported under
// another number (DOMAIN.md Product decisions 13).
func writeMappings(w io.Writer, res *nirv1.StatisticsResponse) error {
	if len(res.GetMappings()) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\nkommune structure of %s (SSB classification 131):\n", dateText(res.GetStructure()))
	for _, m := range res.GetMappings() {
		if len(m.GetCandidates()) > 0 {
			fmt.Fprintf(w, "  %s kept under its own number: it corresponds to %s\n", m.GetFrom(), strings.Join(m.GetCandidates(), ", "))
			continue
		}
		fmt.Fprintf(w, "  %s reported as %s\n", m.GetFrom(), m.GetTo())
	}
	return nil
}

func runReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "terminated" {
		fmt.Fprintln(stderr, "usage: nirctl report terminated --year YEAR [flags]")
		return errUsage
	}
	fs := flag.NewFlagSet("report terminated", flag.ContinueOnError)
	fs.SetOutput(stderr)
	year := fs.Int("year", 0, "termination year (required)")
	kommune := fs.String("kommune", "", "the programme's kommune (a kommune token gets its own)")
	law := fs.String("law", "", "INTROL, IL or IL_6A (default both laws)")
	reason := fs.String("reason", "", "with (a registered avslutningsårsak) or without («Avslutningsårsak ikke registrert»)")
	category := fs.String("programme-category", "", "kategori for the programme: RETT_OG_PLIKT, PLIKT, RETT, KAN_TILBYS or NONE (default all)")
	snapshot := fs.String("snapshot", "", `read a named as-of snapshot, e.g. "2022@2023-02-28"`)
	asJSON := fs.Bool("json", false, "print the report as protojson")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: nirctl report terminated --year YEAR [--kommune K] [--law L] [--reason with|without] [--programme-category C] [--snapshot NAME] [--json]")
		fs.PrintDefaults()
	}
	if pos, err := parseArgs(fs, args[1:]); err != nil || len(pos) != 0 || *year == 0 {
		return badArgs(fs, err)
	}
	l, err := enumFlag("law", nirv1.Law_value, "LAW_", *law)
	if err != nil {
		return err
	}
	r, err := enumFlag("reason", nirv1.PresenceFilter_value, "PRESENCE_FILTER_", *reason)
	if err != nil {
		return err
	}
	c, err := enumFlag("programme-category", nirv1.Scheme_value, "SCHEME_", *category)
	if err != nil {
		return err
	}
	res, err := wholeTerminatedReport(ctx, &nirv1.TerminatedReportRequest{
		Year: int32(*year), Kommune: *kommune, Law: nirv1.Law(l), RegisteredReason: nirv1.PresenceFilter(r),
		ProgrammeCategory: nirv1.Scheme(c), Snapshot: *snapshot})
	if err != nil {
		return callErr("report terminated", err)
	}
	if *asJSON {
		return printJSON(stdout, res)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PERSON_KEY\tKOMMUNE\tLAW\tPROGRAMME_START\tTERMINATED\tREASON\tCOMPUTED")
	for _, t := range res.GetRows() {
		computed := ""
		if t.GetComputed() {
			computed = "regelmotor"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.GetPersonKey(), t.GetKommune(), enumText(t.GetLaw(), "LAW_"),
			dateText(t.GetProgrammeStart()), dateText(t.GetTerminationDate()), enumText(t.GetReason(), "TERMINATION_REASON_"), computed)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n%d terminated: %d with a registered reason, %d without\n", len(res.GetRows()), res.GetWithReason(), res.GetWithoutReason())
	for _, rc := range res.GetByReason() {
		fmt.Fprintf(stdout, "  %-28s %d\n", enumText(rc.GetReason(), "TERMINATION_REASON_"), rc.GetCount())
	}
	return nil
}

// wholeTerminatedReport reads every page of the report req asks for: the first page's
// counts (the whole report's) with all the rows.
func wholeTerminatedReport(ctx context.Context, req *nirv1.TerminatedReportRequest) (*nirv1.TerminatedReportResponse, error) {
	req.PageSize = 1000
	var whole *nirv1.TerminatedReportResponse
	for {
		res, err := queryClient(ctx).TerminatedReport(ctx, connect.NewRequest(req))
		if err != nil {
			return nil, err
		}
		if whole == nil {
			whole = res.Msg
		} else {
			whole.Rows = append(whole.Rows, res.Msg.GetRows()...)
		}
		if req.PageToken = res.Msg.GetNextPageToken(); req.PageToken == "" {
			whole.NextPageToken = ""
			return whole, nil
		}
	}
}
