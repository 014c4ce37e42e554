package regfile_test

import (
	"runtime"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/introreg/nir/internal/regfile"
	"github.com/introreg/nir/rules"
)

// TestReadCSV_CellBeyondTheHeader: a row with a value in a cell the header names no column
// for is refused, naming the line. Before, the cell was dropped: an unquoted comma in a
// free-text cell, or a row of another file's layout, shifted the row's values, and what
// fell off its end was lost without a word (a person_moved whose to_kommune and date were
// never read was sent without them). Empty cells past the header, as spreadsheets write
// them, stay accepted.
func TestReadCSV_CellBeyondTheHeader(t *testing.T) {
	fnr := rules.SyntheticFodselsnummer(rules.MustDate(1990, 3, 4), 7)
	_, err := readCSV(t, "type,national_id,kommune\nperson_moved,"+fnr+",0301\nperson_moved,"+fnr+",0301,4601,2025-01-01\n")
	if err == nil || !strings.HasPrefix(err.Error(), "line 3: ") || !strings.Contains(err.Error(), "beyond the header's 3 columns") {
		t.Errorf("err = %v, want line 3 refused for its cells beyond the header", err)
	}
	if strings.Contains(strings.Map(keepDigits, errString(err)), fnr) {
		t.Errorf("the error repeats the national id: %v", err)
	}
	lines, err := readCSV(t, "type,national_id,kommune\nperson_moved,"+fnr+",0301,, \n")
	if err != nil || len(lines) != 1 {
		t.Errorf("a row with empty cells past the header: %d lines, err %v; want it read", len(lines), err)
	}
}

// TestReadCSV_ByteOrderMarkBeforeAQuotedHeader: the byte-order mark a spreadsheet program
// writes is ignored (doc.go), also before a header whose names are quoted, as R's write.csv
// and many exports write them. Before, the mark made the first quote a bare quote in an
// unquoted field, and the whole file was refused as not CSV.
func TestReadCSV_ByteOrderMarkBeforeAQuotedHeader(t *testing.T) {
	fnr := rules.SyntheticFodselsnummer(rules.MustDate(1990, 3, 4), 7)
	data := "\ufeff\"type\",\"national_id\",\"kommune\",\"to_kommune\"\n\"person_moved\",\"" + fnr + "\",\"0301\",\"4601\"\n"
	lines, err := readCSV(t, data)
	if err != nil || len(lines) != 1 {
		t.Fatalf("%d lines, err %v; want the row read", len(lines), err)
	}
	if got := lines[0].Registration.GetEvent().GetPersonMoved().GetToKommune(); got != "4601" || lines[0].Number != 2 {
		t.Errorf("line %d, to_kommune %q; want line 2, 4601", lines[0].Number, got)
	}
	if lines[0].End != int64(len(data)) {
		t.Errorf("the last line ends at %d, want %d (the input's length, its mark included)", lines[0].End, len(data))
	}
}

// TestReadCSV_InvalidUTF8: a cell that is not UTF-8 (a file saved as Windows-1252, «ø» one
// byte) is refused, naming the line and the column. Before, it was read; the request that
// carried it could not be encoded, and the import stopped with an error that named the
// batch, not the line, after the batches before it were stored.
func TestReadCSV_InvalidUTF8(t *testing.T) {
	fnr := rules.SyntheticFodselsnummer(rules.MustDate(1990, 3, 4), 7)
	_, err := readCSV(t, "type,national_id,kommune,correlation_id\nperson_moved,"+fnr+",0301,sak Bj\xf8rvika\n")
	if err == nil || !strings.HasPrefix(err.Error(), "line 2: correlation_id: ") || !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("err = %v, want line 2's correlation_id refused as not UTF-8", err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestReadCSV_RecordBounds: a record is bounded in bytes and in cells before the parser
// reads it. The parser holds every cell of a record at once, some 150 bytes a cell: a row of
// 32 MiB of commas took 5 GB and 35 s before it was refused, and a cell of 32 MiB was quoted
// whole in its error. A valid row is a few hundred bytes of at most 26 cells; trailing empty
// cells, as spreadsheets write them, stay accepted.
func TestReadCSV_RecordBounds(t *testing.T) {
	fnr := rules.SyntheticFodselsnummer(rules.MustDate(1990, 3, 4), 7)
	for _, c := range []struct{ name, body, want string }{
		{"ManyCells", strings.Repeat(",", 4<<20) + "\n", "line 3: more than 1024 cells"},
		{"LongCell", strings.Repeat("a", 4<<20) + "\n", "line 3: a record longer than 64 KiB"},
		{"UnclosedQuote", "person_moved," + fnr + ",\"0301\n" + strings.Repeat("a,\n", 64<<10), "line 3: a record longer than 64 KiB"},
	} {
		t.Run(c.name, func(t *testing.T) {
			data := []byte("type,national_id,kommune\nperson_moved," + fnr + ",0301\n" + c.body)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			err := regfile.ReadCSV(data, func(regfile.Line) error { return nil })
			runtime.ReadMemStats(&after)
			if err == nil || !strings.HasPrefix(err.Error(), c.want) {
				t.Errorf("err = %.200v, want one beginning %q", err, c.want)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(len(data)) {
				t.Errorf("%d bytes allocated for an input of %d", alloc, len(data))
			}
		})
	}
	lines, err := readCSV(t, "type,national_id,kommune\nperson_moved,"+fnr+",0301"+strings.Repeat(",", 1000)+"\n")
	if err != nil || len(lines) != 1 {
		t.Errorf("a row with 1000 empty cells past the header: %d lines, err %v; want it read", len(lines), err)
	}
}

// TestErrorsQuoteAShortValue: an error quotes at most the start of a refused value. Before, a
// field name or an enum value of 8 MiB in a JSONL line, or a cell of 64 KiB, was quoted whole:
// an error line of megabytes in the case system's job log.
func TestErrorsQuoteAShortValue(t *testing.T) {
	long := strings.Repeat("a", 60<<10)
	fnr := rules.SyntheticFodselsnummer(rules.MustDate(1990, 3, 4), 7)
	for name, read := range map[string]func() error{
		"JSONLFieldName": func() error {
			return regfile.ReadJSONL([]byte(`{"`+long+`":1}`+"\n"), func(regfile.Line) error { return nil })
		},
		"JSONLEnum": func() error {
			return regfile.ReadJSONL([]byte(`{"event":{"personRegistered":{"sex":"`+long+`"}}}`+"\n"), func(regfile.Line) error { return nil })
		},
		"CSVHeader": func() error {
			_, err := readCSV(t, "type,national_id,kommune,"+long+"\n")
			return err
		},
		"CSVCell": func() error {
			_, err := readCSV(t, "type,national_id,kommune,sex\nperson_registered,"+fnr+",0301,"+long+"\n")
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			err := read()
			if err == nil || !strings.HasPrefix(err.Error(), "line ") || len(err.Error()) > 512 {
				t.Errorf("err of %d bytes: %.300v; want one naming its line in at most 512", len(errString(err)), err)
			}
		})
	}
}

// TestReadCSV_HeaderAfterBlankLines: the parser skips blank lines before the header, and a
// header's error names the line it is on. Before, each said "line 1".
func TestReadCSV_HeaderAfterBlankLines(t *testing.T) {
	for data, want := range map[string]string{
		"\n\ntype,national_id\n":                 `line 3: the required column "kommune" is missing`,
		"\r\n\r\ntype,national_id,kommune,sko\n": `line 3: unknown column "sko"`,
		"\n\ntype,national_id,kommune,Type\n":    `line 3: column "type" twice`,
	} {
		if _, err := readCSV(t, data); err == nil || err.Error() != want && !strings.HasPrefix(err.Error(), want+" ") {
			t.Errorf("%q: err = %v, want %q", data, err, want)
		}
	}
}

// TestReadCSV_Semicolons: a file whose header is separated by semicolons, as Excel saves
// "CSV" where the decimal separator is a comma (Norwegian), reads as the same file with
// commas would, a decimal comma in a cell unquoted. Before, its header was one unknown
// column. A comma file keeps a semicolon in a cell as text, and a record of semicolons is
// bounded as one of commas.
func TestReadCSV_Semicolons(t *testing.T) {
	fnr := rules.SyntheticFodselsnummer(rules.MustDate(1990, 3, 4), 7)
	rows := []string{
		"type,national_id,kommune,to_kommune,date,hours_type,month,hours,correlation_id",
		"person_moved," + fnr + ",0301,4601,2025-01-01,,,,",
		"training_hours," + fnr + ",4601,,,norsk,2025-02,\"12,5\",sak 7",
	}
	commas := strings.Join(rows, "\n") + "\n"
	semis := strings.NewReplacer("\"12,5\"", "12,5", ",", ";").Replace(commas)
	want, err := readCSV(t, commas)
	if err != nil {
		t.Fatal(err)
	}
	got, err := readCSV(t, semis)
	if err != nil || len(got) != len(want) {
		t.Fatalf("semicolons: %d lines, err %v; want %d lines", len(got), err, len(want))
	}
	for i := range want {
		if !proto.Equal(got[i].Registration, want[i].Registration) || got[i].Number != want[i].Number {
			t.Errorf("line %d: %v, want %v", got[i].Number, got[i].Registration, want[i].Registration)
		}
	}
	if got[1].Registration.GetEvent().GetTrainingHoursRegistered().GetHours() != 12.5 {
		t.Errorf("hours %v, want 12.5", got[1].Registration.GetEvent().GetTrainingHoursRegistered())
	}
	lines, err := readCSV(t, strings.Replace(commas, "sak 7", "sak;7", 1))
	if err != nil || lines[1].Registration.GetEvent().GetCorrelationId() != "sak;7" {
		t.Errorf("a comma file's cell with a semicolon: err %v; want it read as text", err)
	}
	if _, err := readCSV(t, "type;national_id;kommune\nperson_moved;"+fnr+";0301;4601\n"); err == nil || !strings.Contains(err.Error(), "a semicolon not in quotes?") {
		t.Errorf("a semicolon file's value past the header: err %v, want it named as a semicolon's", err)
	}
	if _, err := readCSV(t, "type;national_id;kommune\n"+strings.Repeat(";", 4<<20)+"\n"); err == nil || !strings.Contains(err.Error(), "line 2: more than 1024 cells") {
		t.Errorf("a record of semicolons: err %v, want it bounded", err)
	}
}

// TestRead_UTF16Refused: a file saved as UTF-16 (Excel's "Unicode text", PowerShell 5's
// redirection), either byte order, is refused in both formats, saying so. Before, a CSV
// was refused for an unknown column and a JSONL line as not JSON.
func TestRead_UTF16Refused(t *testing.T) {
	for _, bom := range []string{"\xff\xfe", "\xfe\xff"} {
		data := []byte(bom + "t\x00y\x00p\x00e\x00\n\x00")
		ignore := func(regfile.Line) error { return nil }
		for name, err := range map[string]error{"csv": regfile.ReadCSV(data, ignore), "jsonl": regfile.ReadJSONL(data, ignore)} {
			if err == nil || !strings.Contains(err.Error(), "UTF-16") {
				t.Errorf("%s with mark %q: err %v, want it refused as UTF-16", name, bom, err)
			}
		}
	}
}
