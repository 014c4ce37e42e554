package web

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"

	"github.com/introreg/nir/internal/access"
	"github.com/introreg/nir/internal/api"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
)

// The person list's URL is the CSV export's query (api.ExportPersonsPath: law=IL,
// tiltak=without, ...) plus the console's own paging parameters, so a bookmark reopens the
// same list and «Last ned CSV» exports exactly it.
const (
	paramPage = "side"
	paramSize = "antall"
	// paramAfter is the API's next_page_token of the page before, which «Neste side»
	// carries: the page starts after the row the previous one ended at, so a row stored or
	// removed between the two views neither repeats a row nor skips one, as a row's offset
	// (side alone: the first, previous and last pages, and a page size chosen) would.
	paramAfter = "etter"
)

// pageSizes are the page sizes offered; the first is the default.
var pageSizes = []int{50, 25, 100, 200, 500}

// filterField is one filter of the person list form.
type filterField struct {
	Name    string // URL parameter, as the CSV export names it
	Label   string
	Kind    string // "presence", "select", "number", "date"
	Options []option
	Min     string // number inputs
	Step    string
	Hint    string
}

var presence = []option{{"with", "Med"}, {"without", "Uten"}}

// filterGroups are the person list's filters (every filter of nir.v1.PersonFilter,
// DOMAIN.md 6.1), grouped as the form shows them.
var filterGroups = []struct {
	Legend string
	Fields []filterField
}{
	{"Person", []filterField{
		{Name: "law", Label: "Lov", Kind: "select", Options: options(lawLabels, "LAW_")},
		{Name: "programme_category", Label: "Kategori introduksjonsprogram", Kind: "select", Options: options(categoryLabels, "SCHEME_")},
		{Name: "training_category", Label: "Kategori opplæring", Kind: "select", Options: options(categoryLabels, "SCHEME_")},
		{Name: "year", Label: "Dataår (program eller opplæring i året)", Kind: "number", Min: "1900", Step: "1"},
	}},
	{"Introduksjonsprogram", []filterField{
		{Name: "programme_vedtak", Label: "Vedtak om introduksjonsprogram", Kind: "presence"},
		{Name: "tiltak", Label: "Tiltak", Kind: "presence"},
		{Name: "sluttmal", Label: "Sluttmål", Kind: "presence"},
		{Name: "integreringskontrakt", Label: "Integreringskontrakt", Kind: "presence"},
	}},
	{"Avslutning", []filterField{
		{Name: "terminated", Label: "Avsluttet program", Kind: "presence"},
		{Name: "registered_reason", Label: "Registrert avslutningsårsak", Kind: "presence"},
		{Name: "termination_computed", Label: "Avslutning beregnet av regelmotoren", Kind: "presence"},
		{Name: "termination_reason", Label: "Avslutningsårsak", Kind: "select", Options: options(reasonLabels, "TERMINATION_REASON_")},
		{Name: "inactive", Label: "Ingen registreringer siste 12 måneder", Kind: "presence"},
	}},
	{"Opplæring i norsk og samfunnskunnskap", []filterField{
		{Name: "training_vedtak", Label: "Vedtak om opplæring", Kind: "presence"},
		{Name: "norskmal", Label: "Norskmål", Kind: "presence"},
		{Name: "utdanningsbakgrunn", Label: "Utdanningsbakgrunn", Kind: "presence"},
		{Name: "norsk_hours", Label: "Norsktimer registrert", Kind: "presence"},
		{Name: "min_norsk_hours", Label: "Norsktimer fra", Kind: "number", Min: "0", Step: "any"},
		{Name: "max_norsk_hours", Label: "Norsktimer til", Kind: "number", Min: "0", Step: "any"},
	}},
	{"Frister", []filterField{
		{Name: "deadline", Label: "Frist", Kind: "select", Options: []option{{"overdue", "Overskredet"}, {"due_within", "Forfaller innen antall dager"}}},
		{Name: "within_days", Label: "Antall dager", Kind: "number", Min: "0", Step: "1", Hint: "standard 30"},
		{Name: "now", Label: "Frister per dato", Kind: "date", Hint: "standard i dag"},
	}},
}

// fieldLabels names the person list's parameters in Norwegian (for error messages).
var fieldLabels = func() map[string]string {
	m := map[string]string{"kommune": "Kommune", "sort": "Sortering", "desc": "Synkende", "snapshot": "Øyeblikksbilde",
		"page_size": "Antall per side", "page_token": "Side", "year": "Dataår", "level": "Nivå", "area": "Område"}
	for _, g := range filterGroups {
		for _, f := range g.Fields {
			m[f.Name] = f.Label
		}
	}
	return m
}()

// column is a column of the person list; Sort is its sort key (the CSV export's), if any.
type column struct {
	Label, Sort string
	Numeric     bool
}

// listParams splits a person list URL: the list's own parameters (empty ones dropped) and
// the page and page size.
func listParams(q url.Values) (list url.Values, page, size int, dirty bool) {
	list = url.Values{}
	for k, vs := range q {
		if k == paramPage || k == paramSize || k == paramAfter {
			continue
		}
		for _, v := range vs {
			if v == "" {
				dirty = true
				continue
			}
			list.Add(k, v)
		}
	}
	page, size, bad := pageParams(q)
	return list, page, size, dirty || bad
}

// pageParams reads a list's page and page size (side, antall): 1 and the first of pageSizes
// when absent, and when malformed, which bad reports.
func pageParams(q url.Values) (page, size int, bad bool) {
	page, size = 1, pageSizes[0]
	if n, err := strconv.Atoi(q.Get(paramPage)); err == nil && n >= 1 {
		page = n
	} else if q.Get(paramPage) != "" {
		bad = true
	}
	if n, err := strconv.Atoi(q.Get(paramSize)); err == nil && n >= 1 && n <= 1000 {
		size = n
	} else if q.Get(paramSize) != "" {
		bad = true
	}
	return page, size, bad
}

// pageToken is the API's page token of a list's page: the token «Neste side» carries
// (paramAfter), or the offset of the page's first row.
func pageToken(q url.Values, page, size int) string {
	if t := q.Get(paramAfter); t != "" {
		return t
	}
	if page > 1 {
		return strconv.FormatInt(int64(page-1)*int64(size), 10)
	}
	return ""
}

// Pager is the paging of a list the console shows a page of («Side 2 av 7»): the links to
// the other pages and the page size form keep the list's own parameters.
type Pager struct {
	Path       string // the list's page, the page size form's action
	Total      int
	Page       int
	Pages      int
	Size       int
	Sizes      []int
	First      int
	Last       int
	Prev, Next string
	FirstHref  string
	LastHref   string
	SizeHidden []hiddenField
}

// newPager pages a list of total rows at path with parameters list; shown is the number of
// rows of the page shown, and next the API's token of the page after it («Neste side»).
func newPager(path string, list url.Values, page, size, total, shown int, next string) Pager {
	g := Pager{Path: path, Total: total, Page: page, Size: size, Sizes: pageSizes,
		Pages: max(1, (total+size-1)/size), First: (page-1)*size + 1}
	g.Last = g.First + shown - 1
	pageHref := func(n int, after ...string) string {
		q := with(list, after...)
		if n > 1 {
			q = with(q, paramPage, strconv.Itoa(n))
		}
		if size != pageSizes[0] {
			q = with(q, paramSize, strconv.Itoa(size))
		}
		return href(path, q)
	}
	if page > 1 {
		g.Prev, g.FirstHref = pageHref(min(page-1, g.Pages)), pageHref(1)
	}
	if page < g.Pages {
		g.Next, g.LastHref = pageHref(page+1), pageHref(g.Pages)
	}
	// The API's token says more rows follow even when the side number, counted before rows
	// were removed ahead of the place, is past the pages of the total now.
	if next != "" {
		g.Next = pageHref(page+1, paramAfter, next)
	}
	for k := range list {
		g.SizeHidden = append(g.SizeHidden, hiddenField{k, list.Get(k)})
	}
	sort.Slice(g.SizeHidden, func(i, j int) bool { return g.SizeHidden[i].Name < g.SizeHidden[j].Name })
	return g
}

// href builds a console URL from a path and parameters, in a stable order.
func href(path string, q url.Values) string {
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

func with(q url.Values, kv ...string) url.Values {
	out := url.Values{}
	for k, vs := range q {
		out[k] = append([]string(nil), vs...)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			out.Del(kv[i])
		} else {
			out.Set(kv[i], kv[i+1])
		}
	}
	return out
}

type personsData struct {
	Groups []struct {
		Legend string
		Fields []filterField
	}
	Values     url.Values
	Presence   []option
	AskKommune bool
	Kommune    string
	Columns    []columnView
	Rows       []personRowView
	Pager
	CSV    string
	Reset  string
	Hidden []hiddenField
	Error  string
	IDs    bool
	// Active counts the filters in use; FiltersOpen shows the form open (no filter yet, or
	// a bad one to correct).
	Active      int
	FiltersOpen bool
}

type hiddenField struct{ Name, Value string }

type columnView struct {
	column
	Href     string
	AriaSort string
	Arrow    string
}

// personRowView is one row as the page shows it.
type personRowView struct {
	Href         string
	Ident        string
	BirthDate    string
	Law          string
	Category     string
	Start        string
	End          string
	Sluttmal     string
	Tiltak       string
	Terminated   string
	Reason       string
	NotReg       bool
	Computed     bool
	NorskDate    string
	NorskNote    string
	NorskHours   string
	TrainingText string
}

// personColumns are the list's columns after the identifying one.
var personColumns = []column{
	{Label: "Fødselsdato", Sort: "birth_date"},
	{Label: "Lov"},
	{Label: "Programstart", Sort: "programme_start"},
	{Label: "Seneste sluttdato", Sort: "programme_end"},
	{Label: "Sluttmål"},
	{Label: "Tiltak"},
	{Label: "Avsluttet", Sort: "termination_date"},
	{Label: "Opplæring"},
	{Label: "Norskfrist", Sort: "norsk_deadline"},
	{Label: "Norsktimer", Sort: "norsk_hours", Numeric: true},
}

// personsPage serves the person list (DOMAIN.md 6.1) through QueryService.ListPersons.
func (c *Console) personsPage(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	list, page, size, dirty := listParams(r.URL.Query())
	if dirty {
		// Drop the empty fields a GET form sends, so the URL says only what filters.
		q := with(list, paramAfter, r.URL.Query().Get(paramAfter))
		if page > 1 {
			q = with(q, paramPage, strconv.Itoa(page))
		}
		if size != pageSizes[0] {
			q = with(q, paramSize, strconv.Itoa(size))
		}
		http.Redirect(w, r, href("/personer", q), http.StatusSeeOther)
		return
	}
	d := &personsData{Groups: filterGroups, Values: list, Presence: presence, Pager: Pager{Page: page, Size: size, Sizes: pageSizes},
		AskKommune: p.Kommune == "", Kommune: list.Get("kommune"), IDs: access.For(p).SeesNationalIDs()}
	d.Reset = "/personer"
	if d.AskKommune && d.Kommune != "" {
		d.Reset = href("/personer", url.Values{"kommune": {d.Kommune}})
	}
	for _, k := range []string{"sort", "desc", "snapshot"} {
		if v := list.Get(k); v != "" {
			d.Hidden = append(d.Hidden, hiddenField{k, v})
		}
	}
	for _, g := range filterGroups {
		for _, f := range g.Fields {
			if list.Get(f.Name) != "" {
				d.Active++
			}
		}
	}
	d.FiltersOpen = d.Active == 0
	// The query is checked before any link is built from it: a refused one shows none,
	// and a request line of thousands of parameters costs no more than its parse.
	req, err := api.PersonListRequest(list)
	if err != nil {
		_, _, msg := describe(err)
		d.Error, d.FiltersOpen = msg, true
		c.render(w, r, http.StatusBadRequest, "persons", c.view(r, "Personliste", d))
		return
	}
	d.CSV = href("/personer.csv", list)
	sortKey, desc := list.Get("sort"), list.Get("desc") == "true"
	first := column{Label: "Fødselsnummer"}
	if !d.IDs {
		first = column{Label: "Personnøkkel", Sort: "person_key"}
	}
	for _, col := range append([]column{first}, personColumns...) {
		cv := columnView{column: col}
		if col.Sort != "" {
			next := "false"
			if col.Sort == sortKey && !desc {
				next = "true"
			}
			cv.Href = href("/personer", with(list, "sort", col.Sort, "desc", map[string]string{"true": "true", "false": ""}[next]))
			if col.Sort == sortKey {
				cv.AriaSort, cv.Arrow = "ascending", "▲"
				if desc {
					cv.AriaSort, cv.Arrow = "descending", "▼"
				}
			}
		}
		d.Columns = append(d.Columns, cv)
	}

	req.PageSize = int32(size)
	if req.GetSnapshot() == "" {
		req.MinSequence = minSeq(r)
	}
	req.PageToken = pageToken(r.URL.Query(), page, size)
	if d.AskKommune && req.GetKommune() == "" {
		d.Error = "Velg en kommune (kommunenummer)."
		c.render(w, r, http.StatusOK, "persons", c.view(r, "Personliste", d))
		return
	}
	res, err := call(c, r.Context(), nirv1connect.QueryServiceListPersonsProcedure, c.query.ListPersons, req)
	if err != nil {
		if status, msg, ok := c.formError(w, r, err); ok {
			d.Error = msg
			c.render(w, r, status, "persons", c.view(r, "Personliste", d))
		}
		return
	}
	d.Pager = newPager("/personer", list, page, size, int(res.GetTotal()), len(res.GetRows()), res.GetNextPageToken())
	canOpen := c.can(p, nirv1connect.QueryServiceAuditHistoryProcedure)
	for _, row := range res.GetRows() {
		d.Rows = append(d.Rows, personRowOf(row, canOpen))
	}
	c.render(w, r, http.StatusOK, "persons", c.view(r, "Personliste", d))
}

// personRowOf formats a row of the list. Only a principal that may open the person page
// gets a link; only one that sees national ids sees them (the API left them out otherwise).
func personRowOf(row *nirv1.PersonRow, link bool) personRowView {
	v := personRowView{
		Ident:     row.GetNationalId(),
		BirthDate: dateText(row.GetBirthDate()),
		Law:       lawShort[row.GetLaw()],
		Start:     dateText(row.GetProgrammeStart()),
		End:       dateText(row.GetProgrammeEnd()),
		Sluttmal:  label(sluttmalLabels, row.GetSluttmal()),
		NorskDate: dateText(row.GetNorskDeadline()),
		NorskNote: row.GetNorskDeadlineNote(),
	}
	if v.Ident == "" {
		v.Ident = row.GetPersonKey()
	}
	if link {
		v.Href = "/personer/" + url.PathEscape(row.GetPersonKey())
	}
	if row.GetProgrammeVedtak() {
		v.Tiltak = "Nei"
		if row.GetTiltak() {
			v.Tiltak = "Ja"
		}
	}
	if t := dateText(row.GetTerminationDate()); t != "" {
		v.Terminated = t
		v.Reason = label(reasonLabels, row.GetTerminationReason())
		v.NotReg = row.GetTerminationReason() == nirv1.TerminationReason_TERMINATION_REASON_IKKE_REGISTRERT
		v.Computed = row.GetTerminationComputed()
	}
	if row.GetTrainingVedtak() {
		v.TrainingText = label(schemeLabels, row.GetTrainingScheme())
		if v.TrainingText == "" {
			v.TrainingText = "Vedtak"
		}
	}
	if row.GetNorskHours() > 0 {
		v.NorskHours = decimal(row.GetNorskHours())
	} else if row.GetTrainingVedtak() {
		v.NorskHours = "0"
	}
	return v
}

// personsCSV serves «Last ned CSV»: the API's CSV export with the list's own parameters,
// so it holds exactly the rows the list shows (all pages).
func (c *Console) personsCSV(w http.ResponseWriter, r *http.Request) {
	if err := c.allowed(r.Context(), api.ExportPersonsPath); err != nil {
		c.apiError(w, r, err)
		return
	}
	list, _, _, _ := listParams(r.URL.Query())
	// Read your writes, as the list's page does: the session's last registration.
	list.Del("min_sequence")
	if seq := minSeq(r); seq != 0 && list.Get("snapshot") == "" {
		list.Set("min_sequence", strconv.FormatUint(seq, 10))
	}
	r2 := r.Clone(r.Context())
	r2.URL.RawQuery = list.Encode()
	// The export sets its own headers; the console's no-store applies too.
	c.query.ExportHandler().ServeHTTP(w, r2)
}
