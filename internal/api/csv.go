package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"connectrpc.com/connect"

	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/projections"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// ExportPersonsPath is the route of the person list's CSV export:
//
//	GET /export/persons.csv?kommune=0301&programme_vedtak=with&deadline=overdue
//
// Its query parameters are the fields of nir.v1.PersonFilter (law=IL, tiltak=without,
// termination_reason=IKKE_REGISTRERT, min_norsk_hours=100, deadline=due_within,
// within_days=60, ...) plus kommune, now (YYYY-MM-DD), sort (person_key, birth_date,
// programme_start, programme_end, norsk_deadline, norsk_hours, termination_date), desc=true
// and snapshot. An unknown parameter is refused, so a misspelt filter never silently exports
// everything. The columns are projections.CSVColumns; national_id only for a kommune
// principal (its own kommune's list).
const ExportPersonsPath = "/export/persons.csv"

// Policy returns auth.DefaultPolicy with the CSV export added for kommune and analyst
// principals (the same roles as QueryService). nird builds its guard with it.
func Policy() auth.Policy {
	pol := auth.DefaultPolicy()
	pol[ExportPersonsPath] = []auth.Role{auth.RoleKommune, auth.RoleAnalyst}
	return pol
}

// ExportHandler serves ExportPersonsPath. It must sit behind auth.Guard.Middleware with
// Policy, which puts the principal in the request's context. The CSV is streamed from the
// read models as it is written; an error after the first bytes aborts the response, so a
// client never mistakes a truncated file for a whole one.
func (h *Query) ExportHandler() http.Handler {
	return http.HandlerFunc(h.exportPersons)
}

// csvParams are the query parameters ExportHandler takes.
var csvParams = map[string]bool{
	"kommune": true, "now": true, "sort": true, "desc": true, "snapshot": true, "min_sequence": true,
	"law": true, "programme_vedtak": true, "training_vedtak": true, "tiltak": true, "sluttmal": true,
	"integreringskontrakt": true, "norskmal": true, "utdanningsbakgrunn": true, "terminated": true,
	"termination_reason": true, "min_norsk_hours": true, "max_norsk_hours": true, "deadline": true,
	"within_days": true, "inactive": true, "year": true, "registered_reason": true, "termination_computed": true, "norsk_hours": true,
	"programme_category": true, "training_category": true,
}

func (h *Query) exportPersons(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	ctx := r.Context()
	v, err := scopeOf(ctx)
	if err != nil {
		writeHTTPError(w, err)
		return
	}
	params, err := parseExportParams(r.URL.Query())
	if err != nil {
		writeHTTPError(w, err)
		return
	}
	// Read your writes: wait for the read models before taking an export's slot.
	if params.minSequence != 0 {
		if h.gate == nil {
			writeHTTPError(w, fieldError(connect.CodeFailedPrecondition, "min_sequence", "this nird's CSV export does not wait for the read models"))
			return
		}
		if err := h.gate.Wait(ctx, params.minSequence, params.snapshot != ""); err != nil {
			writeHTTPError(w, err)
			return
		}
	}
	done, err := h.startExport(v.String())
	if err != nil {
		h.refusedExports.Add(1)
		h.log.DebugContext(ctx, "csv export refused: the principal has its most in flight", "principal", v.String(), "max", h.maxExports)
		writeHTTPError(w, err)
		return
	}
	defer done()
	kommune, err := kommuneFor(v, "kommune", params.kommune, true)
	if err != nil {
		writeHTTPError(w, err)
		return
	}
	now := params.now
	if now.IsZero() {
		now = h.today()
	}
	q, err := personQuery(kommune, params.filter, "", params.sort, params.desc, now)
	if err != nil {
		writeHTTPError(w, err)
		return
	}
	if err := checkSnapshot("snapshot", params.snapshot); err != nil {
		writeHTTPError(w, err)
		return
	}
	lw := &lazyCSV{w: w, filename: "persons-" + kommune + ".csv", head: r.Method == http.MethodHead}
	var rows int
	err = h.src.Use(params.snapshot, func(db *projections.DB) error {
		// From a snapshot, a kommune exports the persons it has today only, as ListPersons
		// lists; read once the snapshot is found, as there.
		var err error
		if q.Keep, q.Erased, err = h.listToday(ctx, "csv export", v, params.snapshot, kommune); err != nil {
			return err
		}
		rows, err = db.ExportCSV(lw, q, projections.CSVOptions{IncludeNationalID: v.SeesNationalIDs(), Disk: h.exportDisk})
		return err
	})
	if err != nil {
		if lw.started {
			// Too late for a status code: abort the response so the client sees a broken
			// transfer rather than a short file. A client that went away is no error of ours.
			if ctx.Err() != nil {
				h.log.DebugContext(ctx, "csv export abandoned by the client", "kommune", kommune)
			} else {
				h.fails.error(ctx, "csv export failed after the first bytes", "csv export", err, "kommune", kommune)
			}
			panic(http.ErrAbortHandler)
		}
		if errors.Is(err, projections.ErrExportDisk) {
			h.refusedExportDisk.Add(1)
			h.log.DebugContext(ctx, "csv export refused: the exports' disk budget is spent", "principal", v.String())
		}
		writeHTTPError(w, readError(ctx, h.fails, "csv export", err))
		return
	}
	if !lw.started { // nothing written at all (cannot happen: there is always a header)
		lw.start()
	}
	h.log.DebugContext(ctx, "csv export", "kommune", kommune, "rows", rows, "principal", v.String())
}

// startExport counts one more CSV export of principal in flight and returns the function
// that ends it, or ResourceExhausted when the principal has its most: each export holds a
// temporary file of the whole list until its client has read it.
func (h *Query) startExport(principal string) (func(), error) {
	done, ok := h.exports.take(principal, h.maxExports)
	if !ok {
		ce := connect.NewError(connect.CodeResourceExhausted, fmt.Errorf("%s has %d CSV exports in flight, its most; retry when one has been read", principal, h.maxExports))
		ce.Meta().Set("Retry-After", "1")
		return nil, ce
	}
	return done, nil
}

// lazyCSV sets the CSV headers and the 200 status on the first write, so that an error found
// before any output can still be answered with its own status.
type lazyCSV struct {
	w        http.ResponseWriter
	filename string
	head     bool
	started  bool
}

func (l *lazyCSV) start() {
	l.started = true
	hd := l.w.Header()
	hd.Set("Content-Type", "text/csv; charset=utf-8")
	hd.Set("Content-Disposition", `attachment; filename="`+l.filename+`"`)
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	l.w.WriteHeader(http.StatusOK)
}

func (l *lazyCSV) Write(p []byte) (int, error) {
	if !l.started {
		l.start()
	}
	if l.head {
		return len(p), nil
	}
	return l.w.Write(p)
}

// exportParams are the parsed query parameters of the CSV export.
type exportParams struct {
	kommune  string
	now      rules.Date
	sort     nirv1.PersonSort
	desc     bool
	snapshot string
	// minSequence is the read-your-writes sequence (QueryConfig.Gate); 0 none.
	minSequence uint64
	filter      *nirv1.PersonFilter
}

// PersonListRequest reads the query parameters of ExportPersonsPath (filter, order, now,
// kommune, snapshot and min_sequence) into a ListPersonsRequest without paging, so that a page of the
// person list and its CSV export read one URL the same way (the web console links the one to
// the other). An unknown parameter is refused; errors name the parameter and never echo its
// value.
func PersonListRequest(vals url.Values) (*nirv1.ListPersonsRequest, error) {
	p, err := parseExportParams(vals)
	if err != nil {
		return nil, err
	}
	req := &nirv1.ListPersonsRequest{Kommune: p.kommune, Filter: p.filter, Sort: p.sort, Desc: p.desc, Snapshot: p.snapshot, MinSequence: p.minSequence}
	if !p.now.IsZero() {
		req.Now = p.now.Proto()
	}
	return req, nil
}

// parseExportParams reads the export's query parameters; an error names the parameter and
// never echoes a value (a caller might paste a national id into any of them).
func parseExportParams(vals url.Values) (exportParams, error) {
	p := exportParams{filter: &nirv1.PersonFilter{}}
	f := p.filter
	for name, vs := range vals {
		if !csvParams[name] {
			// The name is the caller's too: a national id pasted into the URL is one.
			return p, fieldError(connect.CodeInvalidArgument, rules.RedactInput(name), "unknown parameter")
		}
		if len(vs) != 1 {
			return p, fieldError(connect.CodeInvalidArgument, name, "give it once")
		}
	}
	get := func(name string) string { return strings.TrimSpace(vals.Get(name)) }
	bad := func(name, reason string) (exportParams, error) {
		return p, fieldError(connect.CodeInvalidArgument, name, reason)
	}
	p.kommune = get("kommune")
	p.snapshot = get("snapshot")
	if s := get("min_sequence"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return bad("min_sequence", "not a stream sequence (the sequence an Append returned)")
		}
		p.minSequence = n
	}
	if s := get("now"); s != "" {
		d, err := rules.ParseDate(s)
		if err != nil {
			return bad("now", "not a date (YYYY-MM-DD)")
		}
		p.now = d
	}
	if s := get("sort"); s != "" {
		found := false
		for k, v := range sortKeys {
			if v != "" && string(v) == rules.FoldASCII(s, strings.ToLower) {
				p.sort, found = k, true
			}
		}
		if !found {
			return bad("sort", "unknown sort key")
		}
	}
	if s := get("desc"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return bad("desc", "must be true or false")
		}
		p.desc = b
	}
	n, err := enumParam("law", nirv1.Law_value, "LAW_", get("law"))
	if err != nil {
		return p, err
	}
	f.Law = nirv1.Law(n)
	for _, pr := range []struct {
		name string
		dst  *nirv1.PresenceFilter
	}{
		{"programme_vedtak", &f.ProgrammeVedtak}, {"training_vedtak", &f.TrainingVedtak}, {"tiltak", &f.Tiltak},
		{"sluttmal", &f.Sluttmal}, {"integreringskontrakt", &f.Integreringskontrakt}, {"norskmal", &f.Norskmal},
		{"utdanningsbakgrunn", &f.Utdanningsbakgrunn}, {"terminated", &f.Terminated}, {"inactive", &f.Inactive},
		{"registered_reason", &f.RegisteredReason}, {"termination_computed", &f.TerminationComputed}, {"norsk_hours", &f.NorskHours},
	} {
		switch rules.FoldASCII(get(pr.name), strings.ToLower) {
		case "":
		case "with", "med", "ja":
			*pr.dst = nirv1.PresenceFilter_PRESENCE_FILTER_WITH
		case "without", "uten", "nei":
			*pr.dst = nirv1.PresenceFilter_PRESENCE_FILTER_WITHOUT
		default:
			return bad(pr.name, "must be with or without")
		}
	}
	if n, err = enumParam("termination_reason", nirv1.TerminationReason_value, "TERMINATION_REASON_", get("termination_reason")); err != nil {
		return p, err
	}
	f.TerminationReason = nirv1.TerminationReason(n)
	for _, hb := range []struct {
		name string
		dst  *float64
	}{{"min_norsk_hours", &f.MinNorskHours}, {"max_norsk_hours", &f.MaxNorskHours}} {
		if s := get(hb.name); s != "" {
			x, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return bad(hb.name, "not a number of hours")
			}
			*hb.dst = x
		}
	}
	switch rules.FoldASCII(get("deadline"), strings.ToLower) {
	case "":
	case "overdue":
		f.Deadline = nirv1.DeadlineFilter_DEADLINE_FILTER_OVERDUE
	case "due_within", "due-within", "due_soon":
		f.Deadline = nirv1.DeadlineFilter_DEADLINE_FILTER_DUE_WITHIN
	default:
		return bad("deadline", "must be overdue or due_within")
	}
	for _, c := range []struct {
		name string
		dst  *nirv1.Scheme
	}{{"programme_category", &f.ProgrammeCategory}, {"training_category", &f.TrainingCategory}} {
		n, err := enumParam(c.name, nirv1.Scheme_value, "SCHEME_", get(c.name))
		if err != nil {
			return p, err
		}
		*c.dst = nirv1.Scheme(n)
	}
	if s := get("year"); s != "" {
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			return bad("year", "not a data year")
		}
		f.Year = int32(n)
	}
	if s := get("within_days"); s != "" {
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			return bad("within_days", "not a whole number of days")
		}
		f.WithinDays = int32(n)
	}
	return p, nil
}

// enumParam reads the enum filter parameter name by rules.ParseEnum: empty is no filter; an
// unknown name, a look-alike (ıl, ſykdom) or the UNSPECIFIED name is refused naming the
// parameter and the names it takes, never echoing the value.
func enumParam(name string, values map[string]int32, prefix, s string) (int32, error) {
	n, err := rules.ParseEnum(values, prefix, s)
	switch {
	case errors.Is(err, rules.ErrEnumUnspecified):
		return 0, fieldError(connect.CodeInvalidArgument, name, "UNSPECIFIED is no filter; leave "+name+" out for all")
	case err != nil:
		return 0, fieldError(connect.CodeInvalidArgument, name, "unknown value (one of "+strings.Join(rules.EnumNames(values, prefix), ", ")+")")
	}
	return n, nil
}

// httpStatus maps a Connect code to the HTTP status of the plain routes.
var httpStatus = map[connect.Code]int{
	connect.CodeInvalidArgument:    http.StatusBadRequest,
	connect.CodeOutOfRange:         http.StatusBadRequest,
	connect.CodeUnauthenticated:    http.StatusUnauthorized,
	connect.CodePermissionDenied:   http.StatusForbidden,
	connect.CodeNotFound:           http.StatusNotFound,
	connect.CodeFailedPrecondition: http.StatusPreconditionFailed,
	connect.CodeUnavailable:        http.StatusServiceUnavailable,
	connect.CodeResourceExhausted:  http.StatusTooManyRequests,
	connect.CodeCanceled:           499,
	connect.CodeDeadlineExceeded:   http.StatusGatewayTimeout,
	connect.CodeUnimplemented:      http.StatusNotImplemented,
}

// writeHTTPError answers a plain HTTP request with the status of a classified error and its
// message (which never holds a national id).
func writeHTTPError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	msg := "internal error; see nird's log"
	var ce *connect.Error
	if errors.As(err, &ce) {
		if s, ok := httpStatus[ce.Code()]; ok {
			status = s
		}
		msg = ce.Message()
		if ra := ce.Meta().Get("Retry-After"); ra != "" {
			w.Header().Set("Retry-After", ra)
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, msg, status)
}
