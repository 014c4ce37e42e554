package rules

import (
	"errors"
	"fmt"
	"testing"
	"time"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

func TestDate_AddMonths(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		from string
		n    int
		want string
	}{
		{"plain", "2023-03-15", 1, "2023-04-15"},
		{"clamp to 28 Feb", "2023-01-31", 1, "2023-02-28"},
		{"clamp to 29 Feb in leap year", "2024-01-31", 1, "2024-02-29"},
		{"clamp to 30 Apr", "2023-03-31", 1, "2023-04-30"},
		{"year wrap", "2023-11-30", 3, "2024-02-29"},
		{"negative", "2023-03-31", -1, "2023-02-28"},
		{"negative across year", "2023-01-15", -13, "2021-12-15"},
		{"two years from 29 Feb", "2024-02-29", 24, "2026-02-28"},
		{"zero", "2023-05-05", 0, "2023-05-05"},
		{"36 months", "2021-01-01", 36, "2024-01-01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := MustParseDate(tt.from).AddMonths(tt.n)
			if got.String() != tt.want {
				t.Errorf("%s + %d months = %s, want %s", tt.from, tt.n, got, tt.want)
			}
			if !got.Valid() {
				t.Errorf("result %s not valid", got)
			}
		})
	}
}

func TestDate_AddYears(t *testing.T) {
	t.Parallel()
	if got := MustParseDate("2024-02-29").AddYears(1); got != MustDate(2025, time.February, 28) {
		t.Errorf("2024-02-29 + 1 year = %s, want 2025-02-28", got)
	}
}

// TestDate_AgainstTime checks the day arithmetic against package time over a
// wide range of dates, including the Gregorian century rules.
func TestDate_AgainstTime(t *testing.T) {
	t.Parallel()
	base := time.Date(1850, 1, 1, 0, 0, 0, 0, time.UTC)
	ref := DateFromTime(base)
	for i := 0; i < 80000; i += 7 {
		tt := base.AddDate(0, 0, i)
		want := DateFromTime(tt)
		got := ref.AddDays(i)
		if got != want {
			t.Fatalf("1850-01-01 + %d days = %s, want %s", i, got, want)
		}
		if n := ref.DaysUntil(got); n != i {
			t.Fatalf("DaysUntil(%s) = %d, want %d", got, n, i)
		}
		if got.Weekday() != tt.Weekday() {
			t.Fatalf("%s weekday %v, want %v", got, got.Weekday(), tt.Weekday())
		}
		if !got.Time().Equal(tt) {
			t.Fatalf("%s.Time() = %v, want %v", got, got.Time(), tt)
		}
	}
	if got := MustDate(1, time.January, 1).AddDays(-1); got != (Date{Y: 0, M: time.December, D: 31}) {
		t.Errorf("0001-01-01 - 1 day = %v", got)
	}
}

func TestDate_Compare(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want int
	}{
		{"2023-01-01", "2023-01-01", 0},
		{"2023-01-01", "2023-01-02", -1},
		{"2023-02-01", "2023-01-31", 1},
		{"2022-12-31", "2023-01-01", -1},
		{"2024-01-01", "2023-12-31", 1},
	}
	for _, tt := range tests {
		a, b := MustParseDate(tt.a), MustParseDate(tt.b)
		if got := a.Compare(b); got != tt.want {
			t.Errorf("%s.Compare(%s) = %d, want %d", a, b, got, tt.want)
		}
		if a.Before(b) != (tt.want < 0) || a.After(b) != (tt.want > 0) {
			t.Errorf("Before/After of %s and %s disagree with Compare", a, b)
		}
	}
}

func TestParseDate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Date
		wantErr bool
	}{
		{"2023-06-15", MustDate(2023, time.June, 15), false},
		{"2024-02-29", MustDate(2024, time.February, 29), false},
		{"2023-02-29", Date{}, true},
		{"1900-02-29", Date{}, true},
		{"2000-02-29", MustDate(2000, time.February, 29), false},
		{"2023-13-01", Date{}, true},
		{"2023-00-10", Date{}, true},
		{"2023-04-31", Date{}, true},
		{"0000-01-01", Date{}, true},
		{"2023-6-15", Date{}, true},
		{"2023/06/15", Date{}, true},
		{"+023-06-15", Date{}, true},
		{"", Date{}, true},
		{"2023-06-15T00:00", Date{}, true},
	}
	for _, tt := range tests {
		got, err := ParseDate(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseDate(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if err != nil && !errors.Is(err, ErrInvalidDate) {
			t.Errorf("ParseDate(%q) error %v is not ErrInvalidDate", tt.in, err)
		}
		if got != tt.want {
			t.Errorf("ParseDate(%q) = %v, want %v", tt.in, got, tt.want)
		}
		if err == nil && got.String() != tt.in {
			t.Errorf("ParseDate(%q).String() = %q", tt.in, got.String())
		}
	}
}

func TestDateOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   *nirv1.Date
		want Date
		ok   bool
	}{
		{"nil", nil, Date{}, false},
		{"zero message", &nirv1.Date{}, Date{}, false},
		{"valid", &nirv1.Date{Year: 2022, Month: 3, Day: 11}, MustDate(2022, time.March, 11), true},
		{"29 Feb common year", &nirv1.Date{Year: 2023, Month: 2, Day: 29}, Date{}, false},
		{"month 13", &nirv1.Date{Year: 2023, Month: 13, Day: 1}, Date{}, false},
		{"negative day", &nirv1.Date{Year: 2023, Month: 1, Day: -1}, Date{}, false},
	}
	for _, tt := range tests {
		got, ok := DateOf(tt.in)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("%s: DateOf = %v, %v; want %v, %v", tt.name, got, ok, tt.want, tt.ok)
		}
		if ok {
			back, ok2 := DateOf(got.Proto())
			if !ok2 || back != got {
				t.Errorf("%s: round trip through Proto gave %v", tt.name, back)
			}
		}
	}
	if (Date{}).Proto() != nil {
		t.Error("zero Date.Proto() should be nil")
	}
	if !(Date{}).IsZero() || MustDate(2020, 1, 1).IsZero() {
		t.Error("IsZero wrong")
	}
}

func TestLastDayOfFebruary(t *testing.T) {
	t.Parallel()
	for y, want := range map[int]int{2023: 28, 2024: 29, 1900: 28, 2000: 29, 2100: 28} {
		if got := LastDayOfFebruary(y); got != MustDate(y, time.February, want) {
			t.Errorf("LastDayOfFebruary(%d) = %v, want day %d", y, got, want)
		}
	}
}

func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"2023-06-15", "2024-02-29", "2023-02-29", "0000-00-00", "9999-12-31", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDate(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidDate) {
				t.Fatalf("error %v is not ErrInvalidDate", err)
			}
			return
		}
		if !d.Valid() || d.String() != s {
			t.Fatalf("ParseDate(%q) = %v, String %q", s, d, d.String())
		}
		// Arithmetic stays on valid dates and round-trips by days.
		if e := d.AddDays(400); d.DaysUntil(e) != 400 || e.AddDays(-400) != d {
			t.Fatalf("day arithmetic from %v", d)
		}
		if m := d.AddMonths(13); !m.Valid() && m.Y <= 9999 {
			t.Fatalf("%v + 13 months = invalid %v", d, m)
		}
	})
}

func ExampleDate_AddMonths() {
	d := MustParseDate("2023-01-31")
	fmt.Println(d.AddMonths(1), d.AddMonths(13), d.AddMonths(1).AddMonths(-1))
	// Output: 2023-02-28 2024-02-29 2023-01-28
}
