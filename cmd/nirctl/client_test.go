package main

import (
	"strings"
	"testing"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// TestReadRegistrations_ErrorsHoldNoNationalID: `nirctl append` prints the error of a line
// protojson refuses, and protojson quotes what it refused: a national id written as a number,
// or as a field's name, was echoed into the case system's job log.
func TestReadRegistrations_ErrorsHoldNoNationalID(t *testing.T) {
	fnr := rules.SyntheticFodselsnummer(rules.MustDate(1990, 3, 4), 7)
	for name, line := range map[string]string{
		"IDAsANumber":    `{"person":{"nationalId":` + fnr + `},"event":{"kommune":"0301"}}`,
		"IDAsAFieldName": `{"person":{"nationalId":"x"},"` + fnr + `":1}`,
	} {
		t.Run(name, func(t *testing.T) {
			err := readRegistrations(strings.NewReader(line+"\n"), func(int, *nirv1.Registration) error { return nil })
			if err == nil || !strings.Contains(err.Error(), "line 1") {
				t.Fatalf("err = %v, want line 1 refused", err)
			}
			if strings.Contains(err.Error(), fnr) {
				t.Errorf("the error repeats the national id: %v", err)
			}
		})
	}
}

// TestReadRegistrations_AsImportReadsThem: `nirctl append` reads a line as `nirctl import`
// does (regfile), as the README says of both: a value the rules refuse (a NaN, a date of no
// calendar) is refused naming the line before it is sent, a file from Notepad or
// PowerShell (a byte-order mark, CRLF) is read, and a line too long is refused naming its
// line. Before, append had a reader of its own that sent the NaN, refused the marked file's
// first line, and said "token too long" of no line.
func TestReadRegistrations_AsImportReadsThem(t *testing.T) {
	read := func(data string) (int, error) {
		n := 0
		err := readRegistrations(strings.NewReader(data), func(int, *nirv1.Registration) error { n++; return nil })
		return n, err
	}
	const hours = `{"person":{"nationalId":"x"},"event":{"kommune":"0301","trainingHoursRegistered":{"hours":"NaN"}}}`
	if _, err := read("{}\n" + hours + "\n"); err == nil || !strings.HasPrefix(err.Error(), "line 2: event.training_hours_registered.hours: not a finite number") {
		t.Errorf("a NaN: err = %v, want line 2 refused", err)
	}
	if n, err := read("\ufeff{\"event\":{\"kommune\":\"0301\"}}\r\n{}\r\n"); err != nil || n != 2 {
		t.Errorf("a file with a byte-order mark and CRLF: %d lines, err %v; want 2 read", n, err)
	}
	if _, err := read("{}\n{\"event\":{\"correlationId\":\"" + strings.Repeat("x", 9<<20) + "\"}}\n"); err == nil || !strings.HasPrefix(err.Error(), "line 2: ") {
		t.Errorf("a line of 9 MiB: err = %.100v, want line 2 named", err)
	}
}
