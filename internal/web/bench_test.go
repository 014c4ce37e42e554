package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/introreg/nir/internal/api"
	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/demo"
	"github.com/introreg/nir/internal/personkey"
	"github.com/introreg/nir/internal/web"
	"github.com/introreg/nir/projections"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// oneKommune is the demo population with every person in one kommune (0301), as read-model
// records: a 20 000-person kommune, the size the issue asks the person list to stay fast at.
func oneKommune(tb testing.TB, persons int, today rules.Date) []projections.Record {
	tb.Helper()
	keys, err := personkey.New([]byte("benchmark secret, not a real one"))
	if err != nil {
		tb.Fatal(err)
	}
	var recs []projections.Record
	at := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	for evs := range demo.Generate(5, persons, today) {
		pk := keys.Key(rules.KeyingID(evs[0].GetPersonRegistered()))
		for _, ev := range evs {
			ev.PersonKey, ev.Kommune = pk, "0301"
			ev.RecordedAt = timestamppb.New(at)
			ev.Actor = &nirv1.Actor{Subject: "bench", Role: nirv1.ActorRole_ACTOR_ROLE_KOMMUNE}
			if pr := ev.GetPersonRegistered(); pr != nil {
				pr.SettlementKommune = "0301"
			}
			if m := ev.GetPersonMoved(); m != nil {
				m.ToKommune = "0301"
			}
			recs = append(recs, projections.Record{Seq: uint64(len(recs) + 1), Event: ev})
		}
	}
	return recs
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// benchConsole serves the console over read models of persons, and returns its handler and
// a logged-in session cookie of Oslo's caseworker.
func benchConsole(b *testing.B, persons int) (http.Handler, *http.Cookie) {
	b.Helper()
	today := rules.MustDate(2025, 11, 20)
	proj, err := projections.New(projections.NewSliceFeed(oneKommune(b, persons, today)), projections.Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { proj.Close() })
	if _, err := proj.CatchUp(context.Background()); err != nil {
		b.Fatal(err)
	}
	token, entry, err := auth.GenerateToken(auth.Principal{Name: "oslo", Role: auth.RoleKommune, Kommune: "0301"})
	if err != nil {
		b.Fatal(err)
	}
	authn, err := auth.New([]auth.Entry{entry})
	if err != nil {
		b.Fatal(err)
	}
	now := func() time.Time { return today.Time().Add(12 * time.Hour) }
	c, err := web.New(web.Config{
		Query: api.NewQuery(api.QueryConfig{Source: proj, Now: now}), Registration: api.NewRegistration(nil, nil, nil),
		Admin: api.NewAdmin(proj, nil), Policy: api.Policy(), Providers: []web.Provider{web.TokenLogin(authn)}, Now: now,
	})
	if err != nil {
		b.Fatal(err)
	}
	h := c.Handler()
	return h, login(b, h, token)
}

// login logs in through the form and returns the session cookie.
func login(tb testing.TB, h http.Handler, token string) *http.Cookie {
	tb.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/logg-inn", nil))
	m := csrfField.FindStringSubmatch(rec.Body.String())
	if m == nil {
		tb.Fatal("log-in page has no CSRF field")
	}
	form := url.Values{"csrf": {m[1]}, "nokkel": {token}}
	req := httptest.NewRequest(http.MethodPost, "/logg-inn/nokkel/", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, ck := range rec.Result().Cookies() {
		req.AddCookie(ck)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	for _, ck := range rec.Result().Cookies() {
		if ck.Name == "nir_okt" && ck.Value != "" {
			return ck
		}
	}
	tb.Fatalf("log-in failed: status %d", rec.Code)
	return nil
}

// BenchmarkPersonListPage measures the person list page of a 20 000-person kommune on the
// server, from the session cookie to the last byte of HTML: the session lookup, the API's
// authorization, ListPersons over the read models, and the template. It cycles through
// filters, sort orders and pages (first, middle, last) and reports the p50 and p99 of the
// requests' durations.
//
//	go test -run '^$' -bench BenchmarkPersonListPage -benchtime 400x ./internal/web/
func BenchmarkPersonListPage(b *testing.B) {
	h, session := benchConsole(b, 20000)
	queries := []string{
		"",
		"sort=birth_date&desc=true",
		"programme_vedtak=with&sluttmal=without",
		"law=IL&tiltak=with&sort=programme_end",
		"training_vedtak=with&norsk_hours=without",
		"deadline=overdue&sort=norsk_deadline",
		"deadline=due_within&within_days=60",
		"registered_reason=without&year=2024",
		"min_norsk_hours=100&sort=norsk_hours&desc=true",
		"side=40",
		"side=200&antall=50",
		"utdanningsbakgrunn=without&training_category=RETT_OG_PLIKT&antall=200",
	}
	// Warm the kommune's decoded rows once, as any query after start-up does.
	serve(b, h, session, "/personer")
	b.ResetTimer()
	cpu0 := cpuTime()
	var durs []time.Duration
	i := 0
	for b.Loop() {
		path := "/personer"
		if q := queries[i%len(queries)]; q != "" {
			path += "?" + q
		}
		i++
		t0 := time.Now()
		serve(b, h, session, path)
		durs = append(durs, time.Since(t0))
	}
	cpu := cpuTime() - cpu0
	slices.Sort(durs)
	pct := func(p float64) float64 {
		return float64(durs[min(len(durs)-1, int(p*float64(len(durs))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	// CPU per request: what a page costs, whatever else the shared machine runs.
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(len(durs)), "cpu-ms/op")
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func serve(b *testing.B, h http.Handler, session *http.Cookie, path string) {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.AddCookie(session)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `id="treff"`) {
		b.Fatalf("%s: status %d", path, rec.Code)
	}
}
