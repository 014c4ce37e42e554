package api

import (
	"cmp"
	"maps"
	"strconv"
	"strings"

	"github.com/introreg/nir/projections"
	"github.com/introreg/nir/rules"
)

// The page tokens of a report sorted TERMINATED_SORT_UNREGISTERED_FIRST: the part of the
// report the place is in and the read model's own token of that part (a place in this
// year's rows of the kommuner the report holds, which db.Terminated checks as it checks
// any). "r." alone is the start of the rows with a registered reason.
const (
	unregisteredToken = "u."
	registeredToken   = "r."
)

// unregisteredFirst returns the page of q's report (no registered_reason filter) with the
// rows without a registered avslutningsårsak first, then the others, each in the read
// model's order, and the whole report's counts: the page is read from the report of the
// rows without a reason and the rest of it from the report of those with one, so the
// pages of one report neither repeat nor skip a row. The token is one of this order
// (unregisteredToken, registeredToken), or a decimal offset in it.
func unregisteredFirst(db *projections.DB, q projections.ReportQuery) (*projections.Report, error) {
	size := cmp.Or(q.PageSize, projections.DefaultPageSize)
	without, with := q, q
	without.Registered, with.Registered = projections.Without, projections.With
	without.PageSize, with.PageSize, without.PageToken, with.PageToken = size, size, "", ""
	inWithout := true
	var counts *projections.Report // of the rows without a reason, once read
	switch t := q.PageToken; {
	case t == "":
	case strings.HasPrefix(t, unregisteredToken):
		without.PageToken = t[len(unregisteredToken):]
	case strings.HasPrefix(t, registeredToken):
		with.PageToken, inWithout = t[len(registeredToken):], false
	default:
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			return nil, projections.ErrReportPageToken
		}
		// Where the offset falls depends on how many rows have no reason.
		if counts, err = db.Terminated(withPage(without, 1, "")); err != nil {
			return nil, err
		}
		if n < counts.Total {
			without.PageToken = t
		} else {
			with.PageToken, inWithout = strconv.Itoa(n-counts.Total), false
		}
	}
	if !inWithout {
		// A page of the others: the rows without a reason give only their counts.
		var err error
		if counts == nil {
			if counts, err = db.Terminated(withPage(without, 1, "")); err != nil {
				return nil, err
			}
		}
		r, err := db.Terminated(with)
		if err != nil {
			return nil, err
		}
		return joinReports(counts, r, r.Rows, prefixed(registeredToken, r.NextPageToken)), nil
	}
	w, err := db.Terminated(without)
	if err != nil {
		return nil, err
	}
	// The rest of the page from the others; a full page still asks a row for their counts.
	need := size - len(w.Rows)
	r, err := db.Terminated(withPage(with, max(need, 1), ""))
	if err != nil {
		return nil, err
	}
	switch {
	case w.NextPageToken != "":
		return joinReports(w, r, w.Rows, unregisteredToken+w.NextPageToken), nil
	case need == 0:
		next := ""
		if r.Total > 0 {
			next = registeredToken
		}
		return joinReports(w, r, w.Rows, next), nil
	}
	return joinReports(w, r, append(w.Rows, distinct(r.Rows, w.Rows)...), prefixed(registeredToken, r.NextPageToken)), nil
}

// withPage is q with a page size and token.
func withPage(q projections.ReportQuery, size int, token string) projections.ReportQuery {
	q.PageSize, q.PageToken = size, token
	return q
}

// prefixed is a part's next page token in this order ("" stays: the last page).
func prefixed(part, next string) string {
	if next == "" {
		return ""
	}
	return part + next
}

// distinct drops from rows any programme already in shown: read in two transactions, a row
// whose reason was registered between them is in both.
func distinct(rows, shown []projections.TerminatedRow) []projections.TerminatedRow {
	type programme struct {
		kommune, person string
		start           rules.Date
	}
	seen := map[programme]bool{}
	for _, t := range shown {
		seen[programme{t.Kommune, t.PersonKey, t.ProgrammeStart}] = true
	}
	out := rows[:0:0]
	for _, t := range rows {
		if !seen[programme{t.Kommune, t.PersonKey, t.ProgrammeStart}] {
			out = append(out, t)
		}
	}
	return out
}

// joinReports is the report of the rows without a reason (w) and those with one (r): the
// page's rows and next page token, and the counts of both.
func joinReports(w, r *projections.Report, rows []projections.TerminatedRow, next string) *projections.Report {
	out := &projections.Report{Rows: rows, NextPageToken: next, Total: w.Total + r.Total,
		WithReason: r.WithReason, WithoutReason: w.WithoutReason, ByReason: maps.Clone(w.ByReason)}
	for reason, n := range r.ByReason {
		out.ByReason[reason] += n
	}
	return out
}
