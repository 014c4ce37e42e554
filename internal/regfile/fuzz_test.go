package regfile_test

import (
	"encoding/csv"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/introreg/nir/internal/regfile"
	"github.com/introreg/nir/rules"
)

var (
	// linePrefix is the "line N: " an error of ReadCSV begins with.
	linePrefix = regexp.MustCompile(`^line [0-9]+: `)
	// quoteEscape is how %q writes a byte or rune that is not printable: its digits are not
	// the input's.
	quoteEscape = regexp.MustCompile(`\\(x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8})`)
)

// FuzzReadCSV feeds arbitrary files to the CSV reader, as a case system might send them: it
// must never panic; the registrations it yields come in file order, each with its event; and
// an error is the CSV parser's or names its line, and none of the errors it joins holds ten
// digits or more, the digits of a national id, whatever separates them.
func FuzzReadCSV(f *testing.F) {
	fnr := rules.SyntheticFodselsnummer(rules.MustDate(1990, 3, 4), 7)
	f.Add([]byte("\ufefftype,national_id,kommune,birth_date,sex,settled_by_agreement\nperson_registered," + fnr + ",0301,1990-03-04,female,ja\n"))
	f.Add([]byte("type,national_id,kommune,hours_type,month,hours,absence_hours\ntraining_hours," + fnr + ",4601,norsk,2025-02,\"12,5\",1\n"))
	f.Add([]byte("type,national_id,kommune,scheme,vedtak_type,start_date\ntraining_vedtak," + fnr + ",4601,RETT_OG_PLIKT,TILDELING,2025-02-01\n"))
	f.Add([]byte("type,national_id,kommune,new_id,date\nidentifier_added," + fnr + ",0301,," + fnr[:6] + "/" + fnr[6:] + "\n"))
	f.Add([]byte("type;national_id;kommune;hours_type;month;hours\ntraining_hours;" + fnr + ";4601;norsk;2025-02;12,5\n"))
	f.Add([]byte("\ufeffsep=;\r\ntype;national_id;kommune;to_kommune\r\nperson_moved;" + fnr + ";0301;4601\r\n"))
	f.Add([]byte(fnr + ",person_moved,0301\n"))
	f.Add([]byte("type,national_id,kommune,sex\nperson_registered," + fnr + ",0301,\"" + fnr[:6] + "\n" + fnr[6:] + "\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var last regfile.Line
		err := regfile.ReadCSV(data, func(l regfile.Line) error {
			if l.Number <= last.Number || l.Number < 2 || l.End <= last.End || l.End > int64(len(data)) {
				t.Fatalf("line %d ending at %d after line %d ending at %d, in %d bytes", l.Number, l.End, last.Number, last.End, len(data))
			}
			if l.Registration.GetEvent() == nil {
				t.Fatalf("line %d: a registration without its event", l.Number)
			}
			last = l
			return nil
		})
		if err == nil {
			return
		}
		if pe := new(csv.ParseError); !errors.As(err, &pe) && !linePrefix.MatchString(err.Error()) {
			t.Fatalf("error %q names no line", err)
		}
		for _, msg := range strings.Split(err.Error(), "\n") {
			digits := 0
			for _, r := range quoteEscape.ReplaceAllString(linePrefix.ReplaceAllString(msg, ""), "") {
				if '0' <= r && r <= '9' {
					digits++
				}
			}
			if digits >= 10 {
				t.Fatalf("error %q holds %d digits", msg, digits)
			}
		}
	})
}

// protojsonPosition is where protojson says an error is, "(line 1:57)": not the input's
// digits.
var protojsonPosition = regexp.MustCompile(`\(line [0-9]+:[0-9]+\)`)

// FuzzReadJSONL is FuzzReadCSV for protojson lines: no panic; the registrations come in file
// order with their ends within the input; an error names its line and holds no ten digits,
// the digits of a national id, whatever separates them.
func FuzzReadJSONL(f *testing.F) {
	fnr := rules.SyntheticFodselsnummer(rules.MustDate(1990, 3, 4), 7)
	f.Add([]byte("\ufeff# a comment\r\n{\"person\":{\"nationalId\":\"" + fnr + "\"},\"event\":{\"kommune\":\"0301\"}}\r\n"))
	f.Add([]byte(`{"person":{"nationalId":` + fnr + `},"event":{"kommune":"0301"}}`))
	f.Add([]byte(`{"event":{"kommune":"0301","trainingHoursRegistered":{"hours":"NaN","month":{"year":0}}}}` + "\n"))
	f.Add([]byte(`{"event":{"personRegistered":{"sex":` + fnr[1:] + `}}}` + "\n"))
	f.Add([]byte(`{"event":{"` + fnr[:6] + `\/` + fnr[6:] + `":1}}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var last regfile.Line
		err := regfile.ReadJSONL(data, func(l regfile.Line) error {
			if l.Number <= last.Number || l.End <= last.End || l.End > int64(len(data)) {
				t.Fatalf("line %d ending at %d after line %d ending at %d, in %d bytes", l.Number, l.End, last.Number, last.End, len(data))
			}
			last = l
			return nil
		})
		if err == nil {
			return
		}
		if !linePrefix.MatchString(err.Error()) {
			t.Fatalf("error %q names no line", err)
		}
		msg := strings.ReplaceAll(linePrefix.ReplaceAllString(err.Error(), ""), "nir.v1.", "")
		msg = quoteEscape.ReplaceAllString(protojsonPosition.ReplaceAllString(msg, ""), "")
		if digits := strings.Map(keepDigits, msg); len(digits) >= 10 {
			t.Fatalf("error %q holds %d digits", err, len(digits))
		}
	})
}
