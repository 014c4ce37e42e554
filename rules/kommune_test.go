package rules

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestLookupKommune(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		nr        string
		on        string
		wantName  string
		wantFylke string
		wantErr   error
	}{
		{"Oslo 2020", "0301", "2020-01-01", "Oslo", "Oslo", nil},
		{"Oslo 2024", "0301", "2024-06-30", "Oslo", "Oslo", nil},
		{"Halden in Viken 2023", "3001", "2023-12-31", "Halden", "Viken", nil},
		{"Halden 3001 gone in 2024", "3001", "2024-01-01", "", "", ErrKommuneNotValid},
		{"Halden 3101 from 2024", "3101", "2024-01-01", "Halden", "Østfold", nil},
		{"Halden 3101 not yet in 2023", "3101", "2023-12-31", "", "", ErrKommuneNotValid},
		{"Bærum 2024", "3201", "2025-03-01", "Bærum", "Akershus", nil},
		{"Alta 2024", "5601", "2024-02-01", "Alta", "Finnmark", nil},
		{"Ålesund 1507 until 2023", "1507", "2022-05-17", "Ålesund", "Møre og Romsdal", nil},
		{"Ålesund 1507 not in 2024", "1507", "2024-05-17", "", "", ErrKommuneNotValid},
		{"Ålesund 1508 from 2024", "1508", "2024-05-17", "Ålesund", "Møre og Romsdal", nil},
		{"Haram 1580 from 2024", "1580", "2024-01-01", "Haram", "Møre og Romsdal", nil},
		{"Kristiansand both periods", "4204", "2021-01-01", "Kristiansand", "Agder", nil},
		{"2020 code not yet valid in 2018", "3001", "2018-06-01", "", "", ErrKommuneNotValid},
		{"2024 code not valid in 2018", "3101", "2018-06-01", "", "", ErrKommuneNotValid},
		{"pre-2020 Halden (SSB Klass 131, 2019)", "0101", "2019-01-01", "Halden", "Østfold", nil},
		{"pre-2020 Halden gone in 2020", "0101", "2020-01-01", "", "", ErrKommuneNotValid},
		{"Trondheim before Trøndelag (2017)", "1601", "2017-06-01", "Trondheim", "Sør-Trøndelag", nil},
		{"Trondheim 5001 from 2018", "5001", "2018-01-01", "Trondheim", "Trøndelag", nil},
		{"Ålesund 1504 before 2020", "1504", "2019-12-31", "Ålesund", "Møre og Romsdal", nil},
		{"Haram 1534 before 2020", "1534", "2019-12-31", "Haram", "Møre og Romsdal", nil},
		{"before the table: first period (2004)", "0101", "2003-06-01", "Halden", "Østfold", nil},
		{"Svalbard not included", "2100", "2024-01-01", "", "", ErrNotKommunenummer},
		{"uoppgitt not included", "9999", "2024-01-01", "", "", ErrNotKommunenummer},
		{"3 digits", "301", "2024-01-01", "", "", ErrNotKommunenummer},
		{"letters", "03a1", "2024-01-01", "", "", ErrNotKommunenummer},
		{"empty", "", "2024-01-01", "", "", ErrNotKommunenummer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k, err := LookupKommune(tt.nr, MustParseDate(tt.on))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if k.Nr != tt.nr || k.Name != tt.wantName || k.FylkeName != tt.wantFylke || k.FylkeNr != tt.nr[:2] {
				t.Errorf("got %+v, want %s %s", k, tt.wantName, tt.wantFylke)
			}
		})
	}
}

func TestLookupKommune_ErrorMessages(t *testing.T) {
	t.Parallel()
	_, err := LookupKommune("3001", MustParseDate("2024-03-01"))
	for _, want := range []string{"3001", "Halden", "2024-03-01", "not valid", "2020-01-01 to 2023-12-31"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v should mention %q", err, want)
		}
	}
	_, err = LookupKommune("12345", MustParseDate("2024-03-01"))
	if err == nil || !strings.Contains(err.Error(), "not a kommunenummer") {
		t.Errorf("error %v should say not a kommunenummer", err)
	}
}

func TestKommuner(t *testing.T) {
	t.Parallel()
	tests := []struct {
		on   string
		want int
	}{
		{"2003-06-01", 434}, // before the table: first period (2004)
		{"2017-06-01", 426},
		{"2019-12-31", 422}, // SSB Klass 131, Kommuneinndeling 2019, without Svalbard and 9999
		{"2020-01-01", 356},
		{"2023-12-31", 356},
		{"2024-01-01", 357},
		{"2030-01-01", 357},
	}
	for _, tt := range tests {
		ks := Kommuner(MustParseDate(tt.on))
		if len(ks) != tt.want {
			t.Errorf("Kommuner(%s) has %d, want %d", tt.on, len(ks), tt.want)
		}
		seen := map[string]bool{}
		for i, k := range ks {
			if seen[k.Nr] {
				t.Errorf("%s: %s twice", tt.on, k.Nr)
			}
			seen[k.Nr] = true
			if i > 0 && ks[i-1].Nr >= k.Nr {
				t.Errorf("%s: not sorted at %s", tt.on, k.Nr)
			}
			got, err := LookupKommune(k.Nr, MustParseDate(tt.on))
			if err != nil || got != k {
				t.Errorf("%s: LookupKommune(%s) = %+v, %v; want %+v", tt.on, k.Nr, got, err, k)
			}
			if _, err := LookupFylke(k.FylkeNr, MustParseDate(tt.on)); err != nil {
				t.Errorf("%s: fylke of %s: %v", tt.on, k.Nr, err)
			}
		}
	}
	// The slice belongs to the caller.
	a := Kommuner(MustParseDate("2024-01-01"))
	a[0].Name = "changed"
	if b := Kommuner(MustParseDate("2024-01-01")); b[0].Name == "changed" {
		t.Error("Kommuner returned shared storage")
	}
}

// TestKommuneTable_Reforms checks the counts data/README.md states for the
// periods from 2020: 242 codes in both periods, 114 only in 2020-2023, 115
// only from 2024.
func TestKommuneTable_Reforms(t *testing.T) {
	t.Parallel()
	reform2020 := MustDate(2020, time.January, 1)
	both, oldOnly, newOnly := 0, 0, 0
	for nr := range kommuner.byNr {
		all, err := KommunePeriods(nr)
		if err != nil {
			t.Fatal(err)
		}
		var ps []Kommune
		for _, k := range all {
			if !k.ValidFrom.Before(reform2020) {
				ps = append(ps, k)
			}
		}
		if len(ps) == 0 {
			continue // a number that ended before 2020
		}
		switch {
		case len(ps) == 2:
			both++
			if ps[0].Name != ps[1].Name {
				t.Errorf("%s renamed %q → %q", nr, ps[0].Name, ps[1].Name)
			}
			if ps[0].ValidTo != MustParseDate("2023-12-31") || !ps[1].ValidTo.IsZero() {
				t.Errorf("%s periods %v", nr, ps)
			}
		case ps[0].ValidFrom == reform2020:
			oldOnly++
		default:
			newOnly++
		}
	}
	if both != 242 || oldOnly != 114 || newOnly != 115 {
		t.Errorf("both=%d old=%d new=%d, want 242 114 115", both, oldOnly, newOnly)
	}
	if _, err := KommunePeriods("0102"); !errors.Is(err, ErrNotKommunenummer) {
		t.Errorf("KommunePeriods(0102) error %v", err)
	}
}

func TestKommuneSuccessor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		nr, want, wantName string
	}{
		{"3001", "3101", "Halden"},
		{"3024", "3201", "Bærum"},
		{"3018", "3114", "Våler (Østfold)"}, // the fylke in the name changed
		{"1507", "1508", "Ålesund"},         // Haram split off as 1580
		{"5401", "5501", "Tromsø"},
		{"3803", "3905", "Tønsberg"},
		{"0301", "", ""},              // still valid
		{"3101", "", ""},              // still valid
		{"0101", "3001", "Halden"},    // 2020: Østfold became Viken
		{"1141", "1103", "Stavanger"}, // 2020: Finnøy merged into Stavanger, which kept its number
		{"1601", "5001", "Trondheim"}, // 2018: Trøndelag
		{"1850", "", ""},              // 2020: Tysfjord split, no part kept its name
		{"0102", "", ""},              // unknown
	}
	for _, tt := range tests {
		k, ok := KommuneSuccessor(tt.nr)
		if ok != (tt.want != "") || k.Nr != tt.want || k.Name != tt.wantName {
			t.Errorf("KommuneSuccessor(%s) = %+v, %v; want %s %s", tt.nr, k, ok, tt.want, tt.wantName)
		}
	}
	// Every number that ended at the 2024 reform has exactly one successor, and no
	// two share one.
	seen := map[string]string{}
	for _, k := range Kommuner(MustParseDate("2023-12-31")) {
		if _, err := LookupKommune(k.Nr, MustParseDate("2024-01-01")); err == nil {
			continue
		}
		s, ok := KommuneSuccessor(k.Nr)
		if !ok {
			t.Errorf("%s %s has no successor", k.Nr, k.Name)
			continue
		}
		if prev, dup := seen[s.Nr]; dup {
			t.Errorf("%s and %s both became %s", prev, k.Nr, s.Nr)
		}
		seen[s.Nr] = k.Nr
		if s.ValidFrom != MustParseDate("2024-01-01") {
			t.Errorf("successor of %s: %+v", k.Nr, s)
		}
	}
	if len(seen) != 114 {
		t.Errorf("%d successors, want 114", len(seen))
	}
	// The refusal names the successor.
	_, err := LookupKommune("3001", MustParseDate("2024-03-01"))
	if err == nil || !strings.Contains(err.Error(), "from 2024-01-01 it is 3101 Halden") {
		t.Errorf("error %v should name the successor", err)
	}
}

func TestLookupFylke(t *testing.T) {
	t.Parallel()
	tests := []struct {
		nr, on, want string
		err          error
	}{
		{"30", "2023-06-01", "Viken", nil},
		{"30", "2024-01-01", "", ErrFylkeNotValid},
		{"31", "2024-01-01", "Østfold", nil},
		{"31", "2023-12-31", "", ErrFylkeNotValid},
		{"38", "2022-01-01", "Vestfold og Telemark", nil},
		{"39", "2024-01-01", "Vestfold", nil},
		{"40", "2024-01-01", "Telemark", nil},
		{"54", "2021-01-01", "Troms og Finnmark", nil},
		{"55", "2024-01-01", "Troms", nil},
		{"56", "2024-01-01", "Finnmark", nil},
		{"03", "2020-01-01", "Oslo", nil},
		{"03", "2026-01-01", "Oslo", nil},
		{"01", "2019-01-01", "Østfold", nil},
		{"01", "2020-01-01", "", ErrFylkeNotValid},
		{"16", "2017-12-31", "Sør-Trøndelag", nil},
		{"50", "2018-01-01", "Trøndelag", nil},
		{"13", "2019-01-01", "", ErrNotFylkesnummer},
		{"21", "2024-01-01", "", ErrNotFylkesnummer},
		{"3", "2024-01-01", "", ErrNotFylkesnummer},
		{"ab", "2024-01-01", "", ErrNotFylkesnummer},
	}
	for _, tt := range tests {
		f, err := LookupFylke(tt.nr, MustParseDate(tt.on))
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("LookupFylke(%s, %s) error %v, want %v", tt.nr, tt.on, err, tt.err)
			}
			continue
		}
		if err != nil || f.Name != tt.want || f.Nr != tt.nr {
			t.Errorf("LookupFylke(%s, %s) = %+v, %v; want %s", tt.nr, tt.on, f, err, tt.want)
		}
	}
	// DOMAIN.md 7.3: 18 fylker in 2018-2019, 11 in 2020-2023, 15 from 2024.
	if n := len(Fylker(MustParseDate("2019-01-01"))); n != 18 {
		t.Errorf("%d fylker in 2019, want 18", n)
	}
	if n := len(Fylker(MustParseDate("2022-01-01"))); n != 11 {
		t.Errorf("%d fylker in 2022, want 11", n)
	}
	fs := Fylker(MustParseDate("2024-01-01"))
	if len(fs) != 15 {
		t.Errorf("%d fylker in 2024, want 15", len(fs))
	}
	for i := 1; i < len(fs); i++ {
		if fs[i-1].Nr >= fs[i].Nr {
			t.Errorf("Fylker not sorted at %s", fs[i].Nr)
		}
	}
}

func TestParseKommuner_Errors(t *testing.T) {
	t.Parallel()
	const header = "kommunenummer,navn,fylkesnummer,fylkesnavn,gyldig_fra,gyldig_til\n"
	tests := map[string]string{
		"empty":           "",
		"wrong header":    "nr,navn,fylkesnummer,fylkesnavn,gyldig_fra,gyldig_til\n0301,Oslo,03,Oslo,2020-01-01,\n",
		"no rows":         header,
		"fylke mismatch":  header + "0301,Oslo,04,Oslo,2020-01-01,\n",
		"short number":    header + "301,Oslo,30,Oslo,2020-01-01,\n",
		"bad date":        header + "0301,Oslo,03,Oslo,2020-02-30,\n",
		"end before from": header + "0301,Oslo,03,Oslo,2020-01-01,2019-12-31\n",
		"overlap":         header + "0301,Oslo,03,Oslo,2020-01-01,\n0301,Oslo,03,Oslo,2024-01-01,\n",
		"fylke renamed":   header + "0301,Oslo,03,Oslo,2020-01-01,\n0302,X,03,Kristiania,2020-01-01,\n",
		"missing column":  header + "0301,Oslo,03,Oslo,2020-01-01\n",
	}
	for name, text := range tests {
		if _, err := parseKommuner(strings.NewReader(text)); err == nil {
			t.Errorf("%s: parse succeeded", name)
		}
	}
	if _, err := parseKommuner(strings.NewReader(kommunerCSV)); err != nil {
		t.Errorf("embedded table: %v", err)
	}
	if KommuneTableStart != MustDate(2004, time.January, 1) {
		t.Errorf("KommuneTableStart = %v", KommuneTableStart)
	}
}

func BenchmarkLookupKommune(b *testing.B) {
	d := MustParseDate("2024-05-01")
	for b.Loop() {
		_, _ = LookupKommune("3201", d)
	}
}

func ExampleLookupKommune() {
	k, _ := LookupKommune("3001", MustParseDate("2023-06-01"))
	fmt.Println(k.Nr, k.Name, k.FylkeNr, k.FylkeName)
	_, err := LookupKommune("3001", MustParseDate("2024-06-01"))
	fmt.Println(err)
	// Output:
	// 3001 Halden 30 Viken
	// kommunenummer 3001 (Halden) on 2024-06-01: kommunenummer not valid on that date (valid 2020-01-01 to 2023-12-31; from 2024-01-01 it is 3101 Halden)
}

// TestKommuneChanges_CoverTheReforms checks SSB's code changes against the versions: every
// number of the year before a reform either goes on or has a change, and every number after
// it either was there or is a change's target (Product decisions 13; kommuner_README.md).
func TestKommuneChanges_CoverTheReforms(t *testing.T) {
	t.Parallel()
	for _, reform := range []string{"2006-01-01", "2008-01-01", "2012-01-01", "2013-01-01", "2017-01-01", "2018-01-01", "2019-01-01", "2020-01-01", "2024-01-01"} {
		on := MustParseDate(reform)
		before, after := map[string]bool{}, map[string]bool{}
		for _, k := range Kommuner(on.AddDays(-1)) {
			before[k.Nr] = true
		}
		for _, k := range Kommuner(on) {
			after[k.Nr] = true
		}
		for nr := range before {
			became, _ := KommuneChanges(nr)
			changed := false
			for _, c := range became {
				changed = changed || (c.Date == on && after[c.To])
			}
			if !after[nr] && !changed {
				t.Errorf("%s: %s ends with no change to a number of %s", reform, nr, reform)
			}
		}
		for nr := range after {
			_, from := KommuneChanges(nr)
			if !before[nr] && len(from) == 0 {
				t.Errorf("%s: %s begins with no change leading to it", reform, nr)
			}
		}
	}
	n2024 := 0
	for _, k := range Kommuner(MustParseDate("2023-12-31")) {
		became, _ := KommuneChanges(k.Nr)
		n2024 += len(became)
	}
	if n2024 != 115 { // 51 in Viken, 23 in Vestfold og Telemark, 39 in Troms og Finnmark, and Ålesund's 2
		t.Errorf("%d changes on 2024-01-01, want 115", n2024)
	}
}

// TestSameKommune: a number and the numbers it became or came from are one kommune for a
// person's programme; two parts of a split are not (Product decisions 13).
func TestSameKommune(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want bool
	}{
		{"3001", "3101", true},  // Halden renumbered 2024
		{"0101", "3101", true},  // and 2020
		{"1534", "1580", true},  // Haram → Ålesund → Haram
		{"1504", "1508", true},  // Ålesund
		{"1534", "1508", true},  // Haram is part of the 1507 Ålesund that 1508 continues
		{"1508", "1580", false}, // the two parts of the 2024 split
		{"1141", "1103", true},  // Finnøy merged into Stavanger, which kept its number
		{"0301", "4601", false},
		{"0301", "0301", true},
		{"", "0301", false},
	}
	for _, tt := range tests {
		if got := SameKommune(tt.a, tt.b); got != tt.want || SameKommune(tt.b, tt.a) != tt.want {
			t.Errorf("SameKommune(%s, %s) = %v, want %v (both ways)", tt.a, tt.b, got, tt.want)
		}
	}
	for nr, want := range map[string]string{"0101": "3101", "1507": "1508", "1534": "1508", "1601": "5001", "3101": "3101", "1850": "1850"} {
		if got := KommuneNow(nr); got != want {
			t.Errorf("KommuneNow(%s) = %s, want %s", nr, got, want)
		}
	}
}

// TestKommuneIn maps numbers to a date's structure for statistics (Product decisions 13).
func TestKommuneIn(t *testing.T) {
	t.Parallel()
	tests := []struct {
		nr, on, want string
		cands        []string
	}{
		{"3001", "2024-06-01", "3101", nil},
		{"3001", "2019-06-01", "0101", nil},
		{"3101", "2022-06-01", "3001", nil},
		{"0301", "2010-06-01", "0301", nil},
		{"1507", "2024-06-01", "1507", []string{"1508", "1580"}}, // split: no one number
		{"3020", "2019-06-01", "3020", []string{"0213", "0217"}}, // Nordre Follo before the merger
		{"1580", "2021-06-01", "1507", nil},                      // Haram in 2021 was Ålesund
		{"1534", "2024-06-01", "1534", []string{"1508", "1580"}}, // via 1507, split again
		{"5001", "2017-06-01", "5001", []string{"1601", "1662"}}, // Trondheim 1601 and Klæbu 1662 both became 5001
	}
	for _, tt := range tests {
		got, cands, ok := KommuneIn(tt.nr, MustParseDate(tt.on))
		if got != tt.want || ok != (len(tt.cands) == 0) || fmt.Sprint(cands) != fmt.Sprint(tt.cands) {
			t.Errorf("KommuneIn(%s, %s) = %s %v %v, want %s %v", tt.nr, tt.on, got, cands, ok, tt.want, tt.cands)
		}
	}
}

// TestFylkePeriods: every period of a fylkesnummer, oldest first (01 Østfold until 2019 and
// from 2024 as 31; 30 Viken 2020–2023), or why it is none.
func TestFylkePeriods(t *testing.T) {
	t.Parallel()
	ps, err := FylkePeriods("30")
	if err != nil || len(ps) != 1 || ps[0].Name != "Viken" {
		t.Errorf("FylkePeriods(30) = %v, %v; want Viken's one period", ps, err)
	}
	ps, err = FylkePeriods("03")
	if err != nil || len(ps) == 0 || ps[len(ps)-1].Name != "Oslo" {
		t.Errorf("FylkePeriods(03) = %v, %v; want Oslo's periods", ps, err)
	}
	for _, nr := range []string{"13", "99", "3", "ab", ""} {
		if ps, err := FylkePeriods(nr); !errors.Is(err, ErrNotFylkesnummer) || ps != nil {
			t.Errorf("FylkePeriods(%q) = %v, %v; want ErrNotFylkesnummer", nr, ps, err)
		}
	}
}
