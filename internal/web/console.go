package web

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"

	"github.com/introreg/nir/internal/api"
	"github.com/introreg/nir/internal/auth"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
	"github.com/introreg/nir/ratelog"
	"github.com/introreg/nir/rules"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config configures a Console. Query, Registration, Admin, Policy and at least one Provider
// are required.
type Config struct {
	// Query, Registration and Admin are the API's services; every page calls them in
	// process with the logged-in principal in the context, so a page can show no more than
	// the API would give the same principal.
	Query        *api.Query
	Registration *api.Registration
	Admin        *api.Admin
	// Policy is the API's authorization table (api.Policy()): a page checks the procedure
	// it calls against it, as the API's guard does for a Connect call.
	Policy auth.Policy
	// Providers are the ways to log in, e.g. TokenLogin(authn).
	Providers []Provider
	// Limit, when set, puts a handler behind nird's request limits (edge.Edge.Limit: the
	// principal's rate and requests in flight, nird's, the body budget), with the session's
	// principal in the request's context; the log-in forms count toward nird's limits.
	Limit func(http.Handler) http.Handler
	// Interceptors are the API's own unary interceptors that a call in process goes
	// through too, in order (api.MinSequence: the read-your-writes wait). Authentication
	// and authorization are not among them: the console has its own session and checks
	// Policy.
	Interceptors []connect.UnaryInterceptorFunc
	// IdleTimeout and MaxAge bound a session (zero: DefaultIdleTimeout, DefaultMaxAge).
	IdleTimeout, MaxAge time.Duration
	// MaxSessionsPerPrincipal bounds one principal's sessions: its log-in beyond them ends
	// its least recently used session (zero: DefaultMaxSessionsPerPrincipal). MaxSessions
	// bounds the sessions of all principals together: a log-in beyond it is refused (zero:
	// DefaultMaxSessions).
	MaxSessionsPerPrincipal, MaxSessions int
	// SecureCookies marks the session and log-in cookies Secure even on plain HTTP requests
	// (nird behind a TLS proxy), and sends Strict-Transport-Security on every console
	// response. Cookies and responses of TLS requests are always so.
	SecureCookies bool
	// DevHint is shown on the log-in page: nird runs without a token file, and a role name
	// is a token ("kommune:0301", "analyst", "operator").
	DevHint bool
	// Now is the clock; nil means time.Now. Location is the register's calendar (nil:
	// Europe/Oslo).
	Now      func() time.Time
	Location *time.Location
	// Logger; nil discards.
	Logger *slog.Logger
}

// Console is the web console: server-rendered pages for caseworkers (kommune), analysts and
// operators, served by nird on its API address. See the package documentation.
type Console struct {
	query     *api.Query
	reg       *api.Registration
	admin     *api.Admin
	policy    auth.Policy
	providers []Provider
	intercept []connect.UnaryInterceptorFunc
	limit     func(http.Handler) http.Handler
	devHint   bool
	now       func() time.Time
	loc       *time.Location
	log       *slog.Logger
	fails     *ratelog.Kinds // the failures (failed) and refused log-ins logged, bounded by kind
	sess      *sessions
	pages     map[string]*template.Template
	jobs      *jobs
	static    http.Handler
}

// New returns the console.
func New(cfg Config) (*Console, error) {
	switch {
	case cfg.Query == nil || cfg.Registration == nil || cfg.Admin == nil:
		return nil, errors.New("web: Query, Registration and Admin are required")
	case cfg.Policy == nil:
		return nil, errors.New("web: Policy is required")
	case len(cfg.Providers) == 0:
		return nil, errors.New("web: at least one log-in Provider is required")
	}
	c := &Console{
		query: cfg.Query, reg: cfg.Registration, admin: cfg.Admin, policy: cfg.Policy,
		providers: cfg.Providers, intercept: cfg.Interceptors, limit: cfg.Limit, devHint: cfg.DevHint,
		now: cfg.Now, loc: cfg.Location, log: cfg.Logger,
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.loc == nil {
		c.loc = osloLocation()
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.log = c.log.With("component", "web")
	c.fails = &ratelog.Kinds{Now: c.now}
	if c.limit == nil {
		c.limit = func(h http.Handler) http.Handler { return h }
	}
	idle, maxAge := cfg.IdleTimeout, cfg.MaxAge
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	if maxAge <= 0 {
		maxAge = DefaultMaxAge
	}
	perPrincipal, total := cfg.MaxSessionsPerPrincipal, cfg.MaxSessions
	switch {
	case perPrincipal < 0:
		return nil, fmt.Errorf("web: MaxSessionsPerPrincipal: %d is negative (0 = %d)", perPrincipal, DefaultMaxSessionsPerPrincipal)
	case total < 0:
		return nil, fmt.Errorf("web: MaxSessions: %d is negative (0 = %d)", total, DefaultMaxSessions)
	}
	if perPrincipal == 0 {
		perPrincipal = DefaultMaxSessionsPerPrincipal
	}
	if total == 0 {
		total = DefaultMaxSessions
	}
	if total < perPrincipal {
		return nil, fmt.Errorf("web: MaxSessions: %d is below MaxSessionsPerPrincipal (%d): one principal could fill the table", total, perPrincipal)
	}
	c.sess = newSessions(idle, maxAge, perPrincipal, total, cfg.SecureCookies, c.now)
	seen := map[string]bool{}
	for _, p := range cfg.Providers {
		n := p.Name()
		if n == "" || seen[n] || strings.IndexFunc(n, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') }) >= 0 {
			return nil, fmt.Errorf("web: provider name %q: want unique lowercase letters and digits", n)
		}
		seen[n] = true
	}
	var err error
	if c.pages, err = parsePages(); err != nil {
		return nil, err
	}
	c.jobs = newJobs(c.log)
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	c.static = http.StripPrefix("/static/", http.FileServerFS(sub))
	return c, nil
}

// Run owns the console's background work (rebuilds and snapshots an operator started, and
// the sweep of expired and revoked sessions): it returns when ctx is done, after cancelling
// that work and waiting for it.
func (c *Console) Run(ctx context.Context) error {
	done := make(chan struct{})
	go func() { defer close(done); c.sess.run(ctx) }()
	c.jobs.run(ctx)
	<-done
	return nil
}

// today is the register's current calendar date.
func (c *Console) today() rules.Date {
	return rules.DateFromTime(c.now().In(c.loc))
}

// Handler returns the console's routes. Mount it at "/" beside the API: the API's own paths
// (/nir.v1.*, /export/, /grpc.*) are more specific and keep their handlers.
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /static/", c.static)
	mux.Handle("GET /logg-inn", c.limit(http.HandlerFunc(c.loginPage)))
	// The log-in and log-out forms have no principal yet: nird's limits apply, then the
	// body's bound.
	kit := Kit{Start: c.startSession, Fail: c.loginFailed, LoginCSRF: c.loginCSRF}
	for _, p := range c.providers {
		prefix := "/logg-inn/" + p.Name() + "/"
		mux.Handle(prefix, c.limit(small(http.StripPrefix(strings.TrimSuffix(prefix, "/"), p.Handler(kit)))))
	}
	mux.Handle("POST /logg-ut", c.limit(small(http.HandlerFunc(c.logout))))
	page := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, c.authed(h)) }
	page("GET /{$}", c.home)
	page("GET /personer", c.personsPage)
	page("GET /personer.csv", c.personsCSV)
	page("GET /personer/{key}", c.personPage)
	page("POST /personer/{key}", c.personAction)
	page("GET /arsrapportering", c.reportingPage)
	page("GET /avsluttede", c.terminatedPage)
	page("GET /statistikk", c.statsPage)
	page("GET /statistikk.csv", c.statsCSV)
	page("GET /statistikk.json", c.statsJSON)
	page("GET /drift", c.adminPage)
	page("POST /drift/gjenoppbygg", c.adminRebuild)
	page("POST /drift/snapshot", c.adminSnapshotCreate)
	page("POST /drift/snapshot/slett", c.adminSnapshotDelete)
	page("GET /drift/jobb", c.adminJob)
	mux.HandleFunc("/", c.notFound)
	return securityHeaders(mux, c.sess.secure)
}

// hsts is the Strict-Transport-Security of a console served over HTTPS: a year, this host
// only (the register's other hosts are not nird's to decide).
const hsts = "max-age=31536000"

// securityHeaders sets what every console response carries: no framing, no inline script,
// no sniffing, no caching of pages that hold person data, and HTTPS only from then on when
// the console is served over HTTPS (secure: behind a TLS proxy; or the request's own TLS).
// A browser ignores Strict-Transport-Security over plain HTTP.
func securityHeaders(next http.Handler, secure bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if secure || r.TLS != nil {
			h.Set("Strict-Transport-Security", hsts)
		}
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store")
		} else {
			h.Set("Cache-Control", "public, max-age=3600")
		}
		next.ServeHTTP(w, r)
	})
}

type sessionKey struct{}

// maxFormBytes bounds a form's body: the console's forms are a few hundred bytes.
const maxFormBytes = 64 << 10

// small bounds a request's body to maxFormBytes.
func small(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		}
		h.ServeHTTP(w, r)
	})
}

// authed runs a page with the logged-in principal in the context (auth.NewContext, as the
// API's guard does), or sends the browser to the log-in page. The session is found from the
// cookie alone; then come nird's limits for the principal (Config.Limit), and only then is
// a body read: a POST must carry the session's CSRF token and come from this site.
func (c *Console) authed(h http.HandlerFunc) http.Handler {
	inner := c.limit(small(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			ss, _ := r.Context().Value(sessionKey{}).(*session)
			if ss == nil || !sameOrigin(r) || !validCSRF(ss.csrf, r.PostFormValue("csrf")) {
				c.log.InfoContext(r.Context(), "form refused: CSRF token or origin", "principal", principal(r).String(), "path", loggedPath(r))
				c.errorPage(w, r, http.StatusForbidden, "Skjemaet kunne ikke sendes",
					"Skjemaet var for gammelt eller kom fra et annet nettsted. Last siden på nytt og prøv igjen.")
				return
			}
		}
		h(w, r)
	})))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ss, p, state := c.sess.lookup(r)
		if state != validSession {
			if state != noSession {
				c.sess.clearCookie(w, r, sessionCookie)
			}
			next := ""
			if r.Method == http.MethodGet {
				next = r.URL.RequestURI()
			}
			q := url.Values{}
			if next != "" && next != "/" {
				q.Set("neste", next)
			}
			switch state {
			case expiredSession:
				q.Set("grunn", "utlopt")
			case revokedSession:
				q.Set("grunn", "tilbakekalt")
			}
			target := "/logg-inn"
			if len(q) > 0 {
				target += "?" + q.Encode()
			}
			http.Redirect(w, r, target, http.StatusSeeOther)
			return
		}
		ctx := auth.NewContext(r.Context(), p)
		ctx = context.WithValue(ctx, sessionKey{}, ss)
		inner.ServeHTTP(w, r.WithContext(ctx))
	})
}

// principal returns the request's principal (set by authed).
func principal(r *http.Request) auth.Principal {
	p, _ := auth.FromContext(r.Context())
	return p
}

func csrfOf(r *http.Request) string {
	if ss, ok := r.Context().Value(sessionKey{}).(*session); ok {
		return ss.csrf
	}
	return ""
}

// allowed checks the API's policy for a procedure a page calls, as the guard does for the
// same call over Connect.
func (c *Console) allowed(ctx context.Context, procedure string) error {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return connect.NewError(connect.CodeUnauthenticated, errors.New("no principal"))
	}
	if err := c.policy.Authorize(p, procedure); err != nil {
		return connect.NewError(connect.CodePermissionDenied, err)
	}
	return nil
}

// can reports whether the principal may call procedure (for the menu and links).
func (c *Console) can(p auth.Principal, procedure string) bool {
	return c.policy.Allows(p.Role, procedure)
}

// call runs one of the API's unary handlers in process: the policy first, then the API's
// interceptors (Config.Interceptors) and the handler itself with the principal in ctx, which
// narrows what it returns as for any API caller.
func call[Req, Res any](c *Console, ctx context.Context, procedure string, h func(context.Context, *connect.Request[Req]) (*connect.Response[Res], error), req *Req) (*Res, error) {
	if err := c.allowed(ctx, procedure); err != nil {
		return nil, err
	}
	next := connect.UnaryFunc(func(ctx context.Context, ar connect.AnyRequest) (connect.AnyResponse, error) {
		return h(ctx, ar.(*connect.Request[Req]))
	})
	for i := len(c.intercept) - 1; i >= 0; i-- {
		next = c.intercept[i](next)
	}
	res, err := next(ctx, connect.NewRequest(req))
	if err != nil {
		return nil, err
	}
	return res.(*connect.Response[Res]).Msg, nil
}

// navLink is an entry of the main menu.
type navLink struct {
	Href, Label string
	Current     bool
}

// nav returns the menu for p: the pages whose procedures the policy lets p call.
func (c *Console) nav(p auth.Principal, path string) []navLink {
	var out []navLink
	add := func(href, lbl string, ok bool) {
		if ok {
			out = append(out, navLink{Href: href, Label: lbl, Current: path == href || strings.HasPrefix(path, href+"/")})
		}
	}
	kommune := p.Kommune != ""
	add("/personer", "Personliste", kommune && c.can(p, nirv1connect.QueryServiceListPersonsProcedure))
	add("/arsrapportering", "Årsrapportering", kommune && c.can(p, nirv1connect.QueryServiceListPersonsProcedure))
	add("/avsluttede", "Avsluttede deltakere", kommune && c.can(p, nirv1connect.QueryServiceTerminatedReportProcedure))
	add("/statistikk", "Statistikk", c.can(p, nirv1connect.QueryServiceStatisticsProcedure))
	add("/drift", "Drift", c.can(p, nirv1connect.AdminServiceProjectionStatusProcedure))
	return out
}

// who describes the logged-in principal in the header.
func (c *Console) who(p auth.Principal) string {
	switch p.Role {
	case auth.RoleKommune:
		name := kommuneName(p.Kommune, c.today())
		if name == "" {
			return fmt.Sprintf("Kommune %s – %s", p.Kommune, p.Name)
		}
		return fmt.Sprintf("%s kommune (%s) – %s", name, p.Kommune, p.Name)
	case auth.RoleAnalyst:
		return "Analytiker – " + p.Name
	case auth.RoleOperator:
		return "Drift – " + p.Name
	}
	return p.Name
}

// view is what every page template gets; D is the page's own data.
type view struct {
	Title     string
	Principal auth.Principal
	Who       string
	CSRF      string
	Nav       []navLink
	Flash     string
	Error     string
	D         any
}

func (c *Console) view(r *http.Request, title string, d any) *view {
	p := principal(r)
	v := &view{Title: title, D: d}
	if p.Role != "" {
		v.Principal, v.Who, v.CSRF, v.Nav = p, c.who(p), csrfOf(r), c.nav(p, r.URL.Path)
	}
	return v
}

// render writes a page. It renders into a buffer first, so a template error is a clean 500.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page string, v *view) {
	t, ok := c.pages[page]
	if !ok {
		c.log.ErrorContext(r.Context(), "no such page template", "page", page)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		c.failed(r, "page failed to render", err, "page", page)
		http.Error(w, "Noe gikk galt. Feilen er logget.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// errorPage shows a message in the page layout.
func (c *Console) errorPage(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
	c.render(w, r, status, "error", c.view(r, title, struct{ Message string }{msg}))
}

// apiError shows an error from an API call: the status and a Norwegian message for its
// code. Internal errors were logged by the API; the message says only that.
func (c *Console) apiError(w http.ResponseWriter, r *http.Request, err error) {
	status, title, msg := describe(err)
	if status >= 500 {
		c.failed(r, "page failed", err, "path", loggedPath(r))
	}
	c.errorPage(w, r, status, title, msg)
}

// loggedPath is a request's path as nird's log may show it: a value the client chose, so a
// national id in it is masked in every form rules.RedactInput knows (10 digits of one whose
// leading zero was dropped, too), not the 11 digits alone. A person key stays, segment by
// segment: RedactInput masks any token of 10 digits or more, most keys among them, and the
// log would no longer say whose page failed.
func loggedPath(r *http.Request) string {
	segs := strings.Split(r.URL.Path, "/")
	for i, s := range segs {
		if !rules.IsPersonKey(s) {
			segs[i] = rules.RedactInput(s)
		}
	}
	return strings.Join(segs, "/")
}

// failed logs a request's failure (msg, a constant) at Error, any national id in err's text
// masked, bounded by kind (ratelog.Kinds): while the register fails (no room on disk, a
// damaged data key, the read models unavailable) every page fails alike, and an outage was a
// line per page asked for. Each kind logs its first lines, then one a minute saying how many
// were left out since (not_logged).
func (c *Console) failed(r *http.Request, msg string, err error, attrs ...any) {
	c.fails.Log(r.Context(), c.log, slog.LevelError, msg, append(attrs, "err", rules.RedactIDs(err.Error()))...)
}

// formError is how a form's page answers an API error: one the user's input caused (a
// status below 500) as the status and message for the page's own alert, above the form
// where the user corrects it; any other it answers itself with apiError, and ok is false.
func (c *Console) formError(w http.ResponseWriter, r *http.Request, err error) (status int, msg string, ok bool) {
	status, _, msg = describe(err)
	if status >= 500 {
		c.apiError(w, r, err)
		return 0, "", false
	}
	return status, msg, true
}

// describe maps an API error to a status, a title and a Norwegian message.
func describe(err error) (int, string, string) {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return http.StatusInternalServerError, "Noe gikk galt", "Noe gikk galt. Feilen er logget."
	}
	switch ce.Code() {
	case connect.CodeNotFound:
		return http.StatusNotFound, "Fant ikke siden", "Fant ikke det du lette etter. En person vises bare for kommunen personen bor eller har bodd i."
	case connect.CodePermissionDenied:
		return http.StatusForbidden, "Ingen tilgang", "Du har ikke tilgang til dette."
	case connect.CodeUnauthenticated:
		return http.StatusUnauthorized, "Ikke innlogget", "Du må logge inn."
	case connect.CodeInvalidArgument:
		return http.StatusBadRequest, "Ugyldig verdi", "Ugyldig verdi: " + fieldOf(ce) + "."
	case connect.CodeUnavailable:
		return http.StatusServiceUnavailable, "Midlertidig utilgjengelig", "Tjenesten er midlertidig utilgjengelig. Prøv igjen om litt."
	case connect.CodeFailedPrecondition:
		return http.StatusConflict, "Kan ikke utføres nå", ce.Message()
	case connect.CodeCanceled, connect.CodeDeadlineExceeded:
		return http.StatusServiceUnavailable, "Tidsavbrudd", "Forespørselen tok for lang tid. Prøv igjen."
	// What a user's own request causes is answered as such, not as nird's fault: a 500
	// is logged at error level, and a user sending forms with a reused id, or too fast,
	// would fill the error log.
	case connect.CodeAlreadyExists:
		return http.StatusConflict, "Finnes allerede", "Registreringen bruker en id som allerede er brukt. Last siden på nytt og prøv igjen."
	case connect.CodeAborted:
		return http.StatusConflict, "Endret i mellomtiden", "Personen ble endret mens du fylte ut skjemaet. Last siden på nytt og prøv igjen."
	case connect.CodeResourceExhausted:
		return http.StatusTooManyRequests, "For mange forespørsler", "Du har sendt for mange forespørsler. Vent litt og prøv igjen."
	}
	return http.StatusInternalServerError, "Noe gikk galt", "Noe gikk galt. Feilen er logget."
}

// fieldOf names the field of an InvalidArgument error in Norwegian where the console knows
// it, and as the API names it otherwise.
func fieldOf(ce *connect.Error) string {
	for _, d := range ce.Details() {
		if m, err := d.Value(); err == nil {
			if fv, ok := m.(*nirv1.FieldViolation); ok {
				if l, ok := fieldLabels[strings.TrimPrefix(fv.GetField(), "filter.")]; ok {
					return l
				}
				return fv.GetField()
			}
		}
	}
	msg := ce.Message()
	if i := strings.IndexByte(msg, ':'); i > 0 {
		if l, ok := fieldLabels[strings.TrimPrefix(msg[:i], "filter.")]; ok {
			return l
		}
		return msg[:i]
	}
	return msg
}

func (c *Console) notFound(w http.ResponseWriter, r *http.Request) {
	// The principal, if any, only decorates the page.
	if _, p, state := c.sess.lookup(r); state == validSession {
		r = r.WithContext(auth.NewContext(r.Context(), p))
	}
	c.errorPage(w, r, http.StatusNotFound, "Fant ikke siden", "Siden finnes ikke.")
}

// home sends the principal to the first page of the menu.
func (c *Console) home(w http.ResponseWriter, r *http.Request) {
	nav := c.nav(principal(r), "")
	if len(nav) == 0 {
		c.errorPage(w, r, http.StatusForbidden, "Ingen sider", "Rollen din har ingen sider i konsollet.")
		return
	}
	http.Redirect(w, r, nav[0].Href, http.StatusSeeOther)
}

// loginPage shows the ways to log in. It sets the log-in CSRF cookie its forms carry.
func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	msg := ""
	switch r.URL.Query().Get("grunn") {
	case "utlopt":
		msg = "Økten din er utløpt. Logg inn på nytt."
	case "tilbakekalt":
		msg = "Tilgangsnøkkelen din gjelder ikke lenger. Logg inn på nytt."
	case "utlogget":
		msg = "Du er logget ut."
	}
	c.showLogin(w, r, http.StatusOK, msg, "")
}

type loginData struct {
	Next      string
	Token     bool
	Others    []Provider
	CSRF      string
	Message   string
	DevHint   bool
	ErrorText string
}

func (c *Console) showLogin(w http.ResponseWriter, r *http.Request, status int, msg, errText string) {
	token := randomToken()
	c.sess.setCookie(w, r, loginCookie, token, 30*time.Minute)
	d := loginData{Next: safeNext(r.FormValue("neste")), CSRF: token, Message: msg, DevHint: c.devHint, ErrorText: errText}
	for _, p := range c.providers {
		if p.Name() == tokenLoginName {
			d.Token = true
		} else {
			d.Others = append(d.Others, p)
		}
	}
	c.render(w, r, status, "login", &view{Title: "Logg inn", D: d})
}

func (c *Console) loginFailed(w http.ResponseWriter, r *http.Request, status int, msg string) {
	c.showLogin(w, r, status, "", msg)
}

func (c *Console) loginCSRF(r *http.Request) bool {
	ck, err := r.Cookie(loginCookie)
	return err == nil && sameOrigin(r) && validCSRF(ck.Value, r.PostFormValue("csrf"))
}

// startSession is Kit.Start. Its refusals are logged bounded (fails): a case system's token
// bound to its NATS user is refused here as often as it is sent, a line each before
// (TestConsole_RefusedLoginsLogBounded).
func (c *Console) startSession(w http.ResponseWriter, r *http.Request, id Identity) {
	if id.Principal.Role == auth.RoleSystem || !id.Principal.Role.Valid() {
		c.fails.Log(r.Context(), c.log, slog.LevelInfo, "console log-in refused", "principal", id.Principal.String(), "err", errSystemLogin)
		c.loginFailed(w, r, http.StatusForbidden, "Denne nøkkelen kan ikke brukes i konsollet (systemets egen nøkkel).")
		return
	}
	if id.Principal.NATSUser != "" {
		c.fails.Log(r.Context(), c.log, slog.LevelInfo, "console log-in refused", "principal", id.Principal.String(), "err", errBoundLogin)
		c.loginFailed(w, r, http.StatusForbidden, "Denne nøkkelen er bundet til et fagsystem over NATS og kan ikke brukes i konsollet.")
		return
	}
	// A session this browser already had ends: its cookie is about to be replaced, and
	// whoever had copied it must not keep it until it times out.
	c.sess.end(r)
	if err := c.sess.start(w, r, id); err != nil {
		c.fails.Log(r.Context(), c.log, slog.LevelWarn, "console log-in refused", "err", err)
		c.loginFailed(w, r, http.StatusServiceUnavailable, "For mange innloggede akkurat nå. Prøv igjen senere.")
		return
	}
	c.sess.clearCookie(w, r, loginCookie)
	c.log.InfoContext(r.Context(), "console log-in", "principal", id.Principal.String(), "method", id.Method)
	http.Redirect(w, r, safeNext(r.FormValue("neste")), http.StatusSeeOther)
}

// logout ends the session. It needs the session's CSRF token, so another site cannot log
// a person out either.
func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if ss, p, state := c.sess.lookup(r); state == validSession {
		if !sameOrigin(r) || !validCSRF(ss.csrf, r.PostFormValue("csrf")) {
			c.errorPage(w, r, http.StatusForbidden, "Skjemaet kunne ikke sendes", "Last siden på nytt og prøv igjen.")
			return
		}
		c.sess.end(r)
		c.log.InfoContext(r.Context(), "console log-out", "principal", p.String())
	}
	c.sess.clearCookie(w, r, sessionCookie)
	http.Redirect(w, r, "/logg-inn?grunn=utlogget", http.StatusSeeOther)
}

// minSeq is the stream sequence of the session's latest registration: every query of the
// session asks the read models to include it (min_sequence), so a caseworker always sees
// what they have just registered, whichever page comes next.
func minSeq(r *http.Request) uint64 {
	if ss, ok := r.Context().Value(sessionKey{}).(*session); ok {
		return ss.lastSeq.Load()
	}
	return 0
}

// wrote records a registration's stream sequence in the session (see minSeq).
func wrote(r *http.Request, seq uint64) {
	if ss, ok := r.Context().Value(sessionKey{}).(*session); ok {
		for {
			cur := ss.lastSeq.Load()
			if seq <= cur || ss.lastSeq.CompareAndSwap(cur, seq) {
				return
			}
		}
	}
}

// jobs are the long operations an operator starts from the console (a rebuild, a snapshot):
// they outlive the request, so the console's Run owns them.
type jobs struct {
	log *slog.Logger

	mu      sync.Mutex // guards the fields below
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	current *job
	stopped bool
}

func newJobs(log *slog.Logger) *jobs {
	ctx, cancel := context.WithCancel(context.Background())
	return &jobs{log: log, ctx: ctx, cancel: cancel}
}

// run waits until ctx is done, then cancels the running job and waits for it.
func (j *jobs) run(ctx context.Context) {
	<-ctx.Done()
	j.mu.Lock()
	j.stopped = true
	j.cancel()
	j.mu.Unlock()
	j.wg.Wait()
}
