package web

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"connectrpc.com/connect"

	"github.com/introreg/nir/internal/access"
	"github.com/introreg/nir/internal/api"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
	"github.com/introreg/nir/rules"
)

// reportingYear is the data year whose ajourføring is due next: the previous year until the
// last day of February, this year after it (DOMAIN.md 6.3).
func reportingYear(today rules.Date) int {
	if today.After(rules.LastDayOfFebruary(today.Y)) {
		return today.Y
	}
	return today.Y - 1
}

// yearParam reads a data year parameter ("ar"), or def.
func yearParam(r *http.Request, def int) (int, bool) {
	s := r.URL.Query().Get("ar")
	if s == "" {
		return def, true
	}
	y, err := strconv.Atoi(s)
	return y, err == nil && y >= firstDataYear && y <= 9999
}

// gap is one row of the årsrapportering page: a count of the person list under a filter, and
// the link to that list.
type gap struct {
	Label, Hint, Href string
	Count             int
	Unit              string // what Count counts: «personer», or the report's «program»
	Law               string
}

type reportingData struct {
	Year       int
	Years      []int
	Deadline   string
	DaysLeft   string
	Passed     bool
	Gaps       []gap
	Error      string
	Terminated string
}

// reportingGaps are what the IMDi page asks each kommune to check before the deadline
// (DOMAIN.md 2.1, 2.5, 3.3, 6.3, Product decisions 3 and 5), each as person list parameters.
// The year filter keeps the persons whose programme or training ran in the data year. The
// gaps on terminations (Report set) are counted in the report of terminated participants of
// the year, which holds the kommune's programmes also of persons who have moved away since,
// and under its numbers before a reform; the person list holds the kommune's persons now.
var reportingGaps = []struct {
	Label, Hint string
	Params      url.Values
	// Report counts the gap in the year's report of terminated participants instead:
	// "uten" the rows without a registered avslutningsårsak, "beregnet" those whose
	// termination is the regelmotor's.
	Report string
}{
	{"Vedtak om introduksjonsprogram uten sluttmål", "Integreringsloven: sluttmålet skal registreres (DOMAIN.md 2.1, 2.2).",
		url.Values{"law": {"IL"}, "programme_vedtak": {"with"}, "sluttmal": {"without"}}, ""},
	{"Vedtak om introduksjonsprogram uten tiltak", "Integreringsloven: innholdet i programmet skal registreres (DOMAIN.md 2.1, 2.4).",
		url.Values{"law": {"IL"}, "programme_vedtak": {"with"}, "tiltak": {"without"}}, ""},
	{"Vedtak om opplæring uten norskmål", "Integreringsloven: norskmålet skal registreres (DOMAIN.md 3.3).",
		url.Values{"law": {"IL"}, "training_vedtak": {"with"}, "norskmal": {"without"}}, ""},
	{"Vedtak om opplæring uten registrerte timer", "Timene i opplæringen er grunnlag for norsktilskuddet (DOMAIN.md 3.4, 6.5).",
		url.Values{"training_vedtak": {"with"}, "norsk_hours": {"without"}}, ""},
	{"Avsluttet uten registrert avslutningsårsak", "«Avslutningsårsak ikke registrert» teller som ikke måloppnåelse (DOMAIN.md 2.5).",
		url.Values{"registered_reason": {"without"}}, "uten"},
	{"Beregnede avslutninger som venter på årsak", "Legg til årsaken (integreringsloven), eller slett og registrer den (introduksjonsloven) (DOMAIN.md Product decisions 5).",
		url.Values{"termination_computed": {"with"}}, "beregnet"},
	{"Rett og plikt uten utdanningsbakgrunn", "Norskfristen kan ikke beregnes uten utdanningsbakgrunn (DOMAIN.md Product decisions 3).",
		url.Values{"law": {"IL"}, "training_category": {"RETT_OG_PLIKT"}, "utdanningsbakgrunn": {"without"}}, ""},
}

// reportingPage is «Årsrapportering for år Y»: for each gap the number of persons in the
// kommune's person list under its filter, counted by QueryService.ListPersons exactly as the
// linked list counts them (the termination gaps: rows of the year's report of terminated
// participants, QueryService.TerminatedReport), and the days left to the deadline. It is the
// caller's own kommune's: a kommune parameter may name it, and is refused as the API refuses
// it otherwise (a malformed number 400, another kommune's 403), in the page's alert.
func (c *Console) reportingPage(w http.ResponseWriter, r *http.Request) {
	if principal(r).Kommune == "" {
		// The menu offers it to kommuner only; an analyst opening it read «Ugyldig verdi:
		// Kommune» from the person list it asks (TestConsole_ReportingForKommunerOnly).
		c.errorPage(w, r, http.StatusForbidden, "Ingen tilgang", "Årsrapporteringen viser hva en kommune må rette i sine egne registreringer før fristen; den er for kommunene.")
		return
	}
	today := c.today()
	year, ok := yearParam(r, reportingYear(today))
	d := &reportingData{Year: year}
	for y := reportingYear(today); y >= reportingYear(today)-5; y-- {
		d.Years = append(d.Years, y)
	}
	if !ok {
		d.Error = "Ugyldig år."
		c.render(w, r, http.StatusBadRequest, "reporting", c.view(r, "Årsrapportering", d))
		return
	}
	deadline, _ := rules.ReportingDeadline(year)
	d.Deadline = longDate(deadline)
	switch left := today.DaysUntil(deadline); {
	case left < 0:
		d.Passed, d.DaysLeft = true, fmt.Sprintf("Fristen gikk ut for %d dager siden.", -left)
	case left == 0:
		d.DaysLeft = "Fristen er i dag."
	default:
		d.DaysLeft = fmt.Sprintf("%d dager igjen.", left)
	}
	d.Terminated = href("/avsluttede", url.Values{"ar": {strconv.Itoa(year)}})
	kommune := strings.TrimSpace(r.URL.Query().Get("kommune"))
	fail := func(err error) {
		if status, msg, ok := c.formError(w, r, err); ok {
			d.Error = msg
			c.render(w, r, status, "reporting", c.view(r, "Årsrapportering", d))
		}
	}
	for _, g := range reportingGaps {
		if g.Report != "" {
			// The report's count only: a page of one row carries the whole report's counts.
			req, link := &nirv1.TerminatedReportRequest{Year: int32(year), Kommune: kommune, PageSize: 1, MinSequence: minSeq(r),
				RegisteredReason: nirv1.PresenceFilter_PRESENCE_FILTER_WITHOUT}, url.Values{"ar": {strconv.Itoa(year)}, "arsak": {"uten"}}
			if g.Report == "beregnet" {
				req.RegisteredReason, req.Computed = nirv1.PresenceFilter_PRESENCE_FILTER_UNSPECIFIED, nirv1.PresenceFilter_PRESENCE_FILTER_WITH
				link = url.Values{"ar": {strconv.Itoa(year)}, "beregnet": {"med"}}
			}
			report, err := call(c, r.Context(), nirv1connect.QueryServiceTerminatedReportProcedure, c.query.TerminatedReport, req)
			if err != nil {
				fail(err)
				return
			}
			d.Gaps = append(d.Gaps, gap{Label: g.Label, Hint: g.Hint, Href: href("/avsluttede", link), Count: int(report.GetTotal()), Unit: "avsluttede program"})
			continue
		}
		params := with(g.Params, "year", strconv.Itoa(year))
		req, err := api.PersonListRequest(params)
		if err != nil {
			c.apiError(w, r, err)
			return
		}
		req.Kommune, req.PageSize, req.MinSequence = kommune, 1, minSeq(r)
		res, err := call(c, r.Context(), nirv1connect.QueryServiceListPersonsProcedure, c.query.ListPersons, req)
		if err != nil {
			fail(err)
			return
		}
		d.Gaps = append(d.Gaps, gap{Label: g.Label, Hint: g.Hint, Href: href("/personer", params), Count: int(res.GetTotal()), Unit: "personer"})
	}
	c.render(w, r, http.StatusOK, "reporting", c.view(r, fmt.Sprintf("Årsrapportering for %d", year), d))
}

type terminatedData struct {
	Year       int
	Years      []int
	Law        string
	Laws       []option
	Registered string
	Category   string
	Categories []option
	// Computed keeps only the rows whose termination is the regelmotor's («beregnet=med»),
	// the Årsrapportering's gap «Beregnede avslutninger som venter på årsak».
	Computed bool
	// AskKommune: the form offers a kommune (an analyst's; a kommune's report is its own).
	AskKommune bool
	Kommune    string
	// Rows are the page's rows of the report; Pager pages it as the person list is paged.
	Rows []terminatedRow
	Pager
	With     int
	Without  int
	ByReason []fact
	Error    string
}

type terminatedRow struct {
	Href, Ident, Law, Start, Date, Reason, Kommune string
	NotReg, Computed                               bool
	// NoID says why a row a kommune sees shows the person key instead of the national id.
	NoID string
	key  string
}

// terminatedPage is the report of terminated participants (DOMAIN.md 6.2) for a year, both
// laws, with «Avslutningsårsak ikke registrert» marked (and first), through
// QueryService.TerminatedReport, a page at a time as the person list (side, antall). The
// kommune parameter is the API's: an analyst's report of one kommune (empty: the nation's),
// a kommune's own number, or refused as the API refuses it (a malformed number 400, another
// kommune's 403). A kommune sees the national ids of the page's rows (terminatedIDs).
func (c *Console) terminatedPage(w http.ResponseWriter, r *http.Request) {
	today := c.today()
	q := r.URL.Query()
	year, ok := yearParam(r, reportingYear(today))
	d := &terminatedData{Year: year, Laws: options(lawLabels, "LAW_"), Categories: options(categoryLabels, "SCHEME_"),
		AskKommune: principal(r).Kommune == "", Kommune: strings.TrimSpace(q.Get("kommune"))}
	for y := today.Y; y >= today.Y-7; y-- {
		d.Years = append(d.Years, y)
	}
	req := &nirv1.TerminatedReportRequest{Year: int32(year), Kommune: d.Kommune, MinSequence: minSeq(r)}
	pf := &pageFilters{q: q}
	law, lawValue := pf.enum(nirv1.Law_value, "LAW_", "lov", "Lov")
	category, categoryValue := pf.enum(nirv1.Scheme_value, "SCHEME_", "kategori", "Kategori")
	d.Law, d.Category, req.Law, req.ProgrammeCategory = lawValue, categoryValue, nirv1.Law(law), nirv1.Scheme(category)
	d.Registered = pf.choice("arsak", "Avslutningsårsak", "med", "uten")
	d.Computed = pf.choice("beregnet", "Avsluttet av", "med") == "med"
	switch d.Registered {
	case "med":
		req.RegisteredReason = nirv1.PresenceFilter_PRESENCE_FILTER_WITH
	case "uten":
		req.RegisteredReason = nirv1.PresenceFilter_PRESENCE_FILTER_WITHOUT
	}
	if !ok {
		d.Error = "Ugyldig år."
	}
	if d.Error = cmp.Or(d.Error, pf.refusal); d.Error != "" {
		c.render(w, r, http.StatusBadRequest, "terminated", c.view(r, "Avsluttede deltakere", d))
		return
	}
	fail := func(err error) {
		if status, msg, ok := c.formError(w, r, err); ok {
			d.Error = msg
			c.render(w, r, status, "terminated", c.view(r, "Avsluttede deltakere", d))
		}
	}
	if d.Computed {
		req.Computed = nirv1.PresenceFilter_PRESENCE_FILTER_WITH
	}
	page, size, _ := pageParams(q)
	// One call: the API puts the rows without a registered reason first, and «Neste side»
	// carries its token of the place reached.
	req.Sort, req.PageSize, req.PageToken = nirv1.TerminatedSort_TERMINATED_SORT_UNREGISTERED_FIRST, int32(size), pageToken(q, page, size)
	res, err := call(c, r.Context(), nirv1connect.QueryServiceTerminatedReportProcedure, c.query.TerminatedReport, req)
	if err != nil {
		fail(err)
		return
	}
	d.Pager = newPager("/avsluttede", d.params(), page, size, int(res.GetTotal()), len(res.GetRows()), res.GetNextPageToken())
	canOpen := c.can(principal(r), nirv1connect.QueryServiceAuditHistoryProcedure)
	for _, t := range res.GetRows() {
		d.Rows = append(d.Rows, terminatedRowOf(t, canOpen))
	}
	if access.For(principal(r)).SeesNationalIDs() {
		if err := c.terminatedIDs(r, d.Rows); err != nil {
			fail(err)
			return
		}
	}
	d.counts(res)
	c.render(w, r, http.StatusOK, "terminated", c.view(r, fmt.Sprintf("Avsluttede deltakere %d", year), d))
}

// params are the report's parameters as its form sends them (empty ones left out), which
// the links to its other pages keep.
func (d *terminatedData) params() url.Values {
	out := url.Values{"ar": {strconv.Itoa(d.Year)}}
	for k, v := range map[string]string{"kommune": d.Kommune, "lov": d.Law, "kategori": d.Category, "arsak": d.Registered} {
		if v != "" {
			out.Set(k, v)
		}
	}
	if d.Computed {
		out.Set("beregnet", "med")
	}
	return out
}

func terminatedRowOf(t *nirv1.TerminatedParticipant, link bool) terminatedRow {
	row := terminatedRow{key: t.GetPersonKey(), Ident: t.GetPersonKey(), Law: lawShort[t.GetLaw()], Start: dateText(t.GetProgrammeStart()),
		Date: dateText(t.GetTerminationDate()), Reason: label(reasonLabels, t.GetReason()), Kommune: t.GetKommune(),
		NotReg: !t.GetReasonRegistered(), Computed: t.GetComputed()}
	if link {
		row.Href = "/personer/" + url.PathEscape(t.GetPersonKey())
	}
	return row
}

// counts sets the report's counts, the whole report's (under its filters) on every page.
func (d *terminatedData) counts(res *nirv1.TerminatedReportResponse) {
	d.With, d.Without = int(res.GetWithReason()), int(res.GetWithoutReason())
	for _, rc := range res.GetByReason() {
		d.ByReason = append(d.ByReason, fact{Label: label(reasonLabels, rc.GetReason()), Value: number(rc.GetCount())})
	}
}

// terminatedIDs puts the national id in each of a page's rows, by QueryService.GetPerson on
// its person key, so a page costs its rows whatever the size of the kommune. A row whose
// person the API does not show the kommune (moved away and out of its reach, or erased) or
// whose identity cannot be read keeps the person key, and says so (NoID); any other error
// is the page's.
func (c *Console) terminatedIDs(r *http.Request, rows []terminatedRow) error {
	for i := range rows {
		res, err := call(c, r.Context(), nirv1connect.QueryServiceGetPersonProcedure, c.query.GetPerson,
			&nirv1.GetPersonRequest{Person: &nirv1.PersonRef{PersonKey: rows[i].key}, MinSequence: minSeq(r)})
		switch {
		case err == nil && res.GetPerson().GetNationalId() != "":
			rows[i].Ident = res.GetPerson().GetNationalId()
		case err == nil || connect.CodeOf(err) == connect.CodeNotFound:
			rows[i].NoID = "Fødselsnummer ikke funnet"
		case connect.CodeOf(err) == connect.CodeDataLoss:
			rows[i].NoID = "Fødselsnummer kan ikke leses"
		default:
			return err
		}
	}
	return nil
}
