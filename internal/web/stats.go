package web

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
	"github.com/introreg/nir/rules"
)

// The statistics pages read QueryService.Statistics in process, so an analyst sees what the
// API gives an analyst (no person, no national id: the rows are counts per area), and a
// kommune its own kommune, its fylke and the nation.

var levelParams = map[string]nirv1.StatisticsLevel{
	"kommune": nirv1.StatisticsLevel_STATISTICS_LEVEL_KOMMUNE,
	"fylke":   nirv1.StatisticsLevel_STATISTICS_LEVEL_FYLKE,
	"nasjon":  nirv1.StatisticsLevel_STATISTICS_LEVEL_NATION,
}

var levelLabels = map[string]string{"nasjon": "Hele landet", "fylke": "Fylker", "kommune": "Kommuner"}

// statsQuery is the statistics pages' URL: year, level, area, snapshot.
type statsQuery struct {
	Year     int
	Level    string
	Area     string
	Snapshot string
}

func (q statsQuery) values() url.Values {
	v := url.Values{"ar": {strconv.Itoa(q.Year)}, "niva": {q.Level}}
	if q.Area != "" {
		v.Set("omrade", q.Area)
	}
	if q.Snapshot != "" {
		v.Set("snapshot", q.Snapshot)
	}
	return v
}

// readStatsQuery reads the URL; the defaults are last year, fylker for an analyst and the
// own kommune for a kommune.
func (c *Console) readStatsQuery(r *http.Request) (statsQuery, string) {
	p := principal(r)
	v := r.URL.Query()
	q := statsQuery{Level: v.Get("niva"), Area: strings.TrimSpace(v.Get("omrade")), Snapshot: strings.TrimSpace(v.Get("snapshot"))}
	// The last whole year by default: the current one is still being registered.
	year, ok := yearParam(r, c.today().Y-1)
	if !ok {
		return q, "Ugyldig år."
	}
	q.Year = year
	if q.Level == "" {
		q.Level = "fylke"
		if p.Kommune != "" {
			q.Level = "kommune"
		}
	}
	if _, ok := levelParams[q.Level]; !ok {
		return q, "Ugyldig nivå."
	}
	if q.Level == "nasjon" {
		q.Area = ""
	}
	return q, ""
}

// statistics calls QueryService.Statistics for one year: the rows, and the footnote that
// explains «:» when a field is suppressed.
func (c *Console) statistics(r *http.Request, q statsQuery, year int) ([]*nirv1.StatisticsRow, string, error) {
	req := &nirv1.StatisticsRequest{Year: int32(year), Level: levelParams[q.Level], Area: q.Area, Snapshot: q.Snapshot}
	if q.Snapshot == "" {
		req.MinSequence = minSeq(r)
	}
	res, err := call(c, r.Context(), nirv1connect.QueryServiceStatisticsProcedure, c.query.Statistics, req)
	if err != nil {
		return nil, "", err
	}
	return res.GetRows(), res.GetFootnote(), nil
}

// areaName is an area's name on the data year's last day: "Oslo", "Vestland", "Hele landet".
func areaName(level nirv1.StatisticsLevel, area string, year int) string {
	on := rules.MustDate(year, 12, 31)
	switch level {
	case nirv1.StatisticsLevel_STATISTICS_LEVEL_NATION:
		return "Hele landet"
	case nirv1.StatisticsLevel_STATISTICS_LEVEL_FYLKE:
		if n := fylkeName(area, on); n != "" {
			return n
		}
	case nirv1.StatisticsLevel_STATISTICS_LEVEL_KOMMUNE:
		if n := kommuneName(area, on); n != "" {
			return n
		}
	}
	return area
}

// statsRowView is one row of the statistics tables and charts. A field the API withholds by
// disclosure control (StatisticsRow.suppressed, DOMAIN.md Product decisions 14) is 0 in
// the numbers and shown as «:» by Cell, never as 0.
type statsRowView struct {
	Area, Name                                                 string
	Participants, New, Ongoing, Terminated, Registered, NotReg int64
	Direct, TrainingVedtak, Started, Within3m                  int64
	ShareDirect, ShareWithin3m, NorskHours                     float64
	// Suppressed are the fields withheld, by their StatisticsRow name.
	Suppressed map[string]bool
	// None: the API has no row for the area that year (a fylke before it was made or after
	// it ended, or no figures at all): every cell reads «–», as the downloads leave the
	// year out, never 0.
	None bool
}

// shareParts are the counts behind each share: a share is withheld when its numerator or
// denominator is (the API withholds it with its counts; the console checks both anyway).
var shareParts = map[string][2]string{
	"share_direct_work_or_education":         {"direct_work_or_education", "terminated"},
	"share_training_started_within_3_months": {"training_started_within_3_months", "training_started"},
}

// withheld reports whether a StatisticsRow field (statsColumns) is suppressed, or a share
// one of whose counts is.
func withheld(sup map[string]bool, field string) bool {
	if sup[field] {
		return true
	}
	p, ok := shareParts[field]
	return ok && (sup[p[0]] || sup[p[1]])
}

// Cell is the table's text for a field: «:» when it is withheld.
func (v statsRowView) Cell(field string) string {
	if v.None {
		return "–"
	}
	if withheld(v.Suppressed, field) {
		return ":"
	}
	switch field {
	case "participants":
		return number(v.Participants)
	case "new_programmes":
		return number(v.New)
	case "ongoing":
		return number(v.Ongoing)
	case "terminated":
		return number(v.Terminated)
	case "terminated_registered":
		return number(v.Registered)
	case "reason_not_registered":
		return number(v.NotReg)
	case "direct_work_or_education":
		return number(v.Direct)
	case "share_direct_work_or_education":
		return percent(v.ShareDirect)
	case "training_vedtak":
		return number(v.TrainingVedtak)
	case "norsk_hours":
		return decimal(v.NorskHours)
	case "training_started":
		return number(v.Started)
	case "training_started_within_3_months":
		return number(v.Within3m)
	case "share_training_started_within_3_months":
		return percent(v.ShareWithin3m)
	}
	return ""
}

// chartValue is a field's value for a chart: NaN when it is withheld, which the charts draw
// as «:», or when there are no figures (None), drawn as «–».
func (v statsRowView) chartValue(field string, n float64) float64 {
	if v.None || withheld(v.Suppressed, field) {
		return math.NaN()
	}
	return n
}

type statsData struct {
	Q        statsQuery
	Years    []int
	Levels   []option
	Official string
	Rows     []statsRowView
	// AreaNote says why the area asked has no figures, when it is no area of the year's
	// kommune structure (areaOutside).
	AreaNote   string
	Bars       template.HTML
	Shares     template.HTML
	Trend      template.HTML
	TrendRows  []statsRowView
	TrendYears []int
	TrendName  string
	CSV, JSON  string
	TrendCSV   string
	TrendJSON  string
	Error      string
	Kommune    bool
	// Footnote explains «:» when a table holds a suppressed field (the API's footnote).
	Footnote string
}

// statsPage shows a data year's statistics as charts with their tables: participants and
// terminations per area as bars, the share going directly to work or education with its
// counts, and one area's figures over the years as lines.
func (c *Console) statsPage(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	q, bad := c.readStatsQuery(r)
	today := c.today()
	d := &statsData{Q: q, Kommune: p.Kommune != ""}
	for y := today.Y; y >= today.Y-8; y-- {
		d.Years = append(d.Years, y)
	}
	for _, l := range []string{"nasjon", "fylke", "kommune"} {
		d.Levels = append(d.Levels, option{Value: l, Label: levelLabels[l]})
	}
	deadline, _ := rules.ReportingDeadline(q.Year)
	d.Official = fmt.Sprintf("%d@%s", q.Year, deadline)
	if bad != "" {
		d.Error = bad
		c.render(w, r, http.StatusBadRequest, "stats", c.view(r, "Statistikk", d))
		return
	}
	rows, foot, err := c.statistics(r, q, q.Year)
	if err != nil {
		status, msg, ok := c.formError(w, r, err)
		if !ok {
			return
		}
		if status == http.StatusNotFound && q.Snapshot != "" {
			// The name as typed, but for anything shaped like a national id (as the API's
			// own message).
			msg = fmt.Sprintf("Fant ikke øyeblikksbildet «%s». Drift lager det (for eksempel %s for de offisielle tallene for %d).", rules.RedactIDs(q.Snapshot), d.Official, q.Year)
		}
		d.Error = msg
		c.render(w, r, status, "stats", c.view(r, "Statistikk", d))
		return
	}
	level := levelParams[q.Level]
	if len(rows) == 0 {
		d.AreaNote = areaOutside(level, q.Area, rules.MustDate(q.Year, 1, 1))
	}
	d.Footnote = foot
	for _, row := range rows {
		d.Rows = append(d.Rows, statsRowOf(row, level, q.Year))
	}
	d.CSV, d.JSON = href("/statistikk.csv", q.values()), href("/statistikk.json", q.values())
	if len(d.Rows) > 0 {
		d.Bars, d.Shares = statsCharts(d.Rows, q)
	}

	// The trend: the chosen area (a kommune's own kommune), or the nation, over the years.
	tq := q
	if tq.Area == "" || tq.Level == "nasjon" {
		tq.Level, tq.Area = "nasjon", ""
		if p.Kommune != "" {
			tq.Level, tq.Area = "kommune", p.Kommune
		}
	}
	for _, y := range trendYears(q.Year) {
		trows, foot, err := c.statistics(r, tq, y)
		if err != nil {
			c.apiError(w, r, err)
			return
		}
		if d.Footnote == "" {
			d.Footnote = foot
		}
		d.TrendYears = append(d.TrendYears, y)
		v := statsRowView{None: true}
		if len(trows) > 0 {
			v = statsRowOf(trows[0], levelParams[tq.Level], y)
		}
		v.Name = strconv.Itoa(y)
		d.TrendRows = append(d.TrendRows, v)
	}
	d.TrendName = areaName(levelParams[tq.Level], tq.Area, q.Year)
	d.Trend = trendChart(d.TrendRows, d.TrendName)
	trendQ := tq.values()
	trendQ.Set("serie", "ar")
	d.TrendCSV, d.TrendJSON = href("/statistikk.csv", trendQ), href("/statistikk.json", trendQ)
	c.render(w, r, http.StatusOK, "stats", c.view(r, fmt.Sprintf("Statistikk %d", q.Year), d))
}

// areaOutside says, for an area of the level that is no kommune or fylke of the structure
// on the date (the one the rows follow, DOMAIN.md Product decisions 13), when it was one:
// «Viken (30) var et fylke 2020–2023; tallene følger kommunestrukturen per 1. januar 2025.»
// "" for an area of the structure, or one the table does not know.
func areaOutside(level nirv1.StatisticsLevel, area string, on rules.Date) string {
	ps, what := formerPeriods(level, area, on)
	if len(ps) == 0 {
		return ""
	}
	return fmt.Sprintf("%s (%s) var %s %s; tallene følger kommunestrukturen per %s.", ps[len(ps)-1].name, area, what, spans(ps), longDate(on))
}

// areaPeriod is a period of a kommune or a fylke in the kommune table.
type areaPeriod struct {
	name     string
	from, to rules.Date // to is zero while valid
}

// formerPeriods returns the periods of area, a kommune or fylke by level, when it is none on
// the date, and what it was («et fylke», «en kommune»); none for an area valid on the date or
// one the table does not know.
func formerPeriods(level nirv1.StatisticsLevel, area string, on rules.Date) ([]areaPeriod, string) {
	switch level {
	case nirv1.StatisticsLevel_STATISTICS_LEVEL_FYLKE:
		if _, err := rules.LookupFylke(area, on); err == nil {
			return nil, ""
		}
		fs, _ := rules.FylkePeriods(area)
		return periodsOf(fs, func(f rules.Fylke) areaPeriod { return areaPeriod{f.Name, f.ValidFrom, f.ValidTo} }), "et fylke"
	case nirv1.StatisticsLevel_STATISTICS_LEVEL_KOMMUNE:
		if _, err := rules.LookupKommune(area, on); err == nil {
			return nil, ""
		}
		ks, _ := rules.KommunePeriods(area)
		return periodsOf(ks, func(k rules.Kommune) areaPeriod { return areaPeriod{k.Name, k.ValidFrom, k.ValidTo} }), "en kommune"
	}
	return nil, ""
}

func periodsOf[T any](ts []T, of func(T) areaPeriod) []areaPeriod {
	out := make([]areaPeriod, len(ts))
	for i, t := range ts {
		out[i] = of(t)
	}
	return out
}

// spans writes the years of the periods, «2004–2019» or «2020–i dag», joining a period that
// begins the day after the one before it ended (the table's periods follow its versions).
func spans(ps []areaPeriod) string {
	joined := []areaPeriod{ps[0]}
	for _, p := range ps[1:] {
		if last := &joined[len(joined)-1]; !last.to.IsZero() && last.to.DaysUntil(p.from) == 1 {
			last.to = p.to
			continue
		}
		joined = append(joined, p)
	}
	out := make([]string, len(joined))
	for i, p := range joined {
		end := "i dag"
		if !p.to.IsZero() {
			end = strconv.Itoa(p.to.Y)
		}
		out[i] = fmt.Sprintf("%d–%s", p.from.Y, end)
	}
	return strings.Join(out, " og ")
}

func statsRowOf(row *nirv1.StatisticsRow, level nirv1.StatisticsLevel, year int) statsRowView {
	return statsRowView{
		Area: row.GetArea(), Name: areaName(level, row.GetArea(), year),
		Participants: row.GetParticipants(), New: row.GetNewProgrammes(), Ongoing: row.GetOngoing(), Terminated: row.GetTerminated(),
		Registered: row.GetTerminatedRegistered(), NotReg: row.GetReasonNotRegistered(), Direct: row.GetDirectWorkOrEducation(),
		TrainingVedtak: row.GetTrainingVedtak(), Started: row.GetTrainingStarted(), Within3m: row.GetTrainingStartedWithin_3Months(),
		ShareDirect: row.GetShareDirectWorkOrEducation(), ShareWithin3m: row.GetShareTrainingStartedWithin_3Months(),
		NorskHours: row.GetNorskHours(), Suppressed: suppressedOf(row),
	}
}

// suppressedOf is the set of a row's suppressed fields.
func suppressedOf(row *nirv1.StatisticsRow) map[string]bool {
	if len(row.GetSuppressed()) == 0 {
		return nil
	}
	sup := make(map[string]bool, len(row.GetSuppressed()))
	for _, f := range row.GetSuppressed() {
		sup[f] = true
	}
	return sup
}

// statsCharts draws the year's bars (the 20 largest areas at kommune level).
func statsCharts(rows []statsRowView, q statsQuery) (bars, shares template.HTML) {
	sorted := append([]statsRowView(nil), rows...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Participants > sorted[j].Participants })
	if len(sorted) > 20 {
		sorted = sorted[:20]
	}
	var br, sr []barRow
	for _, r := range sorted {
		// A withheld value draws no bar and reads «:» (DOMAIN.md Product decisions 14), the
		// share too when its numerator or denominator is withheld.
		br = append(br, barRow{Label: r.Name, Values: []float64{r.chartValue("participants", float64(r.Participants)), r.chartValue("terminated", float64(r.Terminated))},
			Texts: []string{r.Cell("participants"), r.Cell("terminated")}})
		text := ":"
		if !withheld(r.Suppressed, "share_direct_work_or_education") {
			text = fmt.Sprintf("%s (%s av %s)", r.Cell("share_direct_work_or_education"), r.Cell("direct_work_or_education"), r.Cell("terminated"))
		}
		sr = append(sr, barRow{Label: r.Name, Values: []float64{r.chartValue("share_direct_work_or_education", r.ShareDirect*100)}, Texts: []string{text}})
	}
	what := levelLabels[q.Level]
	bars = barChart("deltakere", fmt.Sprintf("Deltakere og avsluttede i %d", q.Year),
		fmt.Sprintf("Liggende søyler per område (%s): deltakere i introduksjonsprogram i løpet av året, og programmer som ble avsluttet. Tallene står også i tabellen under.", strings.ToLower(what)),
		[]string{"Deltakere", "Avsluttet"}, br)
	shares = barChart("andel", fmt.Sprintf("Andel direkte over i arbeid eller utdanning, %d", q.Year),
		"Liggende søyler per område: andelen av de avsluttede som gikk direkte over i arbeid eller utdanning, med antallet bak andelen.",
		[]string{"Andel direkte til arbeid eller utdanning"}, sr)
	return bars, shares
}

func trendChart(rows []statsRowView, name string) template.HTML {
	xs, none := make([]string, len(rows)), make([]bool, len(rows))
	series := []lineSeries{{Name: "Deltakere"}, {Name: "Nye programmer"}, {Name: "Avsluttet"}}
	for i, r := range rows {
		xs[i], none[i] = r.Name, r.None
		series[0].Values = append(series[0].Values, r.chartValue("participants", float64(r.Participants)))
		series[1].Values = append(series[1].Values, r.chartValue("new_programmes", float64(r.New)))
		series[2].Values = append(series[2].Values, r.chartValue("terminated", float64(r.Terminated)))
	}
	return lineChart("utvikling", "Utviklingen over år: "+name,
		"Linjer over årene for deltakere, nye programmer og avsluttede programmer. Tallene står også i tabellen under.", xs, none, series)
}

// statsColumns are the columns of the statistics downloads; JSON uses the same keys, with
// numbers as numbers (no 64-bit counts as strings). A field withheld by disclosure control
// (DOMAIN.md Product decisions 14) is «:» in the CSV, as the page and `nirctl stats` show it,
// and null in the JSON, whose rows also carry the API's `suppressed` list: never the API's
// placeholder 0. A share is withheld with its numerator or denominator.
var statsColumns = []string{"year", "level", "area", "area_name", "participants", "new_programmes", "ongoing", "terminated",
	"terminated_registered", "terminated_computed", "reason_not_registered", "direct_work_or_education",
	"share_direct_work_or_education", "training_vedtak", "norsk_hours", "samfunnskunnskap_hours", "training_started",
	"training_started_within_3_months", "share_training_started_within_3_months"}

func statsRecord(row *nirv1.StatisticsRow, level string, year int) map[string]any {
	rec := map[string]any{
		"year": year, "level": level, "area": row.GetArea(), "area_name": areaName(levelParams[level], row.GetArea(), year),
		"participants": row.GetParticipants(), "new_programmes": row.GetNewProgrammes(), "ongoing": row.GetOngoing(),
		"terminated": row.GetTerminated(), "terminated_registered": row.GetTerminatedRegistered(),
		"terminated_computed": row.GetTerminatedComputed(), "reason_not_registered": row.GetReasonNotRegistered(),
		"direct_work_or_education": row.GetDirectWorkOrEducation(), "share_direct_work_or_education": row.GetShareDirectWorkOrEducation(),
		"training_vedtak": row.GetTrainingVedtak(), "norsk_hours": row.GetNorskHours(), "samfunnskunnskap_hours": row.GetSamfunnskunnskapHours(),
		"training_started": row.GetTrainingStarted(), "training_started_within_3_months": row.GetTrainingStartedWithin_3Months(),
		"share_training_started_within_3_months": row.GetShareTrainingStartedWithin_3Months(),
	}
	sup := suppressedOf(row)
	for _, col := range statsColumns {
		if withheld(sup, col) {
			rec[col] = nil
		}
	}
	rec["suppressed"] = append([]string{}, row.GetSuppressed()...)
	return rec
}

// firstDataYear is the first data year the page takes (yearParam) and the API answers.
const firstDataYear = 1900

// trendYears are the years of the trend up to year: the seven years ending with it, from
// firstDataYear on. Before, the page of a year up to 1905 asked the API for a year before
// 1900 and showed nothing but «Ugyldig verdi».
func trendYears(year int) []int {
	var out []int
	for y := max(year-6, firstDataYear); y <= year; y++ {
		out = append(out, y)
	}
	return out
}

// statsRecords are the rows a download holds: the page's year, or (serie=ar) the area's
// years.
func (c *Console) statsRecords(r *http.Request) ([]map[string]any, statsQuery, error) {
	q, bad := c.readStatsQuery(r)
	if bad != "" {
		return nil, q, errBadParam(bad)
	}
	years := []int{q.Year}
	if r.URL.Query().Get("serie") == "ar" {
		years = trendYears(q.Year)
	}
	var out []map[string]any
	for _, y := range years {
		rows, _, err := c.statistics(r, q, y)
		if err != nil {
			return nil, q, err
		}
		for _, row := range rows {
			out = append(out, statsRecord(row, q.Level, y))
		}
	}
	return out, q, nil
}

type errBadParam string

func (e errBadParam) Error() string { return string(e) }

func (c *Console) statsDownloadError(w http.ResponseWriter, r *http.Request, err error) {
	if e, ok := err.(errBadParam); ok {
		http.Error(w, string(e), http.StatusBadRequest)
		return
	}
	status, _, msg := describe(err)
	if status >= 500 {
		c.failed(r, "statistics download failed", err)
	}
	http.Error(w, msg, status)
}

func downloadName(q statsQuery, ext string) string {
	name := fmt.Sprintf("statistikk-%d-%s", q.Year, q.Level)
	if q.Area != "" {
		name += "-" + q.Area
	}
	if q.Snapshot != "" {
		name += "-" + strings.NewReplacer("@", "-", ".", "-").Replace(q.Snapshot)
	}
	return name + "." + ext
}

// statsCSV is the statistics download as CSV (statsColumns).
func (c *Console) statsCSV(w http.ResponseWriter, r *http.Request) {
	recs, q, err := c.statsRecords(r)
	if err != nil {
		c.statsDownloadError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+downloadName(q, "csv")+`"`)
	cw := csv.NewWriter(w)
	_ = cw.Write(statsColumns)
	for _, rec := range recs {
		line := make([]string, len(statsColumns))
		for i, col := range statsColumns {
			switch v := rec[col].(type) {
			case nil:
				line[i] = ":" // withheld by disclosure control
			case float64:
				line[i] = strconv.FormatFloat(v, 'f', -1, 64)
			default:
				line[i] = fmt.Sprint(v)
			}
		}
		_ = cw.Write(line)
	}
	cw.Flush()
}

// statsJSON is the statistics download as JSON: an array of objects with statsColumns as
// keys and numbers as numbers.
func (c *Console) statsJSON(w http.ResponseWriter, r *http.Request) {
	recs, q, err := c.statsRecords(r)
	if err != nil {
		c.statsDownloadError(w, r, err)
		return
	}
	if recs == nil {
		recs = []map[string]any{}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="`+downloadName(q, "json")+`"`)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(recs)
}
