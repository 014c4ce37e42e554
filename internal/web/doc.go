// Package web is nir's web console: the pages a kommune's caseworker, an analyst and an
// operator use in a browser, served by nird on its API address (Console.Handler mounted at
// "/").
//
// # Pages
//
//   - /personer: a kommune's person list with every filter of nir.v1.PersonFilter, sortable
//     columns and paging. The URL holds the filter with the CSV export's own parameter
//     names (api.ExportPersonsPath), so a bookmark reopens the list and «Last ned CSV»
//     (/personer.csv) exports exactly it.
//   - /personer/{person key}: what is registered per programme and scheme, the deadlines
//     with their status and the rule version behind each (rules.Explain over the person's
//     audit history), the audit history, and forms: «Legg til» avslutningsårsak over a
//     computed termination (integreringsloven), delete a computed termination and register
//     the actual reason (introduksjonsloven), tiltak, fravær, hours, norskmål, and retract a
//     wrong registration. A refusal is shown in the form, in Norwegian.
//   - /arsrapportering: for a data year, the gaps the kommune must close before the
//     ajourføring deadline, each a count of the person list under a filter, linked to it.
//   - /avsluttede: the report of terminated participants, the kommune's own, or an analyst's
//     for the nation or one kommune (kommune), paged as the person list; a kommune sees the
//     national ids of the page's rows, each looked up by its person key.
//   - /statistikk (with .csv and .json): figures per year and area, live or from a snapshot,
//     as server-drawn SVG charts, each beside its table.
//   - /drift: the read models' state, a rebuild and snapshots, with live progress.
//
// # Authorization: the API's, not a second one
//
// A page calls the API's own services in process (api.Query, api.Registration, api.Admin)
// with the logged-in principal in the context (auth.NewContext), after checking the API's
// Policy for the procedure it calls, as the Connect guard does; the handlers then narrow
// their answers exactly as for any API caller (internal/access). The console holds no access
// rule of its own, so it can show no more than the API would give the same principal. The
// API's read-your-writes interceptor (api.MinSequence) runs around each call too, and every
// query of a session waits for the session's own latest registration.
//
// # Log-in and sessions
//
// A Provider finds out who the person is and starts a session; TokenLogin takes the API's
// bearer token in a form. An OpenID Connect log-in (ID-porten) is another Provider: it
// serves its own routes under /logg-inn/<name>/ and calls Kit.Start with the principal, and
// no page changes. The session cookie is a random id (HttpOnly, SameSite=Strict, Secure
// over TLS or with Config.SecureCookies, which also sends Strict-Transport-Security); the session lives in nird's memory with an idle timeout and a maximum age, and
// a token removed from the token file ends its sessions at their next request (and the sweep
// of the table, once a minute, drops them). One principal holds at most
// Config.MaxSessionsPerPrincipal sessions: its log-in beyond them ends its least recently
// used session, so no principal can fill the table for the others. Every form
// carries the session's CSRF token and must come from this site (Origin, Sec-Fetch-Site);
// the log-in form has its own CSRF token in a cookie. The system principal cannot log in.
// A restart of nird logs everyone out, and on several nird behind a load balancer a session
// is known only to the nird that made it (use sticky sessions).
//
// # Stack
//
// Server-rendered html/template pages and static files embedded with go:embed, one small
// script (static/console.js) for progressive enhancement only (live job progress, a
// confirmation before deleting), and charts drawn on the server as SVG. There is no build
// step, no JavaScript dependency and nothing to fetch at run time: the console lives as long
// as the Go code and ships in the nird binary. Every page works without JavaScript. Pages
// are in bokmål and are checked against WCAG 2.1 AA with axe-core in the browser tests
// (browser_test.go).
package web
