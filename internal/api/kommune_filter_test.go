package api

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"connectrpc.com/connect"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
)

// TestQuery_KommuneInNoPeriod: a read for a kommunenummer that is a kommune in no period of
// the kommune table (DOMAIN.md Product decisions 13: the table's periods from 2004) answered
// an empty list with OK, where an append refuses the same number naming it: a typo read as
// "no persons". The person list, the CSV export, the terminated report and the statistics by
// kommune now refuse it with InvalidArgument naming the field and the number; a former
// kommune (0213 Ski, 2004–2019) still answers, and a kommune principal still reaches only its
// own kommune (PermissionDenied for another, known or not).
func TestQuery_KommuneInNoPeriod(t *testing.T) {
	w := startQuery(t)
	an, os := w.query(qtAnalyst), w.query(qtOslo)
	reads, field := kommuneReads(context.Background())
	for name, read := range reads {
		t.Run(name, func(t *testing.T) {
			err := read(an, "9999")
			if codeOf(err) != connect.CodeInvalidArgument || fieldOf(err) != field[name] || !strings.Contains(err.Error(), "9999") {
				t.Errorf("analyst, kommune 9999: %v (field %q), want InvalidArgument naming %s and 9999", err, fieldOf(err), field[name])
			}
			if err := read(an, "0213"); err != nil {
				t.Errorf("analyst, former kommune 0213: %v, want an answer", err)
			}
			for _, k := range []string{"9999", "0213"} {
				if err := read(os, k); codeOf(err) != connect.CodePermissionDenied {
					t.Errorf("oslo, kommune %s: %v, want PermissionDenied as before", k, err)
				}
			}
		})
	}
	t.Run("ExportCSV", func(t *testing.T) {
		status, body := w.csv(t, qtAnalyst, http.MethodGet, url.Values{"kommune": {"9999"}})
		if status != http.StatusBadRequest || !strings.Contains(body, "kommune") || !strings.Contains(body, "9999") {
			t.Errorf("analyst, kommune 9999: %d %s, want 400 naming kommune and 9999", status, body)
		}
		if status, body := w.csv(t, qtAnalyst, http.MethodGet, url.Values{"kommune": {"0213"}}); status != http.StatusOK {
			t.Errorf("analyst, former kommune 0213: %d %s, want 200", status, body)
		}
		if status, _ := w.csv(t, qtOslo, http.MethodGet, url.Values{"kommune": {"9999"}}); status != http.StatusForbidden {
			t.Errorf("oslo, kommune 9999: %d, want 403 as before", status)
		}
	})
}

// kommuneReads are the queries that take a kommunenummer, by name, and the field each names
// in a refusal.
func kommuneReads(ctx context.Context) (map[string]func(c nirv1connect.QueryServiceClient, kommune string) error, map[string]string) {
	reads := map[string]func(c nirv1connect.QueryServiceClient, kommune string) error{
		"ListPersons": func(c nirv1connect.QueryServiceClient, k string) error {
			_, err := c.ListPersons(ctx, connect.NewRequest(&nirv1.ListPersonsRequest{Kommune: k}))
			return err
		},
		"TerminatedReport": func(c nirv1connect.QueryServiceClient, k string) error {
			_, err := c.TerminatedReport(ctx, connect.NewRequest(&nirv1.TerminatedReportRequest{Year: 2023, Kommune: k}))
			return err
		},
		"Statistics": func(c nirv1connect.QueryServiceClient, k string) error {
			_, err := c.Statistics(ctx, connect.NewRequest(&nirv1.StatisticsRequest{Year: 2023, Level: nirv1.StatisticsLevel_STATISTICS_LEVEL_KOMMUNE, Area: k}))
			return err
		},
	}
	return reads, map[string]string{"ListPersons": "kommune", "TerminatedReport": "kommune", "Statistics": "area"}
}

// TestQuery_KommuneMalformed: a kommune principal asking for a malformed kommunenummer («301»
// without its leading zero, letters, five digits) was denied as for another kommune, so the
// web console told a caseworker who mistyped the own number «Du har ikke tilgang til dette»
// on the statistics form. The form of a number is no kommune's secret: it is now refused with
// InvalidArgument naming the field, for every principal, as the fylke's already was; a
// well-formed number of another kommune is still denied, known or not.
func TestQuery_KommuneMalformed(t *testing.T) {
	w := startQuery(t)
	reads, field := kommuneReads(context.Background())
	for name, read := range reads {
		t.Run(name, func(t *testing.T) {
			for _, who := range []string{qtAnalyst, qtOslo} {
				for _, k := range []string{"301", "abcd", "03011", "+301", " 0301"} {
					if err := read(w.query(who), k); codeOf(err) != connect.CodeInvalidArgument || fieldOf(err) != field[name] {
						t.Errorf("%s, kommune %q: %v (field %q), want InvalidArgument naming %s", who, k, err, fieldOf(err), field[name])
					}
				}
			}
		})
	}
	t.Run("ExportCSV", func(t *testing.T) {
		if status, body := w.csv(t, qtOslo, http.MethodGet, url.Values{"kommune": {"301"}}); status != http.StatusBadRequest || !strings.HasPrefix(body, "kommune:") {
			t.Errorf("oslo, kommune 301: %d %s, want 400 naming kommune", status, body)
		}
	})
}

// TestQuery_FylkeInNoPeriod: the statistics by fylke took any two digits for the area, so
// fylke 99 (in no period of the kommune table, DOMAIN.md Product decisions 13) answered an
// empty table with OK, the typo TestQuery_KommuneInNoPeriod fixed for kommuner. It is now
// refused with InvalidArgument naming the area and the number; a former fylke (30 Viken,
// 2020–2023) still answers in any structure, and a kommune principal is still denied
// another fylke, known or not.
func TestQuery_FylkeInNoPeriod(t *testing.T) {
	w := startQuery(t)
	ctx := context.Background()
	an, os := w.query(qtAnalyst), w.query(qtOslo)
	read := func(c nirv1connect.QueryServiceClient, year int32, fylke string, current bool) error {
		_, err := c.Statistics(ctx, connect.NewRequest(&nirv1.StatisticsRequest{Year: year, Level: nirv1.StatisticsLevel_STATISTICS_LEVEL_FYLKE, Area: fylke, CurrentStructure: current}))
		return err
	}
	err := read(an, 2023, "99", false)
	if codeOf(err) != connect.CodeInvalidArgument || fieldOf(err) != "area" || !strings.Contains(err.Error(), "99") {
		t.Errorf("analyst, fylke 99: %v (field %q), want InvalidArgument naming area and 99", err, fieldOf(err))
	}
	for _, c := range []struct {
		year    int32
		current bool
	}{{2023, false}, {2024, false}, {2023, true}} {
		if err := read(an, c.year, "30", c.current); err != nil {
			t.Errorf("analyst, former fylke 30 (year %d, current structure %v): %v, want an answer", c.year, c.current, err)
		}
	}
	for _, f := range []string{"99", "30"} {
		if err := read(os, 2023, f, false); codeOf(err) != connect.CodePermissionDenied {
			t.Errorf("oslo, fylke %s: %v, want PermissionDenied as before", f, err)
		}
	}
}

// TestQuery_OtherKommuneOneAnswer: a kommune principal asking for a well-formed number not
// its own gets one and the same refusal, whether the number is another kommune's today
// (4601 Bergen), a former kommune's (0213 Ski) or in no period (9999), from every read and
// the CSV export: the refusal tells nothing of which numbers are kommuner. c3c7766 moved
// the form's check before the scope; the table's must stay after it.
func TestQuery_OtherKommuneOneAnswer(t *testing.T) {
	w := startQuery(t)
	reads, _ := kommuneReads(context.Background())
	for name, read := range reads {
		t.Run(name, func(t *testing.T) {
			want := read(w.query(qtOslo), "4601")
			if codeOf(want) != connect.CodePermissionDenied {
				t.Fatalf("oslo, kommune 4601: %v; want PermissionDenied", want)
			}
			for _, k := range []string{"0213", "9999"} {
				if err := read(w.query(qtOslo), k); err == nil || err.Error() != want.Error() {
					t.Errorf("oslo, kommune %s: %v; want the answer to 4601: %v", k, err, want)
				}
			}
		})
	}
	t.Run("ExportCSV", func(t *testing.T) {
		status, want := w.csv(t, qtOslo, http.MethodGet, url.Values{"kommune": {"4601"}})
		for _, k := range []string{"0213", "9999"} {
			if s, body := w.csv(t, qtOslo, http.MethodGet, url.Values{"kommune": {k}}); s != status || body != want || s != http.StatusForbidden {
				t.Errorf("oslo, kommune %s: %d %q; want 403 and the answer to 4601 (%d %q)", k, s, body, status, want)
			}
		}
	})
}
