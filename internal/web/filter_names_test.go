package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestConsole_TerminatedFilterNames: the report of terminated participants (/avsluttede)
// reads its filters as the registration files do (internal/regfile): an enum name in any
// ASCII case. Before 2026-12-07 it upper-cased with Unicode case mapping, so lov=ıl read as
// IL, and an unknown value or an explicit UNSPECIFIED read as no filter: the whole report
// under a URL that named one. Each is now refused with 400 in the page's alert, naming the
// field, the parameter and its values, with no report under it; an empty value is still no
// filter.
func TestConsole_TerminatedFilterNames(t *testing.T) {
	w := newWorld(t)
	key, id := terminatedInHalden(t, w) // an IL programme, with reason ARBEID
	analyst := login(t, w.h, w.tokens["analytiker"])
	get := func(params url.Values) response {
		params.Set("ar", "2024")
		return w.do(http.MethodGet, "/avsluttede?"+params.Encode(), nil, nil, analyst)
	}
	for _, tc := range []struct{ param, value, names string }{
		{"lov", "ıl", "INTROL, IL eller IL_6A"},
		{"lov", "ıntrol", "INTROL, IL eller IL_6A"},
		{"lov", "Unspecified", "INTROL, IL eller IL_6A"},
		{"lov", "law_unspecified", "INTROL, IL eller IL_6A"},
		{"lov", "XYZ", "INTROL, IL eller IL_6A"},
		{"lov", id, "INTROL, IL eller IL_6A"},
		{"kategori", "kan_tilbyſ", "RETT_OG_PLIKT, PLIKT, RETT, KAN_TILBYS eller NONE"},
		{"kategori", "rett_og_plıkt", "RETT_OG_PLIKT, PLIKT, RETT, KAN_TILBYS eller NONE"},
		{"kategori", "scheme_unspecified", "RETT_OG_PLIKT, PLIKT, RETT, KAN_TILBYS eller NONE"},
		{"arsak", "kanskje", "med eller uten"},
		{"arsak", "uTEN\u212A", "med eller uten"},
		{"beregnet", "ja", "med"},
	} {
		r := get(url.Values{tc.param: {tc.value}})
		msg := areaForm{page: true}.message(r.body)
		if r.code != http.StatusBadRequest || !strings.Contains(msg, "Ugyldig verdi") || !strings.Contains(msg, tc.param+": "+tc.names+";") ||
			strings.Contains(r.body, `id="treff"`) || strings.Contains(r.body, key) {
			t.Errorf("/avsluttede?%s=%+q: %d, alert %q, report shown %v; want 400 naming %s and %s, no report",
				tc.param, tc.value, r.code, msg, strings.Contains(r.body, `id="treff"`), tc.param, tc.names)
		}
		if strings.Contains(msg, tc.value) || strings.Contains(r.body, id) {
			t.Errorf("/avsluttede?%s=%+q: the page quotes the value or a national id", tc.param, tc.value)
		}
	}
	// Names in another ASCII case filter as the form's own values do.
	for _, tc := range []struct {
		params   url.Values
		shown    bool
		selected string
	}{
		{url.Values{"lov": {"il"}}, true, `value="IL" selected`},
		{url.Values{"lov": {"Il-6a"}}, false, `value="IL_6A" selected`},
		{url.Values{"lov": {"introl"}}, false, `value="INTROL" selected`},
		{url.Values{"kategori": {"rett_og_plikt"}}, true, `value="RETT_OG_PLIKT" selected`},
		{url.Values{"arsak": {"MED"}}, true, `value="med" selected`},
		{url.Values{"arsak": {"Uten"}}, false, `value="uten" selected`},
		{url.Values{"lov": {""}, "kategori": {""}, "arsak": {""}, "beregnet": {""}}, true, `<option value="">Begge lover</option>`},
	} {
		r := get(tc.params)
		if r.code != http.StatusOK || !strings.Contains(r.body, `id="treff"`) || strings.Contains(r.body, key) != tc.shown || !strings.Contains(r.body, tc.selected) {
			t.Errorf("/avsluttede?%s: %d, shows Halden's participant %v, has %s %v; want 200, %v, true",
				tc.params.Encode(), r.code, strings.Contains(r.body, key), tc.selected, strings.Contains(r.body, tc.selected), tc.shown)
		}
	}
}

// TestConsole_PersonListFilterNames: the person list reads its filters as the CSV export
// does (api.PersonListRequest), so a look-alike is refused in the page's alert naming the
// field, where before 2026-12-07 law=ıl listed the IL persons.
func TestConsole_PersonListFilterNames(t *testing.T) {
	w := newWorld(t)
	analyst := login(t, w.h, w.tokens["analytiker"])
	for _, q := range []string{"law=ıl", "training_category=rett_og_plıkt", "termination_reason=ſykdom", "law=unspecified"} {
		r := w.do(http.MethodGet, "/personer?kommune=0301&"+q, nil, nil, analyst)
		if msg := (areaForm{page: true}).message(r.body); r.code != http.StatusBadRequest || !strings.HasPrefix(msg, "Ugyldig verdi") || strings.Contains(r.body, `id="treff"`) {
			t.Errorf("/personer?kommune=0301&%s: %d, alert %q; want 400 «Ugyldig verdi» and no list", q, r.code, msg)
		}
	}
	if r := w.do(http.MethodGet, "/personer?kommune=0301&law=il", nil, nil, analyst); r.code != http.StatusOK || !strings.Contains(r.body, `id="treff"`) {
		t.Errorf("/personer?kommune=0301&law=il: %d, want the list", r.code)
	}
}
