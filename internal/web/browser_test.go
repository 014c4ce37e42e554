package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/chromedp/chromedp"

	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/nirdtest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
)

// The browser tests run nird as a process with a demo population and a token file, and drive
// headless Chromium through the console as its users would: a kommune's caseworker, an
// analyst and an operator. Every page is checked with axe-core (WCAG 2.1 A and AA, zero
// violations) and photographed into screenshots/ (or $NIR_SCREENSHOTS).

// chromium finds the browser: $NIR_CHROMIUM, or a chromium on PATH.
func chromium() string {
	if p := os.Getenv("NIR_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// site is nird with its tokens and a browser tab.
type site struct {
	t      *testing.T
	nird   *nirdtest.Nird
	tokens map[string]string
	ctx    context.Context
	shots  string
	axe    string
}

const demoPersons = "600"

func startSite(t *testing.T) *site {
	t.Helper()
	chrome := chromium()
	if chrome == "" {
		if os.Getenv("NIR_BROWSER_TESTS") == "required" {
			t.Fatal("NIR_BROWSER_TESTS=required but no chromium found (apt-get install -y chromium, or set NIR_CHROMIUM)")
		}
		t.Skip("browser tests skipped: no chromium found (apt-get install -y chromium, or set NIR_CHROMIUM); .ci/run installs it")
	}
	axe, err := os.ReadFile(filepath.Join("testdata", "axe-core", "axe.min.js"))
	if err != nil {
		t.Fatal(err)
	}
	s := &site{t: t, tokens: map[string]string{}, axe: string(axe)}
	var entries []auth.Entry
	for _, p := range []auth.Principal{
		{Name: "oslo-saksbehandler", Role: auth.RoleKommune, Kommune: "0301"},
		{Name: "bergen-saksbehandler", Role: auth.RoleKommune, Kommune: "4601"},
		{Name: "analytiker", Role: auth.RoleAnalyst},
		{Name: "drift", Role: auth.RoleOperator},
	} {
		token, e, err := auth.GenerateToken(p)
		if err != nil {
			t.Fatal(err)
		}
		s.tokens[p.Name] = token
		entries = append(entries, e)
	}
	tokenFile := filepath.Join(t.TempDir(), "tokens.json")
	if err := auth.WriteEntries(tokenFile, entries); err != nil {
		t.Fatal(err)
	}
	s.nird = nirdtest.Start(t, "--data", t.TempDir(), "--tokens", tokenFile, "--demo", demoPersons)
	deadline := time.Now().Add(90 * time.Second)
	for {
		res, err := http.Get(s.nird.AdminURL() + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("nird not ready within 90s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.shots = os.Getenv("NIR_SCREENSHOTS")
	if s.shots == "" {
		s.shots = "screenshots"
	}
	if err := os.MkdirAll(s.shots, 0o755); err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chrome), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(func() { cancelTime(); cancelTab(); cancelAlloc() })
	s.ctx = ctx
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return s
}

// run runs browser actions in order and fails the test on error.
func (s *site) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	s.t.Helper()
	if err := chromedp.Do(s.ctx, actions...); err != nil {
		s.t.Fatalf("%s: %v", what, err)
	}
}

// get runs an action that returns a value.
func get[T any](s *site, what string, a chromedp.Action[T]) T {
	s.t.Helper()
	v, err := chromedp.Run(s.ctx, a)
	if err != nil {
		s.t.Fatalf("%s: %v", what, err)
	}
	return v
}

func (s *site) open(path string) {
	s.t.Helper()
	s.run("open "+path, chromedp.Navigate(s.nird.URL()+path), chromedp.WaitReady(chromedp.CSS("main")))
}

func (s *site) path() string {
	s.t.Helper()
	u, err := url.Parse(get(s, "location", chromedp.Location()))
	if err != nil {
		s.t.Fatal(err)
	}
	return u.RequestURI()
}

// text is the visible text of the first element a CSS selector matches.
func (s *site) text(sel string) string {
	s.t.Helper()
	return strings.TrimSpace(get(s, "text of "+sel, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible)))
}

// eval evaluates JavaScript (awaiting a promise) into T.
func eval[T any](s *site, js string) T {
	s.t.Helper()
	return get(s, "evaluate", chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
}

// check runs axe-core on the page (WCAG 2.1 A and AA) and fails on any violation; then it
// saves a screenshot named name.
func (s *site) check(name string) {
	s.t.Helper()
	_ = get(s, "inject axe", chromedp.Evaluate[bool](s.axe+";true"))
	type result struct {
		Violations []struct {
			ID    string `json:"id"`
			Help  string `json:"help"`
			Nodes []struct {
				Target []string `json:"target"`
			} `json:"nodes"`
		} `json:"violations"`
	}
	res := eval[result](s, `axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}, resultTypes: ["violations"]})`)
	for _, v := range res.Violations {
		var targets []string
		for _, n := range v.Nodes {
			targets = append(targets, strings.Join(n.Target, " "))
		}
		s.t.Errorf("%s: axe %s (%s) at %s", name, v.ID, v.Help, strings.Join(targets, "; "))
	}
	// The viewport (1280×1000), not the whole page: a long page takes seconds to capture.
	png := get(s, "screenshot "+name, chromedp.CaptureScreenshot())
	if err := os.WriteFile(filepath.Join(s.shots, name+".png"), png, 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// login logs in with the named principal's token through the form.
func (s *site) login(name string) {
	s.t.Helper()
	s.open("/logg-inn")
	s.run("log in as "+name,
		chromedp.SetValue(chromedp.CSS("#nokkel"), s.tokens[name]),
		chromedp.Submit(chromedp.CSS("form.innlogging")),
		chromedp.WaitReady("main"))
}

func (s *site) logout() {
	s.t.Helper()
	s.run("log out", chromedp.Click(chromedp.CSS(".bruker button")), chromedp.WaitVisible(chromedp.CSS(`#nokkel`)))
}

// total reads the person list's count heading («123 personer», «Ingen personer»).
func (s *site) total() int {
	s.t.Helper()
	h := s.text("#treff")
	if strings.HasPrefix(h, "Ingen") {
		return 0
	}
	n, err := strconv.Atoi(strings.Fields(h)[0])
	if err != nil {
		s.t.Fatalf("count heading %q", h)
	}
	return n
}

// query is a Connect client of the API with a principal's token, to check the pages against.
func (s *site) query(name string) nirv1connect.QueryServiceClient {
	return nirv1connect.NewQueryServiceClient(http.DefaultClient, s.nird.URL(), connect.WithInterceptors(auth.BearerInterceptor(s.tokens[name])))
}

// TestConsole_Browser is the console end to end in a real browser.
func TestConsole_Browser(t *testing.T) {
	s := startSite(t)
	ctx := context.Background()
	oslo := s.query("oslo-saksbehandler")

	t.Run("Login", func(t *testing.T) {
		s.t = t
		s.open("/personer")
		if p := s.path(); !strings.HasPrefix(p, "/logg-inn") {
			t.Fatalf("without a session /personer went to %s, want the log-in page", p)
		}
		s.check("innlogging")
		s.run("wrong token", chromedp.SetValue(chromedp.CSS("#nokkel"), "ikke-en-nokkel"),
			chromedp.Submit(chromedp.CSS("form.innlogging")), chromedp.WaitVisible(chromedp.CSS("#innlogging-feil")))
		if msg := s.text("#innlogging-feil"); !strings.Contains(msg, "Ukjent tilgangsnøkkel") {
			t.Errorf("wrong token: %q", msg)
		}
		s.check("innlogging-feil")
		s.login("oslo-saksbehandler")
		if p := s.path(); p != "/personer" {
			t.Errorf("after log-in at %s, want /personer", p)
		}
		// The session cookie is HttpOnly: page scripts cannot read it.
		cookies := eval[string](s, `document.cookie`)
		if strings.Contains(cookies, "nir_okt") {
			t.Errorf("session cookie visible to scripts: %q", cookies)
		}
	})

	t.Run("PersonList", func(t *testing.T) {
		s.t = t
		s.open("/personer")
		s.check("personliste")
		all := s.total()
		// Filter with the form: integreringsloven, without sluttmål.
		s.run("filter", chromedp.SetValue(chromedp.CSS("#f-law"), "IL"), chromedp.SetValue(chromedp.CSS("#f-sluttmal"), "without"),
			chromedp.Submit(chromedp.CSS("form.filter")), chromedp.WaitReady(chromedp.CSS("#treff")))
		p := s.path()
		if p != "/personer?law=IL&sluttmal=without" {
			t.Fatalf("filtered list at %s, want the filter in the URL", p)
		}
		got := s.total()
		res, err := oslo.ListPersons(ctx, connect.NewRequest(&nirv1.ListPersonsRequest{Filter: &nirv1.PersonFilter{
			Law: nirv1.Law_LAW_IL, Sluttmal: nirv1.PresenceFilter_PRESENCE_FILTER_WITHOUT}}))
		if err != nil {
			t.Fatal(err)
		}
		if got != int(res.Msg.GetTotal()) || got == 0 || got >= all {
			t.Errorf("filtered list shows %d persons; the API counts %d (of %d)", got, res.Msg.GetTotal(), all)
		}
		// The URL reopens the same list (a bookmark), and «Last ned CSV» holds exactly it.
		s.open(p)
		if again := s.total(); again != got {
			t.Errorf("reopened URL shows %d, want %d", again, got)
		}
		csvHref := get(s, "csv link", chromedp.AttributeValue(chromedp.CSS(`a[download][href^="/personer.csv"]`), "href")).Value
		lines := eval[int](s, fmt.Sprintf(`fetch(%q, {credentials: "same-origin"}).then(r => r.text()).then(t => t.trim().split("\n").length)`, csvHref))
		if lines != got+1 {
			t.Errorf("CSV %s has %d lines, want a header and %d rows", csvHref, lines, got)
		}
		// Sort by a column header.
		s.run("sort", chromedp.Click(`//thead//a[contains(., "Norsktimer")]`), chromedp.WaitReady(chromedp.CSS("#treff")))
		if p := s.path(); !strings.Contains(p, "sort=norsk_hours") {
			t.Errorf("sorted list at %s", p)
		}
		ariaSort := get(s, "aria-sort", chromedp.AttributeValue(chromedp.CSS(`th[aria-sort]`), "aria-sort")).Value
		if ariaSort != "ascending" {
			t.Errorf("sorted column aria-sort = %q", ariaSort)
		}
		s.check("personliste-filter")
	})

	t.Run("LeggTil", func(t *testing.T) {
		s.t = t
		// A person under integreringsloven with a termination the regelmotor computed.
		list := "/personer?law=IL&termination_computed=with"
		s.open(list)
		before := s.total()
		if before == 0 {
			t.Fatal("the demo has no computed termination under integreringsloven in 0301")
		}
		s.run("open person", chromedp.Click(chromedp.CSS(`tbody tr:first-child th a`)), chromedp.WaitReady(chromedp.CSS(`#frister`)))
		key := strings.TrimPrefix(s.path(), "/personer/")
		s.check("person")
		// A refusal of the regelmotor is shown in place, in Norwegian: a tiltak outside the
		// programme's vedtak (NIR-R020).
		s.run("refused tiltak", chromedp.SetValue(chromedp.CSS("#tiltak-kode"), "SPRAKPRAKSIS"),
			chromedp.SetValue(chromedp.CSS("#tiltak-fra"), "2016-05-01"), chromedp.SetValue(chromedp.CSS("#tiltak-til"), "2016-06-01"),
			chromedp.Submit(chromedp.CSS("#tiltak")), chromedp.WaitVisible(chromedp.CSS(`#tiltak [role="alert"]`)))
		if msg := s.text(`#tiltak [role="alert"]`); !strings.Contains(msg, "NIR-R020") || !strings.Contains(msg, "innenfor perioden til et vedtak") {
			t.Errorf("refusal shown: %q", msg)
		}
		s.check("person-avvist")
		// What the form itself checks is said in Norwegian too.
		s.run("reversed period", chromedp.SetValue(chromedp.CSS("#tiltak-fra"), "2024-05-01"), chromedp.SetValue(chromedp.CSS("#tiltak-til"), "2024-04-01"),
			chromedp.Submit(chromedp.CSS("#tiltak")), chromedp.WaitVisible(chromedp.CSS(`#tiltak [role="alert"]`)))
		if msg := s.text(`#tiltak [role="alert"]`); !strings.Contains(msg, "Til-datoen ligger før fra-datoen") {
			t.Errorf("reversed period: %q", msg)
		}
		// «Legg til» the actual reason over the computed termination.
		s.run("legg til", chromedp.SetValue(chromedp.CSS(`form input[value="legg-til-arsak"] ~ .felt select[name="arsak"]`), "ARBEID"),
			chromedp.Submit(`//input[@value="legg-til-arsak"]/ancestor::form`), chromedp.WaitVisible(chromedp.CSS("#melding")))
		if msg := s.text("#melding"); !strings.Contains(msg, "Avslutningsårsaken er registrert") {
			t.Errorf("after Legg til: %q", msg)
		}
		page := get(s, "page text", chromedp.Text(chromedp.CSS("main")))
		if !strings.Contains(page, ": Arbeid") || !strings.Contains(page, "årsak lagt til") {
			t.Errorf("the person page does not show the reason added over the computed termination")
		}
		s.check("person-lagt-til")
		// The list and the report of terminated participants have it too.
		s.open(list)
		if after := s.total(); after != before-1 {
			t.Errorf("computed terminations awaiting a reason: %d, want %d", after, before-1)
		}
		row, err := oslo.GetPerson(ctx, connect.NewRequest(&nirv1.GetPersonRequest{Person: &nirv1.PersonRef{PersonKey: key}}))
		if err != nil {
			t.Fatal(err)
		}
		year := row.Msg.GetPerson().GetTerminationDate().GetYear()
		s.open(fmt.Sprintf("/avsluttede?ar=%d", year))
		reason := get(s, "report row", chromedp.Text(fmt.Sprintf(`//tr[.//a[@href="/personer/%s"]]/td[5]`, key)))
		if strings.TrimSpace(reason) != "Arbeid" {
			t.Errorf("terminated report shows %q for the person, want Arbeid", reason)
		}
		s.check("avsluttede")
	})

	t.Run("Reporting", func(t *testing.T) {
		s.t = t
		s.open("/arsrapportering")
		s.check("arsrapportering")
		type link struct {
			Href  string `json:"href"`
			Count string `json:"count"`
		}
		links := eval[[]link](s, `Array.from(document.querySelectorAll("a[data-teller]")).map(a => ({href: a.getAttribute("href"), count: a.dataset.teller}))`)
		if len(links) < 7 {
			t.Fatalf("%d gaps on the page, want 7", len(links))
		}
		nonzero := 0
		for _, l := range links {
			want, _ := strconv.Atoi(l.Count)
			s.open(l.Href)
			if got := s.total(); got != want {
				t.Errorf("årsrapportering counts %d for %s; the person list shows %d", want, l.Href, got)
			}
			if want > 0 {
				nonzero++
			}
		}
		if nonzero == 0 {
			t.Error("every count of the årsrapportering is zero: the demo should have gaps")
		}
	})

	t.Run("OtherKommune", func(t *testing.T) {
		s.t = t
		bergen, err := s.query("bergen-saksbehandler").ListPersons(ctx, connect.NewRequest(&nirv1.ListPersonsRequest{PageSize: 1}))
		if err != nil || len(bergen.Msg.GetRows()) == 0 {
			t.Fatalf("a person in 4601: %v", err)
		}
		other := bergen.Msg.GetRows()[0]
		s.open("/personer/" + other.GetPersonKey())
		if h := s.text("h1"); h != "Fant ikke personen" {
			t.Errorf("Oslo opening a Bergen person by URL got %q, want «Fant ikke personen»", h)
		}
		html := get(s, "html", chromedp.OuterHTML(chromedp.CSS("html")))
		if strings.Contains(html, other.GetNationalId()) {
			t.Error("the not-found page shows the other kommune's person's national id")
		}
		s.check("ikke-funnet")
	})

	t.Run("Analyst", func(t *testing.T) {
		s.t = t
		s.logout()
		s.check("utlogget")
		s.login("analytiker")
		if p := s.path(); !strings.HasPrefix(p, "/statistikk") {
			t.Errorf("analyst landed on %s, want /statistikk", p)
		}
		n := eval[int](s, `document.querySelectorAll("figure svg[role=img] rect").length`)
		if n < 3 {
			t.Errorf("statistics page has %d bars, want a chart", n)
		}
		s.check("statistikk")
		for _, path := range []string{"/statistikk", "/statistikk?niva=kommune", "/statistikk?niva=nasjon"} {
			s.open(path)
			html := get(s, "html", chromedp.OuterHTML(chromedp.CSS("html")))
			if id := nationalID.FindString(html); id != "" {
				t.Errorf("%s shows an 11-digit number %s (a national id?)", path, id)
			}
		}
		s.check("statistikk-kommuner")
		js := eval[[]map[string]any](s, `fetch("/statistikk.json?niva=fylke", {credentials: "same-origin"}).then(r => r.json())`)
		// A suppressed field is null and named in the row's suppressed list (DOMAIN.md Product
		// decisions 14); any other is a number.
		if len(js) == 0 {
			t.Errorf("statistics JSON: %v", js)
		}
		for _, row := range js {
			sup, _ := row["suppressed"].([]any)
			withheld := slices.Contains(sup, any("participants"))
			if v, ok := row["participants"]; !ok || (v == nil) != withheld {
				t.Errorf("statistics JSON row %v: participants %v, suppressed %v", row["area"], v, sup)
			}
		}
		if b, _ := json.Marshal(js); nationalID.Match(b) {
			t.Error("statistics JSON holds an 11-digit number")
		}
		// An analyst reads no person: the person page is refused.
		s.open("/personer/" + strings.Repeat("a", 64))
		if h := s.text("h1"); h != "Ingen tilgang" {
			t.Errorf("analyst on a person page got %q, want «Ingen tilgang»", h)
		}
	})

	t.Run("Operator", func(t *testing.T) {
		s.t = t
		s.logout()
		s.login("drift")
		if p := s.path(); p != "/drift" {
			t.Errorf("operator landed on %s, want /drift", p)
		}
		s.check("drift")
		s.run("snapshot", chromedp.SetValue(chromedp.CSS("#snapshot-navn"), "2024@2025-02-28"),
			chromedp.SetValue(chromedp.CSS("#snapshot-dato"), "2025-02-28"),
			chromedp.Submit(chromedp.CSS(`form[action="/drift/snapshot"]`)))
		// The page follows the job and reloads when it is done.
		s.run("snapshot done", chromedp.WaitVisible(`//th[.="2024@2025-02-28"]`))
		s.check("drift-snapshot")
		s.run("rebuild", chromedp.Submit(chromedp.CSS(`form[action="/drift/gjenoppbygg"]`)),
			chromedp.WaitVisible(`//p[contains(., "gjenoppbygd og tatt i bruk")]`))
	})
}
