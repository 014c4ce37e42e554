package regfile_test

import (
	"strings"
	"testing"

	"github.com/introreg/nir/internal/regfile"
)

// TestReadJSONL_LongLine: a line longer than the reader takes is refused naming its line.
// Before, the error was bufio's "token too long", which names none.
func TestReadJSONL_LongLine(t *testing.T) {
	data := "{}\n{\"event\":{\"correlationId\":\"" + strings.Repeat("x", 9<<20) + "\"}}\n"
	err := regfile.ReadJSONL([]byte(data), func(regfile.Line) error { return nil })
	if err == nil || !strings.HasPrefix(err.Error(), "line 2: ") {
		t.Errorf("err = %.200v, want line 2 named", err)
	}
}

// TestReadJSONL_CRLFAndByteOrderMark: a file written on Windows (CRLF line ends, a leading
// byte-order mark as Notepad and PowerShell write) is read, and each line ends where it
// ends in the file. Before, the mark made line 1 "not a nir.v1.Registration", and each CR
// was left out of the offsets, which fell behind by a byte a line.
func TestReadJSONL_CRLFAndByteOrderMark(t *testing.T) {
	l1 := "{\"event\":{\"kommune\":\"0301\"}}\r\n"
	l3 := "{\"event\":{\"kommune\":\"4601\"}}\r\n"
	data := "\ufeff" + l1 + "\r\n" + l3
	var got []regfile.Line
	if err := regfile.ReadJSONL([]byte(data), func(l regfile.Line) error { got = append(got, l); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Number != 1 || got[1].Number != 3 {
		t.Fatalf("read %v, want lines 1 and 3", got)
	}
	if want := int64(len("\ufeff" + l1)); got[0].End != want || got[1].End != int64(len(data)) {
		t.Errorf("ends %d and %d, want %d and %d", got[0].End, got[1].End, want, len(data))
	}
}
