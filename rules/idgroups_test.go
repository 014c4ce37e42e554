package rules

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMaskGroupedIDs_MemoryOfALongLine: the scan of a line holds a few of its digit groups
// at a time, not all of them. RedactIDs runs on what a client sends (a URL path of up to a
// MiB in the guard's log line, a decoder's error); before 2026-12-07 the scan kept every
// group of the line, 24 bytes for each 2 bytes of "1 1 1 …", and a 1 MiB path cost 66 MiB.
// Not parallel, so that no other test allocates while it measures.
func TestMaskGroupedIDs_MemoryOfALongLine(t *testing.T) {
	for _, unit := range []string{"1 ", "1.2.3.", "12 345 ", "1%20", "1     ", "1%2520"} {
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
// when separators are URL-encoded many times over or run long: each byte is read a few times
// at most. A client chooses such text (a URL path, a parameter's name); a MiB of each shape
// takes 30 to 300 ms, 1 to 6 s under the race detector, where a scan that read on from each
// '%' or separator to the end of the line would take hours.
func TestMaskGroupedIDs_LinearOnEncodedInput(t *testing.T) {
	const n = 1 << 20
	long := func(unit string) string { return strings.Repeat(unit, n/len(unit)) }
	for _, s := range []string{
		"1%25" + long("25") + "20", // one '%' encoded over and over
		long("1%2525252525252"),
		long("%C2%252525A0"),
		"1" + long(" ") + "1", // one run of separators
		long("1 - - "),
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
