package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	"github.com/introreg/nir/ratelog"
	"github.com/introreg/nir/rules"
)

// Guard applies an [Authenticator] and a [Policy] at each of nird's entrances: a check of an
// HTTP request before its body is read ([Guard.CheckHTTP], which nird's edge calls), a Connect
// interceptor (unary and streaming handlers; it lets through what CheckHTTP checked), an HTTP
// middleware for plain routes, and a check for the NATS ingress. Every entrance authenticates
// the bearer token, authorizes the procedure, and gives the handler the [Principal] through
// the context ([FromContext]). A Connect handler reads and decodes the request before its
// interceptors run, so on its own the interceptor checks the token only after the body is in
// memory: put CheckHTTP (internal/edge) in front.
//
//	guard := auth.NewGuard(authn, auth.DefaultPolicy(), logger)
//	path, h := nirv1connect.NewRegistrationServiceHandler(svc, connect.WithInterceptors(guard))
//	mux.Handle(path, h)
//	mux.Handle("/export/personliste.csv", guard.Middleware(csvHandler))
type Guard struct {
	authn  *Authenticator
	policy Policy
	log    *slog.Logger

	allowed, unauthenticated, denied atomic.Uint64
	// refusals bounds the refusal lines the guard logs (logRefusal), and counts those it
	// left out.
	refusals *ratelog.Limiter
	// boundOnly refuses over NATS every token not bound to a NATS user (RequireBoundOverNATS).
	boundOnly atomic.Bool
}

// RequireBoundOverNATS makes [Guard.CheckNATS] refuse, as PermissionDenied, a token that is
// bound to no NATS user ([Principal.NATSUser]): over NATS only a token bound to the sending
// case system's user is then accepted (nird --nats-bound-tokens). HTTP is not affected.
func (g *Guard) RequireBoundOverNATS() { g.boundOnly.Store(true) }

// errNotBound refuses, under RequireBoundOverNATS, a token bound to no NATS user.
var errNotBound = fmt.Errorf("%w: nird accepts over NATS only tokens bound to the sending case system's NATS user (the token file's nats_user); this one is bound to none", ErrPermissionDenied)

// GuardStats counts the guard's decisions since it was made, for cmd/nird to export as
// metrics (for example nir_auth_requests_total{result="denied"}).
type GuardStats struct {
	// Allowed counts requests let through, public procedures included.
	Allowed uint64
	// Unauthenticated counts requests refused for a missing or unknown token.
	Unauthenticated uint64
	// Denied counts authenticated requests refused by the policy.
	Denied uint64
}

// Stats returns the guard's counters. It is safe to call at any time.
func (g *Guard) Stats() GuardStats {
	return GuardStats{Allowed: g.allowed.Load(), Unauthenticated: g.unauthenticated.Load(), Denied: g.denied.Load()}
}

var _ connect.Interceptor = (*Guard)(nil)

// NewGuard returns a guard that authenticates with authn and authorizes with policy. A nil
// logger discards. Refusals are logged at Info with the procedure and, once authenticated, the
// principal, never the token, and at most RefusalLogBurst at once.
func NewGuard(authn *Authenticator, policy Policy, logger *slog.Logger) *Guard {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Guard{authn: authn, policy: policy, log: logger.With("component", "auth"),
		refusals: &ratelog.Limiter{Burst: RefusalLogBurst, Every: RefusalLogEvery, Key: "refusals_not_logged"}}
}

// RefusalLogBurst and RefusalLogEvery bound the refusals the guard logs: the first
// RefusalLogBurst, then one each RefusalLogEvery; each line logged after some were left out
// says how many (refusals_not_logged), and [Guard.Stats] counts them all. A refused request
// costs its sender no more than a NATS message, and the guard refuses it before any
// principal's rate limit can apply (there is no principal): one line each, a case system's
// flood of requests with an unknown token wrote 5 000 lines for 5 000 requests, at NATS's
// rate, enough to fill nird's disk (internal/adversarial's TestNATS_RequestsFloodTheLog).
const (
	RefusalLogBurst = 20
	RefusalLogEvery = time.Second
)

// logRefusal logs a refusal at Info, within the guard's bound (RefusalLogBurst).
func (g *Guard) logRefusal(msg string, args ...any) {
	g.refusals.Log(context.Background(), g.log, slog.LevelInfo, msg, args...)
}

// Check authenticates the Authorization header in h and authorizes procedure. It returns the
// principal, or an error matching [ErrUnauthenticated] or [ErrPermissionDenied]. For a public
// procedure it returns the zero Principal and nil. The NATS ingress calls it with the request
// message's header and the procedure it maps the subject to
// (nirv1connect.RegistrationServiceAppendProcedure for nir.cmd.append.<case system>).
func (g *Guard) Check(h map[string][]string, procedure string) (Principal, error) {
	return g.check(h, procedure, "")
}

// CheckNATS is [Guard.Check] for a request the NATS ingress received from a case system's
// NATS user (the one its subject names, nir.cmd.append.<user>). A token bound to a NATS user
// ([Principal.NATSUser]) passes only here, and only in that user's requests: [Guard.Check]
// refuses it everywhere else (HTTP, the CSV route), with ErrPermissionDenied.
func (g *Guard) CheckNATS(h map[string][]string, procedure, user string) (Principal, error) {
	return g.check(h, procedure, user)
}

// errBoundToNATS refuses a token bound to a NATS user where it came otherwise. It names
// neither the user nor the token: a caller holding a leaked token learns nothing from it.
var errBoundToNATS = fmt.Errorf("%w: this token is bound to a case system's NATS user and is accepted only in that user's requests over NATS", ErrPermissionDenied)

// check is Check for a request from natsUser ("": not over NATS).
func (g *Guard) check(h map[string][]string, procedure, natsUser string) (Principal, error) {
	if g.policy.IsPublic(procedure) {
		g.allowed.Add(1)
		return Principal{}, nil
	}
	p, err := g.authn.AuthenticateHeader(h)
	if err != nil {
		g.unauthenticated.Add(1)
		// The error never holds the token: "no bearer token", "unknown token", ...
		// The procedure is the URL path any client chooses: a national id in it is masked.
		g.logRefusal("unauthenticated request refused", "procedure", rules.RedactIDs(procedure), "err", err)
		return Principal{}, err
	}
	if p.NATSUser != "" && p.NATSUser != natsUser {
		g.denied.Add(1)
		g.logRefusal("request refused: the token is bound to another NATS user", "procedure", rules.RedactIDs(procedure), "principal", p.String(), "over_nats", natsUser != "")
		return Principal{}, errBoundToNATS
	}
	if natsUser != "" && p.NATSUser == "" && g.boundOnly.Load() {
		g.denied.Add(1)
		g.logRefusal("request refused: over NATS only tokens bound to a NATS user are accepted", "procedure", rules.RedactIDs(procedure), "principal", p.String())
		return Principal{}, errNotBound
	}
	if err := g.policy.Authorize(p, procedure); err != nil {
		g.denied.Add(1)
		g.logRefusal("request refused", "procedure", rules.RedactIDs(procedure), "principal", p.String(), "role", string(p.Role))
		return Principal{}, err
	}
	g.allowed.Add(1)
	return p, nil
}

// ConnectError maps a [Guard.Check] error to the Connect error a client sees: Unauthenticated
// with a WWW-Authenticate challenge, or PermissionDenied.
func ConnectError(err error) *connect.Error {
	if errors.Is(err, ErrPermissionDenied) {
		return connect.NewError(connect.CodePermissionDenied, err)
	}
	ce := connect.NewError(connect.CodeUnauthenticated, errors.New("missing or invalid bearer token"))
	ce.Meta().Set("WWW-Authenticate", `Bearer realm="nir"`)
	return ce
}

// checkedKey marks a context whose request [Guard.CheckHTTP] let through, with the procedure
// it checked.
type checkedKey struct{}

// CheckHTTP is [Guard.Check] for an HTTP request at nird's edge, before anything reads its
// body: the procedure is the URL path (a Connect procedure, or a plain route). It returns the
// request with the principal in its context ([FromContext]), marked so that the guard's
// interceptor does not check the same procedure again.
func (g *Guard) CheckHTTP(r *http.Request) (*http.Request, Principal, error) {
	p, err := g.Check(r.Header, r.URL.Path)
	if err != nil {
		return r, Principal{}, err
	}
	ctx := context.WithValue(r.Context(), checkedKey{}, r.URL.Path)
	if p != (Principal{}) {
		ctx = NewContext(ctx, p)
	}
	return r.WithContext(ctx), p, nil
}

func (g *Guard) enter(ctx context.Context, procedure string, h http.Header) (context.Context, error) {
	if checked, _ := ctx.Value(checkedKey{}).(string); checked == procedure {
		return ctx, nil // CheckHTTP let this request through, before its body was read
	}
	p, err := g.Check(h, procedure)
	if err != nil {
		return ctx, ConnectError(err)
	}
	if p == (Principal{}) {
		return ctx, nil // public procedure
	}
	return NewContext(ctx, p), nil
}

// WrapUnary implements [connect.Interceptor]. On the client side it does nothing.
func (g *Guard) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		ctx, err := g.enter(ctx, req.Spec().Procedure, req.Header())
		if err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

// WrapStreamingClient implements [connect.Interceptor] and does nothing.
func (g *Guard) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler implements [connect.Interceptor] for streaming handlers.
func (g *Guard) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		ctx, err := g.enter(ctx, conn.Spec().Procedure, conn.RequestHeader())
		if err != nil {
			return err
		}
		return next(ctx, conn)
	}
}

// Middleware guards a plain HTTP route (the CSV export), using the request's URL path as the
// procedure name in the policy. It answers 401 with a WWW-Authenticate challenge or 403 with a
// short text, and otherwise calls next with the principal in the request's context.
func (g *Guard) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := g.Check(r.Header, r.URL.Path)
		switch {
		case errors.Is(err, ErrPermissionDenied):
			http.Error(w, "permission denied", http.StatusForbidden)
			return
		case err != nil:
			w.Header().Set("WWW-Authenticate", `Bearer realm="nir"`)
			http.Error(w, "missing or invalid bearer token", http.StatusUnauthorized)
			return
		}
		if p != (Principal{}) {
			r = r.WithContext(NewContext(r.Context(), p))
		}
		next.ServeHTTP(w, r)
	})
}

// BearerInterceptor is the client side: it sets "Authorization: Bearer <token>" on every
// request of a Connect client (nirctl, tests).
//
//	client := nirv1connect.NewRegistrationServiceClient(http.DefaultClient, url,
//		connect.WithInterceptors(auth.BearerInterceptor(token)))
func BearerInterceptor(token string) connect.Interceptor {
	return bearerInterceptor("Bearer " + token)
}

type bearerInterceptor string

func (b bearerInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			req.Header().Set("Authorization", string(b))
		}
		return next(ctx, req)
	}
}

func (b bearerInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		conn.RequestHeader().Set("Authorization", string(b))
		return conn
	}
}

func (b bearerInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// BearerTransport returns an http.RoundTripper that sends token as the bearer token of every
// request (none when token is empty), for clients that make plain HTTP requests besides
// Connect calls, such as the CSV export; it sets the same header as BearerInterceptor.
func BearerTransport(token string, next http.RoundTripper) http.RoundTripper {
	return bearerTransport{header: "Bearer " + token, set: token != "", next: next}
}

type bearerTransport struct {
	header string
	set    bool
	next   http.RoundTripper
}

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if b.set {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", b.header)
	}
	return b.next.RoundTrip(r)
}
