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
