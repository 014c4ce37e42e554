package api

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"

	"connectrpc.com/connect"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestQuery_TerminatedReportPages: Oslo's 2023 report read a row a page holds each row
// once, in the order of the whole report, with the whole report's total on each page; a
// page token that is no place in Oslo's own report (another kommune's rows, malformed) and
// a page size over the bound are refused as InvalidArgument with a FieldViolation naming
// the field.
func TestQuery_TerminatedReportPages(t *testing.T) {
	w := startQuery(t)
	ctx := context.Background()
	osloQ := w.query(qtOslo)
	whole, err := osloQ.TerminatedReport(ctx, connect.NewRequest(&nirv1.TerminatedReportRequest{Year: 2023}))
	if err != nil || len(whole.Msg.GetRows()) != 2 || whole.Msg.GetTotal() != 2 || whole.Msg.GetNextPageToken() != "" {
		t.Fatalf("Oslo's 2023 report: %v (%v), want its 2 rows on one page", whole, err)
	}
	req := &nirv1.TerminatedReportRequest{Year: 2023, PageSize: 1}
	for i, want := range whole.Msg.GetRows() {
		res, err := osloQ.TerminatedReport(ctx, connect.NewRequest(req))
		if err != nil {
			t.Fatalf("page %d: %v", i+1, err)
		}
		if rows := res.Msg.GetRows(); len(rows) != 1 || rows[0].GetEventId() != want.GetEventId() || res.Msg.GetTotal() != 2 {
			t.Errorf("page %d: %v, total %d; want %s of 2", i+1, rows, res.Msg.GetTotal(), want.GetEventId())
		}
		if last := i == len(whole.Msg.GetRows())-1; last != (res.Msg.GetNextPageToken() == "") {
			t.Errorf("page %d: next page token %q", i+1, res.Msg.GetNextPageToken())
		}
		req.PageToken = res.Msg.GetNextPageToken()
	}
	bergensPlace := "t1." + hex.EncodeToString(append([]byte{0x07, 0xe7}, "4601\x00"+w.people["p3"].key...))
	for _, c := range []struct {
		name, field string
		req         *nirv1.TerminatedReportRequest
	}{
		{"Bergen's place", "page_token", &nirv1.TerminatedReportRequest{Year: 2023, PageToken: bergensPlace}},
		{"malformed", "page_token", &nirv1.TerminatedReportRequest{Year: 2023, PageToken: "t1.not-hex"}},
		{"not a token", "page_token", &nirv1.TerminatedReportRequest{Year: 2023, PageToken: "page two"}},
		{"page too large", "page_size", &nirv1.TerminatedReportRequest{Year: 2023, PageSize: 1001}},
	} {
		_, err := osloQ.TerminatedReport(ctx, connect.NewRequest(c.req))
		var ce *connect.Error
		if !errors.As(err, &ce) || ce.Code() != connect.CodeInvalidArgument || len(ce.Details()) != 1 {
			t.Errorf("%s: %v, want InvalidArgument with one detail", c.name, err)
			continue
		}
		if v, derr := ce.Details()[0].Value(); derr != nil || v.(*nirv1.FieldViolation).GetField() != c.field {
			t.Errorf("%s: detail %v (%v), want a FieldViolation for %s", c.name, v, derr, c.field)
		}
	}
}

// TestQuery_TerminatedReportTokenSaysNothingOfOthers: a kommune's page token placed at
// another kommune's row is refused as one placed where that kommune has no row, and one of
// another year as one of a year without rows: the answer never tells whether the row exists.
func TestQuery_TerminatedReportTokenSaysNothingOfOthers(t *testing.T) {
	w := startQuery(t)
	ctx := context.Background()
	place := func(year uint16, kommune, pk string) string {
		return "t1." + hex.EncodeToString(append([]byte{byte(year >> 8), byte(year)}, kommune+"\x00"+pk...))
	}
	answer := func(token string, year int32) string {
		_, err := w.query(qtOslo).TerminatedReport(ctx, connect.NewRequest(&nirv1.TerminatedReportRequest{Year: year, PageToken: token}))
		var ce *connect.Error
		if !errors.As(err, &ce) || ce.Code() != connect.CodeInvalidArgument {
			t.Fatalf("token %s: %v, want InvalidArgument", token, err)
		}
		out := ce.Message()
		for _, d := range ce.Details() {
			v, _ := d.Value()
			out += fmt.Sprint(" ", v)
		}
		return out
	}
	for name, pair := range map[string][2]string{
		"Bergen's row":     {place(2023, "4601", w.people["p3"].key), place(2023, "4601", "ffff")},
		"another year's":   {place(2022, "0301", w.people["p1"].key), place(2022, "0301", "ffff")},
		"a kommune's none": {place(2023, "4601", w.people["p3"].key), place(2023, "5001", "ffff")},
	} {
		if a, b := answer(pair[0], 2023), answer(pair[1], 2023); a != b {
			t.Errorf("%s: %q, but %q for a place of no row", name, a, b)
		}
	}
}
