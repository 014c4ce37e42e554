package regfile

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// Line is one registration read from an input, with where it came from.
type Line struct {
	Number       int   // 1-based line number in the file
	End          int64 // byte offset just after the line (for progress)
	Registration *nirv1.Registration
}

// CSVColumnsHelp is the CSV format's column list, as help text (nirctl import -h).
const CSVColumnsHelp = `CSV columns (by header name, any order; empty cells are unset):
  type           person_registered | person_moved | training_vedtak |
                 training_hours | identifier_added                          (required)
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
  identifier_added: new_id (a further fødselsnummer, D-nummer or DUF-nummer of the
                 person named by national_id), date (assigned), source (e.g. folkeregisteret)
Fields are separated by commas, or by semicolons when the header holds no comma (Excel's
CSV where the decimal separator is a comma), or as a first line "sep=;" or "sep=," says
(Excel writes one in some exports). Dates are YYYY-MM-DD. Enum values are the schema's
names, with or without their prefix, in any ASCII case; an empty cell is unset (a
*_UNSPECIFIED name is refused). Numbers are finite.
`

// maxJSONLLine is the longest JSONL line read: a registration is a few hundred bytes.
const maxJSONLLine = 8 << 20

// byteOrderMark is UTF-8's byte-order mark, which spreadsheet programs, Notepad and
// PowerShell write at the start of a file.
var byteOrderMark = []byte("\ufeff")

// errUTF16 refuses a file in UTF-16 (Excel's "Unicode text", PowerShell 5's default for >),
// recognised by its byte-order mark: read as UTF-8 its first line was an unknown column or
// not JSON, which named no cause.
var errUTF16 = errors.New("line 1: the file is UTF-16; save it as UTF-8")

// isUTF16 reports whether data starts with a UTF-16 byte-order mark, little- or big-endian.
func isUTF16(data []byte) bool {
	return bytes.HasPrefix(data, []byte{0xff, 0xfe}) || bytes.HasPrefix(data, []byte{0xfe, 0xff})
}

// ReadJSONL reads protojson nir.v1.Registration lines, calling yield for each in file
// order; a leading byte-order mark, blank lines and lines starting with '#' are skipped.
func ReadJSONL(data []byte, yield func(Line) error) error {
	return ScanJSONL(bytes.NewReader(data), yield)
}

// ScanJSONL is ReadJSONL for a stream, read as it comes (nirctl append reads a pipe);
// a Line's End is the offset read so far.
func ScanJSONL(r io.Reader, yield func(Line) error) error {
	return ScanLines(r, func(n int, end int64, line []byte) error {
		reg, err := jsonlRegistration(line)
		if err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		return yield(Line{Number: n, End: end, Registration: reg})
	})
}

// ScanLines calls yield with each line of r that is neither blank nor a '#' comment, trimmed
// of white space (a CR of CRLF among it), with its 1-based number and the offset just after
// it. A leading byte-order mark is skipped; a line longer than 8 MiB is refused, naming it.
func ScanLines(r io.Reader, yield func(n int, end int64, line []byte) error) error {
	br := bufio.NewReader(r)
	var off int64
	for n := 1; ; n++ {
		raw, err := readLine(br)
		off += int64(len(raw))
		switch {
		case err != nil && !errors.Is(err, io.EOF):
			return fmt.Errorf("line %d: %w", n, err)
		case len(raw) == 0:
			return nil
		}
		if n == 1 {
			if isUTF16(raw) {
				return errUTF16
			}
			raw = bytes.TrimPrefix(raw, byteOrderMark)
		}
		if line := bytes.TrimSpace(raw); len(line) > 0 && line[0] != '#' {
			if err := yield(n, off, line); err != nil {
				return err
			}
		}
	}
}

var errLineTooLong = fmt.Errorf("longer than %d MiB", maxJSONLLine>>20)

// readLine returns br's next line with its LF, or errLineTooLong once it is longer than
// maxJSONLLine, without reading the rest of it.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		switch {
		case len(line) > maxJSONLLine+1:
			return line, errLineTooLong
		case !errors.Is(err, bufio.ErrBufferFull):
			return line, err
		}
	}
}

// maxJSONLValues bounds a JSONL line's objects and entries (counted by their braces and
// commas), and maxJSONLDepth how deep its messages nest: a valid registration holds some ten
// messages and a few dozen fields, nested 6 deep (nird takes a request 64 deep). protojson
// and the value checks hold every message at once: a line of 8 MiB of empty absorbed events
// (which nird sets, and refuses from a client) was 2.8 million messages, 1 GB and 15 s.
const (
	maxJSONLValues = 1024
	maxJSONLDepth  = 32
)

// jsonlRegistration reads one JSONL line. Its errors quote no value.
func jsonlRegistration(line []byte) (*nirv1.Registration, error) {
	if !jsonValuesWithin(line, maxJSONLValues) {
		return nil, fmt.Errorf("more than %d objects and fields: no registration holds so many", maxJSONLValues)
	}
	reg := &nirv1.Registration{}
	if err := (protojson.UnmarshalOptions{RecursionLimit: maxJSONLDepth}).Unmarshal(line, reg); err != nil {
		// protojson quotes what it refused: a national id written as a number, or as a
		// field's name, would be echoed.
		return nil, fmt.Errorf("not a nir.v1.Registration: %s", clip(rules.RedactInput(err.Error()), 200))
	}
	if err := checkValues(reg.ProtoReflect(), ""); err != nil {
		return nil, errors.New(rules.RedactInput(err.Error()))
	}
	return reg, nil
}

// jsonValuesWithin reports whether the JSON b holds at most budget braces and commas
// outside its strings: its objects, and its fields and list entries after the first of each.
// It counts without parsing; protojson refuses what is not JSON.
func jsonValuesWithin(b []byte, budget int) bool {
	inString, escaped := false, false
	for _, c := range b {
		switch {
		case escaped:
			escaped = false
		case inString:
			escaped = c == '\\'
			inString = c != '"'
		case c == '"':
			inString = true
		case c == '{' || c == ',':
			if budget--; budget < 0 {
				return false
			}
		}
	}
	return true
}

// clip returns s cut to at most n bytes on a rune boundary, "…" marking the cut: an error
// quotes a refused value by its start (a field name or a cell of megabytes was quoted whole).
// Redact s first: a cut would leave too few of an id's digits to be seen as one.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// checkValues refuses in m what protojson reads and the CSV reader does not: a number that
// is not finite (protojson reads "NaN", "Infinity", "-Infinity"), a date or a month not of
// the calendar (years 1 to 9999), an enum number the schema does not name. The rules refuse
// each on the append path; here a file is refused before any of it is sent. path names m
// as nird's refusals name fields ("event.person_moved.date"); no value is quoted. The
// *_UNSPECIFIED name is accepted: protojson writes it for every unset enum when asked to
// emit defaults, and it cannot be told from an absent value once read.
func checkValues(m protoreflect.Message, path string) error {
	switch v := m.Interface().(type) {
	case *nirv1.Date:
		if _, ok := rules.DateOf(v); !ok {
			return fmt.Errorf("%s: not a calendar date (YYYY-MM-DD, years 1 to 9999)", path)
		}
	case *nirv1.YearMonth:
		if _, ok := rules.NewDate(int(v.GetYear()), time.Month(v.GetMonth()), 1); !ok {
			return fmt.Errorf("%s: not a calendar month (years 1 to 9999, months 1 to 12)", path)
		}
	}
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		name := string(fd.Name())
		if path != "" {
			name = path + "." + name
		}
		switch {
		case fd.IsList():
			for i := 0; i < v.List().Len() && err == nil; i++ {
				err = checkValue(fd, v.List().Get(i), fmt.Sprintf("%s[%d]", name, i))
			}
		case fd.IsMap():
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				err = checkValue(fd.MapValue(), mv, name)
				return err == nil
			})
		default:
			err = checkValue(fd, v, name)
		}
		return err == nil
	})
	return err
}

// checkValue is checkValues for one value of field fd.
func checkValue(fd protoreflect.FieldDescriptor, v protoreflect.Value, name string) error {
	switch fd.Kind() {
	case protoreflect.DoubleKind, protoreflect.FloatKind:
		if x := v.Float(); math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("%s: not a finite number", name)
		}
	case protoreflect.EnumKind:
		if fd.Enum().Values().ByNumber(v.Enum()) == nil {
			return fmt.Errorf("%s: %d is not a %s value", name, v.Enum(), fd.Enum().Name())
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return checkValues(v.Message(), name)
	}
	return nil
}

// ReadCSV reads a header row, then one registration per row (the columns of
// CSVColumnsHelp), calling yield for each in file order; empty rows are skipped. An error
// names the line and the column, never a national id.
func ReadCSV(data []byte, yield func(Line) error) error {
	// The mark goes before the parser sees it: before a quoted header name, it made the quote
	// a bare one.
	if isUTF16(data) {
		return errUTF16
	}
	bom := 0
	if bytes.HasPrefix(data, byteOrderMark) {
		bom = len(byteOrderMark)
	}
	// start is where the parser begins: after the mark, or at the LF that ends a separator
	// line, a blank line to the parser, which skips it and counts it (the lines keep their
	// numbers in the file).
	start, comma := bom, separator(data[bom:])
	if c, n, err := separatorLine(data[bom:]); err != nil {
		return err
	} else if c != 0 {
		start, comma = bom+n, c
	}
	if err := checkRecordBounds(data[bom:], comma); err != nil {
		return err
	}
	r := csv.NewReader(bytes.NewReader(data[start:]))
	r.Comma = rune(comma)
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	header, cols, err := readHeader(r)
	if err != nil {
		return err
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
		if err := checkCells(header, rec, comma); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		reg, err := csvRegistration(get)
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		if err := yield(Line{Number: line, End: int64(start) + r.InputOffset(), Registration: reg}); err != nil {
			return err
		}
	}
}

// separator returns the field separator of a CSV input, as its header row shows it: a
// semicolon when the row holds one and no comma, else a comma. Column names hold neither,
// so the header decides. Where the decimal separator is a comma, as in Norwegian, Excel
// saves "CSV" with semicolons; such a file was refused as one unknown column.
func separator(data []byte) byte {
	for len(data) > 0 {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte("\n"))
		if len(bytes.TrimSpace(line)) == 0 {
			continue // the parser skips blank lines before the header too
		}
		if bytes.IndexByte(line, ';') >= 0 && bytes.IndexByte(line, ',') < 0 {
			return ';'
		}
		break
	}
	return ','
}

// separatorLine reads the line "sep=;" or "sep=," that Excel writes first in some CSV
// exports, and reads as the file's separator: it returns the separator, and the offset of the
// line's end (its LF, or the end of data). It returns 0 when data does not begin with
// "sep=", and an error when the line names another separator or holds more: such a line is
// no header either.
func separatorLine(data []byte) (comma byte, end int, err error) {
	rest, ok := bytes.CutPrefix(data, []byte("sep="))
	if !ok {
		return 0, 0, nil
	}
	if len(rest) > 0 && separatorName[rest[0]] != "" {
		after := bytes.TrimPrefix(rest[1:], []byte("\r"))
		if len(after) == 0 || after[0] == '\n' {
			return rest[0], len(data) - len(after), nil
		}
	}
	return 0, 0, errors.New(`line 1: not a separator line "sep=;" or "sep=," (no other separator is read)`)
}

// separatorName names a separator in errors.
var separatorName = map[byte]string{',': "comma", ';': "semicolon"}

// readHeader reads r's header row: its column names, folded, and each name's index. Its
// errors name the header's line (blank lines before it are skipped).
func readHeader(r *csv.Reader) ([]string, map[string]int, error) {
	header, err := r.Read()
	if err != nil {
		return nil, nil, fmt.Errorf("line 1: CSV header: %w", err)
	}
	line, _ := r.FieldPos(0)
	// Empty names past the last column are no columns: a spreadsheet writes the empty cells
	// of its used range in every row, the header's too (checkCells refuses a value in one).
	for len(header) > 0 && strings.TrimSpace(header[len(header)-1]) == "" {
		header = header[:len(header)-1]
	}
	cols := map[string]int{}
	for i, h := range header {
		h = rules.FoldASCII(strings.TrimSpace(h), strings.ToLower)
		header[i] = h
		if _, dup := cols[h]; dup {
			return nil, nil, fmt.Errorf("line %d: column %q twice", line, h)
		}
		if !csvColumns[h] {
			return nil, nil, fmt.Errorf("line %d: unknown column %+q (see the CSV columns: nirctl import -h)", line, clip(rules.RedactDigits(h), 64))
		}
		cols[h] = i
	}
	for _, req := range []string{"type", "national_id", "kommune"} {
		if _, ok := cols[req]; !ok {
			return nil, nil, fmt.Errorf("line %d: the required column %q is missing", line, req)
		}
	}
	return header, cols, nil
}

// maxCSVRecord and maxCSVCells bound a CSV record. A valid row is a few hundred bytes in at
// most 26 cells (a text cell is at most 128 bytes on the append path), with the empty cells
// past the header a spreadsheet may write; the parser holds every cell of a record at once,
// some 150 bytes a cell (a row of 32 MiB of commas took 5 GB and 35 s).
const (
	maxCSVRecord = 64 << 10
	maxCSVCells  = 1024
)

// checkRecordBounds refuses a CSV input whose fields comma separates with a record over
// maxCSVRecord bytes or maxCSVCells cells, naming the line the record begins on, before the parser reads it. It
// reads the quotes as the parser does in a valid file (each quote opens or closes a quoted
// span; a doubled quote in one closes and opens it again), so it refuses no valid file.
func checkRecordBounds(data []byte, comma byte) error {
	line, recLine, start, cells, quoted := 1, 1, 0, 1, false
	for i, c := range data {
		switch {
		case c == '"':
			quoted = !quoted
		case c == comma && !quoted:
			cells++
		case c == '\n':
			line++
			if !quoted {
				recLine, start, cells = line, i+1, 1
			}
		}
		switch {
		case i-start >= maxCSVRecord:
			return fmt.Errorf("line %d: a record longer than %d KiB (a quote not closed?)", recLine, maxCSVRecord>>10)
		case cells > maxCSVCells:
			return fmt.Errorf("line %d: more than %d cells", recLine, maxCSVCells)
		}
	}
	return nil
}

// checkCells refuses a row that holds what csvRegistration would not read whole: a value in
// a cell past the header's columns (an unquoted comma in a free-text cell shifts the row, and
// what falls off its end was dropped), or a cell that is not UTF-8 (a file saved as
// Windows-1252: the request that carried it could not be encoded). Empty cells past the
// header, as spreadsheets write them, are read. No cell is quoted.
func checkCells(header, rec []string, comma byte) error {
	for i, c := range rec {
		switch {
		case i >= len(header) && strings.TrimSpace(c) != "":
			return fmt.Errorf("%d cells, a value beyond the header's %d columns (a %s not in quotes?)", len(rec), len(header), separatorName[comma])
		case i < len(header) && !utf8.ValidString(c):
			return fmt.Errorf("%s: not UTF-8 (save the file as UTF-8)", header[i])
		}
	}
	return nil
}

var csvColumns = map[string]bool{
	"type": true, "national_id": true, "kommune": true, "event_id": true, "correlation_id": true,
	"birth_date": true, "sex": true, "permit_date": true, "permit_basis": true, "arrival_date": true,
	"settlement_date": true, "settlement_kommune": true, "settled_by_agreement": true,
	"to_kommune": true, "date": true,
	"scheme": true, "vedtak_type": true, "vedtak_date": true, "start_date": true, "end_date": true,
	"hours_type": true, "month": true, "hours": true, "absence_hours": true,
	"new_id": true, "source": true,
}

// csvRegistration builds one registration from a CSV row. Its errors name the column and
// never repeat a national id.
func csvRegistration(get func(string) string) (*nirv1.Registration, error) {
	var (
		errs []error
		// A cell is quoted, and a national id can be in any column (columns swapped, a row
		// one cell short): the message is redacted.
		bad = func(col, format string, args ...any) {
			for i, a := range args {
				if s, ok := a.(string); ok {
					args[i] = clip(rules.RedactDigits(s), 64)
				}
			}
			errs = append(errs, errors.New(col+": "+rules.RedactInput(fmt.Sprintf(format, args...))))
		}
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
		// ParseFloat reads "NaN" and "Inf" in any case; a count of hours is finite.
		x, err := strconv.ParseFloat(strings.ReplaceAll(s, ",", "."), 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			bad(col, "%q is not a number", s)
			return 0
		}
		return x
	}
	enum := func(col string, desc protoreflect.EnumDescriptor, prefix string) protoreflect.EnumNumber {
		s := rules.FoldASCII(get(col), strings.ToUpper)
		if s == "" {
			return 0
		}
		for _, name := range []string{s, prefix + s} {
			switch v := desc.Values().ByName(protoreflect.Name(name)); {
			case v == nil:
			case v.Number() == 0:
				// An explicit «unspecified» is likelier a case system's mapping bug than a
				// wish to leave the value unset.
				bad(col, "%q is not allowed: leave the cell empty for unset", s)
				return 0
			default:
				return v.Number()
			}
		}
		bad(col, "%+q is not a %s value", s, desc.Name())
		return 0
	}

	id := get("national_id")
	ev := &nirv1.Event{Id: get("event_id"), Kommune: get("kommune"), CorrelationId: get("correlation_id")}
	reg := &nirv1.Registration{Person: &nirv1.PersonRef{NationalId: id}, Event: ev}
	switch t := rules.FoldASCII(get("type"), strings.ToLower); t {
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
		switch s := rules.FoldASCII(get("settled_by_agreement"), strings.ToLower); s {
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
			// Its first day, by the dates' rules: years 1 to 9999 (time.Parse read 0000).
			if d, err := rules.ParseDate(m + "-01"); err != nil {
				bad("month", "%q is not a month (YYYY-MM)", m)
			} else {
				th.Month = &nirv1.YearMonth{Year: int32(d.Y), Month: int32(d.M)}
			}
		}
		ev.Payload = &nirv1.Event_TrainingHoursRegistered{TrainingHoursRegistered: th}
	case "identifier_added":
		ia := &nirv1.IdentifierAdded{NationalId: get("new_id"), Date: date("date"), Source: get("source")}
		nid, err := rules.ParseNationalID(ia.NationalId)
		switch {
		case ia.NationalId == "":
			bad("new_id", "is required")
		case err != nil:
			bad("new_id", "%v", err) // rules' errors never hold the number
		default:
			ia.Type = nid.Type()
		}
		ev.Payload = &nirv1.Event_IdentifierAdded{IdentifierAdded: ia}
	case "":
		bad("type", "is required")
	default:
		bad("type", "%+q is not person_registered, person_moved, training_vedtak, training_hours or identifier_added", t)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return reg, nil
}
