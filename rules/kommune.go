package rules

import (
	_ "embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Kommunenummer and fylkesnummer (DOMAIN.md 7.3, Product decisions 13).
//
// The table is two embedded files with one row per kommunenummer per validity
// period: kommuner.csv, a copy of data/kommuner.csv (the 2020–2023 set and the
// set from 2024-01-01, still valid), and kommuner_2004_2019.csv, the SSB Klass
// 131 versions from 2004 to 2019 (one row per version, so a fylke's periods
// are whole versions). kommuneendringer.csv holds SSB Klass 131's code changes
// from 2005 to 2024 (merges, splits and renumberings: old number → new number
// on a date). The sources and dates are in kommuner_README.md. Kommune and
// fylke numbers are public codes, not personal data, so errors include them.
//
// A number and the numbers it became (its successors, following the changes
// forward) or came from (its predecessors) are one kommune for a person's
// programme (SameKommune): 3001 Halden is 3101 Halden from 2024, and 1507
// Ålesund is both 1508 Ålesund and 1580 Haram. KommuneIn maps a number to the
// structure of a given date, where that is unambiguous.
//
// Caveat: dates before KommuneTableStart (2004-01-01) use the first period.

//go:embed kommuner.csv
var kommunerCSV string

//go:embed kommuner_2004_2019.csv
var kommunerHistoryCSV string

//go:embed kommuneendringer.csv
var kommuneChangesCSV string

// KommuneTableStart is the first date the embedded kommune table covers.
var KommuneTableStart = Date{Y: 2004, M: time.January, D: 1}

var (
	// ErrNotKommunenummer is returned when a string is not a kommunenummer:
	// not 4 digits, or a number that is in no period of the table.
	ErrNotKommunenummer = errors.New("not a kommunenummer")
	// ErrKommuneNotValid is returned when a kommunenummer exists in the
	// table but not on the date asked for (for example 3001 Halden in 2024).
	ErrKommuneNotValid = errors.New("kommunenummer not valid on that date")
	// ErrNotFylkesnummer is returned when a string is not a fylkesnummer: not
	// 2 digits, or a number that is in no period of the table.
	ErrNotFylkesnummer = errors.New("not a fylkesnummer")
	// ErrFylkeNotValid is returned when a fylkesnummer exists in the table but
	// not on the date asked for (for example 30 Viken in 2024).
	ErrFylkeNotValid = errors.New("fylkesnummer not valid on that date")
)

// Kommune is one kommunenummer in one validity period.
type Kommune struct {
	// Nr is the kommunenummer, 4 digits with leading zero ("0301").
	Nr string
	// Name is the Norwegian name as SSB writes it, e.g. "Herøy (Nordland)".
	Name string
	// FylkeNr is the fylkesnummer, the first two digits of Nr.
	FylkeNr string
	// FylkeName is the fylke's Norwegian name in this period.
	FylkeName string
	// ValidFrom is the first day of the period.
	ValidFrom Date
	// ValidTo is the last day of the period; zero while still valid.
	ValidTo Date
}

// ValidOn reports whether d is inside k's validity period.
func (k Kommune) ValidOn(d Date) bool {
	return !d.Before(k.ValidFrom) && (k.ValidTo.IsZero() || !d.After(k.ValidTo))
}

// Fylke is one fylkesnummer in one validity period.
type Fylke struct {
	// Nr is the fylkesnummer, 2 digits ("03").
	Nr string
	// Name is the Norwegian name in this period.
	Name string
	// ValidFrom is the first day of the period.
	ValidFrom Date
	// ValidTo is the last day of the period; zero while still valid.
	ValidTo Date
}

// ValidOn reports whether d is inside f's validity period.
func (f Fylke) ValidOn(d Date) bool {
	return !d.Before(f.ValidFrom) && (f.ValidTo.IsZero() || !d.After(f.ValidTo))
}

type kommuneTable struct {
	byNr    map[string][]Kommune // periods sorted by ValidFrom
	all     []Kommune            // sorted by ValidFrom, then Nr
	fylker  map[string][]Fylke   // periods sorted by ValidFrom
	periods []Date               // distinct ValidFrom, sorted
	// successors and predecessors are SSB's code changes: a number to the
	// numbers it became, and back (see KommuneChanges).
	successors, predecessors map[string][]KommuneChange
	// lineages holds, for every number with a code change, the numbers of its lineage
	// (see lineage), computed once: SameKommune is on the fold's hot path.
	lineages map[string][]string
}

// KommuneChange is one code change of SSB Klass 131: the kommune with number
// From became (wholly or in part) the kommune with number To on Date.
type KommuneChange struct {
	From, FromName string
	To, ToName     string
	Date           Date
}

// kommuner is parsed once at package initialisation. The files are embedded,
// so a parse error is a build defect; kommune_test.go guards it.
var kommuner = mustParseKommuner(kommunerHistoryCSV+dropHeader(kommunerCSV), kommuneChangesCSV)

func mustParseKommuner(text, changes string) *kommuneTable {
	t, err := parseKommuner(strings.NewReader(text))
	if err != nil {
		panic("rules: embedded kommune table: " + err.Error())
	}
	if err := t.parseChanges(strings.NewReader(changes)); err != nil {
		panic("rules: embedded kommuneendringer.csv: " + err.Error())
	}
	return t
}

// dropHeader returns text without its first line.
func dropHeader(text string) string {
	if i := strings.IndexByte(text, '\n'); i >= 0 {
		return text[i+1:]
	}
	return ""
}

// parseChanges reads SSB's code changes: gammelt_nummer, gammelt_navn, nytt_nummer,
// nytt_navn, gyldig_fra. Both numbers must be in the table, the old one valid the
// day before the change and the new one on it.
func (t *kommuneTable) parseChanges(r io.Reader) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = 5
	header, err := cr.Read()
	if err != nil {
		return fmt.Errorf("read header: %w", err)
	}
	if want := []string{"gammelt_nummer", "gammelt_navn", "nytt_nummer", "nytt_navn", "gyldig_fra"}; !slices.Equal(header, want) {
		return fmt.Errorf("header %v, want %v", header, want)
	}
	t.successors, t.predecessors = map[string][]KommuneChange{}, map[string][]KommuneChange{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			t.lineages = map[string][]string{}
			for nr := range t.successors {
				t.lineages[nr] = t.lineage(nr)
			}
			for nr := range t.predecessors {
				t.lineages[nr] = t.lineage(nr)
			}
			return nil
		}
		if err != nil {
			return err
		}
		line, _ := cr.FieldPos(0)
		c := KommuneChange{From: rec[0], FromName: rec[1], To: rec[2], ToName: rec[3]}
		if c.Date, err = ParseDate(rec[4]); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		if c.From == c.To {
			return fmt.Errorf("line %d: %s changes to itself", line, c.From)
		}
		if !t.validOn(c.From, c.Date.AddDays(-1)) || !t.validOn(c.To, c.Date) {
			return fmt.Errorf("line %d: %s → %s on %s: a number not in the table then", line, c.From, c.To, c.Date)
		}
		t.successors[c.From] = append(t.successors[c.From], c)
		t.predecessors[c.To] = append(t.predecessors[c.To], c)
	}
}

func (t *kommuneTable) validOn(nr string, d Date) bool {
	for _, k := range t.byNr[nr] {
		if k.ValidOn(d) {
			return true
		}
	}
	return false
}

func parseKommuner(r io.Reader) (*kommuneTable, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = 6
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	want := []string{"kommunenummer", "navn", "fylkesnummer", "fylkesnavn", "gyldig_fra", "gyldig_til"}
	if !slices.Equal(header, want) {
		return nil, fmt.Errorf("header %v, want %v", header, want)
	}
	t := &kommuneTable{byNr: map[string][]Kommune{}, fylker: map[string][]Fylke{}}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		line, _ := cr.FieldPos(0)
		k := Kommune{Nr: rec[0], Name: rec[1], FylkeNr: rec[2], FylkeName: rec[3]}
		if len(k.Nr) != 4 || !allDigits(k.Nr) || k.FylkeNr != k.Nr[:2] || k.Name == "" || k.FylkeName == "" {
			return nil, fmt.Errorf("line %d: bad kommune or fylke", line)
		}
		if k.ValidFrom, err = ParseDate(rec[4]); err != nil {
			return nil, fmt.Errorf("line %d: gyldig_fra: %w", line, err)
		}
		if rec[5] != "" {
			if k.ValidTo, err = ParseDate(rec[5]); err != nil {
				return nil, fmt.Errorf("line %d: gyldig_til: %w", line, err)
			}
			if k.ValidTo.Before(k.ValidFrom) {
				return nil, fmt.Errorf("line %d: gyldig_til before gyldig_fra", line)
			}
		}
		for _, p := range t.byNr[k.Nr] {
			if overlaps(p.ValidFrom, p.ValidTo, k.ValidFrom, k.ValidTo) {
				return nil, fmt.Errorf("line %d: kommune %s has overlapping periods", line, k.Nr)
			}
		}
		t.byNr[k.Nr] = append(t.byNr[k.Nr], k)
		t.all = append(t.all, k)
		if !slices.Contains(t.periods, k.ValidFrom) {
			t.periods = append(t.periods, k.ValidFrom)
		}
	}
	if len(t.all) == 0 {
		return nil, errors.New("no rows")
	}
	byFrom := func(a, b Kommune) int {
		if c := a.ValidFrom.Compare(b.ValidFrom); c != 0 {
			return c
		}
		return strings.Compare(a.Nr, b.Nr)
	}
	slices.SortFunc(t.all, byFrom)
	for _, ps := range t.byNr {
		slices.SortFunc(ps, byFrom)
	}
	slices.SortFunc(t.periods, Date.Compare)
	// A fylke's period is the union of its kommuner's periods, which in the
	// table are whole reform periods; its name must be the same in all.
	for _, k := range t.all {
		fs := t.fylker[k.FylkeNr]
		if n := len(fs); n > 0 && fs[n-1].ValidFrom == k.ValidFrom {
			if fs[n-1].Name != k.FylkeName || fs[n-1].ValidTo != k.ValidTo {
				return nil, fmt.Errorf("fylke %s has different names or periods within one period", k.FylkeNr)
			}
			continue
		}
		t.fylker[k.FylkeNr] = append(fs, Fylke{Nr: k.FylkeNr, Name: k.FylkeName, ValidFrom: k.ValidFrom, ValidTo: k.ValidTo})
	}
	return t, nil
}

// KommuneChanges returns the code changes from nr (what it became) and to nr
// (what it came from), from SSB Klass 131 (kommuneendringer.csv).
func KommuneChanges(nr string) (became, cameFrom []KommuneChange) {
	return slices.Clone(kommuner.successors[nr]), slices.Clone(kommuner.predecessors[nr])
}

// KommuneSuccessor returns the kommune that a kommunenummer became when its
// last period ended (3001 Halden → 3101 Halden at the 2024 reform), as valid
// on the change date. It reports false for numbers that are still valid or
// unknown, and for a number that was split with no part keeping its name
// (1850 Tysfjord). Of a split, the part with the same name continues it: 1507
// Ålesund → 1508 Ålesund (1580 Haram split off; SameKommune counts both).
func KommuneSuccessor(nr string) (Kommune, bool) {
	cs := kommuner.successors[nr]
	var pick *KommuneChange
	for i := range cs {
		c := &cs[i]
		if len(cs) == 1 || baseName(c.ToName) == baseName(c.FromName) {
			if pick != nil {
				return Kommune{}, false
			}
			pick = c
		}
	}
	if pick == nil {
		return Kommune{}, false
	}
	k, err := LookupKommune(pick.To, pick.Date)
	return k, err == nil
}

// baseName is a kommune name without a fylke qualifier: "Våler (Viken)" → "Våler".
func baseName(name string) string {
	if i := strings.Index(name, " ("); i > 0 {
		return name[:i]
	}
	return name
}

// KommuneNow returns the number kommunenummer nr has in the newest structure of the
// table, following KommuneSuccessor (3001 → 3101; 1507 → 1508), or nr itself when it is
// still valid, unknown, or has no successor that continues it.
func KommuneNow(nr string) string {
	for range 8 { // a chain of reforms; 8 bounds a malformed table
		s, ok := KommuneSuccessor(nr)
		if !ok {
			break
		}
		nr = s.Nr
	}
	return nr
}

// lineage returns nr, the numbers it became and the numbers it came from, transitively
// in each direction (not their siblings: 1508 and 1580 are both 1507, not each other).
func lineage(nr string) []string {
	if l, ok := kommuner.lineages[nr]; ok {
		return l
	}
	return []string{nr}
}

func (t *kommuneTable) lineage(nr string) []string {
	out := []string{nr}
	walk := func(m map[string][]KommuneChange, next func(KommuneChange) string) {
		queue := []string{nr}
		for len(queue) > 0 {
			cur := queue[0]
			queue = queue[1:]
			for _, c := range m[cur] {
				n := next(c)
				if !slices.Contains(out, n) {
					out = append(out, n)
					queue = append(queue, n)
				}
			}
		}
	}
	walk(t.successors, func(c KommuneChange) string { return c.To })
	walk(t.predecessors, func(c KommuneChange) string { return c.From })
	return out
}

// SameKommune reports whether kommunenummer a and b are one kommune for a person's
// programme (Product decisions 13): equal, or one became the other through SSB's code
// changes (3001 and 3101 Halden; 1507 Ålesund and 1580 Haram). Two kommuner that share a
// predecessor are not the same (1508 Ålesund and 1580 Haram).
func SameKommune(a, b string) bool {
	if a == b {
		return true
	}
	if a == "" || b == "" {
		return false
	}
	return slices.Contains(lineage(a), b)
}

// KommuneValidAs returns the kommune that kommunenummer nr stands for on date on: nr itself
// when it is valid then, else the one number of its lineage (SameKommune) valid then, so
// that a history may name a kommune by its number before or after a reform (Product
// decisions 13). The error is LookupKommune's when no number of the lineage, or more than
// one, is valid on the date.
func KommuneValidAs(nr string, on Date) (Kommune, error) {
	k, err := LookupKommune(nr, on)
	if err == nil || !errors.Is(err, ErrKommuneNotValid) {
		return k, err
	}
	var found []Kommune
	for _, l := range lineage(nr)[1:] {
		if lk, lerr := LookupKommune(l, on); lerr == nil {
			found = append(found, lk)
		}
	}
	if len(found) == 1 {
		return found[0], nil
	}
	return Kommune{}, err
}

// NewestStructure is a date after every change the kommune table holds: KommuneIn on it maps
// a number to today's structure and any later one the table already knows.
var NewestStructure = Date{Y: 9999, M: time.December, D: 31}

// KommuneIn maps kommunenummer nr to the kommune structure valid on date on (a data year's
// structure, or today's), for statistics by kommune (Product decisions 13). It returns the
// number of nr's kommune on that date and true when that is one number: nr itself, a
// successor, or a predecessor. A merged kommune before its merger (3020 Nordre Follo in 2019:
// 0213 Ski and 0217 Oppegård) or a split one after its split (1507 Ålesund in 2024: 1508 and
// 1580) has no one number: false, with the candidates.
func KommuneIn(nr string, on Date) (string, []string, bool) {
	if _, err := LookupKommune(nr, on); err == nil {
		return nr, nil, true
	}
	var cands []string
	for _, l := range lineage(nr)[1:] {
		if _, err := LookupKommune(l, on); err == nil {
			cands = append(cands, l)
		}
	}
	slices.Sort(cands)
	if len(cands) == 1 {
		return cands[0], nil, true
	}
	return nr, cands, false
}

// overlaps reports whether [a1, a2] and [b1, b2] share a day; a zero end is
// open.
func overlaps(a1, a2, b1, b2 Date) bool {
	return (a2.IsZero() || !b1.After(a2)) && (b2.IsZero() || !a1.After(b2))
}

// effectiveDate maps a date before the table's start to the start (see the
// caveat above).
func (t *kommuneTable) effectiveDate(on Date) Date {
	if on.Before(t.periods[0]) {
		return t.periods[0]
	}
	return on
}

// LookupKommune returns the kommune with number nr on date on. The error
// matches ErrNotKommunenummer when nr is not 4 digits or is in no period of
// the table, and ErrKommuneNotValid when nr exists but not on that date (the
// message gives the periods it is valid in). Dates before KommuneTableStart
// use the first period.
func LookupKommune(nr string, on Date) (Kommune, error) {
	ps, ok := kommuner.byNr[nr]
	if !ok {
		return Kommune{}, notKommune(nr)
	}
	d := kommuner.effectiveDate(on)
	for _, k := range ps {
		if k.ValidOn(d) {
			return k, nil
		}
	}
	msg := periodsText(ps)
	if s, ok := KommuneSuccessor(nr); ok && on.After(ps[len(ps)-1].ValidTo) {
		msg += fmt.Sprintf("; from %s it is %s %s", s.ValidFrom, s.Nr, s.Name)
	}
	return Kommune{}, fmt.Errorf("kommunenummer %s (%s) on %s: %w (valid %s)", nr, ps[len(ps)-1].Name, on, ErrKommuneNotValid, msg)
}

func notKommune(nr string) error {
	if len(nr) != 4 || !allDigits(nr) {
		return fmt.Errorf("%w: want 4 digits with leading zero", ErrNotKommunenummer)
	}
	return fmt.Errorf("%w: %s is in no period of the kommune table", ErrNotKommunenummer, nr)
}

// periodsText lists a number's periods, adjacent ones joined: "2004-01-01 to 2019-12-31".
func periodsText(ps []Kommune) string {
	var b strings.Builder
	for i := 0; i < len(ps); i++ {
		from, to := ps[i].ValidFrom, ps[i].ValidTo
		for i+1 < len(ps) && !to.IsZero() && to.AddDays(1) == ps[i+1].ValidFrom {
			i++
			to = ps[i].ValidTo
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString(from.String())
		b.WriteString(" to ")
		if to.IsZero() {
			b.WriteString("now")
		} else {
			b.WriteString(to.String())
		}
	}
	return b.String()
}

// KommunePeriods returns every period of kommunenummer nr, oldest first, or
// an error matching ErrNotKommunenummer. Use it to check that a number exists
// at all when no date applies.
func KommunePeriods(nr string) ([]Kommune, error) {
	ps, ok := kommuner.byNr[nr]
	if !ok {
		return nil, notKommune(nr)
	}
	return slices.Clone(ps), nil
}

// Kommuner returns the kommuner valid on date on, sorted by number. Dates
// before KommuneTableStart use the first period. The slice is the caller's.
func Kommuner(on Date) []Kommune {
	d := kommuner.effectiveDate(on)
	var out []Kommune
	for _, k := range kommuner.all {
		if k.ValidOn(d) {
			out = append(out, k)
		}
	}
	return out
}

// LookupFylke returns the fylke with number nr on date on. The error matches
// ErrNotFylkesnummer when nr is not 2 digits or in no period of the table,
// and ErrFylkeNotValid when nr exists but not on that date (30 Viken in 2024).
// Dates before KommuneTableStart use the first period.
func LookupFylke(nr string, on Date) (Fylke, error) {
	fs, ok := kommuner.fylker[nr]
	if !ok {
		if len(nr) != 2 || !allDigits(nr) {
			return Fylke{}, fmt.Errorf("%w: want 2 digits with leading zero", ErrNotFylkesnummer)
		}
		return Fylke{}, fmt.Errorf("%w: %s is in no period of the kommune table", ErrNotFylkesnummer, nr)
	}
	d := kommuner.effectiveDate(on)
	for _, f := range fs {
		if f.ValidOn(d) {
			return f, nil
		}
	}
	return Fylke{}, fmt.Errorf("fylkesnummer %s (%s) on %s: %w", nr, fs[len(fs)-1].Name, on, ErrFylkeNotValid)
}

// FylkePeriods returns every period of fylkesnummer nr, oldest first, or an error matching
// ErrNotFylkesnummer.
func FylkePeriods(nr string) ([]Fylke, error) {
	fs, ok := kommuner.fylker[nr]
	if !ok {
		_, err := LookupFylke(nr, KommuneTableStart) // why nr is no fylkesnummer
		return nil, err
	}
	return slices.Clone(fs), nil
}

// Fylker returns the fylker valid on date on, sorted by number. Dates before
// KommuneTableStart use the first period.
func Fylker(on Date) []Fylke {
	d := kommuner.effectiveDate(on)
	var out []Fylke
	for _, fs := range kommuner.fylker {
		for _, f := range fs {
			if f.ValidOn(d) {
				out = append(out, f)
			}
		}
	}
	slices.SortFunc(out, func(a, b Fylke) int { return strings.Compare(a.Nr, b.Nr) })
	return out
}
