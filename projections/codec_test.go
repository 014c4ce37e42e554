package projections

import (
	"bytes"
	"reflect"
	"testing"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// FuzzRowDecode checks that a corrupt stored row never panics and that whatever decodes
// encodes back to a value that decodes the same.
func FuzzRowDecode(f *testing.F) {
	r := PersonRow{PersonKey: "pk", Kommune: "0301", NationalID: "x", BirthDate: rules.MustDate(1990, 1, 2),
		Law: nirv1.Law_LAW_IL, NorskHours: 12345, NorskDeadlineNote: "mangler utdanningsbakgrunn", IntroScheme: nirv1.Scheme_SCHEME_RETT}
	f.Add(r.encode(nil))
	f.Add([]byte{})
	f.Add([]byte{1, 200, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var got PersonRow
		if err := got.decode(b); err != nil {
			return
		}
		enc := got.encode(nil)
		var again PersonRow
		if err := again.decode(enc); err != nil || !bytes.Equal(again.encode(nil), enc) {
			t.Fatalf("round trip of %x: %v", b, err)
		}
	})
}

// TestCodec checks the row, terminated-row and counter encodings round-trip.
func TestCodec(t *testing.T) {
	t.Parallel()
	r := PersonRow{PersonKey: "pk", Kommune: "0301", NationalID: "12345678901", BirthDate: rules.MustDate(1990, 1, 2),
		Sex: nirv1.Sex_SEX_MALE, Law: nirv1.Law_LAW_IL_6A, ProgrammeVedtak: true, ProgrammeEnd: rules.MustDate(2025, 12, 31),
		Utdanningsbakgrunn: Yes, NorskHours: -5, SamfunnHours: 7500, TerminationReason: nirv1.TerminationReason_TERMINATION_REASON_ANNET,
		OpplaeringScheme: nirv1.Scheme_SCHEME_PLIKT, ProgrammeStartDeadline: rules.MustDate(2024, 5, 1), ProgrammeFirst: rules.MustDate(2024, 7, 1),
		Years:        []YearSpan{{From: 2017, To: 2019}, {From: 2024, To: 2026}},
		Terminations: []RowTermination{{Date: rules.MustDate(2019, 3, 1), Reason: ikke, Computed: true}}}
	var got PersonRow
	if err := got.decode(r.encode(nil)); err != nil || !reflect.DeepEqual(got, r) {
		t.Errorf("row round trip = %+v, %v", got, err)
	}
	tr := TerminatedRow{PersonKey: "pk", Kommune: "4601", Law: nirv1.Law_LAW_INTROL, Scheme: nirv1.Scheme_SCHEME_KAN_TILBYS,
		Date: rules.MustDate(2022, 2, 28), Reason: ikke, Computed: true, EventID: "01ABC"}
	var gt TerminatedRow
	if err := gt.decode(tr.encode(nil)); err != nil || gt != tr {
		t.Errorf("terminated round trip = %+v, %v", gt, err)
	}
	var c, gc Counters
	c[CNew], c[CNorskHours], c[CReasonBase+3] = 3, -7, 1<<40
	if err := gc.decode(c.encode()); err != nil || gc != c {
		t.Errorf("counters round trip = %v, %v", gc, err)
	}
	if err := got.decode(r.encode(nil)[:10]); err == nil {
		t.Error("truncated row decoded without error")
	}
}
