package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/oklog/ulid/v2"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// nirctl import loads files of registrations into the register, resumably.
//
// Idempotency: the event id is the register's idempotency key. A line without an id gets one
// derived from the file's content (SHA-256) and the line number, so the same file yields the
// same ids on every run and a re-sent line is answered "already stored" instead of stored
// twice. The state file (--state) records, per file, the content hash and the last line of
// the last acknowledged batch; a re-run skips what was acknowledged and re-sends the rest,
// including the batch that was in flight when the run was interrupted.
//
// A file whose content changed since the state was written is refused: its derived ids would
// differ, and lines stored under the old ids would be stored again.

func init() {
	register("import", "import registration files (protojson lines or CSV) in batches, resumable with --state", runImport)
}

const importUsage = `usage: nirctl import [--state FILE] [--batch N] [--format auto|jsonl|csv] [--progress] FILE ...

Each FILE ("-" for standard input, read whole first) holds registrations, sent in batches (each batch is atomic) in file order:

  jsonl  one nir.v1.Registration in protojson per line (as for nirctl append); blank lines
         and lines starting with '#' are skipped.
  csv    a header row, then one registration per row (see below). Chosen for files ending
         in .csv when --format is auto.

An event without an id gets a deterministic one, derived from the file's SHA-256 and the line
number, so importing the same file again stores nothing twice: re-sent events are counted as
"already stored". With --state, progress is kept in FILE (the last acknowledged line of each
input), and a run after an interruption skips the acknowledged batches. An input that changed
since its import began is refused; put corrected or further lines in a new file.

CSV columns (by header name, any order; empty cells are unset):
  type           person_registered | person_moved | training_vedtak |
                 training_hours                                             (required)
  national_id    fødselsnummer, D-nummer or DUF-nummer                      (required)
  kommune        kommunenummer registering the event (envelope)             (required)
  event_id       ULID; derived when empty
  correlation_id free reference of the case system (no personal data)
  person_registered: birth_date, sex (MALE|FEMALE), permit_date,
                 permit_basis (e.g. ASYL_28), arrival_date, settlement_date,
                 settlement_kommune (default: kommune), settled_by_agreement (true|false)
  person_moved:  to_kommune, date
  training_vedtak: scheme (RETT_OG_PLIKT | PLIKT | RETT_6A | UTVIDET_6A),
                 vedtak_type (TILDELING | AVSLAG | STANS | PERMISJON), vedtak_date,
                 start_date, end_date
  training_hours: hours_type (NORSK | SAMFUNNSKUNNSKAP_MODUL_1..3 | SAMFUNNSKUNNSKAP),
                 month (YYYY-MM), hours, absence_hours
Dates are YYYY-MM-DD. Enum values are the schema's names, with or without their prefix.
`

func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	statePath := fs.String("state", "", "progress state file; a re-run with the same file resumes after the last acknowledged batch")
	batch := fs.Int("batch", 100, "registrations per request (each request is atomic), at most 1000")
	format := fs.String("format", "auto", "input format: auto (by extension), jsonl or csv")
	progress := fs.Bool("progress", false, "show a progress bar on stderr even when it is not a terminal")
	fs.Usage = func() {
		fmt.Fprint(stderr, importUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return badArgs(fs, err)
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errUsage
	}
	if *batch < 1 || *batch > 1000 {
		return fmt.Errorf("--batch: %d is not between 1 and 1000", *batch)
	}
	switch *format {
	case "auto", "jsonl", "csv":
	default:
		return fmt.Errorf("--format: %q is not auto, jsonl or csv", *format)
	}

	st, err := loadImportState(*statePath)
	if err != nil {
		return err
	}
	im := &importer{
		client:  registrationClient(ctx),
		state:   st,
		path:    *statePath,
		batch:   *batch,
		stdin:   os.Stdin,
		stdout:  stdout,
		showBar: *progress || isTerminal(stderr),
		stderr:  stderr,
	}
	var total importCounts
	for _, name := range fs.Args() {
		f := *format
		if f == "auto" {
			f = "jsonl"
			if strings.EqualFold(filepath.Ext(name), ".csv") {
				f = "csv"
			}
		}
		c, err := im.importFile(ctx, name, f)
		total.add(c)
		if err != nil {
			return err
		}
	}
	if len(fs.Args()) > 1 {
		fmt.Fprintf(stdout, "total: %s\n", total)
	}
	return nil
}

// importCounts is what an import did with the registrations of a file.
type importCounts struct {
	stored, duplicates, skipped int
}

func (c *importCounts) add(o importCounts) {
	c.stored += o.stored
	c.duplicates += o.duplicates
	c.skipped += o.skipped
}

func (c importCounts) String() string {
	return fmt.Sprintf("%d stored, %d already stored, %d skipped (acknowledged in an earlier run)", c.stored, c.duplicates, c.skipped)
}

// importState is the --state file: per input (by absolute path), its content hash and the
// last line of the last acknowledged batch.
type importState struct {
	Version int                         `json:"version"`
	Files   map[string]*importFileState `json:"files"`
}

type importFileState struct {
	SHA256    string `json:"sha256"`
	AckedLine int    `json:"acked_line"`
	Done      bool   `json:"done"`
}

func loadImportState(path string) (*importState, error) {
	st := &importState{Version: 1, Files: map[string]*importFileState{}}
	if path == "" {
		return st, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("--state: %w", err)
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("--state %s: not an import state file: %w", path, err)
	}
	if st.Version != 1 {
		return nil, fmt.Errorf("--state %s: version %d, this nirctl reads version 1", path, st.Version)
	}
	if st.Files == nil {
		st.Files = map[string]*importFileState{}
	}
	return st, nil
}

// save writes the state atomically: a temporary file, fsynced, renamed over the old one.
func (st *importState) save(path string) error {
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("--state: %w", err)
	}
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("--state: %w", err)
	}
	return nil
}

type importer struct {
	client interface {
		Append(context.Context, *connect.Request[nirv1.AppendRequest]) (*connect.Response[nirv1.AppendResponse], error)
	}
	state   *importState
	path    string
	batch   int
	showBar bool
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
}

// importLine is one registration read from an input, with where it came from.
type importLine struct {
	line int   // 1-based line number in the file
	end  int64 // byte offset just after the line (for the progress bar)
	reg  *nirv1.Registration
}

func (im *importer) importFile(ctx context.Context, name, format string) (importCounts, error) {
	var (
		counts importCounts
		data   []byte
		err    error
	)
	if name == "-" {
		data, err = io.ReadAll(im.stdin)
	} else {
		data, err = os.ReadFile(name)
	}
	if err != nil {
		return counts, err
	}
	sum := sha256.Sum256(data)
	// A file is known by its path; standard input by its content, so that the same input
	// piped again resumes and another input is a new import.
	abs := "stdin:" + hex.EncodeToString(sum[:])
	if name != "-" {
		if abs, err = filepath.Abs(name); err != nil {
			return counts, err
		}
	}
	fst := im.state.Files[abs]
	switch {
	case fst == nil:
		fst = &importFileState{SHA256: hex.EncodeToString(sum[:])}
		im.state.Files[abs] = fst
	case fst.SHA256 != hex.EncodeToString(sum[:]):
		return counts, fmt.Errorf("%s changed since its import began (state %s): the ids derived from its content would differ and lines already stored would be stored again; put new or corrected lines in a new file", name, im.path)
	case fst.Done:
		fmt.Fprintf(im.stdout, "%s: already imported completely (state %s)\n", name, im.path)
		return counts, nil
	}

	bar := progressbar.NewOptions64(int64(len(data)),
		progressbar.OptionSetWriter(im.stderr),
		progressbar.OptionSetVisibility(im.showBar),
		progressbar.OptionSetDescription(filepath.Base(name)),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
	defer func() { _ = bar.Exit() }()

	var pending []importLine
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		regs := make([]*nirv1.Registration, len(pending))
		for i, p := range pending {
			regs[i] = p.reg
		}
		res, err := im.client.Append(ctx, connect.NewRequest(&nirv1.AppendRequest{Registrations: regs}))
		if err != nil {
			first, last := pending[0].line, pending[len(pending)-1].line
			if ctx.Err() != nil {
				return fmt.Errorf("%s: interrupted while lines %d-%d were in flight; acknowledged up to line %d; run again with the same --state to resume: %w", name, first, last, fst.AckedLine, ctx.Err())
			}
			return fmt.Errorf("%s: %w", name, batchError(err, pending))
		}
		for _, p := range res.Msg.GetPositions() {
			if p.GetDuplicate() {
				counts.duplicates++
			} else {
				counts.stored++
			}
		}
		fst.AckedLine = pending[len(pending)-1].line
		if err := im.state.save(im.path); err != nil {
			return err
		}
		_ = bar.Set64(pending[len(pending)-1].end)
		pending = pending[:0]
		return nil
	}
	each := func(l importLine) error {
		if l.line <= fst.AckedLine {
			counts.skipped++
			return nil
		}
		if l.reg.GetEvent() != nil && l.reg.GetEvent().GetId() == "" {
			l.reg.Event.Id = derivedEventID(sum, l.line)
		}
		pending = append(pending, l)
		if len(pending) >= im.batch {
			return flush()
		}
		return nil
	}
	switch format {
	case "csv":
		err = readImportCSV(data, each)
	default:
		err = readImportJSONL(data, each)
	}
	if err == nil {
		err = flush()
	}
	if err != nil {
		return counts, err
	}
	fst.Done = true
	if err := im.state.save(im.path); err != nil {
		return counts, err
	}
	_ = bar.Finish()
	fmt.Fprintf(im.stdout, "%s: %s\n", name, counts)
	return counts, nil
}

// derivedEventID is the event id of a line without one: a ULID whose 80 random bits are
// SHA-256(domain, file hash, line) and whose time part is zero (the id says nothing about
// time; the register's recorded_at does).
func derivedEventID(fileSum [sha256.Size]byte, line int) string {
	h := sha256.New()
	h.Write([]byte("nirctl import event id v1\x00"))
	h.Write(fileSum[:])
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(line))
	h.Write(n[:])
	var id ulid.ULID
	copy(id[6:], h.Sum(nil)[:10])
	return id.String()
}

var registrationIndex = regexp.MustCompile(`^registrations\[(\d+)\]`)

// batchError says which line of the batch the server refused, when it says which
// registration: an InvalidArgument or PermissionDenied names the field
// "registrations[i]…", a rule refusal names the event id.
func batchError(err error, batch []importLine) error {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return callErr(fmt.Sprintf("append (lines %d-%d)", batch[0].line, batch[len(batch)-1].line), err)
	}
	line := 0
	if m := registrationIndex.FindStringSubmatch(ce.Message()); m != nil {
		if i, _ := strconv.Atoi(m[1]); i < len(batch) {
			line = batch[i].line
		}
	}
	for _, det := range ce.Details() {
		if v, derr := det.Value(); derr == nil {
			if r, ok := v.(*nirv1.RuleRefusal); ok && line == 0 {
				for _, l := range batch {
					if l.reg.GetEvent().GetId() == r.GetEventId() {
						line = l.line
					}
				}
			}
		}
	}
	where := fmt.Sprintf("lines %d-%d", batch[0].line, batch[len(batch)-1].line)
	if line > 0 {
		where = fmt.Sprintf("line %d (in the batch of lines %d-%d; nothing of the batch was stored)", line, batch[0].line, batch[len(batch)-1].line)
	}
	return fmt.Errorf("%s: %s: %s", where, ce.Code(), ce.Message())
}

// readImportJSONL reads protojson Registration lines.
func readImportJSONL(data []byte, yield func(importLine) error) error {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 8<<20)
	var (
		n   int
		off int64
	)
	for sc.Scan() {
		n++
		off += int64(len(sc.Bytes())) + 1
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		reg := &nirv1.Registration{}
		if err := protojson.Unmarshal(line, reg); err != nil {
			return fmt.Errorf("line %d: not a nir.v1.Registration: %w", n, err)
		}
		if err := yield(importLine{line: n, end: min(off, int64(len(data))), reg: reg}); err != nil {
			return err
		}
	}
	return sc.Err()
}

// readImportCSV reads the CSV column set of importUsage.
func readImportCSV(data []byte, yield func(importLine) error) error {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if err != nil {
		return fmt.Errorf("line 1: CSV header: %w", err)
	}
	cols := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if _, dup := cols[h]; dup {
			return fmt.Errorf("line 1: column %q twice", h)
		}
		if !csvColumns[h] {
			return fmt.Errorf("line 1: unknown column %q (see nirctl import -h)", h)
		}
		cols[h] = i
	}
	for _, req := range []string{"type", "national_id", "kommune"} {
		if _, ok := cols[req]; !ok {
			return fmt.Errorf("line 1: the required column %q is missing", req)
		}
	}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		line, _ := r.FieldPos(0)
		get := func(name string) string {
			if i, ok := cols[name]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		if strings.Join(rec, "") == "" {
			continue
		}
		reg, err := csvRegistration(get)
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		if err := yield(importLine{line: line, end: r.InputOffset(), reg: reg}); err != nil {
			return err
		}
	}
}

var csvColumns = map[string]bool{
	"type": true, "national_id": true, "kommune": true, "event_id": true, "correlation_id": true,
	"birth_date": true, "sex": true, "permit_date": true, "permit_basis": true, "arrival_date": true,
	"settlement_date": true, "settlement_kommune": true, "settled_by_agreement": true,
	"to_kommune": true, "date": true,
	"scheme": true, "vedtak_type": true, "vedtak_date": true, "start_date": true, "end_date": true,
	"hours_type": true, "month": true, "hours": true, "absence_hours": true,
}

// csvRegistration builds one registration from a CSV row. Its errors name the column and
// never repeat a national id.
func csvRegistration(get func(string) string) (*nirv1.Registration, error) {
	var (
		errs []error
		bad  = func(col, format string, args ...any) { errs = append(errs, fmt.Errorf(col+": "+format, args...)) }
	)
	date := func(col string) *nirv1.Date {
		s := get(col)
		if s == "" {
			return nil
		}
		d, err := rules.ParseDate(s)
		if err != nil {
			bad(col, "%q is not a date (YYYY-MM-DD)", s)
			return nil
		}
		return d.Proto()
	}
	number := func(col string) float64 {
		s := get(col)
		if s == "" {
			return 0
		}
		x, err := strconv.ParseFloat(strings.ReplaceAll(s, ",", "."), 64)
		if err != nil {
			bad(col, "%q is not a number", s)
		}
		return x
	}
	enum := func(col string, desc protoreflect.EnumDescriptor, prefix string) protoreflect.EnumNumber {
		s := strings.ToUpper(get(col))
		if s == "" {
			return 0
		}
		for _, name := range []string{s, prefix + s} {
			if v := desc.Values().ByName(protoreflect.Name(name)); v != nil {
				return v.Number()
			}
		}
		bad(col, "%q is not a %s value", s, desc.Name())
		return 0
	}

	id := get("national_id")
	ev := &nirv1.Event{Id: get("event_id"), Kommune: get("kommune"), CorrelationId: get("correlation_id")}
	reg := &nirv1.Registration{Person: &nirv1.PersonRef{NationalId: id}, Event: ev}
	switch t := strings.ToLower(get("type")); t {
	case "person_registered":
		pr := &nirv1.PersonRegistered{
			BirthDate:          date("birth_date"),
			Sex:                nirv1.Sex(enum("sex", nirv1.Sex(0).Descriptor(), "SEX_")),
			PermitDate:         date("permit_date"),
			PermitBasis:        nirv1.PermitBasis(enum("permit_basis", nirv1.PermitBasis(0).Descriptor(), "PERMIT_BASIS_")),
			ArrivalDate:        date("arrival_date"),
			SettlementDate:     date("settlement_date"),
			SettlementKommune:  get("settlement_kommune"),
			SettledByAgreement: false,
		}
		if pr.SettlementKommune == "" {
			pr.SettlementKommune = ev.Kommune
		}
		switch s := strings.ToLower(get("settled_by_agreement")); s {
		case "", "false", "nei", "no", "0":
		case "true", "ja", "yes", "1":
			pr.SettledByAgreement = true
		default:
			bad("settled_by_agreement", "%q is not true or false", s)
		}
		nid, err := rules.ParseNationalID(id)
		switch {
		case id == "":
			bad("national_id", "is required")
		case err != nil:
			bad("national_id", "%v", err) // rules' errors never hold the number
		case nid.Type() == nirv1.IdentifierType_IDENTIFIER_TYPE_D_NUMMER:
			pr.DNummer = id
		case nid.Type() == nirv1.IdentifierType_IDENTIFIER_TYPE_DUF_NUMMER:
			pr.DufNummer = id
		default:
			pr.Fodselsnummer = id
		}
		ev.Payload = &nirv1.Event_PersonRegistered{PersonRegistered: pr}
	case "person_moved":
		ev.Payload = &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: get("to_kommune"), Date: date("date")}}
	case "training_vedtak":
		ev.Payload = &nirv1.Event_TrainingVedtakRegistered{TrainingVedtakRegistered: &nirv1.TrainingVedtakRegistered{
			Scheme:     nirv1.TrainingScheme(enum("scheme", nirv1.TrainingScheme(0).Descriptor(), "TRAINING_SCHEME_")),
			Type:       nirv1.TrainingVedtakType(enum("vedtak_type", nirv1.TrainingVedtakType(0).Descriptor(), "TRAINING_VEDTAK_TYPE_")),
			VedtakDate: date("vedtak_date"),
			StartDate:  date("start_date"),
			EndDate:    date("end_date"),
		}}
	case "training_hours":
		th := &nirv1.TrainingHoursRegistered{
			Type:         nirv1.HoursType(enum("hours_type", nirv1.HoursType(0).Descriptor(), "HOURS_TYPE_")),
			Hours:        number("hours"),
			AbsenceHours: number("absence_hours"),
		}
		if m := get("month"); m != "" {
			t, err := time.Parse("2006-01", m)
			if err != nil {
				bad("month", "%q is not a month (YYYY-MM)", m)
			} else {
				th.Month = &nirv1.YearMonth{Year: int32(t.Year()), Month: int32(t.Month())}
			}
		}
		ev.Payload = &nirv1.Event_TrainingHoursRegistered{TrainingHoursRegistered: th}
	case "":
		bad("type", "is required")
	default:
		bad("type", "%q is not person_registered, person_moved, training_vedtak or training_hours", t)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return reg, nil
}

// isTerminal reports whether w is a terminal, where a progress bar belongs.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
