package rules

import (
	"errors"
	"fmt"
	"time"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// Date is a civil (calendar) date without time of day or zone. The law counts
// in calendar days and months, so the register never needs a clock instant for
// a deadline. Date is comparable with ==, and the zero value means "unknown".
//
// A Date built through DateOf, ParseDate or NewDate is always a valid calendar
// date (year 1 to 9999). A Date built by hand with an impossible day is not
// normalised; use Valid to check.
type Date struct {
	Y int
	M time.Month
	D int
}

// NewDate returns the date y-m-d and whether it is a valid calendar date in
// the years 1 to 9999.
func NewDate(y int, m time.Month, d int) (Date, bool) {
	dt := Date{Y: y, M: m, D: d}
	return dt, dt.Valid()
}

// MustDate returns the date y-m-d and panics if it is not a valid calendar
// date. It is meant for tests and literal tables.
func MustDate(y int, m time.Month, d int) Date {
	dt, ok := NewDate(y, m, d)
	if !ok {
		panic(fmt.Sprintf("rules.MustDate: invalid date %04d-%02d-%02d", y, int(m), d))
	}
	return dt
}

// DateOf converts a protobuf date. It reports false for nil, for the all-zero
// message (unknown) and for an impossible calendar date such as 2023-02-29.
func DateOf(p *nirv1.Date) (Date, bool) {
	if p == nil {
		return Date{}, false
	}
	return NewDate(int(p.GetYear()), time.Month(p.GetMonth()), int(p.GetDay()))
}

// Proto converts d to its protobuf form. The zero Date becomes nil.
func (d Date) Proto() *nirv1.Date {
	if d.IsZero() {
		return nil
	}
	return &nirv1.Date{Year: int32(d.Y), Month: int32(d.M), Day: int32(d.D)}
}

// IsZero reports whether d is the zero Date, meaning "unknown".
func (d Date) IsZero() bool { return d == Date{} }

// Valid reports whether d is a real calendar date in the years 1 to 9999.
func (d Date) Valid() bool {
	if d.Y < 1 || d.Y > 9999 || d.M < time.January || d.M > time.December || d.D < 1 {
		return false
	}
	return d.D <= DaysIn(d.Y, d.M)
}

// DaysIn returns the number of days in month m of year y (Gregorian calendar).
func DaysIn(y int, m time.Month) int {
	switch m {
	case time.February:
		if isLeap(y) {
			return 29
		}
		return 28
	case time.April, time.June, time.September, time.November:
		return 30
	default:
		return 31
	}
}

func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

// LastDayOfFebruary returns 28 February or, in a leap year, 29 February of year.
func LastDayOfFebruary(year int) Date {
	return Date{Y: year, M: time.February, D: DaysIn(year, time.February)}
}

// ErrInvalidDate is returned when a date is not a valid calendar date, or
// (by ParseDate) not written in the form 2006-01-02.
var ErrInvalidDate = errors.New("invalid date")

// ParseDate parses an ISO 8601 calendar date "2006-01-02". The result is
// always a valid date; impossible dates such as 2023-02-29 are refused.
func ParseDate(s string) (Date, error) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return Date{}, fmt.Errorf("parse date: %w: want the form YYYY-MM-DD", ErrInvalidDate)
	}
	y, ok1 := atoiDigits(s[0:4])
	m, ok2 := atoiDigits(s[5:7])
	d, ok3 := atoiDigits(s[8:10])
	if !ok1 || !ok2 || !ok3 {
		return Date{}, fmt.Errorf("parse date: %w: want the form YYYY-MM-DD", ErrInvalidDate)
	}
	dt, ok := NewDate(y, time.Month(m), d)
	if !ok {
		return Date{}, fmt.Errorf("parse date: %w: no such day in the calendar", ErrInvalidDate)
	}
	return dt, nil
}

// MustParseDate is ParseDate that panics on error, for tests and tables.
func MustParseDate(s string) Date {
	d, err := ParseDate(s)
	if err != nil {
		panic("rules.MustParseDate: " + err.Error())
	}
	return d
}

// atoiDigits parses a string of ASCII digits only (no sign, no spaces).
func atoiDigits(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// String returns d in ISO 8601 form, 2006-01-02. The zero Date prints as
// "0000-00-00".
func (d Date) String() string {
	return fmt.Sprintf("%04d-%02d-%02d", d.Y, int(d.M), d.D)
}

// Compare returns -1 if d is before e, 0 if they are the same date and +1 if
// d is after e.
func (d Date) Compare(e Date) int {
	switch {
	case d.Y != e.Y:
		return cmpInt(d.Y, e.Y)
	case d.M != e.M:
		return cmpInt(int(d.M), int(e.M))
	default:
		return cmpInt(d.D, e.D)
	}
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Before reports whether d is strictly before e.
func (d Date) Before(e Date) bool { return d.Compare(e) < 0 }

// After reports whether d is strictly after e.
func (d Date) After(e Date) bool { return d.Compare(e) > 0 }

// AddMonths returns the date n calendar months after d (before it for
// negative n). When the target month is shorter than d's day of month the
// result is clamped to the last day of the target month, as in the ordinary
// legal reading of "one month after": 2023-01-31 + 1 month = 2023-02-28,
// 2024-01-31 + 1 month = 2024-02-29, 2023-03-31 - 1 month = 2023-02-28.
// Clamping means AddMonths is not always reversible:
// 2023-01-31 + 1 month - 1 month = 2023-01-28.
func (d Date) AddMonths(n int) Date {
	total := d.Y*12 + int(d.M-1) + n
	y, m := total/12, time.Month(total%12+1)
	if total%12 < 0 { // Go's % keeps the sign; only reachable for years < 1
		y, m = y-1, m+12
	}
	return Date{Y: y, M: m, D: min(d.D, DaysIn(y, m))}
}

// AddYears returns the date n years after d, clamping 29 February to
// 28 February in a common year (same rule as AddMonths).
func (d Date) AddYears(n int) Date { return d.AddMonths(12 * n) }

// AddDays returns the date n days after d (before it for negative n).
func (d Date) AddDays(n int) Date {
	return dateFromDays(d.days() + int64(n))
}

// DaysUntil returns the number of days from d to e: positive when e is after
// d, so d.AddDays(d.DaysUntil(e)) == e.
func (d Date) DaysUntil(e Date) int {
	return int(e.days() - d.days())
}

// Weekday returns the day of the week of d.
func (d Date) Weekday() time.Weekday {
	// 0001-01-01 (day 0) was a Monday in the proleptic Gregorian calendar.
	return time.Weekday((d.days()%7 + 7 + 1) % 7)
}

// Time returns midnight UTC at the start of d, for callers that need a
// time.Time (for example a ULID time part). rules never calls it itself.
func (d Date) Time() time.Time {
	return time.Date(d.Y, d.M, d.D, 0, 0, 0, 0, time.UTC)
}

// DateFromTime returns the civil date of t in t's location. The caller
// chooses the location; rules never reads the clock.
func DateFromTime(t time.Time) Date {
	y, m, d := t.Date()
	return Date{Y: y, M: m, D: d}
}

// days returns the number of days since 0001-01-01 (proleptic Gregorian).
func (d Date) days() int64 {
	// Algorithm from Howard Hinnant's days_from_civil, shifted so that
	// 0001-01-01 is day 0.
	y := int64(d.Y)
	m := int64(d.M)
	if m <= 2 {
		y--
	}
	era := floorDiv(y, 400)
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + int64(d.D) - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 306 // 0000-03-01 is 306 days before 0001-01-01
}

func dateFromDays(n int64) Date {
	z := n + 306
	era := floorDiv(z, 146097)
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d := doy - (153*mp+2)/5 + 1
	m := mp + 3
	if m > 12 {
		m -= 12
	}
	if m <= 2 {
		y++
	}
	return Date{Y: int(y), M: time.Month(m), D: int(d)}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
