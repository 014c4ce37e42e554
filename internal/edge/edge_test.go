package edge

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/introreg/nir/internal/auth"
)

const (
	listPersons = "/nir.v1.QueryService/ListPersons"
	healthCheck = "/grpc.health.v1.Health/Check"
)

// fixture is an edge in front of a handler that reads the whole body and then, for a request
// with the header X-Hold, waits until hold is closed; reads counts the body bytes it read.
type fixture struct {
	url          string
	oslo, bergen string
	reads        atomic.Int64
	refusedRead  atomic.Int64 // bytes read of the last body whose reading failed
	entered      chan struct{}
	hold         chan struct{}
	edge         *Edge
}

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	f := &fixture{entered: make(chan struct{}, 100), hold: make(chan struct{})}
	var entries []auth.Entry
	for _, p := range []struct {
		dst *string
		p   auth.Principal
	}{
		{&f.oslo, auth.Principal{Name: "oslo", Role: auth.RoleKommune, Kommune: "0301"}},
		{&f.bergen, auth.Principal{Name: "bergen", Role: auth.RoleKommune, Kommune: "4601"}},
	} {
		tok, e, err := auth.GenerateToken(p.p)
		if err != nil {
			t.Fatal(err)
		}
		*p.dst = tok
		entries = append(entries, e)
	}
	authn, err := auth.New(entries)
	if err != nil {
		t.Fatal(err)
	}
	f.edge, err = New(auth.NewGuard(authn, auth.DefaultPolicy(), nil), cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := f.edge.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		f.reads.Add(n)
		if err != nil {
			// As a Connect handler answers a body it could not read.
			f.refusedRead.Store(n)
			_ = connect.NewErrorWriter().Write(w, r, err)
			return
		}
		f.entered <- struct{}{}
		if p, ok := auth.FromContext(r.Context()); ok {
			w.Header().Set("X-Principal", p.Name)
		}
		if r.Header.Get("X-Hold") != "" {
			<-f.hold
		}
	}))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		select {
		case <-f.hold:
		default:
			close(f.hold)
		}
	})
	f.url = srv.URL
	return f
}

// client bounds every request of these tests, so that one a mutant leaves unanswered fails
// its test with a message instead of hanging until the test binary's timeout.
var client = &http.Client{Timeout: 20 * time.Second}

// call sends a Connect unary JSON request (or gRPC with grpc) to path with token and body;
// contentLength -1 sends it chunked.
func (f *fixture) call(t *testing.T, path, token string, body io.Reader, contentLength int64, grpc bool) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = contentLength
	req.Header.Set("Content-Type", "application/json")
	if grpc {
		req.Header.Set("Content-Type", "application/grpc")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

// connectCode is the code of a Connect JSON error response.
func connectCode(t *testing.T, res *http.Response) string {
	t.Helper()
	var e struct{ Code, Message string }
	b, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("HTTP %d %q: not a Connect error: %v", res.StatusCode, b, err)
	}
	return e.Code + ": " + e.Message
}

func TestEdge_TokenBeforeBody(t *testing.T) {
	f := newFixture(t, Config{})
	body := strings.Repeat(" ", 1<<20)
	for _, tt := range []struct {
		name, token string
		grpc        bool
		status      int
		want        string
	}{
		{"NoToken", "", false, http.StatusUnauthorized, "unauthenticated"},
		{"UnknownToken", "nir_nope", false, http.StatusUnauthorized, "unauthenticated"},
		{"NoTokenOverGRPC", "", true, http.StatusOK, "16"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := f.call(t, listPersons, tt.token, strings.NewReader(body), int64(len(body)), tt.grpc)
			if res.StatusCode != tt.status {
				t.Fatalf("HTTP %d, want %d", res.StatusCode, tt.status)
			}
			if tt.grpc {
				_, _ = io.Copy(io.Discard, res.Body) // over HTTP/1.1 the status is a trailer
				if got := res.Header.Get("Grpc-Status") + res.Trailer.Get("Grpc-Status"); got != tt.want {
					t.Errorf("grpc-status %q, want %q", got, tt.want)
				}
			} else if got := connectCode(t, res); !strings.HasPrefix(got, tt.want) {
				t.Errorf("error %q, want %s", got, tt.want)
			}
			if res.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("no WWW-Authenticate challenge")
			}
			if n := f.reads.Load(); n != 0 {
				t.Errorf("the handler read %d bytes of an unauthenticated body", n)
			}
		})
	}
	t.Run("PublicProcedureWithoutToken", func(t *testing.T) {
		res := f.call(t, healthCheck, "", strings.NewReader("{}"), 2, false)
		if res.StatusCode != http.StatusOK {
			t.Errorf("public procedure: HTTP %d, want 200", res.StatusCode)
		}
	})
	t.Run("AuthenticatedGetsPrincipal", func(t *testing.T) {
		res := f.call(t, listPersons, f.oslo, strings.NewReader("{}"), 2, false)
		if res.StatusCode != http.StatusOK || res.Header.Get("X-Principal") != "oslo" {
			t.Errorf("HTTP %d principal %q, want 200 oslo", res.StatusCode, res.Header.Get("X-Principal"))
		}
	})
}

func TestEdge_RateLimit(t *testing.T) {
	f := newFixture(t, Config{Rate: 1, Burst: 3})
	for i := range 3 {
		if res := f.call(t, listPersons, f.oslo, strings.NewReader("{}"), 2, false); res.StatusCode != http.StatusOK {
			t.Fatalf("request %d within the burst: HTTP %d", i, res.StatusCode)
		}
	}
	res := f.call(t, listPersons, f.oslo, strings.NewReader("{}"), 2, false)
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") != "1" {
		t.Fatalf("over the burst: HTTP %d Retry-After %q, want 429 and 1", res.StatusCode, res.Header.Get("Retry-After"))
	}
	if got := connectCode(t, res); !strings.Contains(got, "resource_exhausted: rate limit: kommune:oslo@0301") {
		t.Errorf("refusal %q does not name the rate limit and the principal", got)
	}
	// Another principal has its own bucket, and a public procedure none.
	if res := f.call(t, listPersons, f.bergen, strings.NewReader("{}"), 2, false); res.StatusCode != http.StatusOK {
		t.Errorf("bergen while oslo is limited: HTTP %d", res.StatusCode)
	}
	for range 5 {
		if res := f.call(t, healthCheck, "", strings.NewReader("{}"), 2, false); res.StatusCode != http.StatusOK {
			t.Errorf("health check: HTTP %d", res.StatusCode)
		}
	}
	if st := f.edge.Stats(); st.RefusedRate != 1 {
		t.Errorf("RefusedRate = %d, want 1", st.RefusedRate)
	}
}

func TestEdge_Inflight(t *testing.T) {
	f := newFixture(t, Config{MaxInflight: 3, MaxInflightPerPrincipal: 2, MaxPublicInflight: 1})
	async := func(path, token string) <-chan *http.Response {
		t.Helper()
		return f.held(t, path, token, 2, 2)
	}
	refused := func(path, token, want string) {
		t.Helper()
		res := f.call(t, path, token, strings.NewReader("{}"), 2, false)
		if res.StatusCode != http.StatusTooManyRequests {
			t.Errorf("%s: HTTP %d, want 429 (%s)", path, res.StatusCode, want)
		} else if got := connectCode(t, res); !strings.Contains(got, want) {
			t.Errorf("refusal %q does not say %q", got, want)
		}
	}
	held := []<-chan *http.Response{async(listPersons, f.oslo), async(listPersons, f.oslo)}
	refused(listPersons, f.oslo, "kommune:oslo@0301 has 2 requests in flight")
	held = append(held, async(listPersons, f.bergen))
	refused(listPersons, f.bergen, "nird is serving 3 requests")
	// A request without a principal has a slot of its own while nird's are taken, and
	// takes none of theirs.
	held = append(held, async(healthCheck, ""))
	refused(healthCheck, "", "nird is serving 1 requests without a token")
	want := Stats{Inflight: 4, PublicInflight: 1, RefusedInflight: 1, RefusedPrincipalInflight: 1, RefusedPublicInflight: 1}
	if st := f.edge.Stats(); st != want {
		t.Errorf("stats = %+v, want %+v", st, want)
	}
	close(f.hold)
	for _, c := range held {
		if res := answer(t, c); res == nil || res.StatusCode != http.StatusOK {
			t.Errorf("held request: %v", res)
		}
	}
	if res := f.call(t, listPersons, f.oslo, strings.NewReader("{}"), 2, false); res.StatusCode != http.StatusOK {
		t.Errorf("after the others finished: HTTP %d", res.StatusCode)
	}
	// Each principal has its whole share again, Bergen too, whose request nird's total
	// refused after its share was counted (mutation testing: that count, never given back,
	// passed the test).
	for _, p := range []auth.Principal{
		{Name: "oslo", Role: auth.RoleKommune, Kommune: "0301"},
		{Name: "bergen", Role: auth.RoleKommune, Kommune: "4601"},
	} {
		var releases []func()
		for i := range 2 {
			release, err := f.edge.Admit(p, listPersons)
			if err != nil {
				t.Errorf("%s's request %d of its 2 once the others finished: %v", p.Name, i+1, err)
				continue
			}
			releases = append(releases, release)
		}
		for _, release := range releases {
			release()
		}
	}
}

// TestEdge_PublicReadTimeout: a request without a principal that stalls in its body is cut
// off after PublicReadTimeout, giving its slot back; one with a token is not.
func TestEdge_PublicReadTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	f := newFixture(t, Config{MaxPublicInflight: 1, PublicReadTimeout: timeout})
	stall := func(path, token string) net.Conn {
		c, err := net.Dial("tcp", strings.TrimPrefix(f.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		auth := ""
		if token != "" {
			auth = "Authorization: Bearer " + token + "\r\n"
		}
		if _, err := io.WriteString(c, "POST "+path+" HTTP/1.1\r\nHost: edge\r\nContent-Type: application/json\r\n"+auth+"Content-Length: 1000\r\n\r\n{"); err != nil {
			t.Fatal(err)
		}
		return c
	}
	answered := func(c net.Conn, within time.Duration) bool {
		_ = c.SetReadDeadline(time.Now().Add(within))
		_, err := c.Read(make([]byte, 1))
		return err == nil
	}
	public, withToken := stall(healthCheck, ""), stall(listPersons, f.oslo)
	if !answered(public, 10*timeout) {
		t.Errorf("a stalled request without a token was not cut off within %v", 10*timeout)
	}
	if answered(withToken, 5*timeout) {
		t.Errorf("a stalled request with a token was cut off by PublicReadTimeout")
	}
	if res := f.call(t, healthCheck, "", strings.NewReader("{}"), 2, false); res.StatusCode != http.StatusOK {
		t.Errorf("health check after the stalled one was cut off: HTTP %d", res.StatusCode)
	}
}

// held sends a request to path with token (none when empty), the headers hdr names and
// values in turn, and a body of size bytes (ContentLength contentLength, -1: chunked) whose
// handler waits until f.hold is closed,
// and returns once the handler has begun: its slots and its body's draw from the budget are
// then held. The response comes on the channel (closed without one if the request failed).
// A request answered before its handler began (refused), or whose handler has not begun
// within 10s, fails the test.
func (f *fixture) held(t *testing.T, path, token string, size, contentLength int64, hdr ...string) <-chan *http.Response {
	t.Helper()
	res := make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, f.url+path, strings.NewReader(strings.Repeat(" ", int(size))))
		req.ContentLength = contentLength
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		req.Header.Set("X-Hold", "1")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		r, err := client.Do(req)
		if err != nil {
			t.Error(err)
			close(res)
			return
		}
		r.Body.Close()
		res <- r
	}()
	select {
	case <-f.entered:
	case r, ok := <-res:
		if ok {
			t.Fatalf("%s: HTTP %d before its handler began, want it held", path, r.StatusCode)
		}
		t.Fatalf("%s failed before its handler began", path)
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: its handler did not begin within 10s", path)
	}
	return res
}

// answer returns the response that res brings, nil if its request failed; it fails the
// test when none comes within 30s (the client gives up after 20).
func answer(t *testing.T, res <-chan *http.Response) *http.Response {
	t.Helper()
	select {
	case r := <-res:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("a held request was not answered within 30s")
		return nil
	}
}

func TestEdge_BodyBudget(t *testing.T) {
	const maxBody = 1 << 20
	large := int64(maxBody - 10)
	for _, tt := range []struct {
		name          string
		contentLength func(n int64) int64
		drawn         int64 // by the large body: the rest of it, or of the largest there may be
	}{
		{"KnownLength", func(n int64) int64 { return n }, large - FreeBodyBytes},
		{"Chunked", func(int64) int64 { return -1 }, maxBody - FreeBodyBytes},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Config{BodyMemory: maxBody - FreeBodyBytes, MaxBodyBytes: maxBody})
			// One large body holds the whole budget while its handler waits.
			held := f.held(t, listPersons, f.oslo, large, tt.contentLength(large))
			if got := f.edge.Stats().BodyMemory; got != tt.drawn {
				t.Errorf("budget drawn = %d, want %d", got, tt.drawn)
			}
			// A second large body is refused, having been read no further than its free part.
			res := f.call(t, listPersons, f.bergen, strings.NewReader(strings.Repeat(" ", int(large))), tt.contentLength(large), false)
			if res.StatusCode != http.StatusTooManyRequests {
				t.Errorf("a second large body: HTTP %d, want 429", res.StatusCode)
			} else if got := connectCode(t, res); !strings.Contains(got, "large request bodies") {
				t.Errorf("refusal %q does not say the body budget", got)
			}
			if n := f.refusedRead.Load(); n > FreeBodyBytes {
				t.Errorf("the handler read %d bytes of the refused body, more than its free %d", n, FreeBodyBytes)
			}
			// A small one goes through.
			if res := f.call(t, listPersons, f.bergen, strings.NewReader("{}"), tt.contentLength(2), false); res.StatusCode == http.StatusTooManyRequests {
				t.Errorf("a small body while the budget is spent: HTTP %d", res.StatusCode)
			}
			close(f.hold)
			if res := answer(t, held); res == nil || res.StatusCode != http.StatusOK {
				t.Errorf("the held large request: %v", res)
			}
			if got := f.edge.Stats().BodyMemory; got != 0 {
				t.Errorf("budget drawn after every request ended = %d, want 0", got)
			}
		})
	}
	t.Run("LargerThanAnyHandlerReads", func(t *testing.T) {
		f := newFixture(t, Config{BodyMemory: 4 << 20, MaxBodyBytes: maxBody})
		res := f.call(t, listPersons, f.oslo, strings.NewReader(strings.Repeat(" ", 2*maxBody)), 2*maxBody, false)
		if res.StatusCode != http.StatusTooManyRequests {
			t.Errorf("HTTP %d, want 429", res.StatusCode)
		} else if got := connectCode(t, res); !strings.Contains(got, "larger than") {
			t.Errorf("refusal %q does not say the body is too large", got)
		}
		if f.reads.Load() != 0 {
			t.Errorf("the handler read %d bytes of a body larger than it reads", f.reads.Load())
		}
	})
}

// TestEdge_CompressedBodyDrawsTheLargest: a principal's compressed body of a few bytes
// draws the largest body from the budget before its handler runs, in each protocol's
// header, since the handler inflates it to as much as MaxBodyBytes; while it is held, a
// second one is refused. Before, it drew nothing (its length is within the free part), so
// each of a principal's 64 requests in flight could inflate 4 KiB to 4 MiB outside the
// budget. An uncompressed small body, and a public procedure's compressed one (whose
// handler reads a few KiB), still draw nothing.
func TestEdge_CompressedBodyDrawsTheLargest(t *testing.T) {
	const maxBody = 1 << 20
	for _, name := range []string{"Content-Encoding", "Connect-Content-Encoding", "Grpc-Encoding"} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, Config{BodyMemory: maxBody - FreeBodyBytes, MaxBodyBytes: maxBody})
			if res := f.call(t, listPersons, f.bergen, strings.NewReader("{}"), 2, false); res.StatusCode != http.StatusOK || f.edge.Stats().RefusedBodyMemory != 0 {
				t.Fatalf("an uncompressed small body: HTTP %d", res.StatusCode)
			}
			<-f.entered // its handler's, not the held one's
			held := f.held(t, listPersons, f.oslo, 100, 100, name, "gzip")
			if got := f.edge.Stats().BodyMemory; got != maxBody-FreeBodyBytes {
				t.Errorf("budget drawn by a compressed body of 100 bytes = %d, want %d", got, maxBody-FreeBodyBytes)
			}
			req, err := http.NewRequest(http.MethodPost, f.url+listPersons, strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+f.bergen)
			req.Header.Set(name, "gzip")
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusTooManyRequests {
				t.Errorf("a second compressed body while the first is held: HTTP %d, want 429", res.StatusCode)
			}
			close(f.hold)
			if res := answer(t, held); res == nil || res.StatusCode != http.StatusOK {
				t.Errorf("the held compressed request: %v", res)
			}
			if got := f.edge.Stats().BodyMemory; got != 0 {
				t.Errorf("budget drawn after every request ended = %d, want 0", got)
			}
		})
	}
	t.Run("Public", func(t *testing.T) {
		f := newFixture(t, Config{BodyMemory: maxBody - FreeBodyBytes, MaxBodyBytes: maxBody})
		held := f.held(t, healthCheck, "", 100, 100, "Grpc-Encoding", "gzip")
		if got := f.edge.Stats().BodyMemory; got != 0 {
			t.Errorf("budget drawn by a public procedure's compressed body = %d, want 0", got)
		}
		close(f.hold)
		answer(t, held)
	})
}

// DrawBody (the NATS ingress's bodies) draws from the one budget HTTP's bodies draw from: a
// large HTTP body being read leaves no room for a large NATS body, which is refused, counted
// as an HTTP body's refusal, while a small one goes through; once the HTTP body is done, the
// NATS body draws the rest of it beyond the free part and gives it back, once however often
// its release is called.
func TestEdge_DrawBody(t *testing.T) {
	const maxBody = 1 << 20
	large := int64(maxBody - 10)
	f := newFixture(t, Config{BodyMemory: maxBody - FreeBodyBytes, MaxBodyBytes: maxBody})
	held := f.held(t, listPersons, f.oslo, large, large)
	if _, err := f.edge.DrawBody(large); connect.CodeOf(err) != connect.CodeResourceExhausted || !strings.Contains(err.Error(), "body memory limit") {
		t.Errorf("a large NATS body while HTTP's holds the budget: %v, want ResourceExhausted naming the body memory limit", err)
	}
	if _, err := f.edge.DrawBody(2 * maxBody); connect.CodeOf(err) != connect.CodeResourceExhausted || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("a NATS body larger than any handler reads: %v", err)
	}
	if got := f.edge.Stats().RefusedBodyMemory; got != 2 {
		t.Errorf("RefusedBodyMemory = %d, want 2", got)
	}
	release, err := f.edge.DrawBody(FreeBodyBytes)
	if err != nil {
		t.Errorf("a small NATS body while the budget is spent: %v", err)
	} else {
		release()
	}
	// Past the free part by more than the 10 bytes left: drawn, and so refused (mutation
	// testing: a free part twice as large passed).
	if _, err := f.edge.DrawBody(FreeBodyBytes + 11); connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Errorf("a NATS body 11 bytes past the free part while 10 are left: %v, want ResourceExhausted", err)
	}
	close(f.hold)
	if res := answer(t, held); res == nil || res.StatusCode != http.StatusOK {
		t.Errorf("the held large request: %v", res)
	}
	release, err = f.edge.DrawBody(large)
	if err != nil {
		t.Fatalf("a large NATS body once the budget is free: %v", err)
	}
	if got := f.edge.Stats().BodyMemory; got != large-FreeBodyBytes {
		t.Errorf("budget drawn = %d, want %d", got, large-FreeBodyBytes)
	}
	release()
	release()
	if got := f.edge.Stats().BodyMemory; got != 0 {
		t.Errorf("budget drawn after release = %d, want 0", got)
	}
}

func TestConfig_Validate(t *testing.T) {
	for _, c := range []Config{
		{MaxInflight: -1},
		{MaxInflightPerPrincipal: -1},
		{MaxPublicInflight: -1},
		{PublicReadTimeout: -time.Second},
		{Rate: -1},
		{Rate: 5},
		{BodyMemory: 1 << 20},
		{BodyMemory: 1 << 20, MaxBodyBytes: 4 << 20},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: valid, want an error", c)
		}
	}
}

// TestEdge_Limit checks the limits for a route that authenticates its callers itself (the
// web console): the principal in the request's context has its own rate, and a request
// without one counts toward nird's limits only.
func TestEdge_Limit(t *testing.T) {
	authn, err := auth.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(auth.NewGuard(authn, auth.DefaultPolicy(), nil), Config{Rate: 1, Burst: 2})
	if err != nil {
		t.Fatal(err)
	}
	h := e.Limit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	serve := func(p auth.Principal) int {
		req := httptest.NewRequest(http.MethodGet, "/personer", nil)
		if p != (auth.Principal{}) {
			req = req.WithContext(auth.NewContext(req.Context(), p))
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	oslo := auth.Principal{Name: "oslo", Role: auth.RoleKommune, Kommune: "0301"}
	for i := range 2 {
		if code := serve(oslo); code != http.StatusOK {
			t.Fatalf("request %d within the burst: %d", i, code)
		}
	}
	if code := serve(oslo); code != http.StatusTooManyRequests {
		t.Errorf("over the burst: %d, want 429", code)
	}
	for range 3 {
		if code := serve(auth.Principal{}); code != http.StatusOK {
			t.Errorf("a request without a principal is rate limited: %d", code)
		}
	}
}

// TestEdge_LogsNoNationalID: a refusal's log line names the procedure, the URL path a client
// chose (a console page, /personer/12849000452); a national id written into it is masked.
func TestEdge_LogsNoNationalID(t *testing.T) {
	authn, err := auth.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	e, err := New(auth.NewGuard(authn, auth.DefaultPolicy(), nil), Config{MaxInflight: 1, MaxInflightPerPrincipal: 1, MaxPublicInflight: 1,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	const fnr = "12849000452"
	oslo := auth.Principal{Name: "oslo", Role: auth.RoleKommune, Kommune: "0301"}
	release, err := e.Admit(oslo, "/personer/"+fnr)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if _, err := e.Admit(oslo, "/personer/"+fnr); connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Fatalf("over the principal's requests in flight: %v", err)
	}
	releasePublic, err := e.Admit(auth.Principal{}, "/logg-inn/"+fnr)
	if err != nil {
		t.Fatal(err)
	}
	defer releasePublic()
	if _, err := e.Admit(auth.Principal{}, "/logg-inn/"+fnr); connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Fatalf("over nird's requests in flight without a principal: %v", err)
	}
	if out := logs.String(); strings.Contains(out, fnr) || !strings.Contains(out, "/personer/") {
		t.Errorf("log holds the national id, or lost the path:\n%s", out)
	}
}
