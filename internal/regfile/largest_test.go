package regfile_test

import (
	"bytes"
	"cmp"
	"encoding/csv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/introreg/nir/internal/prototest"
	"github.com/introreg/nir/internal/regfile"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// TestReadJSONL_LargestRegistrations: a registration of every kind with every field set
// (free text longer than nird stores, in Norwegian with quotes and backslashes), written by
// protojson with every option a client may use (JSON or schema names, enums by name or
// number, unset fields as defaults and null), in a Windows file (a byte-order mark, CRLF),
// is read whole, within the reader's bounds on a line's objects and nesting.
func TestReadJSONL_LargestRegistrations(t *testing.T) {
	payloads := (&nirv1.Event{}).ProtoReflect().Descriptor().Oneofs().ByName("payload").Fields().Len()
	var (
		data bytes.Buffer
		want []*nirv1.Registration
	)
	data.WriteString("\ufeff")
	for v := range payloads {
		reg := &nirv1.Registration{}
		prototest.Fill(reg.ProtoReflect(), v, 6)
		for _, opt := range prototest.MarshalOptions() {
			b, err := opt.Marshal(reg)
			if err != nil {
				t.Fatal(err)
			}
			data.Write(append(b, "\r\n"...))
			want = append(want, reg)
		}
	}
	var got []regfile.Line
	err := regfile.ReadJSONL(data.Bytes(), func(l regfile.Line) error { got = append(got, l); return nil })
	if err != nil || len(got) != len(want) {
		t.Fatalf("%d of %d lines read: %v", len(got), len(want), err)
	}
	for i, l := range got {
		if !proto.Equal(l.Registration, want[i]) {
			t.Errorf("line %d read as %v, want %v", l.Number, l.Registration, want[i])
		}
	}
}

// TestReadCSV_LargestRows: a row of every type with every one of its columns set, its
// free-text cells (correlation_id, source) longer than nird stores, in Norwegian with
// quotes and commas, in a spreadsheet's file: a byte-order mark, CRLF,
// and empty cells past the last column in every row, the header's too (up to the 1024 cells
// a record may hold), as a spreadsheet writes a sheet whose used range is wider than its
// columns. Each is read whole. Found on 2026-12-07 (review of the CSV bounds): the header's
// empty cells were refused as an unknown column "", so the empty cells past the header
// that the rows may hold never came to be read.
func TestReadCSV_LargestRows(t *testing.T) {
	fnr := rules.SyntheticFodselsnummer(rules.MustDate(1990, 3, 4), 7)
	dnr := rules.SyntheticDNummer(rules.MustDate(1991, 5, 6), 8)
	common := map[string]string{"national_id": fnr, "kommune": "0301", "event_id": "01JEXAMPLE0000000000000000", "correlation_id": prototest.Text}
	rows := []map[string]string{
		{"type": "PERSON_REGISTERED", "national_id": dnr, "birth_date": "1991-05-06", "sex": "SEX_FEMALE", "permit_date": "2024-01-10",
			"permit_basis": "PERMIT_BASIS_ASYL_28", "arrival_date": "2023-12-01", "settlement_date": "2024-06-01", "settlement_kommune": "4601",
			"settled_by_agreement": "true"},
		{"type": "person_moved", "to_kommune": "4601", "date": "2025-01-01"},
		{"type": "training_vedtak", "scheme": "TRAINING_SCHEME_RETT_OG_PLIKT", "vedtak_type": "TRAINING_VEDTAK_TYPE_TILDELING",
			"vedtak_date": "2025-01-05", "start_date": "2025-02-01", "end_date": "2027-01-31"},
		{"type": "training_hours", "hours_type": "HOURS_TYPE_SAMFUNNSKUNNSKAP_MODUL_3", "month": "2025-02", "hours": "1234567,25", "absence_hours": "0,5"},
		{"type": "identifier_added", "new_id": fnr, "national_id": dnr, "date": "2025-03-01", "source": prototest.Text},
	}
	const cells = 1024
	header := []string{"type", "national_id", "kommune", "event_id", "correlation_id", "birth_date", "sex", "permit_date",
		"permit_basis", "arrival_date", "settlement_date", "settlement_kommune", "settled_by_agreement", "to_kommune", "date",
		"scheme", "vedtak_type", "vedtak_date", "start_date", "end_date", "hours_type", "month", "hours", "absence_hours",
		"new_id", "source"}
	var data bytes.Buffer
	data.WriteString("\ufeff")
	w := csv.NewWriter(&data)
	w.UseCRLF = true
	record := func(cell func(col string) string) []string {
		out := make([]string, cells)
		for i, col := range header {
			out[i] = cell(col)
		}
		return out
	}
	_ = w.Write(record(func(col string) string { return col }))
	for _, row := range rows {
		_ = w.Write(record(func(col string) string { return cmp.Or(row[col], common[col]) }))
	}
	w.Flush()
	var got []regfile.Line
	err := regfile.ReadCSV(data.Bytes(), func(l regfile.Line) error { got = append(got, l); return nil })
	if err != nil || len(got) != len(rows) {
		t.Fatalf("%d of %d rows read: %v", len(got), len(rows), err)
	}
	for i, l := range got {
		if ev := l.Registration.GetEvent(); ev.GetCorrelationId() != prototest.Text || ev.GetKommune() != "0301" || l.Number != i+2 {
			t.Errorf("line %d: correlation id %q, kommune %q; want line %d, the text and 0301", l.Number, ev.GetCorrelationId(), ev.GetKommune(), i+2)
		}
	}
	if ia := got[4].Registration.GetEvent().GetIdentifierAdded(); ia.GetSource() != prototest.Text || ia.GetNationalId() != fnr {
		t.Errorf("identifier_added read as %v", ia)
	}
	if th := got[3].Registration.GetEvent().GetTrainingHoursRegistered(); th.GetHours() != 1234567.25 || th.GetAbsenceHours() != 0.5 {
		t.Errorf("training_hours read as %v", th)
	}
	// A value under an empty header cell is still refused, naming its line.
	data.WriteString(strings.Repeat(",", len(header)+3) + "x\r\n")
	err = regfile.ReadCSV(data.Bytes(), func(regfile.Line) error { return nil })
	if err == nil || !strings.HasPrefix(err.Error(), "line 7: ") || !strings.Contains(err.Error(), "beyond the header") {
		t.Errorf("a value under an empty header cell: %v, want line 7 refused", err)
	}
}
