package web

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/introreg/nir/internal/auth"
)

// Provider is a way to log in. The console mounts each provider's handler under
// /logg-inn/<Name>/ and offers it on the log-in page with its Label. A provider finds out who
// the person is, by whatever means it has (a bearer token in a form; an OpenID Connect
// authorization code flow with ID-porten), and calls kit.Start with the principal. Pages see
// only that principal in the request's context, through the same authorization as the API,
// so a new provider needs no change to any page.
type Provider interface {
	// Name is the provider's path segment: letters and digits, e.g. "nokkel", "idporten".
	Name() string
	// Label is the text of its button or link on the log-in page.
	Label() string
	// Handler serves the provider's routes under /logg-inn/<Name>/.
	Handler(kit Kit) http.Handler
}

// Kit is what the console gives a provider.
type Kit struct {
	// Start begins a session for id and sends the browser on to the page it came for. It
	// refuses principals the console does not serve (the system principal).
	Start func(w http.ResponseWriter, r *http.Request, id Identity)
	// Fail shows the log-in page again with a message (Norwegian) and a status code.
	Fail func(w http.ResponseWriter, r *http.Request, status int, message string)
	// LoginCSRF reports whether a log-in form's CSRF token matches the one the log-in page
	// set (a cookie and a hidden field), so another site cannot log a browser in as itself.
	LoginCSRF func(r *http.Request) bool
}

// TokenLogin is the log-in with the bearer tokens of the API: the person pastes the token
// their kommune, analysis unit or operations team was given, and the session acts as that
// token's principal. The token is kept in the server's memory for the session only, so that
// a token removed from the token file ends the session at its next request.
func TokenLogin(authn *auth.Authenticator) Provider {
	return tokenLogin{authn: authn}
}

type tokenLogin struct{ authn *auth.Authenticator }

// tokenLoginName is the token provider's path segment; the log-in page posts its form there.
const tokenLoginName = "nokkel"

func (tokenLogin) Name() string  { return tokenLoginName }
func (tokenLogin) Label() string { return "Logg inn med tilgangsnøkkel" }

func (t tokenLogin) Handler(kit Kit) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Redirect(w, r, "/logg-inn", http.StatusSeeOther)
			return
		}
		if !kit.LoginCSRF(r) {
			kit.Fail(w, r, http.StatusForbidden, "Innloggingsskjemaet var for gammelt eller kom fra et annet nettsted. Prøv igjen.")
			return
		}
		token := strings.TrimSpace(r.PostFormValue("nokkel"))
		if token == "" {
			kit.Fail(w, r, http.StatusUnauthorized, "Skriv inn tilgangsnøkkelen.")
			return
		}
		p, err := t.authn.Authenticate(token)
		if err != nil {
			kit.Fail(w, r, http.StatusUnauthorized, "Ukjent tilgangsnøkkel.")
			return
		}
		authn := t.authn
		kit.Start(w, r, Identity{Principal: p, Method: "token", Revalidate: func() (auth.Principal, error) {
			return authn.Authenticate(token)
		}})
	})
}

// errSystemLogin refuses the system principal (the regelmotor): the console is for people.
var errSystemLogin = errors.New("the system principal cannot log in to the console")

// errBoundLogin refuses a token bound to a case system's NATS user (auth.Principal.NATSUser):
// it is accepted only in that user's requests over NATS.
var errBoundLogin = errors.New("a token bound to a NATS user cannot log in to the console")

// safeNext returns a local path to go to after log-in: only a path on this site, never
// another host (an open redirect would let a link log a person in and send them away).
func safeNext(s string) string {
	if s == "" || !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") || strings.HasPrefix(s, "/\\") {
		return "/"
	}
	u, err := url.Parse(s)
	if err != nil || u.Host != "" || u.Scheme != "" || strings.HasPrefix(u.Path, "/logg-") {
		return "/"
	}
	// A path that decodes to two slashes comes back from RequestURI as "///host/…", which
	// a browser takes for another site; only http.Redirect's cleaning made it safe.
	if next := u.RequestURI(); !strings.HasPrefix(next, "//") && !strings.Contains(next, "\\") {
		return next
	}
	return "/"
}
