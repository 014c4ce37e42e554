package rules

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// National identifiers (DOMAIN.md 7.1, 7.2; "Product decisions" 9).
//
// A fødselsnummer or D-nummer is 11 digits: DDMMYY, individnummer III and the
// check digits K1 K2. A D-nummer has 4 added to the first digit (day 41 to
// 71). Two check-digit rules are accepted in parallel (Skatteetaten, S29):
//
//   - classic (1964): (Σ w1·d + K1) mod 11 == 0, and (Σ w2·d + K2) mod 11 == 0;
//   - from 2032: (Σ w1·d + K1) mod 11 ∈ {0,1,2,3}, K2 unchanged.
//
// A number whose K1 remainder is 0 is valid under both rules. Only for those
// "classic" numbers do the individnummer and DDMMYY give the birth century and
// sex; a number valid only under the 2032 rule carries neither (read them from
// Folkeregisteret).
//
// Month + 80 (dd8Myy / dd9Myy) marks Skatteetaten's synthetic test numbers:
// they are accepted and marked Synthetic, so tests and demo data never look
// like a real person. Month + 40 is the health sector's internal H-nummer; the
// register refuses it (ErrHNummer), since it is not an identity Folkeregisteret
// or UDI knows. Note that some test-data tools use month + 40 for synthetic
// numbers; those are refused as well.
//
// A DUF-nummer is 12 digits: a 4-digit year, a 6-digit sequence and 2 check
// digits equal to (Σ w·d) mod 11 zero-padded ("00" to "10").
//
// Errors never contain the number: they name the kind of number and what is
// wrong with it, so they can be logged and returned to clients.

var (
	fnrWeights1 = [9]int{3, 7, 6, 1, 8, 9, 4, 5, 2}
	fnrWeights2 = [10]int{5, 4, 3, 2, 7, 6, 5, 4, 3, 2}
	dufWeights  = [10]int{4, 6, 3, 2, 4, 6, 3, 2, 7, 5}
)

// Sentinel errors of identifier validation. Every error returned by the
// functions in this file is an *IDError that matches ErrInvalidNationalID and
// exactly one of the more specific sentinels below.
var (
	// ErrInvalidNationalID is returned when a fødselsnummer, D-nummer or
	// DUF-nummer is not valid, whatever the reason.
	ErrInvalidNationalID = errors.New("invalid national id")
	// ErrIDLength is returned when a national id has the wrong number of
	// characters (11 for fødselsnummer and D-nummer, 12 for DUF-nummer).
	ErrIDLength = errors.New("wrong length")
	// ErrIDNotDigits is returned when a national id contains anything but the
	// ASCII digits 0 to 9 (spaces and separators included).
	ErrIDNotDigits = errors.New("contains a character that is not a digit")
	// ErrIDDate is returned when the date part of a fødselsnummer or D-nummer
	// is not a calendar date (after removing the D-nummer and synthetic offsets).
	ErrIDDate = errors.New("date part is not a valid date")
	// ErrHNummer is returned when the month part is month + 40, an H-nummer
	// (health sector internal number), which the register does not accept.
	ErrHNummer = errors.New("is an H-nummer (month + 40), which is not accepted")
	// ErrCheckDigit1 is returned when the first check digit (K1) of a
	// fødselsnummer or D-nummer is wrong under both the classic and the 2032 rule.
	ErrCheckDigit1 = errors.New("check digit 1 is wrong")
	// ErrCheckDigit2 is returned when the second check digit (K2) of a
	// fødselsnummer or D-nummer is wrong.
	ErrCheckDigit2 = errors.New("check digit 2 is wrong")
	// ErrDUFCheckDigits is returned when the two check digits of a DUF-nummer
	// are wrong.
	ErrDUFCheckDigits = errors.New("check digits are wrong")
	// ErrIDType is returned when a number is valid in form but of another type
	// than the field expects, such as a D-nummer given as fødselsnummer.
	ErrIDType = errors.New("is of another identifier type")
)

// IDError describes why a national id is invalid, without the number itself.
// It matches ErrInvalidNationalID and Reason with errors.Is.
type IDError struct {
	// Type is what the number was expected or detected to be; UNSPECIFIED
	// when its length matched no type.
	Type nirv1.IdentifierType
	// Reason is one of the sentinel errors ErrIDLength … ErrIDType.
	Reason error
}

func (e *IDError) Error() string {
	return "invalid " + idTypeName(e.Type) + ": " + e.Reason.Error()
}

// Unwrap lets errors.Is match both ErrInvalidNationalID and the reason.
func (e *IDError) Unwrap() []error { return []error{ErrInvalidNationalID, e.Reason} }

func idTypeName(t nirv1.IdentifierType) string {
	switch t {
	case nirv1.IdentifierType_IDENTIFIER_TYPE_FODSELSNUMMER:
		return "fødselsnummer"
	case nirv1.IdentifierType_IDENTIFIER_TYPE_D_NUMMER:
		return "D-nummer"
	case nirv1.IdentifierType_IDENTIFIER_TYPE_DUF_NUMMER:
		return "DUF-nummer"
	}
	return "national id"
}

// CheckRule says which check-digit rule a fødselsnummer or D-nummer satisfies.
type CheckRule uint8

const (
	// RuleNone applies to DUF-nummer, which has its own check digits.
	RuleNone CheckRule = iota
	// RuleClassic is the 1964 rule: K1 remainder 0. Such a number is also
	// valid under the 2032 rule.
	RuleClassic
	// Rule2032 is the rule for numbers issued from 2032: K1 remainder 1, 2 or 3.
	// The number carries no century or sex.
	Rule2032
)

func (r CheckRule) String() string {
	switch r {
	case RuleClassic:
		return "classic"
	case Rule2032:
		return "2032"
	}
	return "none"
}

// NationalID is a validated fødselsnummer, D-nummer or DUF-nummer. The zero
// value is not a valid id (Type is UNSPECIFIED).
//
// To keep the number out of logs, NationalID formats as a redacted
// placeholder with every fmt verb and as a log/slog value; only Digits returns
// the number.
type NationalID struct {
	typ       nirv1.IdentifierType
	digits    string
	synthetic bool
	rule      CheckRule
	birth     Date
	sex       nirv1.Sex
}

// Type returns the kind of identifier.
func (n NationalID) Type() nirv1.IdentifierType { return n.typ }

// Digits returns the number itself. It is personal data: never put it in
// logs, metrics, subjects or error messages.
func (n NationalID) Digits() string { return n.digits }

// Synthetic reports whether the number carries Skatteetaten's synthetic
// marker (month + 80), so it cannot belong to a real person.
func (n NationalID) Synthetic() bool { return n.synthetic }

// Rule returns the check-digit rule the number satisfies (RuleNone for DUF).
func (n NationalID) Rule() CheckRule { return n.rule }

// BirthDate returns the birth date encoded in a classic fødselsnummer or
// D-nummer. It reports false for DUF-nummer, for numbers valid only under the
// 2032 rule, and for classic numbers whose individnummer range does not say
// the century (DOMAIN.md 7.1) or whose date does not exist in that century.
func (n NationalID) BirthDate() (Date, bool) { return n.birth, !n.birth.IsZero() }

// Sex returns the sex encoded in a classic fødselsnummer or D-nummer (ninth
// digit odd = male), and SEX_UNSPECIFIED for 2032-rule numbers and DUF-nummer.
func (n NationalID) Sex() nirv1.Sex { return n.sex }

// DUFYear returns the year part of a DUF-nummer, and 0 for other types.
func (n NationalID) DUFYear() int {
	if n.typ != nirv1.IdentifierType_IDENTIFIER_TYPE_DUF_NUMMER {
		return 0
	}
	y, _ := atoiDigits(n.digits[:4])
	return y
}

// String returns a redacted placeholder such as "fødselsnummer(redacted)".
func (n NationalID) String() string { return idTypeName(n.typ) + "(redacted)" }

// Format writes the redacted placeholder for every verb, so %d, %+v or %#v
// cannot print the digits through reflection.
func (n NationalID) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(n.String())) }

// LogValue implements slog.LogValuer with the redacted placeholder.
func (n NationalID) LogValue() slog.Value { return slog.StringValue(n.String()) }

// ParseNationalID validates s and detects its type: 12 digits is a
// DUF-nummer, 11 digits a D-nummer when the first digit is 4 to 7 and a
// fødselsnummer otherwise. s must be the bare digits, without spaces.
// Errors are *IDError values (see ErrInvalidNationalID).
func ParseNationalID(s string) (NationalID, error) {
	switch len(s) {
	case 11:
		return parseFnrOrDnr(s)
	case 12:
		return parseDUF(s)
	}
	return NationalID{}, &IDError{Reason: ErrIDLength}
}

// ValidateFodselsnummer returns nil if s is a valid fødselsnummer (classic or
// 2032 rule, synthetic allowed). A valid D-nummer is refused with ErrIDType.
func ValidateFodselsnummer(s string) error {
	return validateAs(s, nirv1.IdentifierType_IDENTIFIER_TYPE_FODSELSNUMMER)
}

// ValidateDNummer returns nil if s is a valid D-nummer (classic or 2032 rule,
// synthetic allowed). A valid fødselsnummer is refused with ErrIDType.
func ValidateDNummer(s string) error {
	return validateAs(s, nirv1.IdentifierType_IDENTIFIER_TYPE_D_NUMMER)
}

// ValidateDUF returns nil if s is a valid DUF-nummer.
func ValidateDUF(s string) error {
	return validateAs(s, nirv1.IdentifierType_IDENTIFIER_TYPE_DUF_NUMMER)
}

func validateAs(s string, want nirv1.IdentifierType) error {
	wantLen := 11
	if want == nirv1.IdentifierType_IDENTIFIER_TYPE_DUF_NUMMER {
		wantLen = 12
	}
	if len(s) != wantLen {
		return &IDError{Type: want, Reason: ErrIDLength}
	}
	id, err := ParseNationalID(s)
	var ie *IDError
	switch {
	case errors.As(err, &ie) && ie.Type != want:
		// An 11-digit number whose first digit says the other type: as the
		// expected type its day is out of range (D-nummer days are 41-71).
		return &IDError{Type: want, Reason: ErrIDDate}
	case err != nil:
		return err
	case id.typ != want:
		return &IDError{Type: want, Reason: ErrIDType}
	}
	return nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func parseFnrOrDnr(s string) (NationalID, error) {
	typ := nirv1.IdentifierType_IDENTIFIER_TYPE_FODSELSNUMMER
	if !allDigits(s) {
		return NationalID{}, &IDError{Type: typ, Reason: ErrIDNotDigits}
	}
	var d [11]int
	for i := range d {
		d[i] = int(s[i] - '0')
	}
	yy := d[4]*10 + d[5]
	day, month, dnummer, synthetic, hnummer := idDayMonth(d[0]*10+d[1], d[2]*10+d[3])
	if dnummer {
		typ = nirv1.IdentifierType_IDENTIFIER_TYPE_D_NUMMER
	}
	if hnummer {
		return NationalID{}, &IDError{Type: typ, Reason: ErrHNummer}
	}
	// The century is unknown in general (2032-rule numbers), so like
	// Skatteetaten's validator accept 29 February when yy is divisible by 4
	// (00 counting as 2000).
	if !validDayMonth(day, month, 2000+yy) {
		return NationalID{}, &IDError{Type: typ, Reason: ErrIDDate}
	}

	r1, r2 := fnrRemainders(&d)
	if r1 > 3 {
		return NationalID{}, &IDError{Type: typ, Reason: ErrCheckDigit1}
	}
	if r2 != 0 {
		return NationalID{}, &IDError{Type: typ, Reason: ErrCheckDigit2}
	}

	id := NationalID{typ: typ, digits: s, synthetic: synthetic, rule: Rule2032}
	if r1 == 0 {
		id.rule = RuleClassic
		if d[8]%2 == 1 {
			id.sex = nirv1.Sex_SEX_MALE
		} else {
			id.sex = nirv1.Sex_SEX_FEMALE
		}
		individ := d[6]*100 + d[7]*10 + d[8]
		if century, ok := centuryOf(individ, yy); ok {
			if b, ok := NewDate(century+yy, time.Month(month), day); ok {
				id.birth = b
			}
		}
	}
	return id, nil
}

// fnrRemainders returns the remainders mod 11 of the sums of the check digits K1 and K2 of
// a fødselsnummer or D-nummer: r1 is 0 under the classic rule and 0 to 3 under the 2032
// rule, r2 is 0 under both.
func fnrRemainders(d *[11]int) (r1, r2 int) {
	r1, r2 = d[9], d[10]
	for i, w := range fnrWeights1 {
		r1 += w * d[i]
	}
	for i, w := range fnrWeights2 {
		r2 += w * d[i]
	}
	return r1 % 11, r2 % 11
}

// idDayMonth takes the offsets off the DD and MM of a fødselsnummer: day + 40 for a D-nummer,
// month + 80 for a synthetic number and month + 40 for an H-nummer.
func idDayMonth(dd, mm int) (day, month int, dnummer, synthetic, hnummer bool) {
	day, month = dd, mm
	if day >= 40 {
		day, dnummer = day-40, true
	}
	switch {
	case month >= 81 && month <= 92:
		month, synthetic = month-80, true
	case month >= 41 && month <= 52:
		month, hnummer = month-40, true
	}
	return day, month, dnummer, synthetic, hnummer
}

// validDayMonth reports whether day and month (offsets taken off) are a date in year.
func validDayMonth(day, month, year int) bool {
	return month >= 1 && month <= 12 && day >= 1 && day <= DaysIn(year, time.Month(month))
}

// centuryOf returns the birth century of a classic number from its
// individnummer and two-digit year (DOMAIN.md 7.1, S31).
func centuryOf(individ, yy int) (int, bool) {
	switch {
	case individ <= 499:
		return 1900, true
	case individ <= 749 && yy > 54:
		return 1800, true
	case individ >= 900 && yy > 39:
		return 1900, true
	case yy < 40:
		return 2000, true
	}
	return 0, false
}

func parseDUF(s string) (NationalID, error) {
	typ := nirv1.IdentifierType_IDENTIFIER_TYPE_DUF_NUMMER
	if !allDigits(s) {
		return NationalID{}, &IDError{Type: typ, Reason: ErrIDNotDigits}
	}
	if s[10:] != dufCheckDigits(s[:10]) {
		return NationalID{}, &IDError{Type: typ, Reason: ErrDUFCheckDigits}
	}
	return NationalID{typ: typ, digits: s}, nil
}

// dufCheckDigits returns the two check digits of the first ten digits of a
// DUF-nummer: (Σ w·d) mod 11, zero-padded. first10 must be 10 ASCII digits.
func dufCheckDigits(first10 string) string {
	sum := 0
	for i, w := range dufWeights {
		sum += w * int(first10[i]-'0')
	}
	r := sum % 11
	return string([]byte{byte('0' + r/10), byte('0' + r%10)})
}

// SyntheticFodselsnummer returns a synthetic fødselsnummer for birth:
// classic check digits, Skatteetaten's synthetic marker (month + 80) and an
// individnummer in the range that encodes birth's century, so ParseNationalID
// gives back birth, Synthetic() == true and RuleClassic. Different seq values
// in [0, n) give different numbers, where n is the count of individnummer
// with valid check digits for that date (about 410 for births 1900-1939 and
// 2000-2039, 500 for 1940-1999 and 200 for 1855-1899); seq is taken modulo n.
//
// It is meant for tests and demo data. It panics if birth is not a valid date
// in 1855 to 2039, the years a classic number can encode.
func SyntheticFodselsnummer(birth Date, seq int) string {
	return synthetic(birth, seq, false)
}

// SyntheticDNummer is SyntheticFodselsnummer for a D-nummer (day + 40).
func SyntheticDNummer(birth Date, seq int) string {
	return synthetic(birth, seq, true)
}

func synthetic(birth Date, seq int, dnummer bool) string {
	if !birth.Valid() || birth.Y < 1855 || birth.Y > 2039 {
		panic(fmt.Sprintf("rules.SyntheticFodselsnummer: birth date %s outside 1855-2039", birth))
	}
	yy := birth.Y % 100
	// Individnummer ranges that decode to this century (see centuryOf).
	var ranges [][2]int
	switch {
	case birth.Y < 1900:
		ranges = [][2]int{{500, 749}}
	case birth.Y < 1940:
		ranges = [][2]int{{0, 499}}
	case birth.Y < 2000:
		ranges = [][2]int{{0, 499}, {900, 999}}
	default:
		ranges = [][2]int{{500, 999}}
	}
	day := birth.D
	if dnummer {
		day += 40
	}
	var b [11]byte
	put2 := func(i, v int) { b[i], b[i+1] = byte('0'+v/10), byte('0'+v%10) }
	put2(0, day)
	put2(2, int(birth.M)+80)
	put2(4, yy)

	// The prefix sums of the date part are shared by every candidate.
	var base1, base2 int
	for i := 0; i < 6; i++ {
		base1 += fnrWeights1[i] * int(b[i]-'0')
		base2 += fnrWeights2[i] * int(b[i]-'0')
	}
	type cand struct{ individ, k1, k2 int }
	check := func(individ int) (cand, bool) {
		i1, i2, i3 := individ/100, individ/10%10, individ%10
		s1 := base1 + fnrWeights1[6]*i1 + fnrWeights1[7]*i2 + fnrWeights1[8]*i3
		k1 := (11 - s1%11) % 11
		if k1 == 10 {
			return cand{}, false
		}
		s2 := base2 + fnrWeights2[6]*i1 + fnrWeights2[7]*i2 + fnrWeights2[8]*i3 + fnrWeights2[9]*k1
		k2 := (11 - s2%11) % 11
		if k2 == 10 {
			return cand{}, false
		}
		return cand{individ, k1, k2}, true
	}
	// Find the seq-th candidate with valid check digits; when seq is past
	// the count n, go round again with seq mod n.
	want := seq
	for pass := 0; pass < 2; pass++ {
		n := 0
		for _, r := range ranges {
			for i := r[0]; i <= r[1]; i++ {
				c, ok := check(i)
				if !ok {
					continue
				}
				if n == want {
					b[6], b[7], b[8] = byte('0'+c.individ/100), byte('0'+c.individ/10%10), byte('0'+c.individ%10)
					b[9], b[10] = byte('0'+c.k1), byte('0'+c.k2)
					return string(b[:])
				}
				n++
			}
		}
		want = seq % n
		if want < 0 {
			want += n
		}
	}
	panic("unreachable")
}

// KeyingID returns the national id that keys a newly registered person: the fødselsnummer,
// else the D-nummer, else the DUF-nummer (DESIGN.md "Events": the person key is a keyed hash
// of the first national id registered). It is "" when the event names none.
func KeyingID(pr *nirv1.PersonRegistered) string {
	switch {
	case pr.GetFodselsnummer() != "":
		return pr.GetFodselsnummer()
	case pr.GetDNummer() != "":
		return pr.GetDNummer()
	}
	return pr.GetDufNummer()
}

// nationalIDRun is a run of digits as long as a national id (fødselsnummer, D-nummer: 11;
// DUF-nummer: 12) or longer, wherever it stands (also inside a longer token), or a
// fødselsnummer the way people write it: the birth date, one separator (-, space, dot, or
// the + and %20 a URL puts for a space) and the personnummer ("010190-12345"); or split by
// what a path, a file name, a list or a quoted string puts between them (/ _ : , ; | \, a
// tab or a line break, URL-encoded or escaped as a quoted string writes it:
// "/personer/010190/12345", "010190\n12345", "010190%0A12345"; found by mutation testing of
// regfile and its review on 2026-12-07).
var nationalIDRun = regexp.MustCompile(`[0-9]{11,}|[0-9]{6}(?:[-. +/_:,;|\\\t\n]|\r\n?|%20|%2[fF]|%0[aAdD9]|%5[fF]|%3[aAbB]|%2[cC]|%7[cC]|\\[ntr/])[0-9]{5,}`)

// RedactIDs masks every run of 11 or more digits in s, and every 6 digits, a separator and 5
// digits (a formatted fødselsnummer), for a message or a log line that quotes what a client
// sent: a decoder's error ("invalid value for string field nationalId: 12345678901"), a
// query parameter's name, a URL path.
//
// It masks as well a national id whose digit groups are joined by any number of the
// separators above or of the no-break, thin, figure or ideographic spaces, the dashes and
// the full-width forms a document puts between digits ("010190 – 12345", wideSeparator),
// as they are or URL-encoded once or twice ("%2520"), where people split an id (idLayout):
// several in a row ("010190 - 12345", "010190--12345", "010190    12345"), grouped digits
// ("0101 90 123 45", "01 01 90 12345", "010 190 123 45", "0101.90.12345"), a dotted,
// dashed or slashed date with a two- or four-digit year ("01.01.90 12345",
// "01/01/90-12345", "01.01.1990 12345"), a grouped DUF-nummer ("2012 345678 90"); and,
// when their check digits hold, a DUF-nummer in fours ("2012 3456 7802") and a
// fødselsnummer digit by digit ("0 1 8 1 9 0 0 0 0 4 9"). Its digits may be any Unicode
// decimal digits (full-width "０", Arabic-Indic "٠"), raw, URL-encoded or escaped
// ("%EF%BC%90", "\uff10"), or ASCII ones URL-encoded ("%30"); 11 or more such digits in a
// row are masked too. Its date must be one (day + 40, month + 40 or + 80 allowed) and its
// groups must fall where people split an id, so that nird's own figures stay: timestamps
// ("2026-12-07 11:06:45", "11:06:45.816+01:00": no ':' in a date), durations and seconds
// ("12.345678901s", "1975.30862416": 2 and 9 digits, no '.' in a DUF-nummer), IPv4
// addresses ("192.10.12.90:12345", never an id, nor "101.190.123.45"), numbers grouped by
// thousands, kommune numbers, ULIDs, UUIDs and hashes (a letter joins nothing). An ISO date
// with a personnummer ("1990-01-01 12345") is not masked: a dated count looks the same.
func RedactIDs(s string) string {
	return nationalIDRun.ReplaceAllString(maskGroupedIDs(s, "<redacted>"), "<redacted>")
}

// numberRun is a number as a client may write one: digits, and the '.', 'e', '+' and '-' of
// a decimal, an exponent or a date between them.
var numberRun = regexp.MustCompile(`[0-9][0-9.eE+-]*[0-9]`)

// RedactInput is RedactIDs for a message that quotes a value a client sent (a decoder's
// error, a refused CSV cell), where a national id may also come as a number: its leading
// zero dropped by a spreadsheet or a serializer that typed it as a number (10 digits, a
// third of fødselsnumre start with 0), or as a decimal or an exponent ("0483900097.4",
// "0.4839000974e10"). Every such number of 10 digits or more is masked as well, and so is
// every quoted string or bare token holding 10 digits or more, whatever separates them
// ("010190\/12345" as JSON escapes a slash, "010190:12345", 010190x12345). Not for log
// lines of nird's own figures (durations of 10 digits after the point would be masked).
func RedactInput(s string) string {
	s = numberRun.ReplaceAllStringFunc(s, func(n string) string { return redactTen(n, "<redacted>") })
	s = mapInputTokens(s, func(t string) string {
		if strings.HasPrefix(t, `"`) {
			return redactTen(t, `"<redacted>"`)
		}
		return redactTen(t, "<redacted>")
	})
	return RedactIDs(s)
}

// inputTokenEnds are the characters that end a bare token (white space as a regexp's \s).
const inputTokenEnds = " \t\n\f\r\"():"

// mapInputTokens replaces with f(t) each value t in s as a decoder's error quotes it: a
// string as written, escapes and all ("…", a backslash escaping any character but a line
// break), or else a bare token (a run of anything but white space, '"', '(', ')' and ':').
// It takes one pass: where a '"' opens no string, neither does any '"' it passes over (each
// is escaped, and reads the same text after it). A regexp took from each '"' of an unclosed
// `"\"\"\"…` to the end of the input, quadratic in what a client sent.
func mapInputTokens(s string, f func(string) string) string {
	var b strings.Builder
	last, open := 0, 0 // no '"' before open opens a string
	for i := 0; i < len(s); {
		end := i
		switch {
		case s[i] == '"' && i >= open:
			var ok bool
			if end, ok = quotedEnd(s, i); !ok {
				open, end = end, i
			}
		case strings.IndexByte(inputTokenEnds, s[i]) < 0:
			for end < len(s) && strings.IndexByte(inputTokenEnds, s[end]) < 0 {
				end++
			}
		}
		if end == i {
			i++
			continue
		}
		b.WriteString(s[last:i])
		b.WriteString(f(s[i:end]))
		last, i = end, end
	}
	b.WriteString(s[last:])
	return b.String()
}

// quotedEnd returns the end of the string the '"' at s[i] opens, after its closing '"'; or,
// with false, where it stops without one: at a backslash before a line break or the end of
// s, or at the end.
func quotedEnd(s string, i int) (int, bool) {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '"':
			return j + 1, true
		case '\\':
			if j+1 == len(s) || s[j+1] == '\n' {
				return j, false
			}
			j++
		}
	}
	return len(s), false
}

// RedactDigits returns "<redacted>" for a value holding 10 digits or more, whatever stands
// between them, else the value: for a value quoted whole in a message, such as a CSV cell,
// where a national id may be split by anything (a line break in a quoted cell, a slash) or
// have lost its leading zero. A value worth quoting rarely holds so many (a date has eight).
func RedactDigits(s string) string { return redactTen(s, "<redacted>") }

// redactTen returns mask when s holds 10 digits or more, else s.
func redactTen(s, mask string) string {
	if countDigits(s) >= 10 {
		return mask
	}
	return s
}
