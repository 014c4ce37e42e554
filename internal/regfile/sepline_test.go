package regfile_test

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/introreg/nir/rules"
)

// TestReadCSV_SeparatorLine: a first line "sep=;" or "sep=,", as Excel writes it in some
// CSV exports (after a byte-order mark, if any, and ending in LF or CRLF), chooses the
// separator and is no header: the file reads as the same rows without it, each a line
// further down, ending where it ends in the file. Before, it was refused as an unknown
// column. Only the very first line is one, only of a comma or a semicolon, and a record
// after it is bounded, named by its line in the file.
func TestReadCSV_SeparatorLine(t *testing.T) {
	fnr := rules.SyntheticFodselsnummer(rules.MustDate(1990, 3, 4), 7)
	commas := "type,national_id,kommune,to_kommune,date,hours_type,month,hours\n" +
		"person_moved," + fnr + ",0301,4601,2025-01-01,,,\n" +
		"training_hours," + fnr + ",4601,,,norsk,2025-02,\"12,5\"\n"
	semis := strings.NewReplacer("\"12,5\"", "12,5", ",", ";").Replace(commas)
	want, err := readCSV(t, commas)
	if err != nil || len(want) != 2 {
		t.Fatalf("%d lines, err %v", len(want), err)
	}
	for _, data := range []string{
		"sep=;\n" + semis,
		"sep=;\r\n" + strings.ReplaceAll(semis, "\n", "\r\n"),
		"\ufeffsep=;\n" + semis,
		"sep=,\n" + commas,
		"\ufeffsep=,\r\n" + commas,
	} {
		got, err := readCSV(t, data)
		if err != nil || len(got) != len(want) {
			t.Errorf("%.12q…: %d lines, err %v; want %d lines", data, len(got), err, len(want))
			continue
		}
		for i := range want {
			if !proto.Equal(got[i].Registration, want[i].Registration) || got[i].Number != want[i].Number+1 {
				t.Errorf("%.12q…: line %d: %v, want line %d: %v", data, got[i].Number, got[i].Registration, want[i].Number+1, want[i].Registration)
			}
		}
		if end := got[len(got)-1].End; end != int64(len(data)) {
			t.Errorf("%.12q…: the last line ends at %d, want %d", data, end, len(data))
		}
	}

	for data, want := range map[string]string{
		// The line decides, not the header.
		"sep=,\n" + semis: "line 2: unknown column",
		// Only the very first line is one.
		"\nsep=;\n" + semis: "line 2: unknown column",
		semis[:strings.Index(semis, "\n")+1] + "sep=;\n": "line 2: ",
		// Of a comma or a semicolon only, alone on its line.
		"sep=|\n" + strings.ReplaceAll(semis, ";", "|"):   `line 1: not a separator line "sep=;" or "sep=,"`,
		"sep=\t\n" + strings.ReplaceAll(semis, ";", "\t"): `line 1: not a separator line "sep=;" or "sep=,"`,
		"sep=;;\n" + semis: `line 1: not a separator line "sep=;" or "sep=,"`,
		"sep=; \n" + semis: `line 1: not a separator line "sep=;" or "sep=,"`,
		"sep=\n" + semis:   `line 1: not a separator line "sep=;" or "sep=,"`,
		// Rows and records keep their lines in the file, and their bounds.
		"sep=;\ntype;national_id;kommune\nperson_moved;" + fnr + ";0301;4601\n":   "line 3: 4 cells, a value beyond the header's 3 columns (a semicolon not in quotes?)",
		"sep=;\ntype;national_id;kommune\n" + strings.Repeat(";", 4<<20) + "\n":   "line 3: more than 1024 cells",
		"sep=,\ntype,national_id,kommune\n\"" + strings.Repeat("a", 4<<20) + "\n": "line 3: a record longer than 64 KiB",
	} {
		if _, err := readCSV(t, data); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%.24q…: err %.200v, want one beginning %q", data, err, want)
		}
	}
}
