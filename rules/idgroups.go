package rules

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// A national id the way people group its digits ("01.01.90 12345", "0101 90 123 45",
// "010190 - 12345", "01.01.1990 12345", "2012 345678 90"): digit groups joined by
// separators, found by a scan in one pass over the line (RedactIDs). A digit is an ASCII
// one or any Unicode decimal digit (full-width "０", Arabic-Indic "٠" …), raw, URL-encoded
// once or more ("%30", "%2530", "%EF%BC%90") or escaped as a quoted string writes it
// ("\uff10").

// digitGroup is a maximal run of digits s[start:end] in a line.
type digitGroup struct {
	start, end int
	// n: how many digits it holds (fewer than end-start when one is not an ASCII digit);
	// d: the first of them as ASCII digits.
	n int
	d [13]byte
	// joined: the next group follows after one or more separators; colon, dot: one of them
	// is a ':', a '.'; sep: that separator when it is a single byte, else 0 (two, or one
	// URL-encoded, escaped or wide: no IPv4 address's dot).
	joined, colon, dot bool
	sep                byte
	// ip: the group is an octet of an IPv4 address.
	ip bool
}

// ascii reports whether every digit of g is an ASCII one, written as it is.
func (g digitGroup) ascii() bool { return g.end-g.start == g.n }

// idSeparators are the characters that may stand between the digit groups of a national id.
const idSeparators = "-. +/_:,;|\\\t\r\n"

// maskGroupedIDs replaces with mask every national id in s whose digits are grouped by
// separators (see idLayout), and returns s itself when there is none.
func maskGroupedIDs(s, mask string) string {
	if digitBytes(s) < 11 {
		return s
	}
	sc := groupScanner{s: s}
	var b strings.Builder
	last := 0
	for gs := sc.window(); len(gs) > 0; gs = sc.window() {
		j, ok := idWindow(gs)
		if !ok {
			sc.skip(1)
			continue
		}
		if b.Len() == 0 {
			b.Grow(len(s))
		}
		b.WriteString(s[last:gs[0].start])
		b.WriteString(mask)
		last = gs[j].end
		sc.skip(j + 1)
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// countDigits returns the number of digits in s, ASCII or other Unicode decimal digits as
// they are written (the two of "%31" count, as the one of "1" and of "１").
func countDigits(s string) int {
	n := 0
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			if isDigit(s[i]) {
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if _, ok := digitValue(r); ok {
			n++
		}
		i += size
	}
	return n
}

// digitBytes returns the number of bytes of s that a digit may be written with: ASCII
// digits, '%', '\' and non-ASCII bytes. Each digit holds one at least (digitAt), so a line
// with fewer than 11 holds no national id.
func digitBytes(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if c := s[i]; isDigit(c) || c == '%' || c == '\\' || c >= utf8.RuneSelf {
			n++
		}
	}
	return n
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// groupLookahead is how many groups after the first idWindow may need: as many as a
// national id has digits, and 3 more that settle whether the last is an IPv4 octet.
const groupLookahead = 13 + 3

// groupScanner reads the digit groups of a line through a buffer of a few, marking the
// octets of IPv4 addresses (four octets joined by single dots, as Go writes them: no leading
// zero, at most 255, and no fifth), which no national id is taken from: "192.10.12.90:12345"
// holds what could be 10.12.90 12345. A line of a million short groups costs no more memory
// than one of a few.
type groupScanner struct {
	s    string
	next int // where the next group is looked for
	buf  [4 * groupLookahead]digitGroup
	gs   []digitGroup // the groups from the current one on, in buf
	// dotted: the last group read is joined to the next by a single '.'; chain: the groups
	// of the run of single dots it is in; octets: how many of them could be an octet.
	dotted        bool
	chain, octets int
}

// window returns the groups from the current one on: more than groupLookahead, or every one
// left in the line.
func (sc *groupScanner) window() []digitGroup {
	if len(sc.gs) > groupLookahead {
		return sc.gs
	}
	sc.gs = sc.buf[:copy(sc.buf[:], sc.gs)]
	for len(sc.gs) < len(sc.buf) && sc.next < len(sc.s) {
		g, next, ok := nextGroup(sc.s, sc.next)
		if sc.next = next; !ok {
			break
		}
		sc.add(g)
	}
	return sc.gs
}

// skip passes the first n groups of the window.
func (sc *groupScanner) skip(n int) { sc.gs = sc.gs[n:] }

// add appends g, and marks the last four groups as an address's when g ends a run of
// exactly four octets joined by single dots.
func (sc *groupScanner) add(g digitGroup) {
	if !sc.dotted {
		sc.chain, sc.octets = 0, 0
	}
	sc.chain++
	if o := sc.s[g.start:g.end]; g.ascii() && len(o) <= 3 && (len(o) == 1 || o[0] != '0') && digitsValue(o) <= 255 {
		sc.octets++
	}
	sc.dotted = g.sep == '.'
	sc.gs = append(sc.gs, g)
	if !sc.dotted && sc.chain == 4 && sc.octets == 4 {
		for k := max(0, len(sc.gs)-4); k < len(sc.gs); k++ {
			sc.gs[k].ip = true
		}
	}
}

// nextGroup returns the first digit group of s at or after i, and where the next one may
// begin (after the separators that join it to the next, as many as there are); ok is false
// when there is none.
func nextGroup(s string, i int) (g digitGroup, next int, ok bool) {
	for i < len(s) && digitLen(s, i) == 0 {
		i++
	}
	if i == len(s) {
		return g, i, false
	}
	g.start = i
	for i < len(s) {
		k, c := digitAt(s, i)
		if k == 0 {
			break
		}
		if g.n < len(g.d) {
			g.d[g.n] = c
		}
		g.n, i = g.n+1, i+k
	}
	g.end = i
	j := i
	for j < len(s) {
		n, c := separatorAt(s, j)
		if n == 0 {
			break
		}
		g.colon = g.colon || c == ':'
		g.dot = g.dot || c == '.'
		j += n
	}
	if g.joined = j > i && j < len(s) && digitLen(s, j) > 0; g.joined && j == i+1 {
		g.sep = s[i]
	}
	return g, j, true
}

// digitLen returns the length of the digit at s[i:] (digitAt), 0 if there is none.
func digitLen(s string, i int) int {
	n, _ := digitAt(s, i)
	return n
}

// digitAt returns the length of the digit at s[i:], 0 if there is none, and the ASCII digit
// it stands for: an ASCII digit or another Unicode decimal digit, raw, URL-encoded or
// escaped (runeAt).
func digitAt(s string, i int) (n int, c byte) {
	switch c := s[i]; {
	case isDigit(c):
		return 1, c
	case c < utf8.RuneSelf && c != '%' && c != '\\':
		return 0, 0
	}
	r, n := runeAt(s, i)
	if c, ok := digitValue(r); ok {
		return n, c
	}
	return 0, 0
}

// separatorAt returns the length of the separator at s[i:], 0 if there is none: one of
// idSeparators or of the wide ones (wideSeparator), raw, URL-encoded (%20, %2F, %0A,
// %C2%A0, %2520 …), or escaped as a quoted string writes it (\n, \t, \r, \/, \u00a0 …), and
// the character it stands for.
func separatorAt(s string, i int) (n int, c byte) {
	if s[i] == '\\' && i+1 < len(s) && strings.IndexByte(`ntr/`, s[i+1]) >= 0 {
		return 2, s[i+1]
	}
	r, n := runeAt(s, i)
	if c := runeSeparator(r); c != 0 {
		return n, c
	}
	return 0, 0
}

// runeAt returns the character at s[i:] and its length: a character URL-encoded once or
// more ("%2D", "%252D", "%E2%80%93"), escaped as a quoted string writes it ("\u2013",
// "\U0001d7ce"), or else written as it is (a byte that is not UTF-8 is utf8.RuneError).
func runeAt(s string, i int) (r rune, n int) {
	switch c := s[i]; {
	case c == '%':
		if r, n := percentRune(s, i); n > 0 {
			return r, n
		}
	case c == '\\' && i+5 < len(s) && s[i+1] == 'u':
		if r, ok := hexRune(s[i+2 : i+6]); ok {
			return r, 6
		}
	case c == '\\' && i+9 < len(s) && s[i+1] == 'U':
		if r, ok := hexRune(s[i+2 : i+10]); ok {
			return r, 10
		}
	case c >= utf8.RuneSelf:
		return utf8.DecodeRuneInString(s[i:])
	}
	return rune(s[i]), 1
}

// percentRune returns the character that the URL encoding at s[i:] writes, in one byte or
// in the 2 to 4 of its UTF-8, each encoded once or more (percentByte), and its length; 0
// if it writes none.
func percentRune(s string, i int) (r rune, n int) {
	var b [utf8.UTFMax]byte
	var ends [utf8.UTFMax]int // where each byte's encoding ends, from i
	k := 0
	for j := i; k < len(b); k++ {
		d, m := percentByte(s, j)
		if m == 0 || k > 0 && d < utf8.RuneSelf {
			break
		}
		b[k], j = d, j+m
		ends[k] = j - i
		if d < utf8.RuneSelf || utf8.FullRune(b[:k+1]) {
			k++
			break
		}
	}
	r, size := utf8.DecodeRune(b[:k])
	if size == 0 || r == utf8.RuneError && size == 1 {
		return 0, 0
	}
	return r, ends[size-1]
}

// percentByte returns the byte that the URL encoding %XX at s[i:] writes, and its length, 0
// if there is none. The encoding may be encoded again, its '%' as "%25": "%2520" is a
// space encoded twice.
func percentByte(s string, i int) (byte, int) {
	if i+2 >= len(s) || s[i] != '%' {
		return 0, 0
	}
	b, ok := hexByte(s[i+1], s[i+2])
	if !ok {
		return 0, 0
	}
	n := 3
	for b == '%' && i+n+1 < len(s) {
		d, ok := hexByte(s[i+n], s[i+n+1])
		if !ok {
			break
		}
		b, n = d, n+2
	}
	return b, n
}

// hexByte returns the byte that the hex digits hi and lo write.
func hexByte(hi, lo byte) (byte, bool) {
	h, ok1 := hexValue(hi)
	l, ok2 := hexValue(lo)
	return h<<4 | l, ok1 && ok2
}

// digitValue returns the ASCII digit that r, a Unicode decimal digit, stands for. Unicode
// puts each script's decimal digits in a run from 0 to 9 (TestDigitValue), so the place in
// unicode.Nd's range says which one.
func digitValue(r rune) (byte, bool) {
	switch {
	case r < utf8.RuneSelf || !unicode.IsDigit(r):
		return byte(r), '0' <= r && r <= '9'
	case r >= '０' && r <= '９':
		return byte('0' + r - '０'), true
	}
	for _, rg := range unicode.Nd.R16 {
		if rune(rg.Lo) <= r && r <= rune(rg.Hi) {
			return byte('0' + (r-rune(rg.Lo))%10), true
		}
	}
	for _, rg := range unicode.Nd.R32 {
		if rune(rg.Lo) <= r && r <= rune(rg.Hi) {
			return byte('0' + (r-rune(rg.Lo))%10), true
		}
	}
	return 0, false
}

// runeSeparator returns the separator r is, one of idSeparators or a wide one, or 0.
func runeSeparator(r rune) byte {
	if r < utf8.RuneSelf && r > 0 && strings.IndexByte(idSeparators, byte(r)) >= 0 {
		return byte(r)
	}
	return wideSeparator(r)
}

// wideSeparator returns the separator that r stands for when text copied from a document, a
// spreadsheet or a web page puts it between digits: a space for the no-break, figure, thin,
// hair and other typographic spaces and the invisible zero-width space, word joiner and
// byte-order mark and the ideographic space; a '-' for the hyphens, dashes and minus of a
// word processor and the soft hyphen; the full-width form of a separator ("－", "／", as
// full-width digits come with) for it; else 0.
func wideSeparator(r rune) byte {
	switch {
	case r == '\u00a0' || r >= '\u2000' && r <= '\u200b' || r == '\u202f' || r == '\u205f' || r == '\u2060' || r == '\ufeff' || r == '\u3000':
		return ' '
	case r >= '\u2010' && r <= '\u2015' || r == '\u2212' || r == '\u00ad':
		return '-'
	case r >= '\uff01' && r <= '\uff5e':
		return runeSeparator(r - 0xfee0)
	}
	return 0
}

// hexRune returns the rune that the 4 hex digits h write.
func hexRune(h string) (rune, bool) {
	var r rune
	for i := 0; i < len(h); i++ {
		v, ok := hexValue(h[i])
		if !ok {
			return 0, false
		}
		r = r<<4 | rune(v)
	}
	return r, true
}

func hexValue(c byte) (byte, bool) {
	switch {
	case isDigit(c):
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// digitsValue returns the number that the ASCII digits d write.
func digitsValue(d string) int {
	v, _ := atoiDigits(d)
	return v
}

// idWindow reports whether the groups gs[:j+1] write a national id (idLayout), for the
// largest such j; the octets of an address are never part of one. A run of 11 digits or
// more not all written as ASCII digits is one too (nationalIDRun takes the ASCII ones).
func idWindow(gs []digitGroup) (j int, ok bool) {
	if len(gs) > 0 && gs[0].n >= 11 && !gs[0].ascii() {
		return 0, true
	}
	var d [13]byte
	var n int
	var bounds, colons, dots uint16
	for k := 0; k < len(gs) && !gs[k].ip; k++ {
		g := gs[k]
		if n+g.n > len(d) {
			break
		}
		n += copy(d[n:], g.d[:g.n])
		if idLayout(string(d[:n]), bounds, colons, dots) {
			j, ok = k, true
		}
		if !g.joined {
			break
		}
		bounds |= 1 << n
		if g.colon {
			colons |= 1 << n
		}
		if g.dot {
			dots |= 1 << n
		}
	}
	return j, ok
}

// Bits of idLayout's bounds: a separator after the digit at that count.
const (
	after2 uint16 = 1 << (2 + iota)
	after3
	after4
	_
	after6
	_
	after8
	after9
	after10
	after11
)

// everyDigit11 is idLayout's bounds of 11 digits each on its own.
const everyDigit11 uint16 = 1<<11 - 1<<1

// idLayout reports whether the digits d, with separators after the counts in bounds (colons:
// and dots: the separators that hold a ':', a '.'), are a national id as people group it:
//
//   - 11 digits, DDMMYY and the personnummer: "010190 - 12345", "01.01.90 12345",
//     "0101 90 123 45", "010 190 123 45". A separator between the date and the
//     personnummer, the others only where MM (with one where YY begins), YY or the check
//     digits begin, or after 3 and 6 as a telephone number is grouped; none of a time's
//     ':' inside the date.
//   - 13 digits, DDMMYYYY and the personnummer: "01.01.1990 12345", "01011990-123 45".
//   - 11 digits each on its own ("0 1 0 1 9 0 1 2 3 4 5"), with check digits that hold;
//     no ':' between them.
//   - 12 digits, a DUF-nummer's year, sequence and check digits: "2012 345678 90", or in
//     fours with check digits that hold: "2012 3456 7890"; not with a '.' (the seconds of a
//     duration: "1975.30862416").
//
// DDMMYY must be a date once the D-nummer's, the H-nummer's and the synthetic numbers'
// offsets are taken off, YYYY a year from 1800 to 2099, and a DUF-nummer's year 1900 to 2099.
// So a timestamp, a duration, a count grouped by thousands or an address is not one; nor,
// but for 1 in 30 or 100, a list of small numbers or of sizes ("2048 4096 8192").
func idLayout(d string, bounds, colons, dots uint16) bool {
	switch len(d) {
	case 11:
		if bounds == everyDigit11 {
			return colons == 0 && fnrCheckDigitsHold(d)
		}
		return bounds&after6 != 0 && colons&(after2|after3|after4) == 0 && dayMonthApart(bounds) &&
			(bounds&^(after2|after4|after6|after9) == 0 || bounds&^(after3|after6|after9) == 0) &&
			idDate(d[:2], d[2:4], 2000+digitsValue(d[4:6]))
	case 12:
		y := digitsValue(d[:4])
		return (bounds&^(after4|after10) == 0 || bounds == after4|after8 && dufCheckDigits(d[:10]) == d[10:]) &&
			dots == 0 && y >= 1900 && y <= 2099
	case 13:
		y := digitsValue(d[4:8])
		return bounds&after8 != 0 && colons&(after2|after4) == 0 && dayMonthApart(bounds) &&
			bounds&^(after2|after4|after8|after11) == 0 && y >= 1800 && y <= 2099 && idDate(d[:2], d[2:4], y)
	}
	return false
}

// dayMonthApart reports whether a separator after DD is one between DD, MM and the year
// ("01.01.90", not "01.0190").
func dayMonthApart(bounds uint16) bool { return bounds&after2 == 0 || bounds&after4 != 0 }

// idDate reports whether dd and mm are a day and a month of year once the offsets of a
// D-nummer, an H-nummer or a synthetic number are taken off.
func idDate(dd, mm string, year int) bool {
	day, month, _, _, _ := idDayMonth(digitsValue(dd), digitsValue(mm))
	return validDayMonth(day, month, year)
}

// fnrCheckDigitsHold reports whether the 11 ASCII digits d are a fødselsnummer, D-nummer or
// H-nummer: a date (idDate) and check digits that hold under the classic or the 2032 rule.
func fnrCheckDigitsHold(d string) bool {
	var v [11]int
	for i := range v {
		v[i] = int(d[i] - '0')
	}
	r1, r2 := fnrRemainders(&v)
	return r1 <= 3 && r2 == 0 && idDate(d[:2], d[2:4], 2000+digitsValue(d[4:6]))
}
