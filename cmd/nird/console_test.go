package main

import (
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/introreg/nir/internal/auth"
)

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// consoleLogIn fetches the log-in page of the nird at base over plain HTTP, as a browser
// behind a TLS proxy reaches it, and logs in with token. It returns every cookie nird set,
// by name, and the Strict-Transport-Security of the two responses.
func consoleLogIn(t *testing.T, base, token string) (map[string]*http.Cookie, []string) {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Get(base + "/logg-inn")
	if err != nil {
		t.Fatal(err)
	}
	page, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	m := csrfField.FindSubmatch(page)
	if res.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("log-in page: status %d, CSRF field found %v", res.StatusCode, m != nil)
	}
	cookies := map[string]*http.Cookie{}
	hsts := []string{res.Header.Get("Strict-Transport-Security")}
	req, err := http.NewRequest(http.MethodPost, base+"/logg-inn/nokkel/", strings.NewReader(url.Values{"csrf": {string(m[1])}, "nokkel": {token}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, ck := range res.Cookies() {
		cookies[ck.Name] = ck
		req.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
	}
	res, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("log-in: status %d, want 303", res.StatusCode)
	}
	hsts = append(hsts, res.Header.Get("Strict-Transport-Security"))
	for _, ck := range res.Cookies() {
		cookies[ck.Name+" after log-in"] = ck
	}
	if cookies["nir_okt after log-in"] == nil {
		t.Fatal("log-in set no session cookie")
	}
	return cookies, hsts
}

// TestNird_ConsoleCookiesSecure: nird serves plain HTTP (TLS ends at the proxy or Ingress in
// front of it), so the request's own TLS cannot tell it to mark the console's cookies
// Secure. Before, nothing set web.Config.SecureCookies: the session cookie went over plain
// HTTP too, and no response sent Strict-Transport-Security. Now, with a token file, the
// session and log-in cookies are Secure and every console response sends
// Strict-Transport-Security by default (--secure-cookies); in development mode (no token
// file, loopback only) neither, so the demo works over http://127.0.0.1.
func TestNird_ConsoleCookiesSecure(t *testing.T) {
	token, entry, err := auth.GenerateToken(auth.Principal{Name: "oslo", Role: auth.RoleKommune, Kommune: "0301"})
	if err != nil {
		t.Fatal(err)
	}
	tokens := filepath.Join(t.TempDir(), "tokens.json")
	if err := auth.WriteEntries(tokens, []auth.Entry{entry}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		token  string
		secure bool
	}{
		{"Tokens", []string{"--tokens", tokens}, token, true},
		{"Development", nil, "kommune:0301", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := startNird(t, t.TempDir(), append([]string{"--nats-listen", ""}, tc.args...)...)
			cookies, hsts := consoleLogIn(t, n.URL(), tc.token)
			for _, name := range []string{"nir_innlogging", "nir_okt after log-in", "nir_innlogging after log-in"} {
				ck := cookies[name]
				if ck == nil {
					t.Errorf("no cookie %s", name)
					continue
				}
				if ck.Secure != tc.secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
					t.Errorf("cookie %s: Secure %v, HttpOnly %v, SameSite %v; want Secure %v, HttpOnly, SameSite=Strict", name, ck.Secure, ck.HttpOnly, ck.SameSite, tc.secure)
				}
			}
			for i, h := range hsts {
				if want := map[bool]string{true: "max-age=31536000", false: ""}[tc.secure]; h != want {
					t.Errorf("response %d: Strict-Transport-Security %q, want %q", i+1, h, want)
				}
			}
		})
	}
}
