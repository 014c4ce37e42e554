package web_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// areaForm is a console page or download that takes a kommune or fylke number in its URL.
type areaForm struct {
	name string
	url  func(nr string) string
	// field is how a refusal names the number's field: the console's Norwegian label, or
	// the API's own name in the CSV export (a plain-text answer of api.ExportHandler).
	field string
	// result is in every answer that holds a result, and never in a refusal.
	result string
	fylke  bool // the number is a fylkesnummer
	page   bool // an HTML page (else a download)
}

func statsURL(path, level string) func(string) string {
	return func(nr string) string {
		return path + "?" + url.Values{"ar": {"2023"}, "niva": {level}, "omrade": {nr}}.Encode()
	}
}

// areaForms are every form of the console that takes a kommune or fylke number: the person
// list and its CSV export (kommune), the report of terminated participants (kommune), and
// the statistics page and downloads by kommune and by fylke (omrade). /arsrapportering is
// for kommuner only and takes the caller's own kommune alone (TestConsole_ReportingKommune).
var areaForms = []areaForm{
	{name: "person list", url: func(nr string) string { return "/personer?" + url.Values{"kommune": {nr}}.Encode() },
		field: "Kommune", result: `id="treff"`, page: true},
	// Found on 2026-12-07: the report ignored its kommune; an analyst asking for 0301 got the
	// nation's report, and a kommune asking for another's got its own, both answered 200.
	{name: "terminated report", url: func(nr string) string { return "/avsluttede?" + url.Values{"kommune": {nr}}.Encode() },
		field: "Kommune", result: `id="treff"`, page: true},
	{name: "person list CSV", url: func(nr string) string { return "/personer.csv?" + url.Values{"kommune": {nr}}.Encode() },
		field: "kommune", result: "person_key"},
	{name: "statistics by kommune", url: statsURL("/statistikk", "kommune"), field: "Område", result: "Utviklingen over år", page: true},
	{name: "statistics by kommune CSV", url: statsURL("/statistikk.csv", "kommune"), field: "Område", result: "year,level"},
	{name: "statistics by kommune JSON", url: statsURL("/statistikk.json", "kommune"), field: "Område", result: "["},
	{name: "statistics by fylke", url: statsURL("/statistikk", "fylke"), field: "Område", result: "Utviklingen over år", fylke: true, page: true},
	{name: "statistics by fylke CSV", url: statsURL("/statistikk.csv", "fylke"), field: "Område", result: "year,level", fylke: true},
	{name: "statistics by fylke JSON", url: statsURL("/statistikk.json", "fylke"), field: "Område", result: "[", fylke: true},
}

// areaNumbers are a number in no period of the kommune table, a former one, and another
// kommune's (fylke's) that exists today, for Oslo (0301, fylke 03).
type areaNumbers struct{ none, former, other string }

func (f areaForm) numbers() areaNumbers {
	if f.fylke {
		return areaNumbers{none: "99", former: "30", other: "46"}
	}
	return areaNumbers{none: "9999", former: "0213", other: "4601"}
}

var alertParagraph = regexp.MustCompile(`(?s)role="alert">(.*?)</p>`)

// message is what a refusal says: a page's alert, or a download's whole body.
func (f areaForm) message(body string) string {
	if !f.page {
		return body
	}
	if m := alertParagraph.FindStringSubmatch(body); m != nil {
		return m[1]
	}
	return ""
}

// TestConsole_AreaNumbers walks every form of the console that takes a kommune or fylke
// number (areaForms) with the numbers the API refuses, answers and denies
// (TestQuery_KommuneInNoPeriod, TestQuery_FylkeInNoPeriod): a number in no period of the
// kommune table is refused naming the field, a former number answers, another kommune's is
// denied alike whether it exists or not, and a malformed number is refused naming the field.
// No national id is in a refusal or in the log.
func TestConsole_AreaNumbers(t *testing.T) {
	w := newWorld(t)
	analyst := login(t, w.h, w.tokens["analytiker"])
	oslo := login(t, w.h, w.tokens["oslo"])
	refused := func(t *testing.T, f areaForm, r response, nr string, status int) {
		t.Helper()
		msg := f.message(r.body)
		if r.code != status || !strings.Contains(msg, f.field) || strings.Contains(r.body, f.result) {
			t.Errorf("%s %q: %d %q, want %d naming %s and no result", f.name, nr, r.code, msg, status, f.field)
		}
		if nationalID.MatchString(msg) {
			t.Errorf("%s %q: the refusal holds an 11-digit number", f.name, nr)
		}
	}

	// Found on 2026-12-07: the person list refused kommune 9999 with its alert but then
	// showed «Ingen personer» and «Last ned CSV» under it, a count of a list nobody had read.
	t.Run("InNoPeriod", func(t *testing.T) {
		for _, f := range areaForms {
			nr := f.numbers().none
			refused(t, f, w.do(http.MethodGet, f.url(nr), nil, nil, analyst), nr, http.StatusBadRequest)
		}
	})
	t.Run("Former", func(t *testing.T) {
		for _, f := range areaForms {
			nr := f.numbers().former
			if r := w.do(http.MethodGet, f.url(nr), nil, nil, analyst); r.code != http.StatusOK || !strings.Contains(r.body, f.result) || f.message(r.body) != "" && f.page {
				t.Errorf("%s, former %s: %d %q, want an answer", f.name, nr, r.code, f.message(r.body))
			}
		}
		// A former fylke answers in a year after its end too (30 Viken ended in 2023).
		if r := w.do(http.MethodGet, "/statistikk?ar=2025&niva=fylke&omrade=30", nil, nil, analyst); r.code != http.StatusOK {
			t.Errorf("statistics by fylke, 30 in 2025: %d, want an answer", r.code)
		}
	})
	// Oslo is denied another kommune's (fylke's) number with one and the same answer
	// whether the number exists today, existed once or never did.
	t.Run("OtherKommune", func(t *testing.T) {
		for _, f := range areaForms {
			n := f.numbers()
			var first string
			for _, nr := range []string{n.other, n.former, n.none} {
				r := w.do(http.MethodGet, f.url(nr), nil, nil, oslo)
				if r.code != http.StatusForbidden || strings.Contains(r.body, f.result) {
					t.Errorf("%s, Oslo asking for %s: %d, want 403 and no result", f.name, nr, r.code)
				}
				// The session's CSRF token is random text that may hold the digits.
				same := csrfField.ReplaceAllString(r.body, "")
				same = regexp.MustCompile(`\b`+nr+`\b`).ReplaceAllString(same, "NR")
				if first == "" {
					first = same
				} else if same != first {
					t.Errorf("%s, Oslo asking for %s: the answer differs from that for %s:\n%s\n---\n%s", f.name, nr, n.other, same, first)
				}
			}
		}
	})
	// A malformed number is refused naming the field, for a kommune too: Oslo mistyping its
	// own number on the statistics form («301») was told «Du har ikke tilgang til dette»
	// (TestQuery_KommuneMalformed).
	t.Run("Malformed", func(t *testing.T) {
		for _, f := range areaForms {
			bad := []string{"abcd", "03011", "+0301", "301", "03 01", "0301-"}
			if f.fylke {
				bad = []string{"ab", "030", "+3", "3", "0 3", "0301"}
			}
			for _, nr := range bad {
				for _, who := range []*http.Cookie{analyst, oslo} {
					refused(t, f, w.do(http.MethodGet, f.url(nr), nil, nil, who), nr, http.StatusBadRequest)
				}
			}
		}
	})
	// An empty kommune asks for one (the person list's prompt, the export's «required»); an
	// empty area is every area (the statistics form's hint «tomt: alle»).
	t.Run("Empty", func(t *testing.T) {
		r := w.do(http.MethodGet, "/personer", nil, nil, analyst)
		if !strings.Contains(r.body, "Velg en kommune") || strings.Contains(r.body, `id="treff"`) {
			t.Errorf("person list without a kommune: %d, want the prompt and no result", r.code)
		}
		if r := w.do(http.MethodGet, "/personer.csv?kommune=", nil, nil, analyst); r.code != http.StatusBadRequest || !strings.Contains(r.body, "kommune") {
			t.Errorf("person list CSV without a kommune: %d %q, want 400 naming kommune", r.code, r.body)
		}
	})
	// Spaces around a number are trimmed, as every parameter of the CSV export
	// (api.PersonListRequest) and the statistics' area are: " 0301 " is Oslo's answer.
	t.Run("Spaces", func(t *testing.T) {
		for _, f := range areaForms {
			nr := "0301"
			if f.fylke {
				nr = "03"
			}
			for _, who := range []*http.Cookie{analyst, oslo} {
				if r := w.do(http.MethodGet, f.url(" "+nr+" "), nil, nil, who); r.code != http.StatusOK || !strings.Contains(r.body, f.result) {
					t.Errorf("%s %q: %d, want the answer for %s", f.name, " "+nr+" ", r.code, nr)
				}
			}
		}
	})
	// A national id typed into the number's field is refused without being quoted.
	t.Run("NationalID", func(t *testing.T) {
		fnr := w.ids[w.persons["0301"][0]]
		for _, f := range areaForms {
			for _, who := range []*http.Cookie{analyst, oslo} {
				refused(t, f, w.do(http.MethodGet, f.url(fnr), nil, nil, who), "a national id", http.StatusBadRequest)
			}
		}
	})
	// A national id typed as a statistics snapshot's name (a well-formed name, and no such
	// snapshot) is not quoted in the page's refusal; the API masks it in its own message.
	t.Run("NationalIDAsSnapshot", func(t *testing.T) {
		fnr := w.ids[w.persons["0301"][0]]
		r := w.do(http.MethodGet, "/statistikk?"+url.Values{"ar": {"2023"}, "niva": {"nasjon"}, "snapshot": {fnr}}.Encode(), nil, nil, analyst)
		msg := areaForm{page: true}.message(r.body)
		if r.code != http.StatusNotFound || strings.Contains(msg, fnr) || !strings.Contains(msg, "Fant ikke øyeblikksbildet") {
			t.Errorf("statistics of a snapshot named by a national id: %d, the alert quotes it: %v, says no such snapshot: %v; want 404 saying no such snapshot, the name masked",
				r.code, strings.Contains(msg, fnr), strings.Contains(msg, "Fant ikke øyeblikksbildet"))
		}
		// Nor anywhere else on the page, but in the form's field as typed: above the alert,
		// «Tallene er fra øyeblikksbildet «<the id>»» quoted it and said the figures, which
		// the page does not show, were the snapshot's (a review, 2026-12-07).
		field := `value="` + fnr + `"`
		if n := strings.Count(r.body, fnr) - strings.Count(r.body, field); n != 0 || strings.Contains(r.body, "Tallene er fra øyeblikksbildet") {
			t.Errorf("the page of a snapshot not found quotes its name %d times outside the form's field, and says its figures are the snapshot's: %v; want neither",
				n, strings.Contains(r.body, "Tallene er fra øyeblikksbildet"))
		}
	})
	log := w.logged()
	for key, id := range w.ids {
		if strings.Contains(log, id) {
			t.Fatalf("the log holds the national id of person %s", key)
		}
	}
}
