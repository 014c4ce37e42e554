package web_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/introreg/nir/internal/api"
	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/web"
	"github.com/introreg/nir/projections"
	"github.com/introreg/nir/rules"
)

// smallConsole is the console over empty read models (real bbolt files) with a token file
// of two kommuner, a clock the test moves, and the configuration cfg (its Query,
// Registration, Admin, Policy, Providers and Now are filled in).
type smallConsole struct {
	c         *web.Console
	h         http.Handler
	authn     *auth.Authenticator
	tokenFile string
	tokens    map[string]string
	clock     *clock
	// fill fills in a configuration's services, provider and clock.
	fill func(web.Config) web.Config
}

func newSmallConsole(t *testing.T, cfg web.Config) *smallConsole {
	t.Helper()
	proj, err := projections.New(projections.NewSliceFeed(nil), projections.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proj.Close() })
	if _, err := proj.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	sc := &smallConsole{tokens: map[string]string{}, clock: &clock{t: rules.MustDate(2025, 11, 20).Time().Add(12 * time.Hour)}}
	sc.tokens, sc.tokenFile, sc.authn = writeTokens(t,
		auth.Principal{Name: "oslo", Role: auth.RoleKommune, Kommune: "0301"},
		auth.Principal{Name: "bergen", Role: auth.RoleKommune, Kommune: "4601"})
	sc.fill = func(cfg web.Config) web.Config {
		cfg.Query = api.NewQuery(api.QueryConfig{Source: proj, Now: sc.clock.now})
		cfg.Registration = api.NewRegistration(nil, nil, nil)
		cfg.Admin = api.NewAdmin(proj, nil)
		cfg.Policy = api.Policy()
		cfg.Providers = []web.Provider{web.TokenLogin(sc.authn)}
		cfg.Now = sc.clock.now
		return cfg
	}
	if sc.c, err = web.New(sc.fill(cfg)); err != nil {
		t.Fatal(err)
	}
	sc.h = sc.c.Handler()
	return sc
}

// TestConsole_SessionBoundsChecked: bounds that could let one principal fill the table, or
// make no sense, are refused naming the field.
func TestConsole_SessionBoundsChecked(t *testing.T) {
	sc := newSmallConsole(t, web.Config{})
	for _, tc := range []struct {
		cfg  web.Config
		want string
	}{
		{web.Config{MaxSessionsPerPrincipal: -1}, "MaxSessionsPerPrincipal: -1 is negative"},
		{web.Config{MaxSessions: -1}, "MaxSessions: -1 is negative"},
		{web.Config{MaxSessions: 8}, "MaxSessions: 8 is below MaxSessionsPerPrincipal (200)"},
		{web.Config{MaxSessions: 8, MaxSessionsPerPrincipal: 9}, "MaxSessions: 8 is below MaxSessionsPerPrincipal (9)"},
	} {
		if _, err := web.New(sc.fill(tc.cfg)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
	if _, err := web.New(sc.fill(web.Config{MaxSessions: 9, MaxSessionsPerPrincipal: 9})); err != nil {
		t.Errorf("MaxSessions equal to MaxSessionsPerPrincipal: %v", err)
	}
}

// scriptLogIn posts the log-in form as a script does: with a CSRF value of its own choosing
// in both the form and the cookie (the log-in CSRF is a double-submit cookie), keeping no
// session cookie. It returns the status and the session cookie set, if any.
func scriptLogIn(h http.Handler, token string) (int, *http.Cookie) {
	form := url.Values{"csrf": {"x"}, "nokkel": {token}}
	req := httptest.NewRequest(http.MethodPost, "/logg-inn/nokkel/", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: "nir_innlogging", Value: "x"})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	for _, ck := range rec.Result().Cookies() {
		if ck.Name == "nir_okt" && ck.Value != "" {
			return rec.Code, ck
		}
	}
	return rec.Code, nil
}

// getWith fetches path with the session cookie and returns the status and the Location.
func getWith(h http.Handler, path string, session *http.Cookie) (int, string) {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.AddCookie(session)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Header().Get("Location")
}

// TestConsole_OneKommuneCannotFillTheSessionTable: one kommune with a valid token logs in
// again and again from a script (no rate limit on the log-in, which takes only a public
// slot). Before, every log-in made a session until the table (50 000) was full, and then no
// other kommune could log in until they idled out (30 min), while the attacker topped them
// up; each log-in also swept the whole table under the lock every page's lookup takes (50 000
// log-ins: 3 CPU-minutes). Now a principal holds at most MaxSessionsPerPrincipal sessions,
// its log-in beyond them ends its least recently used one, and others still log in. The
// table is 64 here, the attacker's log-ins 1 000, so the test runs in well under a second.
func TestConsole_OneKommuneCannotFillTheSessionTable(t *testing.T) {
	sc := newSmallConsole(t, web.Config{MaxSessions: 64, MaxSessionsPerPrincipal: 16})
	refused := 0
	for range 1000 {
		if code, _ := scriptLogIn(sc.h, sc.tokens["oslo"]); code != http.StatusSeeOther {
			refused++
		}
	}
	if refused > 0 {
		t.Errorf("%d of oslo's 1 000 log-ins refused: a principal that logs in again must never be refused", refused)
	}
	if code, ck := scriptLogIn(sc.h, sc.tokens["bergen"]); code != http.StatusSeeOther || ck == nil {
		t.Fatalf("bergen's log-in after oslo's 1 000: status %d, want 303 (one kommune closed the console to everyone)", code)
	}
	if n := web.SessionCount(sc.c); n != 16+1 {
		t.Errorf("%d sessions held, want oslo's 16 and bergen's one", n)
	}
}

// TestConsole_SessionsPerPrincipal: a principal's log-in beyond MaxSessionsPerPrincipal ends
// its least recently used session, and no other.
func TestConsole_SessionsPerPrincipal(t *testing.T) {
	sc := newSmallConsole(t, web.Config{MaxSessionsPerPrincipal: 3})
	var s []*http.Cookie
	for i := range 3 {
		code, ck := scriptLogIn(sc.h, sc.tokens["oslo"])
		if code != http.StatusSeeOther || ck == nil {
			t.Fatalf("log-in %d: status %d", i, code)
		}
		s = append(s, ck)
		sc.clock.add(time.Second)
	}
	// The first session is used again: the second is now the least recently used.
	if code, _ := getWith(sc.h, "/personer", s[0]); code != http.StatusOK {
		t.Fatalf("first session: status %d", code)
	}
	sc.clock.add(time.Second)
	if code, _ := scriptLogIn(sc.h, sc.tokens["bergen"]); code != http.StatusSeeOther {
		t.Fatalf("bergen's log-in: status %d", code)
	}
	code, ck := scriptLogIn(sc.h, sc.tokens["oslo"])
	if code != http.StatusSeeOther || ck == nil {
		t.Fatalf("fourth log-in: status %d, want 303", code)
	}
	s = append(s, ck)
	for i, want := range []bool{true, false, true, true} {
		code, loc := getWith(sc.h, "/personer", s[i])
		if got := code == http.StatusOK; got != want {
			t.Errorf("oslo's session %d after the fourth log-in: status %d %s, want served %v", i+1, code, loc, want)
		}
	}
	if n := web.SessionCount(sc.c); n != 4 {
		t.Errorf("%d sessions held, want oslo's 3 and bergen's 1", n)
	}
}

// TestConsole_SweepDropsRevokedAndExpiredSessions: a log-in a sweep interval after the last
// sweep drops every expired session and every session whose token no longer authenticates
// (removed from the token file), not only the log-in principal's; before, a revoked token's
// sessions stayed in the table until used or idled out.
func TestConsole_SweepDropsRevokedAndExpiredSessions(t *testing.T) {
	sc := newSmallConsole(t, web.Config{})
	logIn := func(name string, n int) {
		t.Helper()
		for range n {
			if code, _ := scriptLogIn(sc.h, sc.tokens[name]); code != http.StatusSeeOther {
				t.Fatalf("%s's log-in: status %d", name, code)
			}
		}
	}
	// Oslo's sessions idle out; bergen's log-in 31 minutes later drops them.
	logIn("oslo", 3)
	sc.clock.add(31 * time.Minute)
	logIn("bergen", 1)
	if n := web.SessionCount(sc.c); n != 1 {
		t.Errorf("%d sessions held after oslo's idled out, want bergen's 1", n)
	}
	// Oslo's token is removed from the token file; bergen's log-in a sweep interval later
	// drops oslo's sessions.
	logIn("oslo", 2)
	revokeToken(t, sc.tokenFile, sc.authn, "oslo")
	if n := web.SessionCount(sc.c); n != 3 {
		t.Fatalf("%d sessions held before the sweep, want 3", n)
	}
	sc.clock.add(2 * time.Minute)
	logIn("bergen", 1)
	if n := web.SessionCount(sc.c); n != 2 {
		t.Errorf("%d sessions held after oslo's token was revoked, want bergen's 2", n)
	}
}

// TestConsole_SecureCookies: with SecureCookies (behind a TLS proxy) or over TLS, the log-in
// and session cookies are Secure and every console response, a page, a static file or a
// 404, sends Strict-Transport-Security; over plain HTTP without it, neither.
func TestConsole_SecureCookies(t *testing.T) {
	for _, tc := range []struct {
		name          string
		secureCookies bool
		tls           bool
		want          bool
	}{
		{"PlainHTTP", false, false, false},
		{"BehindTLSProxy", true, false, true},
		{"TLS", false, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := newSmallConsole(t, web.Config{SecureCookies: tc.secureCookies})
			do := func(req *http.Request) *httptest.ResponseRecorder {
				if tc.tls {
					req.TLS = &tls.ConnectionState{}
				}
				rec := httptest.NewRecorder()
				sc.h.ServeHTTP(rec, req)
				return rec
			}
			check := func(what string, rec *httptest.ResponseRecorder, cookies ...string) {
				t.Helper()
				if got := rec.Header().Get("Strict-Transport-Security"); (got != "") != tc.want {
					t.Errorf("%s: Strict-Transport-Security %q, want it sent %v", what, got, tc.want)
				}
				for _, name := range cookies {
					var ck *http.Cookie
					for _, c := range rec.Result().Cookies() {
						if c.Name == name {
							ck = c
						}
					}
					if ck == nil {
						t.Errorf("%s: no cookie %s", what, name)
					} else if ck.Secure != tc.want {
						t.Errorf("%s: cookie %s Secure %v, want %v", what, name, ck.Secure, tc.want)
					}
				}
			}
			page := do(httptest.NewRequest(http.MethodGet, "/logg-inn", nil))
			check("log-in page", page, "nir_innlogging")
			m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page.Body.String())
			if m == nil {
				t.Fatal("no CSRF field on the log-in page")
			}
			req := httptest.NewRequest(http.MethodPost, "/logg-inn/nokkel/", strings.NewReader(url.Values{"csrf": {m[1]}, "nokkel": {sc.tokens["oslo"]}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.AddCookie(&http.Cookie{Name: "nir_innlogging", Value: m[1]})
			rec := do(req)
			if rec.Code != http.StatusSeeOther {
				t.Fatalf("log-in: status %d", rec.Code)
			}
			check("log-in", rec, "nir_okt", "nir_innlogging")
			check("static file", do(httptest.NewRequest(http.MethodGet, "/static/console.css", nil)))
			check("404", do(httptest.NewRequest(http.MethodGet, "/finnes-ikke", nil)))
		})
	}
}
