package projections

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// Filter is a with/without filter of the person list (DOMAIN.md 6.1: «Med vedtak» / «Uten
// vedtak» and so on). The zero value does not filter.
type Filter uint8

// Filter values.
const (
	Any Filter = iota
	With
	Without
)

func (f Filter) match(v bool) bool {
	return f == Any || (f == With) == v
}

// DeadlineFilter selects persons by the state of their deadlines at PersonQuery.Now.
type DeadlineFilter uint8

// DeadlineFilter values.
const (
	// DeadlineAny does not filter.
	DeadlineAny DeadlineFilter = iota
	// DeadlineOverdue keeps persons with at least one deadline passed and not met.
	DeadlineOverdue
	// DeadlineDueWithin keeps persons with a deadline not met that falls within
	// PersonQuery.WithinDays of Now (today included).
	DeadlineDueWithin
)

// SortKey orders the person list.
type SortKey string

// Sort keys. The person key breaks ties, so every order is total and pages are stable.
const (
	SortPersonKey      SortKey = "person_key"
	SortBirthDate      SortKey = "birth_date"
	SortProgrammeStart SortKey = "programme_start"
	SortProgrammeEnd   SortKey = "programme_end"
	SortNorskDeadline  SortKey = "norsk_deadline"
	SortNorskHours     SortKey = "norsk_hours"
	SortTermination    SortKey = "termination_date"
)

// MaxPageSize bounds PersonQuery.PageSize.
const MaxPageSize = 1000

// DefaultPageSize is used when PersonQuery.PageSize is 0.
const DefaultPageSize = 100

// PersonQuery selects a page of a kommune's person list (DOMAIN.md 6.1).
type PersonQuery struct {
	// Kommune is the bostedskommune (required).
	Kommune string
	// Law keeps persons under one law; LAW_UNSPECIFIED keeps all.
	Law nirv1.Law
	// IntroScheme and OpplaeringScheme keep persons of one kategori (DOMAIN.md 1.7, 6.1);
	// SCHEME_UNSPECIFIED keeps all.
	IntroScheme, OpplaeringScheme nirv1.Scheme

	ProgrammeVedtak      Filter // «Med/Uten vedtak» on the introduction programme
	TrainingVedtak       Filter // vedtak on opplæring i norsk og samfunnskunnskap
	Tiltak               Filter
	Sluttmal             Filter
	Integreringskontrakt Filter
	Norskmal             Filter
	Utdanningsbakgrunn   Filter
	Terminated           Filter
	// TerminationReason keeps persons whose effective avslutningsårsak is this one.
	TerminationReason nirv1.TerminationReason
	// ReasonRegistered keeps terminated persons «med registrert årsak» (With) or with
	// «Avslutningsårsak ikke registrert» (Without); persons not terminated never match it.
	ReasonRegistered Filter
	// TerminationComputed keeps terminated persons whose effective termination is the
	// regelmotor's (With) or the kommune's (Without); persons not terminated never match it.
	TerminationComputed Filter
	// NorskHours keeps persons with (With) or without (Without) registered norsk hours: with
	// a Year, hours registered for the months of that year (PersonRow.YearHours).
	NorskHours Filter
	// MinNorskHours and MaxNorskHours bound the registered norsk hours (0 = no bound), of the
	// Year when one is given.
	MinNorskHours, MaxNorskHours float64
	// Inactive keeps persons under «ingen registreringer siste 12 måneder» at Now (With), or
	// the others (Without): an open programme and nothing registered for the inactivity
	// threshold (DOMAIN.md Product decisions 5c). It needs Now.
	Inactive Filter
	// Year keeps persons one of whose programmes or training vedtak ran in the data year, as
	// the statistics count them (DOMAIN.md 8, Product decisions 7: from the start to the
	// termination or end; PersonRow.Years); 0 = any year. With a year, the filters on the
	// termination (Terminated, TerminationReason, ReasonRegistered, TerminationComputed)
	// judge the terminations dated in the year of the kommune's programmes, those the
	// report of terminated participants of the year holds, not the row's programme.
	Year int

	// Deadline filters by deadline state at Now, counting the deadlines the person's page
	// shows (rules.Evaluate): the programme's latest end date, the norsk deadline, and the
	// training and programme starts within 3 months (a late start stays overdue).
	Deadline   DeadlineFilter
	WithinDays int
	// Now is the date deadline states are computed for (required with Deadline).
	Now rules.Date

	// Sort and Desc order the list; the default is by person key.
	Sort SortKey
	Desc bool
	// PageSize rows per page (0 = DefaultPageSize, at most MaxPageSize); PageToken is the
	// NextPageToken of the previous page.
	PageSize  int
	PageToken string

	// Keep, if not nil, keeps only the rows of the persons it returns true for, before the
	// other filters, the total and the pages. A kommune's read of a snapshot keeps the
	// persons in its list today (internal/api, README "Kommune boundaries").
	Keep func(personKey string) bool
	// Erased, if not nil, names persons erased since the models were made (a snapshot's):
	// their rows are read with the identity «slettet» (PersonRow.Erased) before the filters,
	// the order and the output, as the live models hold them. Blanked only at the output, a
	// list sorted by birth date placed an erased person by the birth date it no longer has.
	Erased func(personKey string) bool
}

// erasedRows returns all with the rows of the persons q.Erased names replaced by their
// erased form, in a copy (all may be the decoded list cache's); all itself without Erased.
func (q *PersonQuery) erasedRows(all []PersonRow) []PersonRow {
	if q.Erased == nil {
		return all
	}
	out := slices.Clone(all)
	for i := range out {
		if q.Erased(out[i].PersonKey) {
			out[i] = *out[i].Erased()
		}
	}
	return out
}

// PersonPage is one page of the person list.
type PersonPage struct {
	Rows []PersonRow
	// Total is the number of rows matching the filters.
	Total int
	// NextPageToken fetches the next page; empty on the last.
	NextPageToken string
}

func (q *PersonQuery) validate() error {
	if len(q.Kommune) != 4 {
		return fmt.Errorf("%w: kommune must be a 4-digit kommunenummer", ErrInvalidArgument)
	}
	if q.Deadline != DeadlineAny && q.Now.IsZero() {
		return fmt.Errorf("%w: now is required with a deadline filter", ErrInvalidArgument)
	}
	if q.Inactive != Any && q.Now.IsZero() {
		return fmt.Errorf("%w: now is required with the inactivity filter", ErrInvalidArgument)
	}
	if q.Deadline == DeadlineDueWithin && q.WithinDays < 0 {
		return fmt.Errorf("%w: within_days must not be negative", ErrInvalidArgument)
	}
	if q.PageSize < 0 || q.PageSize > MaxPageSize {
		return fmt.Errorf("%w: page_size must be 0..%d", ErrInvalidArgument, MaxPageSize)
	}
	switch q.Sort {
	case "", SortPersonKey, SortBirthDate, SortProgrammeStart, SortProgrammeEnd, SortNorskDeadline, SortNorskHours, SortTermination:
	default:
		return fmt.Errorf("%w: unknown sort key %q", ErrInvalidArgument, q.Sort)
	}
	return nil
}

func (q *PersonQuery) match(r *PersonRow) bool {
	if q.Keep != nil && !q.Keep(r.PersonKey) {
		return false
	}
	if q.Law != nirv1.Law_LAW_UNSPECIFIED && r.Law != q.Law {
		return false
	}
	if q.IntroScheme != nirv1.Scheme_SCHEME_UNSPECIFIED && r.IntroScheme != q.IntroScheme ||
		q.OpplaeringScheme != nirv1.Scheme_SCHEME_UNSPECIFIED && r.OpplaeringScheme != q.OpplaeringScheme {
		return false
	}
	if !q.ProgrammeVedtak.match(r.ProgrammeVedtak) || !q.TrainingVedtak.match(r.TrainingVedtak) ||
		!q.Tiltak.match(r.Tiltak) || !q.Sluttmal.match(r.Sluttmal != nirv1.Sluttmal_SLUTTMAL_UNSPECIFIED) ||
		!q.Integreringskontrakt.match(r.Integreringskontrakt) || !q.Norskmal.match(r.Norskmal) ||
		!q.Utdanningsbakgrunn.match(r.Utdanningsbakgrunn != Unknown) ||
		!q.Inactive.match(r.Inactive(q.Now)) {
		return false
	}
	if q.Year != 0 {
		if !ranInYear(r, q.Year) || !q.matchTerminationsOf(r, q.Year) {
			return false
		}
	} else {
		t := RowTermination{Date: r.TerminationDate, Reason: r.TerminationReason, Computed: r.TerminationComputed}
		if !q.Terminated.match(!t.Date.IsZero()) || !t.Date.IsZero() && !q.matchTermination(t) ||
			t.Date.IsZero() && q.needsTermination() {
			return false
		}
	}
	norsk := r.NorskHours
	if q.Year != 0 {
		// A data year's gaps are that year's hours (DOMAIN.md 6.3, 6.5): hours of another
		// year do not fill them.
		norsk = r.hoursIn(q.Year).Norsk
	}
	if !q.NorskHours.match(norsk > 0) {
		return false
	}
	if q.MinNorskHours > 0 && norsk < HoursOf(q.MinNorskHours) {
		return false
	}
	if q.MaxNorskHours > 0 && norsk > HoursOf(q.MaxNorskHours) {
		return false
	}
	switch q.Deadline {
	case DeadlineOverdue:
		arr, n := r.deadlines(q.Now, 0)
		for _, dl := range arr[:n] {
			if dl.Status == StatusOverdue {
				return true
			}
		}
		return false
	case DeadlineDueWithin:
		arr, n := r.deadlines(q.Now, q.WithinDays)
		for _, dl := range arr[:n] {
			if dl.Status == StatusDueSoon {
				return true
			}
		}
		return false
	}
	return true
}

// ranInYear reports whether one of r's introduction programmes or training vedtak ran in data
// year y, as the statistics count participants and persons with a training vedtak (DOMAIN.md
// 8, Product decisions 7; programmeYears, trainingYears): from its start to its termination
// or end, whichever programme or kommune it was.
func ranInYear(r *PersonRow, y int) bool {
	for _, sp := range r.Years {
		if sp.From <= y && y <= sp.To {
			return true
		}
	}
	return false
}

// needsTermination reports whether a filter of q keeps terminated persons only.
func (q *PersonQuery) needsTermination() bool {
	return q.TerminationReason != nirv1.TerminationReason_TERMINATION_REASON_UNSPECIFIED ||
		q.ReasonRegistered != Any || q.TerminationComputed != Any
}

// matchTermination reports whether termination t passes q's filters on the avslutningsårsak
// and on who terminated.
func (q *PersonQuery) matchTermination(t RowTermination) bool {
	return (q.TerminationReason == nirv1.TerminationReason_TERMINATION_REASON_UNSPECIFIED || t.Reason == q.TerminationReason) &&
		q.ReasonRegistered.match(t.registered()) && q.TerminationComputed.match(t.Computed)
}

// matchTerminationsOf applies q's termination filters for data year y to the terminations of
// the year, as the report of terminated participants of y holds them (the kommune's
// programmes, the year of the effective date): Terminated With keeps a person with one,
// Without one with none, and the filters on the avslutningsårsak and on who terminated keep a
// person with one that passes them all. So the årsrapportering's gaps count what the report
// of the year shows, also for a person who has started a new programme since.
func (q *PersonQuery) matchTerminationsOf(r *PersonRow, y int) bool {
	found, kept := false, false
	for _, t := range r.Terminations {
		if t.Date.Y != y {
			continue
		}
		found = true
		if q.matchTermination(t) {
			kept = true
		}
	}
	if !q.Terminated.match(found) {
		return false
	}
	return kept || !found && !q.needsTermination()
}

// sortValue is the row's value under key packed into an integer; 0 for the person-key
// order, whose ties the person key breaks.
func sortValue(r *PersonRow, key SortKey) int64 {
	switch key {
	case SortBirthDate:
		return int64(dateKey(r.BirthDate))
	case SortProgrammeStart:
		return int64(dateKey(r.ProgrammeStart))
	case SortProgrammeEnd:
		return int64(dateKey(r.ProgrammeEnd))
	case SortNorskDeadline:
		return int64(dateKey(r.NorskDeadline))
	case SortNorskHours:
		return int64(r.NorskHours)
	case SortTermination:
		return int64(dateKey(r.TerminationDate))
	}
	return 0
}

// sortRows orders idx (indexes into rows, which are in person-key order) by key, ties by
// person key; desc reverses both. Keys are packed into integers first, so the sort compares
// small structs instead of calling back into rows.
func sortRows(rows []PersonRow, idx []int32, key SortKey, desc bool) {
	type sk struct {
		k int64
		i int32
	}
	ks := make([]sk, len(idx))
	for n, i := range idx {
		ks[n] = sk{sortValue(&rows[i], key), i}
	}
	slices.SortFunc(ks, func(a, b sk) int {
		c := cmp.Compare(a.k, b.k)
		if c == 0 {
			c = cmp.Compare(a.i, b.i)
		}
		if desc {
			return -c
		}
		return c
	})
	for n := range ks {
		idx[n] = ks[n].i
	}
}

// A pageCursor is where a page ends: the order it was made in, and the last row's sort value
// and person key. The next page starts at the first row after it in that order, so rows
// registered or gone between two page reads neither repeat a row nor skip one that stayed
// in place (a row whose own sort value changed may still move across the cursor).
type pageCursor struct {
	sort SortKey
	desc bool
	k    int64
	key  string
}

// pageTokenPrefix marks a cursor token; a token of digits only is an offset into the list.
const pageTokenPrefix = "c1."

func (c pageCursor) token() string {
	dir := "asc"
	if c.desc {
		dir = "desc"
	}
	return pageTokenPrefix + string(c.sort) + "." + dir + "." + strconv.FormatInt(c.k, 10) + "." + c.key
}

// parsePageToken reads a page token: a list position from a previous page's
// NextPageToken, or the decimal offset of a row (to jump to a page). It returns the offset,
// or the cursor.
func parsePageToken(t string) (offset int, c *pageCursor, err error) {
	bad := fmt.Errorf("%w: page_token: not a page token from a previous page", ErrInvalidArgument)
	if rest, ok := strings.CutPrefix(t, pageTokenPrefix); ok {
		f := strings.SplitN(rest, ".", 4)
		if len(f) != 4 || f[3] == "" || f[1] != "asc" && f[1] != "desc" {
			return 0, nil, bad
		}
		k, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			return 0, nil, bad
		}
		return 0, &pageCursor{sort: SortKey(f[0]), desc: f[1] == "desc", k: k, key: f[3]}, nil
	}
	n, err := strconv.Atoi(t)
	if err != nil || n < 0 {
		return 0, nil, bad
	}
	return n, nil, nil
}

// CheckPageToken reports whether t is a page token ListPersons accepts (ErrInvalidArgument
// naming page_token if not); the order it was made in is checked against the query's there.
func CheckPageToken(t string) error {
	_, _, err := parsePageToken(t)
	return err
}

// after returns the index in idx (ordered by sort and desc, ties by person key) of the first
// row past the cursor.
func (c *pageCursor) after(rows []PersonRow, idx []int32) int {
	n, _ := slices.BinarySearchFunc(idx, c, func(i int32, c *pageCursor) int {
		r := &rows[i]
		d := cmp.Compare(sortValue(r, c.sort), c.k)
		if d == 0 {
			d = strings.Compare(r.PersonKey, c.key)
		}
		if c.desc {
			d = -d
		}
		if d == 0 {
			return -1 // the cursor's own row: the page starts after it
		}
		return d
	})
	return n
}

// scanKommune calls fn for each row of a kommune's person list, in person-key order. The row is
// reused between calls.
func scanKommune(tx *bolt.Tx, kommune string, fn func(r *PersonRow) error) error {
	prefix := append([]byte(kommune), 0)
	c := bucket(tx, bucketList).Cursor()
	var r PersonRow
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if err := r.decode(v); err != nil {
			return fmt.Errorf("person list %s: %w", kommune, err)
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
	return nil
}

// ListPersons returns a page of a kommune's person list with the query's filters and order.
func (db *DB) ListPersons(q PersonQuery) (*PersonPage, error) {
	if err := q.validate(); err != nil {
		return nil, err
	}
	order := q.Sort
	if order == "" {
		order = SortPersonKey
	}
	var (
		offset int
		cursor *pageCursor
	)
	if q.PageToken != "" {
		var err error
		if offset, cursor, err = parsePageToken(q.PageToken); err != nil {
			return nil, err
		}
		if cursor != nil && (cursor.sort != order || cursor.desc != q.Desc) {
			return nil, fmt.Errorf("%w: page_token: made for another order (sort or desc changed)", ErrInvalidArgument)
		}
	}
	size := q.PageSize
	if size == 0 {
		size = DefaultPageSize
	}
	all, err := db.kommuneRows(q.Kommune)
	if err != nil {
		return nil, err
	}
	all = q.erasedRows(all)
	idx := make([]int32, 0, len(all))
	for i := range all {
		if q.match(&all[i]) {
			idx = append(idx, int32(i))
		}
	}
	if q.Sort != "" && q.Sort != SortPersonKey || q.Desc {
		sortRows(all, idx, q.Sort, q.Desc)
	}
	if cursor != nil {
		offset = cursor.after(all, idx)
	}
	page := &PersonPage{Total: len(idx)}
	if offset < len(idx) {
		end := min(offset+size, len(idx))
		page.Rows = make([]PersonRow, 0, end-offset)
		for _, i := range idx[offset:end] {
			page.Rows = append(page.Rows, all[i])
		}
		if end < len(idx) {
			last := &page.Rows[len(page.Rows)-1]
			page.NextPageToken = pageCursor{sort: order, desc: q.Desc, k: sortValue(last, order), key: last.PersonKey}.token()
		}
	}
	return page, nil
}

// maxCachedKommuner and maxCachedRows bound the decoded person lists kept in memory (about
// 300 bytes a row).
const (
	maxCachedKommuner = 64
	maxCachedRows     = 250000
)

// kommuneRows returns a kommune's person list decoded, in person-key order, from a cache that
// Apply invalidates per kommune. The slice is shared: callers must not modify it.
//
// The generation is read before the read transaction starts, so a list cached under a
// generation is never older than that generation: a commit racing with the scan only makes
// the next query scan again.
func (db *DB) kommuneRows(k string) ([]PersonRow, error) {
	db.rowsMu.Lock()
	gen := db.kommuneGen[k]
	if c, ok := db.rowCache[k]; ok && c.gen == gen && !db.changing[k] {
		db.rowsMu.Unlock()
		return c.rows, nil
	}
	db.rowsMu.Unlock()
	var rows []PersonRow
	err := db.view(func(tx *bolt.Tx) error {
		return scanKommune(tx, k, func(r *PersonRow) error {
			rows = append(rows, *r)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	db.rowsMu.Lock()
	if db.changing[k] || db.kommuneGen[k] != gen {
		// Read while a commit changed the kommune's rows: maybe before it. Not kept.
		db.rowsMu.Unlock()
		return rows, nil
	}
	if db.rowCache == nil || len(db.rowCache) >= maxCachedKommuner || db.cachedRows+len(rows) > maxCachedRows {
		db.rowCache, db.cachedRows = map[string]*kommuneRows{}, 0
	}
	if old := db.rowCache[k]; old != nil {
		db.cachedRows -= len(old.rows)
	}
	db.rowCache[k] = &kommuneRows{gen: gen, rows: rows}
	db.cachedRows += len(rows)
	db.rowsMu.Unlock()
	return rows, nil
}

type kommuneRows struct {
	gen  uint64
	rows []PersonRow // in person-key order; never modified once cached
}

// rowChange is a person's new row in a kommune's list, or (row nil) its removal.
type rowChange struct {
	pk  string
	row *PersonRow
}

// rowsChanging marks the kommuner whose person lists `changed` holds as being changed by a
// commit about to happen: until updateRowCache follows it, their cached lists are not served
// (a reader that has seen the commit's checkpoint would get rows from before it) nor stored.
func (db *DB) rowsChanging(changed map[string][]rowChange) {
	if len(changed) == 0 {
		return
	}
	db.rowsMu.Lock()
	defer db.rowsMu.Unlock()
	if db.changing == nil {
		db.changing = map[string]bool{}
	}
	for k := range changed {
		db.changing[k] = true
	}
}

// updateRowCache follows a commit that changed the person lists of some kommuner. A cached
// list that was current before the commit is patched with the changes into a new slice
// (readers keep the old one), so a busy kommune's list is not decoded again after every
// batch; any other cached list is invalidated by the generation bump. After a failed commit
// (committed false) the lists are only invalidated.
func (db *DB) updateRowCache(changed map[string][]rowChange, committed bool) {
	db.rowsMu.Lock()
	defer db.rowsMu.Unlock()
	if db.kommuneGen == nil {
		db.kommuneGen = map[string]uint64{}
	}
	for k, chs := range changed {
		delete(db.changing, k)
		gen := db.kommuneGen[k]
		db.kommuneGen[k] = gen + 1
		e := db.rowCache[k]
		if e == nil {
			continue
		}
		if !committed || e.gen != gen {
			delete(db.rowCache, k)
			db.cachedRows -= len(e.rows)
			continue
		}
		rows := patchRows(e.rows, chs)
		db.cachedRows += len(rows) - len(e.rows)
		db.rowCache[k] = &kommuneRows{gen: gen + 1, rows: rows}
	}
}

// patchRows returns a new person-key-ordered slice: rows with the changes applied (the last
// change of a person wins).
func patchRows(rows []PersonRow, chs []rowChange) []PersonRow {
	last := make(map[string]*PersonRow, len(chs))
	for _, c := range chs {
		last[c.pk] = c.row
	}
	add := make([]PersonRow, 0, len(last))
	for _, r := range last {
		if r != nil {
			add = append(add, *r)
		}
	}
	slices.SortFunc(add, func(a, b PersonRow) int { return cmp.Compare(a.PersonKey, b.PersonKey) })
	out := make([]PersonRow, 0, len(rows)+len(add))
	i := 0
	for r := range rows {
		if _, ok := last[rows[r].PersonKey]; ok {
			continue // removed, or replaced by its entry in add
		}
		for i < len(add) && add[i].PersonKey < rows[r].PersonKey {
			out = append(out, add[i])
			i++
		}
		out = append(out, rows[r])
	}
	return append(out, add[i:]...)
}

// KommunePersons returns the persons of a kommune's person list, as one read saw it (the
// persons the kommune has), each with whether the person is erased (its row reads «slettet»).
func (db *DB) KommunePersons(kommune string) (map[string]bool, error) {
	if len(kommune) != 4 {
		return nil, fmt.Errorf("%w: kommune must be a 4-digit kommunenummer", ErrInvalidArgument)
	}
	rows, err := db.kommuneRows(kommune)
	if err != nil {
		return nil, err
	}
	persons := make(map[string]bool, len(rows))
	for i := range rows {
		persons[rows[i].PersonKey] = rows[i].NationalID == rules.ErasedText
	}
	return persons, nil
}

// Erased returns a copy of r with the identity of an erased person: national id and birth date
// «slettet» (Product decisions 15).
func (r *PersonRow) Erased() *PersonRow {
	c := *r
	c.NationalID, c.BirthDate = rules.ErasedText, rules.Date{}
	return &c
}

// Unreadable reports whether r's identity could not be read when the person was folded: a
// data key damaged or lost on disk, its national id rules.UnreadableText and no birth date.
// The person is not erased, and everything else in the row stands; a read of the identity
// answers DataLoss (the API's GetPerson), as the person's history does.
func (r *PersonRow) Unreadable() bool { return r.NationalID == rules.UnreadableText }

// Person returns one person's row in the person list; ErrNotFound if the person has none.
func (db *DB) Person(pk string) (*PersonRow, error) {
	var row *PersonRow
	err := db.view(func(tx *bolt.Tx) error {
		a, ok, err := personAccess(tx, pk)
		if err != nil || !ok {
			return cmp.Or(err, ErrNotFound)
		}
		if row, err = listRow(tx, pk, a); err == nil && row == nil {
			return ErrNotFound
		}
		return err
	})
	return row, err
}

// CSVColumns documents the columns of ExportCSV, in order. The national_id column is only
// present with CSVOptions.IncludeNationalID (the kommune's own view); analyst exports are
// pseudonymous (person key only). Dates are ISO (YYYY-MM-DD), empty when unknown; code-list
// values are the enum names without their prefix; hours have two decimals; booleans ja/nei.
var CSVColumns = []string{
	"person_key",             // pseudonymous person key
	"national_id",            // fødselsnummer, D-nummer or DUF-nummer (kommune view only)
	"kommune",                // bostedskommune
	"birth_date",             // fødselsdato
	"sex",                    // kjønn
	"law",                    // INTROL, IL or IL_6A
	"permit_date",            // oppholdstillatelse
	"settlement_date",        // bosatt i kommunen
	"programme_vedtak",       // vedtak om introduksjonsprogram (ja/nei)
	"programme_kommune",      // the programme's kommune
	"programme_start",        // programme start
	"programme_end",          // latest end date (frist)
	"tiltak",                 // har tiltak (ja/nei)
	"sluttmal",               // sluttmål
	"integreringskontrakt",   // ja/nei
	"termination_date",       // avslutningsdato
	"termination_reason",     // avslutningsårsak (IKKE_REGISTRERT = «Avslutningsårsak ikke registrert»)
	"termination_computed",   // set by the regelmotor (ja/nei)
	"training_vedtak",        // vedtak om opplæring (ja/nei)
	"training_scheme",        // ordning
	"training_start",         // start of the first training tildeling
	"norskmal",               // norskmål registrert (ja/nei)
	"utdanningsbakgrunn",     // videregående fra før: ja, nei or empty (not registered)
	"norsk_hours",            // registered norsk hours
	"samfunnskunnskap_hours", // registered samfunnskunnskap hours
	"norsk_deadline",         // gjennomføringsfrist norsk
	"norsk_deadline_note",    // why the deadline cannot be computed
	"start_deadline",         // oppstart innen 3 måneder: frist
	"training_first",         // first training date
	"intro_scheme",           // kategori introduksjonsprogram: RETT_OG_PLIKT, KAN_TILBYS, RETT, NONE
	"opplaering_scheme",      // kategori opplæring: RETT_OG_PLIKT, PLIKT, RETT, NONE
	"inactive_from",          // «ingen registreringer siste 12 måneder» from (Product decisions 5c)
}

// CSVOptions configure ExportCSV.
type CSVOptions struct {
	// IncludeNationalID adds the national_id column (the kommune's own view only).
	IncludeNationalID bool
	// Disk, if not nil, bounds the bytes of the temporary files of every export sharing it.
	Disk *ExportDisk
}

// ExportDisk is a budget of bytes for ExportCSV's temporary files, shared by the exports
// given it: a file holds its bytes until its client has read the whole CSV (or went away),
// so without a bound clients that open exports and read none of them make nird hold a
// copy of their lists each on disk. It is safe for concurrent use.
type ExportDisk struct {
	max  int64
	used atomic.Int64
}

// NewExportDisk returns a budget of max bytes.
func NewExportDisk(max int64) *ExportDisk { return &ExportDisk{max: max} }

// Used returns the bytes the exports' temporary files hold now.
func (d *ExportDisk) Used() int64 { return d.used.Load() }

// Max returns the budget's bytes.
func (d *ExportDisk) Max() int64 { return d.max }

// diskFile is an export's temporary file that draws what it writes from an ExportDisk.
type diskFile struct {
	f    *os.File
	disk *ExportDisk // nil: no budget
	held int64
}

func (d *diskFile) Write(p []byte) (int, error) {
	if d.disk != nil {
		if d.disk.used.Add(int64(len(p))) > d.disk.max {
			d.disk.used.Add(-int64(len(p)))
			return 0, fmt.Errorf("%w (%d MiB)", ErrExportDisk, d.disk.max>>20)
		}
		d.held += int64(len(p))
	}
	return d.f.Write(p)
}

// release gives the file's bytes back, once it is closed.
func (d *diskFile) release() {
	if d.disk != nil {
		d.disk.used.Add(-d.held)
		d.held = 0
	}
}

// exportPattern names ExportCSV's temporary files (os.CreateTemp); New removes any a
// process left.
const exportPattern = "export-*.csv"

// ExportCSV writes the rows of the query (all pages, ignoring PageSize and PageToken) as CSV
// with a header of CSVColumns, as one read transaction saw them. It returns the number of
// rows written.
//
// The CSV is made in a temporary file beside the models (unlinked at once) inside the read
// transaction, which ends before the first byte goes to w: a reader that stops reading
// must hold neither the transaction nor memory. bbolt remaps a growing file only once every
// read transaction has ended and holds new ones off meanwhile, so an export writing to its
// client inside one stalled the fold, every query and the append path's id look-up for as
// long as the client took; made in memory instead, each export held its whole CSV (or the
// kommune's rows, 50 MB for 20 000 persons) while its client read. The file draws its bytes
// from opt.Disk until the copy to w has ended; when it is spent, ExportCSV fails with
// ErrExportDisk before it writes to w.
func (db *DB) ExportCSV(w io.Writer, q PersonQuery, opt CSVOptions) (int, error) {
	q.PageSize, q.PageToken = 0, ""
	if err := q.validate(); err != nil {
		return 0, err
	}
	f, err := os.CreateTemp(filepath.Dir(db.path), exportPattern)
	if err != nil {
		return 0, fmt.Errorf("csv export: %w", err)
	}
	os.Remove(f.Name())
	df := &diskFile{f: f, disk: opt.Disk}
	defer df.release()
	defer f.Close()
	n, err := db.writeCSV(df, q, opt)
	if err != nil {
		return 0, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("csv export: %w", err)
	}
	if _, err := io.Copy(w, f); err != nil {
		return 0, err
	}
	return n, nil
}

// writeCSV writes ExportCSV's rows to w: unsorted ones straight from the file, sorted ones
// from the kommune's cached rows.
func (db *DB) writeCSV(w io.Writer, q PersonQuery, opt CSVOptions) (int, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	cols := CSVColumns
	if !opt.IncludeNationalID {
		cols = append(append([]string{}, cols[:1]...), cols[2:]...)
	}
	var line []byte
	for i, c := range cols {
		if i > 0 {
			line = append(line, ',')
		}
		line = append(line, c...)
	}
	line = append(line, '\n')
	if _, err := bw.Write(line); err != nil {
		return 0, err
	}
	n := 0
	write := func(r *PersonRow) error {
		line = appendCSVRow(line[:0], r, opt.IncludeNationalID)
		n++
		_, err := bw.Write(line)
		return err
	}
	var err error
	if q.Sort == "" || q.Sort == SortPersonKey && !q.Desc {
		err = db.view(func(tx *bolt.Tx) error {
			return scanKommune(tx, q.Kommune, func(r *PersonRow) error {
				if q.Erased != nil && q.Erased(r.PersonKey) {
					r = r.Erased()
				}
				if !q.match(r) {
					return nil
				}
				return write(r)
			})
		})
	} else {
		// Filter and sort once, then write (paging through ListPersons would sort per page).
		var all []PersonRow
		if all, err = db.kommuneRows(q.Kommune); err == nil {
			all = q.erasedRows(all)
			idx := make([]int32, 0, len(all))
			for i := range all {
				if q.match(&all[i]) {
					idx = append(idx, int32(i))
				}
			}
			sortRows(all, idx, q.Sort, q.Desc)
			for _, i := range idx {
				if err = write(&all[i]); err != nil {
					break
				}
			}
		}
	}
	if err != nil {
		return n, err
	}
	return n, bw.Flush()
}

// StatusColumns are the deadline-status columns WriteReport adds to persons.csv: each
// deadline's status on the report's date (ok, due_soon, overdue, completed, not_computable;
// empty when the deadline does not apply), due soon meaning within rules.DueSoonDays.
var StatusColumns = []string{"programme_end_status", "norsk_deadline_status", "training_start_status", "programme_start_status"}

// exportAllCSV writes every person list row of every kommune (analyst view), in kommune and
// person-key order, with the CSV header, and the StatusColumns on now.
func (db *DB) exportAllCSV(w io.Writer, now rules.Date) (int, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	cols := append(append([]string{}, CSVColumns[:1]...), CSVColumns[2:]...)
	cols = append(cols, StatusColumns...)
	line := []byte(strings.Join(cols, ",") + "\n")
	if _, err := bw.Write(line); err != nil {
		return 0, err
	}
	n := 0
	err := db.view(func(tx *bolt.Tx) error {
		var r PersonRow
		return bucket(tx, bucketList).ForEach(func(k, v []byte) error {
			if err := r.decode(v); err != nil {
				return fmt.Errorf("person list: %w", err)
			}
			line = appendCSVRow(line[:0], &r, false)
			line = line[:len(line)-1]
			arr, nd := r.deadlines(now, rules.DueSoonDays)
			for _, name := range []string{DeadlineProgrammeEnd, DeadlineNorsk, DeadlineTrainingStart, DeadlineProgrammeStart} {
				line = append(line, ',')
				for _, d := range arr[:nd] {
					if d.Name == name {
						line = append(line, d.Status...)
					}
				}
			}
			line = append(line, '\n')
			n++
			_, err := bw.Write(line)
			return err
		})
	})
	if err != nil {
		return n, err
	}
	return n, bw.Flush()
}

func appendCSVRow(b []byte, r *PersonRow, withID bool) []byte {
	b = appendField(b, r.PersonKey)
	if withID {
		b = append(b, ',')
		b = appendField(b, r.NationalID)
	}
	b = append(b, ',')
	b = appendField(b, r.Kommune)
	b = append(b, ',')
	if r.NationalID == rules.ErasedText || r.Unreadable() {
		// An erased person's birth date (Product decisions 15), or one that cannot be read
		// (a damaged data key): not merely unknown.
		b = append(b, r.NationalID...)
	} else {
		b = appendDate(b, r.BirthDate)
	}
	b = append(b, ',')
	b = append(b, enumName(r.Sex.String(), "SEX_")...)
	b = append(b, ',')
	b = append(b, enumName(r.Law.String(), "LAW_")...)
	b = append(b, ',')
	b = appendDate(b, r.PermitDate)
	b = append(b, ',')
	b = appendDate(b, r.SettlementDate)
	b = append(b, ',')
	b = appendBool(b, r.ProgrammeVedtak)
	b = append(b, ',')
	b = appendField(b, r.ProgrammeKommune)
	b = append(b, ',')
	b = appendDate(b, r.ProgrammeStart)
	b = append(b, ',')
	b = appendDate(b, r.ProgrammeEnd)
	b = append(b, ',')
	b = appendBool(b, r.Tiltak)
	b = append(b, ',')
	b = append(b, enumName(r.Sluttmal.String(), "SLUTTMAL_")...)
	b = append(b, ',')
	b = appendBool(b, r.Integreringskontrakt)
	b = append(b, ',')
	b = appendDate(b, r.TerminationDate)
	b = append(b, ',')
	b = append(b, enumName(r.TerminationReason.String(), "TERMINATION_REASON_")...)
	b = append(b, ',')
	if !r.TerminationDate.IsZero() {
		b = appendBool(b, r.TerminationComputed)
	}
	b = append(b, ',')
	b = appendBool(b, r.TrainingVedtak)
	b = append(b, ',')
	b = append(b, enumName(r.TrainingScheme.String(), "TRAINING_SCHEME_")...)
	b = append(b, ',')
	b = appendDate(b, r.TrainingStart)
	b = append(b, ',')
	b = appendBool(b, r.Norskmal)
	b = append(b, ',')
	b = append(b, r.Utdanningsbakgrunn.String()...)
	b = append(b, ',')
	b = appendHours(b, r.NorskHours)
	b = append(b, ',')
	b = appendHours(b, r.SamfunnHours)
	b = append(b, ',')
	b = appendDate(b, r.NorskDeadline)
	b = append(b, ',')
	b = appendField(b, r.NorskDeadlineNote)
	b = append(b, ',')
	b = appendDate(b, r.StartDeadline)
	b = append(b, ',')
	b = appendDate(b, r.TrainingFirst)
	b = append(b, ',')
	b = append(b, enumName(r.IntroScheme.String(), "SCHEME_")...)
	b = append(b, ',')
	b = append(b, enumName(r.OpplaeringScheme.String(), "SCHEME_")...)
	b = append(b, ',')
	b = appendDate(b, r.InactiveFrom)
	return append(b, '\n')
}

// enumName strips an enum value's prefix; UNSPECIFIED becomes empty.
func enumName(s, prefix string) string {
	if len(s) > len(prefix) && s[:len(prefix)] == prefix {
		s = s[len(prefix):]
	}
	if s == "UNSPECIFIED" {
		return ""
	}
	return s
}

func appendField(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ',', '"', '\n', '\r':
			b = append(b, '"')
			for j := 0; j < len(s); j++ {
				if s[j] == '"' {
					b = append(b, '"')
				}
				b = append(b, s[j])
			}
			return append(b, '"')
		}
	}
	return append(b, s...)
}

func appendDate(b []byte, d rules.Date) []byte {
	if d.IsZero() {
		return b
	}
	b = appendPad(b, d.Y, 4)
	b = append(b, '-')
	b = appendPad(b, int(d.M), 2)
	b = append(b, '-')
	return appendPad(b, d.D, 2)
}

func appendPad(b []byte, v, width int) []byte {
	var tmp [8]byte
	s := strconv.AppendInt(tmp[:0], int64(v), 10)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, "ja"...)
	}
	return append(b, "nei"...)
}

func appendHours(b []byte, h Hours) []byte {
	if h < 0 {
		b = append(b, '-')
		h = -h
	}
	b = strconv.AppendInt(b, int64(h)/100, 10)
	b = append(b, '.')
	return appendPad(b, int(int64(h)%100), 2)
}
