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

// Kommunenummer and fylkesnummer (DOMAIN.md 7.3).
//
// The table is kommuner.csv, a copy of data/kommuner.csv embedded at build
// time: one row per kommunenummer per validity period, the 2020–2023 set and
// the set from 2024-01-01 (still valid). Kommune and fylke numbers are public
// codes, not personal data, so errors include them.
//
// Caveat: the table starts on KommuneTableStart (2020-01-01) and has no older
// codes (such as 0101 Halden before the 2020 reform; DOMAIN.md 9, gap 10). A
// lookup for an earlier date uses the first period, so an event dated 2018
// must name the kommune by its 2020 number; the Kommune returned then has
// ValidFrom after the date asked for, which tells the caller so.

//go:embed kommuner.csv
var kommunerCSV string

// KommuneTableStart is the first date the embedded kommune table covers.
var KommuneTableStart = Date{Y: 2020, M: time.January, D: 1}

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
	// successor maps a number that ceased to exist to the number of the same
	// kommune in the next period (see KommuneSuccessor).
	successor map[string]string
}

// kommuner is parsed once at package initialisation. The file is embedded,
// so a parse error is a build defect; kommune_test.go guards it.
var kommuner = mustParseKommuner(kommunerCSV)

func mustParseKommuner(text string) *kommuneTable {
	t, err := parseKommuner(strings.NewReader(text))
	if err != nil {
		panic("rules: embedded kommuner.csv: " + err.Error())
	}
	return t
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
	t.successor = inferSuccessors(t)
	return t, nil
}

// inferSuccessors maps each number whose last period ends to the number of
// the kommune with the same name that is valid the next day and did not exist
// before. A name qualified by its fylke ("Våler (Viken)") matches on the part
// before the parenthesis, since the qualifier follows the fylke. A number
// without exactly one such match gets no successor.
func inferSuccessors(t *kommuneTable) map[string]string {
	base := func(name string) string {
		if i := strings.Index(name, " ("); i > 0 {
			return name[:i]
		}
		return name
	}
	out := map[string]string{}
	for nr, ps := range t.byNr {
		last := ps[len(ps)-1]
		if last.ValidTo.IsZero() {
			continue
		}
		next := last.ValidTo.AddDays(1)
		var exact, loose []string
		for _, k := range t.all {
			if !k.ValidOn(next) || k.Nr == nr || t.byNr[k.Nr][0].ValidFrom != k.ValidFrom || !k.ValidFrom.After(last.ValidFrom) {
				continue
			}
			if k.Name == last.Name {
				exact = append(exact, k.Nr)
			} else if base(k.Name) == base(last.Name) {
				loose = append(loose, k.Nr)
			}
		}
		switch {
		case len(exact) == 1:
			out[nr] = exact[0]
		case len(exact) == 0 && len(loose) == 1:
			out[nr] = loose[0]
		}
	}
	return out
}

// KommuneSuccessor returns the kommune that a kommunenummer became when its
// last period ended (3001 Halden → 3101 Halden at the 2024 reform), as valid
// on the day after. It reports false for numbers that are still valid or
// unknown.
//
// The table has no official correspondence (data/README.md: use SSB Klass 131
// for that), so the successor is inferred [I]: the kommune of the same name
// that first appears the next day. This covers every number of the 2024
// reform: the Viken, Vestfold og Telemark and Troms og Finnmark kommuner and
// 1507 Ålesund (→ 1508; 1580 Haram, split off, is new).
func KommuneSuccessor(nr string) (Kommune, bool) {
	next, ok := kommuner.successor[nr]
	if !ok {
		return Kommune{}, false
	}
	ps := kommuner.byNr[nr]
	k, err := LookupKommune(next, ps[len(ps)-1].ValidTo.AddDays(1))
	return k, err == nil
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

func periodsText(ps []Kommune) string {
	var b strings.Builder
	for i, k := range ps {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k.ValidFrom.String())
		b.WriteString(" to ")
		if k.ValidTo.IsZero() {
			b.WriteString("now")
		} else {
			b.WriteString(k.ValidTo.String())
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
