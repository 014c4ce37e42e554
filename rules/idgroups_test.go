package rules

import (
	"fmt"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// TestMaskGroupedIDs_MemoryOfALongLine: the scan of a line holds a few of its digit groups
// at a time, not all of them. RedactIDs runs on what a client sends (a URL path of up to a
// MiB in the guard's log line, a decoder's error); before 2026-12-07 the scan kept every
// group of the line, 24 bytes for each 2 bytes of "1 1 1 …", and a 1 MiB path cost 66 MiB.
// Not parallel, so that no other test allocates while it measures.
func TestMaskGroupedIDs_MemoryOfALongLine(t *testing.T) {
	for _, unit := range []string{"1 ", "1.2.3.", "12 345 ", "1%20", "０ ", "%31%20", "1     ", "%2531%2520", `\uff11 `} {
		s := strings.Repeat(unit, (1<<20)/len(unit))
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		out := maskGroupedIDs(s, "<redacted>")
		runtime.ReadMemStats(&after)
		if out != s {
			t.Errorf("maskGroupedIDs(%q…) masked something", s[:20])
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
			t.Errorf("maskGroupedIDs of a MiB of %q allocated %d KiB, want at most 64 KiB", unit, n>>10)
		}
	}
}

// TestMaskGroupedIDs_LinearOnEncodedInput: the scan takes time in proportion to its line
// when digits and separators are URL-encoded many times over, escaped, not ASCII, or when
// separators run long: each byte is read a few times at most. A client chooses such text (a
// URL path, a parameter's name); a MiB of each shape takes 30 to 300 ms, 1 to 6 s under the
// race detector, where a scan that read on from each '%' or separator to the end of the line
// would take hours.
func TestMaskGroupedIDs_LinearOnEncodedInput(t *testing.T) {
	const n = 1 << 20
	long := func(unit string) string { return strings.Repeat(unit, n/len(unit)) }
	for _, s := range []string{
		"1%25" + long("25") + "31", // one '%' encoded over and over
		long("1%2525252525252"),
		long("%C2%252525A0"),
		"1" + long(" ") + "1", // one run of separators
		long("1 - - "),
		long("０"), // one group of full-width digits, masked whole
		long("０ "),
		long("%EF%BC%91%E3%80%80"),
		long(`\uff11\u3000`),
		long("0 1 8 1 9 0 0 0 0 4 9 "), // an id digit by digit, over and over
	} {
		start := time.Now()
		_ = RedactIDs(s)
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("RedactIDs of %d bytes like %q took %v, want within 10 s", len(s), s[:16], d)
		}
	}
}

// TestRedactIDs_WideSeparators: a national id copied from a document or a spreadsheet has a
// no-break, thin or figure space or a word processor's dash between its groups ("010190 –
// 12345", "010190\u00a012345"), raw, URL-encoded or escaped as JSON writes it; before
// 2026-12-07 these went into nird's log whole. A range of years stays.
func TestRedactIDs_WideSeparators(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"010190\u00a012345", "<redacted>"},
		{"010190 \u2013 12345", "<redacted>"},
		{"010190\u201412345", "<redacted>"},
		{"010190\u221212345", "<redacted>"},
		{"010190\u2011\u201112345", "<redacted>"},
		{"0101\u202f90\u202f123\u202f45", "<redacted>"},
		{"01.01.90\u200912345", "<redacted>"},
		{"01.01.1990\u200712345", "<redacted>"},
		// Invisible ones a web page or a word processor leaves: a zero-width space, a soft
		// hyphen, a byte-order mark, a hair space.
		{"010190\u200b12345", "<redacted>"},
		{"010190\u00ad12345", "<redacted>"},
		{"010190\ufeff12345", "<redacted>"},
		{"010190\u200a\u200a12345", "<redacted>"},
		{"010190\u201512345", "<redacted>"},
		{"/personer/010190%C2%A012345", "/personer/<redacted>"},
		{"/personer/010190%20%e2%80%93%2012345", "/personer/<redacted>"},
		{`nationalId: "010190\u00a012345"`, `nationalId: "<redacted>"`},
		{`nationalId: "010190 \u2013 12345"`, `nationalId: "<redacted>"`},
		{`"010190\u002012345"`, `"<redacted>"`},
		// Kept: a range of years, figures grouped by a no-break space, broken encodings.
		{"2020\u20132024", "2020\u20132024"},
		{"1\u00a0234\u00a0567\u00a0890 bytes", "1\u00a0234\u00a0567\u00a0890 bytes"},
		{"010190%E2%8012345", "010190%E2%8012345"},
		{"010190%C212345", "010190%C212345"},
		{`010190\u00a12345`, `010190\u00a12345`},
		{"010190\u00a1" + "12345", "010190\u00a1" + "12345"},
	} {
		if got := RedactIDs(tt.in); got != tt.want {
			t.Errorf("RedactIDs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestRedactInput_LinearOnUnclosedQuotes: RedactInput takes time in proportion to its
// input when a quote is never closed. Its tokens were a regexp's, whose quoted string from
// each '"' of `"\"\"\"…` ran to the end of the input before a bare token inside it could be
// taken, once for each: 40 kB took 9 s, 80 kB 33 s. A client chooses such text: an
// unknown query parameter's name is quoted through RedactInput (api's CSV export).
func TestRedactInput_LinearOnUnclosedQuotes(t *testing.T) {
	for _, s := range []string{`"` + strings.Repeat(`\"`, 20000), strings.Repeat(`"\`+"\n", 70000)} {
		start := time.Now()
		out := RedactInput(s)
		if d := time.Since(start); d > time.Second {
			t.Errorf("RedactInput of %d bytes like %q took %v, want within 1 s", len(s), s[:12], d)
		}
		if out != s {
			t.Errorf("RedactInput(%q…) = %q…, want it kept", s[:12], out[:min(len(out), 12)])
		}
	}
}

// TestRedactIDs_UnicodeDigits: a national id in full-width digits ("０１０１９０-１２３４５", as an
// East Asian keyboard or a PDF writes them) or in another script's decimal digits (Arabic-Indic,
// Devanagari, the mathematical ones), raw, URL-encoded once or twice or escaped as a quoted
// string writes it, or in ASCII digits URL-encoded ("%30"), is masked in every grouping;
// before 2026-12-07 only ASCII digits were read, and each of these went into the log whole.
func TestRedactIDs_UnicodeDigits(t *testing.T) {
	zeros := map[string]rune{"full-width": '０', "Arabic-Indic": '٠', "Devanagari": '०', "bold": '𝟎'}
	enc := map[string]func(byte) string{
		"%30":   func(d byte) string { return fmt.Sprintf("%%%X", d) },
		"%2530": func(d byte) string { return fmt.Sprintf("%%25%X", d) },
	}
	for name, z := range zeros {
		enc[name] = func(d byte) string { return string(z + rune(d-'0')) }
		enc[name+" %XX"] = func(d byte) string { return url.PathEscape(string(z + rune(d-'0'))) }
		enc[name+` \u`] = func(d byte) string { return strings.Trim(strconv.QuoteToASCII(string(z+rune(d-'0'))), `"`) }
	}
	enc["full-width %25XX"] = func(d byte) string { return url.PathEscape(url.PathEscape(string('０' + rune(d-'0')))) }
	layouts := [][]int{nil, {6}, {2, 4, 6}, {4, 6, 9}}
	for birth := MustDate(1900, time.January, 1); birth.Y < 2040; birth = birth.AddDays(1999) {
		id := SyntheticFodselsnummer(birth, birth.D)
		for name, e := range enc {
			var w strings.Builder
			for i := range len(id) {
				w.WriteString(e(id[i]))
			}
			wide := w.String()
			// The groups of the id in wide, by their digits.
			at := func(n int) int { return len(e(id[0])) * n }
			for _, l := range layouts {
				var wl []int
				for _, n := range l {
					wl = append(wl, at(n))
				}
				for _, sep := range []string{" ", "-", "%20", "－"} {
					if got := RedactIDs("id " + group(wide, wl, sep) + " end"); got != "id <redacted> end" {
						t.Fatalf("%s: RedactIDs(%q) = %q, want it masked", name, group(wide, wl, sep), got)
					}
				}
			}
		}
	}
	for _, tt := range []struct{ in, want string }{
		{"０１８１９０ 00049", "<redacted>"},
		{"0181９0-00049", "<redacted>"},
		{"０１８１９０\u3000０００４９", "<redacted>"},
		{"/p/018190%E3%80%8000049", "/p/<redacted>"},
		{"duf ２０１２３４５６７８０２", "duf <redacted>"},
		{"duf ２０１２ ３４５６７８ ０２", "duf <redacted>"},
		{"/p/%EF%BC%90%EF%BC%91%EF%BC%98%EF%BC%91%EF%BC%99%EF%BC%90%EF%BC%90%EF%BC%90%EF%BC%90%EF%BC%94%EF%BC%99", "/p/<redacted>"},
		{"/p/%30%31%38%31%39%30%30%30%30%34%39", "/p/<redacted>"},
		{`"\u0030\u0031\u0038\u0031\u0039\u0030\u0030\u0030\u0030\u0034\u0039"`, `"<redacted>"`},
		// Ten full-width digits, an 11th at either end: a run of more is masked whole.
		{"x０１８１９０００００４９７y", "x<redacted>y"},
		// Kept: fewer digits, and ASCII figures beside a percent sign.
		{"０１８１９０ ０００４", "０１８１９０ ０００４"},
		{"cpu 100%31 12345", "cpu 100%31 12345"},
	} {
		if got := RedactIDs(tt.in); got != tt.want {
			t.Errorf("RedactIDs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestDigitValue: digitValue reads a Unicode decimal digit by its place in unicode.Nd's
// ranges, which holds when each range is a whole number of runs from 0 to 9.
func TestDigitValue(t *testing.T) {
	for _, rt := range [][]unicode.Range32{r16to32(unicode.Nd.R16), unicode.Nd.R32} {
		for _, rg := range rt {
			if rg.Stride != 1 || (rg.Hi-rg.Lo+1)%10 != 0 {
				t.Errorf("unicode.Nd range %U-%U stride %d: not runs of 0 to 9", rg.Lo, rg.Hi, rg.Stride)
			}
		}
	}
	for r, want := range map[rune]byte{'7': '7', '０': '0', '９': '9', '٣': '3', '۶': '6', '९': '9', '𝟗': '9', '𝟡': '9', '𝟿': '9', '𝟶': '0'} {
		if got, ok := digitValue(r); !ok || got != want {
			t.Errorf("digitValue(%q) = %q, %v; want %q", r, got, ok, want)
		}
	}
	for _, r := range []rune{'a', '/', ':', '½', '²', 'Ⅳ', '〇', utf8.RuneError} {
		if got, ok := digitValue(r); ok {
			t.Errorf("digitValue(%q) = %q, want none", r, got)
		}
	}
}

func r16to32(rs []unicode.Range16) []unicode.Range32 {
	var out []unicode.Range32
	for _, r := range rs {
		out = append(out, unicode.Range32{Lo: uint32(r.Lo), Hi: uint32(r.Hi), Stride: uint32(r.Stride)})
	}
	return out
}
