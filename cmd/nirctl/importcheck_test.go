package main

import (
	"os"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/introreg/nir/internal/regfile"
)

// TestCheckFile_ReadOnce: import reads a file once: the check keeps the registrations it read,
// encoded, and the send decodes them, where it read the whole file again before. Past the
// bound on what is kept (the registrations' bytes and those of their line numbers and
// offsets), the rest is read again. Either way the send gets the lines after the
// acknowledged one, in order, as the file holds them, and a line the reader refuses refuses
// the file before anything is kept or sent.
func TestCheckFile_ReadOnce(t *testing.T) {
	path, _, regs := writeJSONLInput(t, 20, 4000)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var all []regfile.Line
	if err := regfile.ReadJSONL(data, func(l regfile.Line) error { all = append(all, l); return nil }); err != nil || len(all) != regs {
		t.Fatalf("%d lines, err %v", len(all), err)
	}
	encoded := 0 // bytes of every registration encoded, without their keptLines
	for _, l := range all {
		encoded += proto.Size(l.Registration)
	}
	reads := 0
	counted := func(data []byte, yield func(regfile.Line) error) error {
		reads++
		return regfile.ReadJSONL(data, yield)
	}
	for _, c := range []struct {
		name         string
		acked, bound int
		wantReads    int
	}{
		{"AllKept", 0, 1 << 20, 1},
		{"AllKeptAfterAcked", all[6].Number, 1 << 20, 1},
		{"NoneKept", 0, 0, 2},
		{"SomeKept", 0, 1000, 2},
		{"SomeKeptAfterAcked", all[6].Number, 1000, 2},
		{"BoundCountsTheLines", 0, encoded, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			reads = 0
			checked, err := checkFile(data, counted, c.acked, c.bound)
			if err != nil {
				t.Fatal(err)
			}
			var got []regfile.Line
			if err := checked.each(func(l regfile.Line) error { got = append(got, l); return nil }); err != nil {
				t.Fatal(err)
			}
			var want []regfile.Line
			for _, l := range all {
				if l.Number > c.acked {
					want = append(want, l)
				}
			}
			if len(got) != len(want) || checked.skipped != len(all)-len(want) {
				t.Fatalf("%d lines sent, %d skipped; want %d and %d", len(got), checked.skipped, len(want), len(all)-len(want))
			}
			for i := range want {
				if got[i].Number != want[i].Number || got[i].End != want[i].End || !proto.Equal(got[i].Registration, want[i].Registration) {
					t.Fatalf("line %d ending at %d: %v; want line %d ending at %d: %v", got[i].Number, got[i].End, got[i].Registration, want[i].Number, want[i].End, want[i].Registration)
				}
			}
			if c.wantReads == 2 && c.bound > 0 && (len(checked.kept) == 0 || len(checked.kept) == len(want)) {
				t.Errorf("%d of %d lines kept within %d bytes, want some", len(checked.kept), len(want), c.bound)
			}
			if reads != c.wantReads {
				t.Errorf("the file was read %d times, want %d (%d of %d lines kept)", reads, c.wantReads, len(checked.kept), len(want))
			}
		})
	}

	bad := append(append([]byte{}, data...), `{"event":{"kommune":"0301","trainingHoursRegistered":{"hours":"NaN"}}}`+"\n"...)
	if _, err := checkFile(bad, regfile.ReadJSONL, 0, 1<<20); err == nil || !strings.Contains(err.Error(), "not a finite number") {
		t.Errorf("a file with a refused last line: err %v", err)
	}
}
