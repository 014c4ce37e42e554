// Package edge is nird's HTTP edge: what every API request passes before a handler reads a
// byte of its body. Clients are untrusted: any of them may be hostile, slow, or flooding.
//
// # Model
//
// A request goes through, in order:
//
//  1. The guard ([auth.Guard.CheckHTTP]): the bearer token and the policy for the URL path (a
//     Connect procedure, or a plain route such as the CSV export). A caller without a valid
//     token, or whose role may not call the procedure, is answered 401 or 403 (Unauthenticated,
//     PermissionDenied) from its headers alone; its body is never read.
//  2. The principal's rate limit: a token bucket per principal ([Config.Rate], [Config.Burst],
//     golang.org/x/time/rate). Over it, ResourceExhausted (HTTP 429, Retry-After).
//  3. The principal's share of requests in flight ([Config.MaxInflightPerPrincipal]), then
//     nird's total ([Config.MaxInflight]). Over either, ResourceExhausted at once: a request
//     never waits at the edge, so nothing queues in memory behind a slow caller. A request
//     without a principal (a public procedure, the web console's log-in) has neither: it
//     takes one of the slots kept for such requests ([Config.MaxPublicInflight]), never one
//     of MaxInflight's, and its body is read under a short deadline
//     ([Config.PublicReadTimeout]). Anyone can send one, so nobody without a token can hold
//     the slots of the callers who have one.
//  4. The body: one that says it is larger than any handler reads ([Config.MaxBodyBytes]) is
//     refused at once. The first [FreeBodyBytes] of every body are free; the rest is drawn
//     from one budget shared by every request ([Config.BodyMemory]) in one go, and given back
//     when the handler returns: before the handler runs when the request says its length
//     (Content-Length), else, as the largest body there may be, when the handler reads past
//     the free part (a gRPC message, a chunked upload). When the budget is spent, a large
//     body is refused with ResourceExhausted having been read no further than its free part,
//     while small requests go on. Drawing it whole, rather than as the bytes come, keeps a
//     crowd of slow uploads from each growing a buffer only to be refused.
//     A principal's compressed body (Content-Encoding, Connect-Content-Encoding or
//     Grpc-Encoding other than identity) draws the largest body before the handler runs,
//     whatever its length: the handler inflates it up to MaxBodyBytes.
//
// The listener ([LimitListener]) caps the connections nird holds open, and the HTTP server's
// timeouts (cmd/nird) bound how long any of them may take to send its request. At the cap, a
// new client is admitted in place of the connection idle longest (HTTP/1.1 keep-alive, or
// HTTP/2 with no stream open, as http.Server.ConnState reports them), else of the one that
// has waited longest to send its request; while every connection serves a request, new
// clients wait in the kernel's backlog. So connections that carry no request never keep a
// client out, and the open connections stay at most the cap (one more is held while Accept
// waits for a slot after a race).
//
// # Guarantees
//
//   - Memory for request bodies is bounded: at most (MaxInflight + MaxPublicInflight) ×
//     FreeBodyBytes plus BodyMemory bytes are read and held at once (Connect's buffers may
//     double that, and the garbage collector lets the heap grow to about twice what is live).
//     The NATS ingress's requests draw from the same budget ([Edge.DrawBody]): one budget
//     bounds the bodies served whichever way they came.
//   - Public procedures (gRPC health) need no token and are not rate limited; they count
//     toward MaxPublicInflight and their bodies toward the budget. However many of them
//     stall, a caller with a token finds MaxInflight's slots as its peers left them.
//   - Refusals are answered in the caller's protocol (Connect, gRPC, gRPC-Web) with a message
//     saying which limit was hit; they name the principal, never a token.
//
// # Caveats
//
//   - A connection closed to admit another loses a request that crosses the close (an idle
//     one's next, or a request not yet read off a new one); clients retry idempotent ones on a
//     fresh connection, as after the server's idle timeout. Only at the cap is anything
//     closed, and only connections serving no request.
//   - The limits are per nird process; behind a load balancer each node counts its own.
//   - A principal is the token file's entry: every case system sharing one token shares its
//     rate and its share of requests in flight.
package edge

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/time/rate"

	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/ratelog"
	"github.com/introreg/nir/rules"
)

// FreeBodyBytes is the part of each request's body that does not count toward
// [Config.BodyMemory], so that small requests are never refused for large ones in flight.
const FreeBodyBytes = 64 << 10

// Config holds the edge's limits. A zero field switches its limit off.
type Config struct {
	// MaxInflight is how many requests nird serves at once, over every caller.
	MaxInflight int
	// MaxInflightPerPrincipal is how many of them one principal may have.
	MaxInflightPerPrincipal int
	// MaxPublicInflight is how many requests without a principal nird serves at once, in
	// slots of their own: they never count toward MaxInflight.
	MaxPublicInflight int
	// PublicReadTimeout bounds the reading of a request without a principal from when its
	// headers are read: such bodies are small, and anyone can send one slowly.
	PublicReadTimeout time.Duration
	// Rate is the requests per second one principal may make on average, Burst how many it
	// may make at once. Rate 0 is no limit; with a Rate, Burst must be at least 1.
	Rate  float64
	Burst int
	// BodyMemory is the bytes of request bodies, beyond each request's FreeBodyBytes, held
	// at once over every request.
	BodyMemory int64
	// MaxBodyBytes is the largest body a handler reads (Connect's ReadMaxBytes); a request
	// whose Content-Length is larger is refused before it is read. Required with BodyMemory.
	MaxBodyBytes int64
	// Logger gets a line per refusal at Debug, and a warning the first time a principal is
	// rate limited in a minute. Nil discards.
	Logger *slog.Logger
}

// Validate reports a negative limit, or a rate without a burst.
func (c Config) Validate() error {
	switch {
	case c.MaxInflight < 0:
		return fmt.Errorf("edge: MaxInflight %d is negative", c.MaxInflight)
	case c.MaxInflightPerPrincipal < 0:
		return fmt.Errorf("edge: MaxInflightPerPrincipal %d is negative", c.MaxInflightPerPrincipal)
	case c.MaxPublicInflight < 0:
		return fmt.Errorf("edge: MaxPublicInflight %d is negative", c.MaxPublicInflight)
	case c.PublicReadTimeout < 0:
		return fmt.Errorf("edge: PublicReadTimeout %v is negative", c.PublicReadTimeout)
	case c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return fmt.Errorf("edge: Rate %v is not a number of requests per second", c.Rate)
	case c.Rate > 0 && c.Burst < 1:
		return fmt.Errorf("edge: Burst %d: a rate limit needs a burst of at least 1", c.Burst)
	case c.BodyMemory < 0:
		return fmt.Errorf("edge: BodyMemory %d is negative", c.BodyMemory)
	case c.MaxBodyBytes < 0:
		return fmt.Errorf("edge: MaxBodyBytes %d is negative", c.MaxBodyBytes)
	case c.BodyMemory > 0 && c.BodyMemory < c.MaxBodyBytes-FreeBodyBytes:
		return fmt.Errorf("edge: BodyMemory %d holds not one body of MaxBodyBytes %d", c.BodyMemory, c.MaxBodyBytes)
	case c.BodyMemory > 0 && c.MaxBodyBytes == 0:
		return errors.New("edge: BodyMemory needs MaxBodyBytes")
	}
	return nil
}

// Edge applies the guard and the limits to HTTP handlers. It is safe for concurrent use.
type Edge struct {
	guard *auth.Guard
	cfg   Config
	log   *slog.Logger
	errw  *connect.ErrorWriter

	inflight   chan struct{} // a slot per request in flight; nil without MaxInflight
	public     chan struct{} // a slot per request without a principal; nil without MaxPublicInflight
	bodyMemory atomic.Int64  // bytes drawn from cfg.BodyMemory

	mu         sync.Mutex // guards principals
	principals map[string]*principal

	refusedRate, refusedPrincipal, refusedInflight, refusedPublic, refusedBody atomic.Uint64
}

// principal is one principal's rate and requests in flight.
type principal struct {
	limiter  *rate.Limiter // nil without a rate
	inflight int
	warnings ratelog.Limiter // the warnings about its rate: one a minute
}

// New returns an edge that checks requests with guard and applies cfg's limits.
func New(guard *auth.Guard, cfg Config) (*Edge, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Edge{guard: guard, cfg: cfg, log: log.With("component", "edge"), errw: connect.NewErrorWriter(), principals: map[string]*principal{}}
	if cfg.MaxInflight > 0 {
		e.inflight = make(chan struct{}, cfg.MaxInflight)
	}
	if cfg.MaxPublicInflight > 0 {
		e.public = make(chan struct{}, cfg.MaxPublicInflight)
	}
	return e, nil
}

// Stats counts the edge's refusals since it was made, for cmd/nird's metrics.
type Stats struct {
	// RefusedRate counts requests over their principal's rate.
	RefusedRate uint64
	// RefusedPrincipalInflight counts requests over their principal's share of requests in
	// flight, RefusedInflight those over nird's total.
	RefusedPrincipalInflight, RefusedInflight uint64
	// RefusedPublicInflight counts requests without a principal over MaxPublicInflight.
	RefusedPublicInflight uint64
	// RefusedBodyMemory counts requests whose body did not fit in the body budget.
	RefusedBodyMemory uint64
	// Inflight is the number of requests being served now, PublicInflight the number of
	// them without a principal.
	Inflight, PublicInflight int
	// BodyMemory is the bytes drawn from the body budget now.
	BodyMemory int64
}

// Stats returns the edge's counters.
func (e *Edge) Stats() Stats {
	return Stats{
		RefusedRate: e.refusedRate.Load(), RefusedPrincipalInflight: e.refusedPrincipal.Load(),
		RefusedInflight: e.refusedInflight.Load(), RefusedPublicInflight: e.refusedPublic.Load(),
		RefusedBodyMemory: e.refusedBody.Load(), BodyMemory: e.bodyMemory.Load(),
		Inflight: len(e.inflight) + len(e.public), PublicInflight: len(e.public),
	}
}

// Wrap returns h behind the guard and the limits.
func (e *Edge) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, p, err := e.guard.CheckHTTP(r)
		if err != nil {
			e.refuse(w, r, auth.ConnectError(err))
			return
		}
		e.serve(w, r, p, h)
	})
}

// Limit returns h behind the limits but not the guard, for routes that authenticate their
// callers themselves (the web console, whose session puts the principal in the request's
// context with auth.NewContext before calling h): the principal's rate and requests in
// flight, nird's requests in flight and the body budget. A request without a principal (a
// log-in form) takes a public slot, as a public procedure does.
func (e *Edge) Limit(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.FromContext(r.Context())
		e.serve(w, r, p, h)
	})
}

// serve admits r of p (the zero Principal for a request without one), draws its body from
// the budget and calls h.
func (e *Edge) serve(w http.ResponseWriter, r *http.Request, p auth.Principal, h http.Handler) {
	release, err := e.Admit(p, r.URL.Path)
	if err != nil {
		e.refuse(w, r, err)
		return
	}
	defer release()
	if d := e.cfg.PublicReadTimeout; d > 0 && p == (auth.Principal{}) {
		// The server's --read-timeout is for large bodies of callers with a token; this
		// one holds a public slot only as long as a small body takes.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(d))
	}
	if r.Body != nil && r.Body != http.NoBody {
		b, err := e.budget(r, p != auth.Principal{})
		if err != nil {
			e.refuse(w, r, err)
			return
		}
		defer b.release()
		r.Body = b
	}
	h.ServeHTTP(w, r)
}

// refuse answers err in the request's protocol: Connect, gRPC or gRPC-Web, or plain text for
// a plain route (the CSV export).
func (e *Edge) refuse(w http.ResponseWriter, r *http.Request, err error) {
	ce := new(connect.Error)
	if !errors.As(err, &ce) {
		ce = connect.NewError(connect.CodeInternal, err)
	}
	for k, vs := range ce.Meta() {
		w.Header()[k] = vs
	}
	if e.errw.IsSupported(r) {
		_ = e.errw.Write(w, r, ce)
		return
	}
	http.Error(w, ce.Message(), httpStatus(ce.Code()))
}

func httpStatus(c connect.Code) int {
	switch c {
	case connect.CodeUnauthenticated:
		return http.StatusUnauthorized
	case connect.CodePermissionDenied:
		return http.StatusForbidden
	case connect.CodeResourceExhausted:
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

// Admit applies the rate and the in-flight limits to one request of p (the zero Principal
// for a public procedure, which takes a public slot instead) and returns the function that
// ends it, or a Connect error (ResourceExhausted) to answer with. Wrap and Limit use it; so
// does the NATS ingress, so that a principal's requests share the limits whichever way they
// come.
func (e *Edge) Admit(p auth.Principal, procedure string) (func(), error) {
	if p == (auth.Principal{}) {
		return e.admitPublic(procedure)
	}
	key := p.String()
	e.mu.Lock()
	st := e.principals[key]
	if st == nil {
		st = &principal{}
		if e.cfg.Rate > 0 {
			st.limiter = rate.NewLimiter(rate.Limit(e.cfg.Rate), e.cfg.Burst)
		}
		e.principals[key] = st
	}
	if st.limiter != nil && !st.limiter.Allow() {
		e.mu.Unlock()
		e.refusedRate.Add(1)
		if leftOut, warn := st.warnings.Allow(); warn {
			e.log.Warn("principal over its rate limit; refusing its requests with ResourceExhausted", "principal", key, "rate", e.cfg.Rate, "burst", e.cfg.Burst, "refused_since_last_log", leftOut+1)
		}
		ce := connect.NewError(connect.CodeResourceExhausted, fmt.Errorf("rate limit: %s may make %v requests per second (bursts of %d); retry later", key, e.cfg.Rate, e.cfg.Burst))
		ce.Meta().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(1/e.cfg.Rate)))))
		return nil, ce
	}
	if m := e.cfg.MaxInflightPerPrincipal; m > 0 && st.inflight >= m {
		e.mu.Unlock()
		e.refusedPrincipal.Add(1)
		e.log.Debug("principal at its requests in flight", "principal", key, "procedure", rules.RedactIDs(procedure), "max", m)
		return nil, busy(fmt.Sprintf("%s has %d requests in flight, its most; retry when one is answered", key, m))
	}
	st.inflight++
	e.mu.Unlock()
	if e.inflight != nil {
		select {
		case e.inflight <- struct{}{}:
		default:
			e.refusedInflight.Add(1)
			e.done(st)
			e.log.Debug("nird at its requests in flight", "procedure", rules.RedactIDs(procedure), "max", e.cfg.MaxInflight)
			return nil, busy(fmt.Sprintf("nird is serving %d requests, its most; retry later", e.cfg.MaxInflight))
		}
	}
	return func() {
		if e.inflight != nil {
			<-e.inflight
		}
		e.done(st)
	}, nil
}

// admitPublic takes a public slot for a request without a principal.
func (e *Edge) admitPublic(procedure string) (func(), error) {
	if e.public == nil {
		return func() {}, nil
	}
	select {
	case e.public <- struct{}{}:
		return func() { <-e.public }, nil
	default:
		e.refusedPublic.Add(1)
		e.log.Debug("nird at its requests in flight without a principal", "procedure", rules.RedactIDs(procedure), "max", e.cfg.MaxPublicInflight)
		return nil, busy(fmt.Sprintf("nird is serving %d requests without a token, its most; retry later", e.cfg.MaxPublicInflight))
	}
}

func (e *Edge) done(st *principal) {
	e.mu.Lock()
	st.inflight--
	e.mu.Unlock()
}

func busy(msg string) *connect.Error {
	ce := connect.NewError(connect.CodeResourceExhausted, errors.New(msg))
	ce.Meta().Set("Retry-After", "1")
	return ce
}

// budget wraps r's body to draw from the body budget. A body of known length has all of it
// drawn now, or is refused before a byte is read; so has a compressed body of a principal's
// (inflated) as the largest there may be. A public procedure's handler reads a few KiB at
// most, inflated or not: its compressed body is not drawn as the largest, which would let
// callers without a token spend the budget.
func (e *Edge) budget(r *http.Request, principal bool) (*budgetBody, error) {
	b := &budgetBody{rc: r.Body, e: e, free: FreeBodyBytes}
	n := r.ContentLength
	if err := e.tooLarge(n); err != nil {
		return nil, err
	}
	switch {
	case principal && compressed(r.Header):
		// A body of a few KiB inflates to the largest a handler reads: drawn as that.
		if err := b.draw(e.cfg.MaxBodyBytes - FreeBodyBytes); err != nil {
			return nil, err
		}
	case n > FreeBodyBytes:
		if err := b.draw(n - FreeBodyBytes); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// compressedHeaders say that a request's body, or the messages in it, are compressed:
// Connect's unary and streaming protocols, and gRPC's and gRPC-Web's.
var compressedHeaders = []string{"Content-Encoding", "Connect-Content-Encoding", "Grpc-Encoding"}

// compressed reports whether h says its request's body is compressed, so that the handler
// inflates it (Connect does, up to its ReadMaxBytes): deflate makes a thousand bytes of one
// byte, so what a handler holds of such a body is not bounded by its length.
func compressed(h http.Header) bool {
	for _, name := range compressedHeaders {
		if v := h.Get(name); v != "" && !strings.EqualFold(v, "identity") {
			return true
		}
	}
	return false
}

// DrawBody draws a body of n bytes that came whole with its request (a NATS request's)
// from the budget the API's bodies draw from ([Config.BodyMemory]), as Wrap draws a body
// whose length the request says: its first FreeBodyBytes are free, the rest is drawn in one
// go, and given back by release (which may be called more than once) when the request has
// been served. A body larger than MaxBodyBytes, or one that does not fit in what is left of
// the budget, is refused with ResourceExhausted and counted as an HTTP body is
// ([Stats.RefusedBodyMemory]). The NATS ingress calls it before it decodes a request, so
// that one budget bounds the bodies being decoded and served whichever way they came.
func (e *Edge) DrawBody(n int64) (release func(), err error) {
	if err := e.tooLarge(n); err != nil {
		return nil, err
	}
	if n <= FreeBodyBytes {
		return func() {}, nil
	}
	held, err := e.draw(n - FreeBodyBytes)
	if err != nil {
		return nil, err
	}
	var once sync.Once
	return func() { once.Do(func() { e.bodyMemory.Add(-held) }) }, nil
}

// tooLarge refuses a body of n bytes larger than MaxBodyBytes, counted.
func (e *Edge) tooLarge(n int64) error {
	if m := e.cfg.MaxBodyBytes; m > 0 && n > m {
		e.refusedBody.Add(1)
		return connect.NewError(connect.CodeResourceExhausted, fmt.Errorf("request body of %d bytes is larger than the %d nird reads", n, m))
	}
	return nil
}

// draw takes n bytes from the body budget and returns what it took (0 without a budget),
// or counts a refusal and returns ResourceExhausted when they do not fit.
func (e *Edge) draw(n int64) (held int64, err error) {
	if e.cfg.BodyMemory == 0 {
		return 0, nil
	}
	if e.bodyMemory.Add(n) > e.cfg.BodyMemory {
		e.bodyMemory.Add(-n)
		e.refusedBody.Add(1)
		return 0, e.budgetSpent()
	}
	return n, nil
}

func (e *Edge) budgetSpent() *connect.Error {
	return busy(fmt.Sprintf("body memory limit: nird is reading %d MiB of large request bodies, its most; retry later or send smaller requests", e.cfg.BodyMemory>>20))
}

// budgetBody is a request body that reads free bytes, then draws from the edge's body budget
// once, for the rest of the body.
type budgetBody struct {
	rc    io.ReadCloser
	e     *Edge
	free  int64 // bytes it reads before it must draw
	drawn bool  // it has drawn (or needs not): no limit but the handler's own
	held  int64 // bytes drawn from the budget
	err   error // the refusal, once the budget was spent
}

// draw takes n bytes from the budget for the rest of the body, or fails with
// ResourceExhausted.
func (b *budgetBody) draw(n int64) error {
	b.drawn = true
	held, err := b.e.draw(n)
	b.held = held
	return err
}

func (b *budgetBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if !b.drawn {
		if b.free <= 0 {
			// Past the free part of a body of unknown length: draw for the largest.
			if b.err = b.draw(b.e.cfg.MaxBodyBytes - FreeBodyBytes); b.err != nil {
				return 0, b.err
			}
		} else if int64(len(p)) > b.free {
			p = p[:b.free]
		}
	}
	n, err := b.rc.Read(p)
	b.free -= int64(n)
	return n, err
}

func (b *budgetBody) Close() error { return b.rc.Close() }

func (b *budgetBody) release() {
	b.e.bodyMemory.Add(-b.held)
	b.held = 0
}
