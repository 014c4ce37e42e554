package regfile_test

import (
	"runtime"
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

// TestReadJSONL_ValuesBounded: a line holding more objects and list entries than any
// registration is refused before protojson reads it. Before, a line of 8 MiB of empty
// absorbed events (a field nird sets and refuses from a client) was read into 2.8 million
// messages: 1 GB and 15 s a line. A line nested deeper than nird takes a request is refused
// as well, where protojson took 10 000 levels.
func TestReadJSONL_ValuesBounded(t *testing.T) {
	for name, line := range map[string]string{
		"Wide": `{"event":{"personsMerged":{"absorbedEvents":[` + strings.TrimSuffix(strings.Repeat("{},", 100_000), ",") + `]}}}`,
		"Deep": `{"event":{"personsMerged":{"absorbedEvents":[` + strings.Repeat(`{"personsMerged":{"absorbedEvents":[`, 200) + strings.Repeat(`]}}`, 200) + `]}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			data := []byte(line + "\n")
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			err := regfile.ReadJSONL(data, func(regfile.Line) error { return nil })
			runtime.ReadMemStats(&after)
			if err == nil || !strings.HasPrefix(err.Error(), "line 1: ") {
				t.Errorf("err = %.200v, want line 1 refused", err)
			}
			// The line is copied as it is read; its messages were 130 to 300 times its size.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16*uint64(len(data)) {
				t.Errorf("%d bytes allocated for a line of %d", alloc, len(data))
			}
		})
	}
	// Strings hold what they like: braces and commas in a value count for nothing.
	ok := `{"event":{"kommune":"0301","correlationId":"` + strings.Repeat(`{,\"`, 600) + `"}}`
	if err := regfile.ReadJSONL([]byte(ok+"\n"), func(regfile.Line) error { return nil }); err != nil {
		t.Errorf("a line with braces and commas in a string: %v", err)
	}
}
