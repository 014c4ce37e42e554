package projections

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// Level is the area level of statistics.
type Level string

// Levels.
const (
	LevelKommune Level = "kommune"
	LevelFylke   Level = "fylke"
	LevelNation  Level = "nation"
)

// StatRow is the statistics of one data year for one area (kommune, fylke or the nation), by
// effective dates (DOMAIN.md Product decisions 7).
type StatRow struct {
	Year  int
	Level Level
	// Area is the kommunenummer, the fylkesnummer (first two digits) or "" for the nation.
	Area     string
	Counters Counters
	// Suppressed marks the counters disclosure control withholds (PublishedStatistics); nil
	// when none is.
	Suppressed *[NumCounters]bool
}

// Get returns one counter.
func (s *StatRow) Get(c Counter) int64 { return s.Counters[c] }

// Reason returns the number of terminations in the year with avslutningsårsak r.
func (s *StatRow) Reason(r nirv1.TerminationReason) int64 {
	if int(r) < 0 || int(r) >= NumReasons {
		return 0
	}
	return s.Counters[int(CReasonBase)+int(r)]
}

// ShareDirectWorkOrEducation is the share of terminations going directly to work or education
// (0 when nobody terminated).
func (s *StatRow) ShareDirectWorkOrEducation() float64 {
	return ratio(s.Counters[CDirectWorkOrEducation], s.Counters[CTerminated])
}

// ShareStartedWithin3Months is the share of training starts within 3 months.
func (s *StatRow) ShareStartedWithin3Months() float64 {
	return ratio(s.Counters[CTrainingStartedWithin3m], s.Counters[CTrainingStarted])
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Statistics returns a data year's statistics at a level on the data year's own kommune
// structure (StatisticsOn with a zero structure date), one row per area with data.
func (db *DB) Statistics(year int, level Level, area string) ([]StatRow, error) {
	rows, _, err := db.StatisticsOn(year, level, area, rules.Date{})
	return rows, err
}

// KommuneMapping says how statistics counted under one kommunenummer (as registered) are
// reported on another structure (Product decisions 13): From is reported as To, or, when the
// kommune has no single number in that structure (a split, or a merger before it happened),
// under its own number with the Candidates it corresponds to.
type KommuneMapping struct {
	From, To   string
	Candidates []string
}

// StatisticsOn returns a data year's statistics at a level, one row per area with data, in area
// order, on the kommune structure valid on date structure: zero means the data year's own
// (1 January of the year), and today's date gives today's structure (DOMAIN.md Product
// decisions 7, 13). The models count under the numbers events were registered with; each is
// mapped to the structure (rules.KommuneIn), and the mappings applied are returned. With area
// set, only that area (a kommunenummer or fylkesnummer of the structure; a kommunenummer of
// another structure is mapped first) is returned. Every row is the sum of the stored rows of the
// numbers it maps (so a person counted under two numbers that are one kommune of the structure,
// 0627 Røyken and 0220 Asker in 2019 on today's structure, counts in both: a difference
// between the two structures' tables would publish the count of such persons, however small).
// Fylke and nation rows are sums of the kommune rows; a kommune counts in the fylke of its
// first two digits in the structure.
func (db *DB) StatisticsOn(year int, level Level, area string, structure rules.Date) ([]StatRow, []KommuneMapping, error) {
	if year < 1900 || year > 9999 {
		return nil, nil, fmt.Errorf("%w: year %d", ErrInvalidArgument, year)
	}
	switch level {
	case LevelKommune, LevelFylke, LevelNation:
	default:
		return nil, nil, fmt.Errorf("%w: level %q", ErrInvalidArgument, level)
	}
	if structure.IsZero() {
		structure = rules.Date{Y: year, M: time.January, D: 1}
	}
	if level == LevelKommune && len(area) == 4 {
		if a, _, ok := rules.KommuneIn(area, structure); ok {
			area = a
		}
	}
	acc := map[string]*StatRow{}
	mapped := map[string]KommuneMapping{}
	err := db.view(func(tx *bolt.Tx) error {
		prefix := statKey(year, "")
		c := bucket(tx, bucketStats).Cursor()
		for k, v := c.Seek(prefix); hasPrefix(k, prefix); k, v = c.Next() {
			kommune := string(k[2:])
			to, cands, ok := rules.KommuneIn(kommune, structure)
			if to != kommune || !ok {
				mapped[kommune] = KommuneMapping{From: kommune, To: to, Candidates: cands}
			}
			key := areaKey(level, to)
			if area != "" && key != area {
				continue
			}
			var cs Counters
			if err := cs.decode(v); err != nil {
				return fmt.Errorf("stats %d/%s: %w", year, kommune, err)
			}
			r := acc[key]
			if r == nil {
				r = &StatRow{Year: year, Level: level, Area: key}
				acc[key] = r
			}
			r.Counters.add(&cs, 1)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	out := make([]StatRow, 0, len(acc))
	for _, r := range acc {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Area < out[j].Area })
	ms := make([]KommuneMapping, 0, len(mapped))
	for _, m := range mapped {
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].From < ms[j].From })
	return out, ms, nil
}

// areaKey is the area of a level that kommunenummer to (of the structure) counts in.
func areaKey(level Level, to string) string {
	switch level {
	case LevelKommune:
		return to
	case LevelFylke:
		if len(to) >= 2 {
			return to[:2]
		}
	}
	return ""
}

// ReportQuery selects the report of terminated participants (DOMAIN.md 6.2).
type ReportQuery struct {
	// Year is the termination year (effective date).
	Year int
	// Kommune limits the report to one kommune ("" = all).
	Kommune string
	// Law limits it to one law (LAW_UNSPECIFIED = both laws).
	Law nirv1.Law
	// Scheme limits it to one kategori, e.g. SCHEME_RETT_OG_PLIKT («rett og plikt
	// introduksjonsprogram») or SCHEME_KAN_TILBYS (SCHEME_UNSPECIFIED = all; DOMAIN.md 6.2).
	Scheme nirv1.Scheme
	// Registered filters «med registrert årsak» (With) or «ikke registrert» (Without).
	Registered Filter
	// Computed filters the regelmotor's terminations (With) or the kommune's (Without).
	Computed Filter
	// PageSize rows per page (0 = DefaultPageSize, at most MaxPageSize); PageToken is the
	// NextPageToken of the previous page, or the decimal offset of a row.
	PageSize  int
	PageToken string
	// All puts every row on one page, whatever PageSize: for an as-of replay, which writes
	// the report whole. The API pages.
	All bool
	// Today is the date of today's kommune structure, which says what a past number has
	// become (OwnKommuneRow); zero means the newest structure of the table.
	Today rules.Date
}

// Report is the report of terminated participants of a year.
type Report struct {
	// Rows are the page's rows, in the order of the bucket's keys: the filed kommune, then
	// the person key.
	Rows []TerminatedRow
	// Total counts the rows matching the query, over all pages; NextPageToken fetches the
	// page after this one ("" on the last).
	Total         int
	NextPageToken string
	// WithReason and WithoutReason count rows with a registered avslutningsårsak and with
	// «Avslutningsårsak ikke registrert».
	WithReason, WithoutReason int
	// ByReason counts rows by avslutningsårsak.
	ByReason map[nirv1.TerminationReason]int
}

// Terminated returns the report of participants whose programme terminated in the year, with
// the effective termination of each: a reason the kommune registers later replaces
// «Avslutningsårsak ikke registrert», a deleted computed termination is gone, and a retracted
// termination is gone.
//
// Rows are filed under the number the programme began under. The report for a kommune holds
// the rows under its own number and those the statistics of the year count in its own row
// (Product decisions 13, 14: the rows of the kommune's number in the year's structure,
// OwnKommuneRow, reached from the filed number by rules.KommuneIn as StatisticsOn maps it).
// 3101 Halden's report for 2024 thus holds a programme begun under 3001 in 2022; a split
// kommune's number has no one number after the split, so 1508 Ålesund's report for 2024
// holds none of 1507's rows, which are 1580 Haram's as much as its own.
//
// The report comes a page at a time (q.PageSize, q.PageToken), with the counts of all its
// rows on every page. A page token is refused (ErrReportPageToken) unless it is a place in
// this year's rows of the kommuner the report holds, so no token leads a kommune's pages
// into another kommune's rows.
func (db *DB) Terminated(q ReportQuery) (*Report, error) {
	if q.Year < 1900 || q.Year > 9999 {
		return nil, fmt.Errorf("%w: year %d", ErrInvalidArgument, q.Year)
	}
	if q.PageSize < 0 || q.PageSize > MaxPageSize {
		return nil, fmt.Errorf("%w: page_size must be 0..%d", ErrInvalidArgument, MaxPageSize)
	}
	reported := q.reported()
	pg, err := q.page(reported)
	if err != nil {
		return nil, err
	}
	rep := &Report{ByReason: map[nirv1.TerminationReason]int{}}
	err = db.view(func(tx *bolt.Tx) error {
		prefix := statKey(q.Year, "")
		c := bucket(tx, bucketTerminated).Cursor()
		k, v := c.Seek(prefix)
		for k != nil && hasPrefix(k, prefix) {
			// year(2) kommune 0x00 person key …: a filed number not reported is skipped whole.
			filed := filedIn(k[len(prefix):])
			if !reported(filed) {
				k, v = c.Seek(append(statKey(q.Year, filed), 1))
				continue
			}
			var t TerminatedRow
			if err := t.decode(v); err != nil {
				return fmt.Errorf("terminated %d: %w", q.Year, err)
			}
			if q.matches(&t) {
				pg.take(rep, k, &t)
				rep.count(&t)
			}
			k, v = c.Next()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rep, nil
}

// reported returns whether a row filed under a number is in the query's kommune's report.
func (q *ReportQuery) reported() func(filed string) bool {
	structure := rules.Date{Y: q.Year, M: time.January, D: 1}
	today := q.Today
	if today.IsZero() {
		today = rules.NewestStructure
	}
	own := ""
	if q.Kommune != "" {
		own = OwnKommuneRow(q.Kommune, structure, today)
	}
	return func(filed string) bool {
		if q.Kommune == "" || filed == q.Kommune {
			return true
		}
		to, _, ok := rules.KommuneIn(filed, structure)
		return ok && own != "" && to == own
	}
}

// filedIn returns the kommune a terminated row's key (past its year) is filed under.
func filedIn(k []byte) string {
	if i := bytes.IndexByte(k, 0); i >= 0 {
		k = k[:i]
	}
	return string(k)
}

// count counts a matching row in the report's counts.
func (rep *Report) count(t *TerminatedRow) {
	rep.Total++
	if t.ReasonRegistered() {
		rep.WithReason++
	} else {
		rep.WithoutReason++
	}
	rep.ByReason[t.Reason]++
}

// reportTokenPrefix marks a report's cursor: the hex of the key (year, filed kommune, person
// key) of the row a page ended at.
const reportTokenPrefix = "t1."

// reportPage is where a page of the report starts and how many rows it takes.
type reportPage struct {
	after  []byte // the key of the previous page's last row, or nil
	offset int    // matching rows to skip, without after
	size   int
	seen   int    // matching rows met so far
	last   []byte // the key of the page's last row
}

// page reads the query's page size and token. A cursor must be a place in the query's year
// and among the kommuner its report holds (reported): a token of another report is refused
// rather than read as a place in this one.
func (q *ReportQuery) page(reported func(string) bool) (*reportPage, error) {
	pg := &reportPage{size: cmp.Or(q.PageSize, DefaultPageSize)}
	if q.All {
		pg.size = math.MaxInt
	}
	t := q.PageToken
	if t == "" {
		return pg, nil
	}
	if rest, ok := strings.CutPrefix(t, reportTokenPrefix); ok {
		k, err := hex.DecodeString(rest)
		year := statKey(q.Year, "")
		if err != nil || !bytes.HasPrefix(k, year) || bytes.IndexByte(k[2:], 0) <= 0 || !reported(filedIn(k[2:])) {
			return nil, ErrReportPageToken
		}
		pg.after = k
		return pg, nil
	}
	n, err := strconv.Atoi(t)
	if err != nil || n < 0 {
		return nil, ErrReportPageToken
	}
	pg.offset = n
	return pg, nil
}

// take puts the matching row t at key k on the page if it belongs there, and notes that
// the report goes on past a full page.
func (pg *reportPage) take(rep *Report, k []byte, t *TerminatedRow) {
	pg.seen++
	switch {
	case pg.after != nil && bytes.Compare(k, pg.after) <= 0, pg.after == nil && pg.seen <= pg.offset:
		return
	case len(rep.Rows) < pg.size:
		rep.Rows = append(rep.Rows, *t)
		pg.last = append(pg.last[:0], k...) // bbolt's key is valid in the transaction only
	case rep.NextPageToken == "":
		rep.NextPageToken = reportTokenPrefix + hex.EncodeToString(pg.last)
	}
}

// matches applies the report's law, scheme, reason and computed filters to a row.
func (q *ReportQuery) matches(t *TerminatedRow) bool {
	return (q.Law == nirv1.Law_LAW_UNSPECIFIED || t.Law == q.Law) &&
		(q.Scheme == nirv1.Scheme_SCHEME_UNSPECIFIED || t.Scheme == q.Scheme) &&
		q.Registered.match(t.ReasonRegistered()) && q.Computed.match(t.Computed)
}

// OwnKommuneRow returns the kommune row of structure that holds kommune k's figures and no
// other kommune's, which k sees unsuppressed in the statistics (DOMAIN.md Product decisions
// 14: "a kommune sees its own figures unsuppressed") and whose terminated participants are in
// k's report, or "" when there is none. That is k itself when k is valid in the structure, or
// the one number k had then when that number became k alone (Product decisions 13: 3001
// Halden is 3101 Halden). A kommune split off another is not the other's row: 1580 Haram and
// 1508 Ålesund in 2023 both map to 1507 Ålesund, whose row holds both successors' persons, so
// neither sees it unsuppressed; nor does a kommune merged from others see a predecessor's row
// (KommuneIn finds no one number). today is the date of today's structure.
func OwnKommuneRow(k string, structure, today rules.Date) string {
	if k == "" {
		return ""
	}
	if _, err := rules.LookupKommune(k, structure); err == nil {
		return k
	}
	then, _, ok := rules.KommuneIn(k, structure)
	if !ok {
		return ""
	}
	if now, _, ok := rules.KommuneIn(then, today); !ok || now != k {
		return ""
	}
	return then
}

func hasPrefix(k, p []byte) bool {
	return len(k) >= len(p) && string(k[:len(p)]) == string(p)
}
