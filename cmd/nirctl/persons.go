package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/introreg/nir/internal/auth"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
	"github.com/introreg/nir/rules"
)

func init() {
	register("persons", "list or export (CSV) a kommune's person list with filters", runPersons)
}

func queryClient(ctx context.Context) nirv1connect.QueryServiceClient {
	return nirv1connect.NewQueryServiceClient(httpClient(ctx), serverURL(ctx))
}

// streamingHTTPClient is httpClient without the overall timeout, for long downloads and
// streamed progress; the command's context still ends it.
func streamingHTTPClient(ctx context.Context) *http.Client {
	return &http.Client{Transport: auth.BearerTransport(globalsOf(ctx).token, http.DefaultTransport)}
}

// parseArgs parses flags that may come before or after the positional arguments, and
// returns the positional ones.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// enumFlag parses an enum flag value given by its name with or without the prefix, in any
// ASCII case, '-' for '_' ("il_6a", "IL-6A", "LAW_IL_6A"), by rules.ParseEnum; values is the
// generated map of names (nirv1.Law_value). Empty is unset. A look-alike (ıl, ſ), an unknown
// name and the UNSPECIFIED name are refused naming the flag; the value is quoted redacted
// (rules.RedactInput) and escaped, so a national id typed into the flag is not printed.
func enumFlag(flagName string, values map[string]int32, prefix, s string) (int32, error) {
	n, err := rules.ParseEnum(values, prefix, s)
	switch {
	case errors.Is(err, rules.ErrEnumUnspecified):
		return 0, fmt.Errorf("--%s: UNSPECIFIED is no value; leave --%s out for all", flagName, flagName)
	case err != nil:
		return 0, fmt.Errorf("--%s: unknown value %+q (one of %s)", flagName, rules.RedactInput(s), strings.Join(rules.EnumNames(values, prefix), ", "))
	}
	return n, nil
}

// enumText prints an enum value without its prefix; unset prints empty.
func enumText(e protoreflect.Enum, prefix string) string {
	if e.Number() == 0 {
		return ""
	}
	v := e.Descriptor().Values().ByNumber(e.Number())
	if v == nil {
		return strconv.Itoa(int(e.Number()))
	}
	return strings.TrimPrefix(string(v.Name()), prefix)
}

// dateText prints a date as YYYY-MM-DD; unset prints empty.
func dateText(d *nirv1.Date) string {
	if d == nil || (d.GetYear() == 0 && d.GetMonth() == 0 && d.GetDay() == 0) {
		return ""
	}
	return fmt.Sprintf("%04d-%02d-%02d", d.GetYear(), d.GetMonth(), d.GetDay())
}

// parseDateFlag reads a YYYY-MM-DD flag value; empty gives nil.
func parseDateFlag(flagName, s string) (*nirv1.Date, error) {
	if s == "" {
		return nil, nil
	}
	var y, m, d int
	if n, err := fmt.Sscanf(s, "%4d-%2d-%2d", &y, &m, &d); err != nil || n != 3 || len(s) != 10 {
		return nil, fmt.Errorf("--%s: %q is not a date (YYYY-MM-DD)", flagName, s)
	}
	return &nirv1.Date{Year: int32(y), Month: int32(m), Day: int32(d)}, nil
}

// printJSON prints one protojson message per line.
func printJSON(w io.Writer, m proto.Message) error {
	b, err := protojson.Marshal(m)
	if err != nil {
		return err
	}
	// protojson writes 64-bit integers as strings (JSON numbers lose precision above 2^53 in
	// JavaScript); counts never come near that, and a number is what a reader of --json
	// expects, so they are numbers here, in the API's JSON otherwise.
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return err
	}
	out, err := json.Marshal(numbers(v, m.ProtoReflect().Descriptor()))
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(out))
	return err
}

// numbers turns the 64-bit integers protojson wrote as strings back into numbers, walking the
// JSON value v of a message of type md.
func numbers(v any, md protoreflect.MessageDescriptor) any {
	obj, ok := v.(map[string]any)
	if !ok {
		return v
	}
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		val, ok := obj[fd.JSONName()]
		if !ok {
			continue
		}
		switch {
		case fd.IsMap():
			if m, ok := val.(map[string]any); ok {
				for k, e := range m {
					m[k] = scalar(e, fd.MapValue())
				}
			}
		case fd.IsList():
			if l, ok := val.([]any); ok {
				for j, e := range l {
					l[j] = scalar(e, fd)
				}
			}
		default:
			obj[fd.JSONName()] = scalar(val, fd)
		}
	}
	return obj
}

func scalar(v any, fd protoreflect.FieldDescriptor) any {
	switch fd.Kind() {
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind,
		protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		if s, ok := v.(string); ok {
			return json.Number(s)
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		if fd.Message().FullName().Parent() != "google.protobuf" {
			return numbers(v, fd.Message())
		}
	}
	return v
}

// personListFlags are the person list's filters and order, shared by `persons list` and
// `persons export`. Their names are the CSV export's query parameters with '-' for '_'.
type personListFlags struct {
	kommune, now, sort, snapshot string
	desc                         bool
	law, reason, deadline        string
	withinDays, year             int
	minHours, maxHours           float64
	presence                     map[string]*string
	programmeCat, trainingCat    string
}

var presenceNames = []string{"programme_vedtak", "training_vedtak", "tiltak", "sluttmal",
	"integreringskontrakt", "norskmal", "utdanningsbakgrunn", "terminated", "inactive",
	"registered_reason", "termination_computed", "norsk_hours"}

func (f *personListFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.kommune, "kommune", "", "bostedskommune (4 digits; a kommune token defaults to its own)")
	fs.StringVar(&f.now, "now", "", "date deadline states are computed for (YYYY-MM-DD; default today in Oslo)")
	fs.StringVar(&f.sort, "sort", "", "order: person_key, birth_date, programme_start, programme_end, norsk_deadline, norsk_hours, termination_date")
	fs.BoolVar(&f.desc, "desc", false, "reverse the order")
	fs.StringVar(&f.snapshot, "snapshot", "", "read a named as-of snapshot instead of the live models")
	fs.StringVar(&f.law, "law", "", "INTROL, IL or IL_6A")
	fs.StringVar(&f.reason, "termination-reason", "", "effective avslutningsårsak, e.g. ARBEID or IKKE_REGISTRERT")
	fs.StringVar(&f.deadline, "deadline", "", "overdue or due_within (with --within-days)")
	fs.IntVar(&f.withinDays, "within-days", 0, "warning period of --deadline due_within (default 30)")
	fs.Float64Var(&f.minHours, "min-norsk-hours", 0, "at least this many norsk hours")
	fs.Float64Var(&f.maxHours, "max-norsk-hours", 0, "at most this many norsk hours")
	fs.IntVar(&f.year, "year", 0, "data year: persons whose programme or training ran in it (the årsrapportering's filter)")
	fs.StringVar(&f.programmeCat, "programme-category", "", "kategori for the programme: RETT_OG_PLIKT, PLIKT, RETT, KAN_TILBYS or NONE")
	fs.StringVar(&f.trainingCat, "training-category", "", "kategori for opplæring: RETT_OG_PLIKT, PLIKT, RETT, KAN_TILBYS or NONE")
	f.presence = map[string]*string{}
	for _, n := range presenceNames {
		what := strings.ReplaceAll(n, "_", " ")
		switch n {
		case "inactive":
			what = "«ingen registreringer siste 12 måneder»: an open programme and nothing registered for the inactivity threshold"
		case "registered_reason":
			what = "a registered avslutningsårsak, or «Avslutningsårsak ikke registrert»"
		case "termination_computed":
			what = "a termination computed by the regelmotor, awaiting the kommune's reason"
		case "norsk_hours":
			what = "registered norsk hours"
		}
		f.presence[n] = fs.String(strings.ReplaceAll(n, "_", "-"), "", "with or without ("+what+")")
	}
}

// request builds the ListPersons request.
func (f *personListFlags) request() (*nirv1.ListPersonsRequest, error) {
	req := &nirv1.ListPersonsRequest{Kommune: f.kommune, Desc: f.desc, Snapshot: f.snapshot, Filter: &nirv1.PersonFilter{
		MinNorskHours: f.minHours, MaxNorskHours: f.maxHours, WithinDays: int32(f.withinDays), Year: int32(f.year)}}
	var err error
	if req.Now, err = parseDateFlag("now", f.now); err != nil {
		return nil, err
	}
	if f.sort != "" {
		n, err := enumFlag("sort", nirv1.PersonSort_value, "PERSON_SORT_", f.sort)
		if err != nil {
			return nil, err
		}
		req.Sort = nirv1.PersonSort(n)
	}
	n, err := enumFlag("law", nirv1.Law_value, "LAW_", f.law)
	if err != nil {
		return nil, err
	}
	req.Filter.Law = nirv1.Law(n)
	if n, err = enumFlag("termination-reason", nirv1.TerminationReason_value, "TERMINATION_REASON_", f.reason); err != nil {
		return nil, err
	}
	req.Filter.TerminationReason = nirv1.TerminationReason(n)
	if f.deadline != "" {
		if n, err = enumFlag("deadline", nirv1.DeadlineFilter_value, "DEADLINE_FILTER_", f.deadline); err != nil {
			return nil, err
		}
		req.Filter.Deadline = nirv1.DeadlineFilter(n)
	}
	dst := map[string]*nirv1.PresenceFilter{
		"programme_vedtak": &req.Filter.ProgrammeVedtak, "training_vedtak": &req.Filter.TrainingVedtak,
		"tiltak": &req.Filter.Tiltak, "sluttmal": &req.Filter.Sluttmal, "integreringskontrakt": &req.Filter.Integreringskontrakt,
		"norskmal": &req.Filter.Norskmal, "utdanningsbakgrunn": &req.Filter.Utdanningsbakgrunn, "terminated": &req.Filter.Terminated,
		"inactive": &req.Filter.Inactive, "registered_reason": &req.Filter.RegisteredReason,
		"termination_computed": &req.Filter.TerminationComputed, "norsk_hours": &req.Filter.NorskHours,
	}
	for _, c := range []struct {
		name, v string
		dst     *nirv1.Scheme
	}{{"programme-category", f.programmeCat, &req.Filter.ProgrammeCategory}, {"training-category", f.trainingCat, &req.Filter.TrainingCategory}} {
		n, err := enumFlag(c.name, nirv1.Scheme_value, "SCHEME_", c.v)
		if err != nil {
			return nil, err
		}
		*c.dst = nirv1.Scheme(n)
	}
	for _, name := range presenceNames {
		flagName := strings.ReplaceAll(name, "_", "-")
		n, err := enumFlag(flagName, nirv1.PresenceFilter_value, "PRESENCE_FILTER_", *f.presence[name])
		if err != nil {
			return nil, err
		}
		*dst[name] = nirv1.PresenceFilter(n)
	}
	return req, nil
}

// exportName is the CSV export's name for the enum value s names, as a flag takes it (with or
// without the prefix, any ASCII case, '-' for '_'; rules.ParseEnum): the value's name without
// its prefix, in lower case ("PERSON_SORT_NAME" and "Person-Key" are "person_key"); "" for
// none. A flag the list takes is so taken by the export too, whose sort, deadline and
// presence parameters want that form.
func exportName(values map[string]int32, prefix, s string) string {
	n, err := rules.ParseEnum(values, prefix, s)
	if err != nil || n == 0 {
		return s // request refused it already, or it is empty
	}
	return strings.ToLower(rules.EnumName(values, prefix, n))
}

// values builds the CSV export's query parameters from the same flags (checked the same way).
func (f *personListFlags) values() (url.Values, error) {
	if _, err := f.request(); err != nil {
		return nil, err
	}
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("kommune", f.kommune)
	set("now", f.now)
	set("sort", exportName(nirv1.PersonSort_value, "PERSON_SORT_", f.sort))
	if f.desc {
		v.Set("desc", "true")
	}
	set("snapshot", f.snapshot)
	set("law", f.law)
	set("termination_reason", f.reason)
	set("deadline", exportName(nirv1.DeadlineFilter_value, "DEADLINE_FILTER_", f.deadline))
	if f.withinDays != 0 {
		v.Set("within_days", strconv.Itoa(f.withinDays))
	}
	if f.minHours != 0 {
		v.Set("min_norsk_hours", strconv.FormatFloat(f.minHours, 'f', -1, 64))
	}
	if f.maxHours != 0 {
		v.Set("max_norsk_hours", strconv.FormatFloat(f.maxHours, 'f', -1, 64))
	}
	for _, n := range presenceNames {
		set(n, exportName(nirv1.PresenceFilter_value, "PRESENCE_FILTER_", *f.presence[n]))
	}
	if f.year != 0 {
		v.Set("year", strconv.Itoa(f.year))
	}
	set("programme_category", f.programmeCat)
	set("training_category", f.trainingCat)
	return v, nil
}

func runPersons(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: nirctl persons list|export [flags]   (nirctl persons list -h for the flags)")
		return errUsage
	}
	switch args[0] {
	case "list":
		return runPersonsList(ctx, args[1:], stdout, stderr)
	case "export":
		return runPersonsExport(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "nirctl persons: unknown subcommand %q (list or export)\n", args[0])
	return errUsage
}

func runPersonsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("persons list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f personListFlags
	f.register(fs)
	pageSize := fs.Int("page-size", 100, "rows per request (at most 1000)")
	pageToken := fs.String("page-token", "", "continue from a page token")
	all := fs.Bool("all", false, "fetch every page")
	asJSON := fs.Bool("json", false, "print rows as protojson lines")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: nirctl persons list [flags]")
		fmt.Fprintln(stderr, "Prints a kommune's person list (DOMAIN.md 6.1). Analyst tokens get no national ids.")
		fs.PrintDefaults()
	}
	if pos, err := parseArgs(fs, args); err != nil || len(pos) != 0 {
		return badArgs(fs, err)
	}
	req, err := f.request()
	if err != nil {
		return err
	}
	req.PageSize, req.PageToken = int32(*pageSize), *pageToken
	client := queryClient(ctx)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	if !*asJSON {
		fmt.Fprintln(tw, "PERSON_KEY\tNATIONAL_ID\tKOMMUNE\tLAW\tPROGRAMME_START\tPROGRAMME_END\tTERMINATED\tREASON\tNORSK_DEADLINE\tNORSK_HOURS")
	}
	for {
		res, err := client.ListPersons(ctx, connect.NewRequest(req))
		if err != nil {
			return callErr("persons list", err)
		}
		for _, r := range res.Msg.GetRows() {
			if *asJSON {
				if err := printJSON(stdout, r); err != nil {
					return err
				}
				continue
			}
			deadline := dateText(r.GetNorskDeadline())
			if deadline == "" {
				deadline = r.GetNorskDeadlineNote()
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.2f\n", r.GetPersonKey(), r.GetNationalId(), r.GetKommune(),
				enumText(r.GetLaw(), "LAW_"), dateText(r.GetProgrammeStart()), dateText(r.GetProgrammeEnd()),
				dateText(r.GetTerminationDate()), enumText(r.GetTerminationReason(), "TERMINATION_REASON_"), deadline, r.GetNorskHours())
		}
		next := res.Msg.GetNextPageToken()
		if !*all || next == "" {
			if err := tw.Flush(); err != nil {
				return err
			}
			if next != "" {
				fmt.Fprintf(stderr, "%d rows in all; more with --page-token %s or --all\n", res.Msg.GetTotal(), next)
			}
			return nil
		}
		req.PageToken = next
	}
}

func runPersonsExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("persons export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f personListFlags
	f.register(fs)
	out := fs.String("o", "", "write the CSV to this file (default stdout)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: nirctl persons export [flags] [-o FILE]")
		fmt.Fprintln(stderr, "Streams the person list as CSV from GET /export/persons.csv. Analyst tokens get no national_id column.")
		fs.PrintDefaults()
	}
	if pos, err := parseArgs(fs, args); err != nil || len(pos) != 0 {
		return badArgs(fs, err)
	}
	vals, err := f.values()
	if err != nil {
		return err
	}
	u := serverURL(ctx) + "/export/persons.csv?" + vals.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	res, err := streamingHTTPClient(ctx).Do(req)
	if err != nil {
		return fmt.Errorf("persons export: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		return fmt.Errorf("persons export: %s: %s", res.Status, strings.TrimSpace(string(msg)))
	}
	w := stdout
	var file *os.File
	if *out != "" {
		if file, err = os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600); err != nil {
			return err
		}
		w = file
	}
	n, err := io.Copy(w, res.Body)
	if file != nil {
		if cerr := file.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		if *out != "" {
			os.Remove(*out) // never leave a truncated file that looks whole
		}
		return fmt.Errorf("persons export: %w", err)
	}
	if *out != "" {
		fmt.Fprintf(stderr, "wrote %d bytes to %s\n", n, *out)
	}
	return nil
}
