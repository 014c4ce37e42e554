package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/introreg/nir/internal/syncbuf"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
)

// whoami is a RegistrationService that reports the principal the guard put in the context,
// in the response's person_key; it exists only for these tests.
type whoami struct {
	nirv1connect.UnimplementedRegistrationServiceHandler
}

func principalOf(ctx context.Context) (string, error) {
	p, ok := FromContext(ctx)
	if !ok {
		return "", connect.NewError(connect.CodeInternal, errors.New("no principal in context"))
	}
	return p.String(), nil
}

func (whoami) History(ctx context.Context, _ *connect.Request[nirv1.HistoryRequest]) (*connect.Response[nirv1.HistoryResponse], error) {
	s, err := principalOf(ctx)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&nirv1.HistoryResponse{PersonKey: s}), nil
}

func (whoami) Append(ctx context.Context, _ *connect.Request[nirv1.AppendRequest]) (*connect.Response[nirv1.AppendResponse], error) {
	s, err := principalOf(ctx)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&nirv1.AppendResponse{Positions: []*nirv1.Position{{PersonKey: s}}}), nil
}

// newTestServer serves whoami behind a guard over httptest, plus a plain HTTP route.
func newTestServer(tb testing.TB, authn *Authenticator, logs io.Writer) *httptest.Server {
	tb.Helper()
	pol := DefaultPolicy()
	pol["/export/personliste.csv"] = []Role{RoleKommune}
	guard := NewGuard(authn, pol, slog.New(slog.NewTextHandler(logs, nil)))
	mux := http.NewServeMux()
	mux.Handle(nirv1connect.NewRegistrationServiceHandler(whoami{}, connect.WithInterceptors(guard)))
	mux.Handle("/export/personliste.csv", guard.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := principalOf(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, s)
	})))
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	return srv
}

func TestGuard_Connect(t *testing.T) {
	t.Parallel()
	tokens, _, authn := testTokens(t)
	logs := &syncbuf.Buffer{}
	srv := newTestServer(t, authn, logs)

	tests := []struct {
		name      string
		token     string // "" sends no Authorization header
		procedure string
		code      connect.Code // 0 means success
		want      string       // principal the handler saw
	}{
		{"OK/KommuneAppend", tokens["oslo-fagsystem"], "Append", 0, "kommune:oslo-fagsystem@0301"},
		{"OK/KommuneHistory", tokens["bergen-fagsystem"], "History", 0, "kommune:bergen-fagsystem@4601"},
		{"OK/SystemAppend", tokens["regelmotor"], "Append", 0, "system:regelmotor"},
		{"OK/SystemHistory", tokens["regelmotor"], "History", 0, "system:regelmotor"},
		{"PermissionDenied/AnalystAppend", tokens["ssb"], "Append", connect.CodePermissionDenied, ""},
		{"PermissionDenied/AnalystHistory", tokens["ssb"], "History", connect.CodePermissionDenied, ""},
		{"OK/OperatorAppend", tokens["drift"], "Append", 0, "operator:drift"}, // narrowed to merges by internal/access
		{"PermissionDenied/OperatorHistory", tokens["drift"], "History", connect.CodePermissionDenied, ""},
		{"Unauthenticated/NoToken", "", "Append", connect.CodeUnauthenticated, ""},
		{"Unauthenticated/UnknownToken", "nir_not-a-real-token", "History", connect.CodeUnauthenticated, ""},
	}
	protocols := map[string][]connect.ClientOption{
		"Connect": nil,
		"gRPC":    {connect.WithGRPC()},
		"JSON":    {connect.WithProtoJSON()},
	}
	for pname, opts := range protocols {
		for _, tt := range tests {
			t.Run(pname+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				copts := slices.Clone(opts)
				if tt.token != "" {
					copts = append(copts, connect.WithInterceptors(BearerInterceptor(tt.token)))
				}
				client := nirv1connect.NewRegistrationServiceClient(srv.Client(), srv.URL, copts...)
				var got string
				var err error
				if tt.procedure == "Append" {
					var res *connect.Response[nirv1.AppendResponse]
					if res, err = client.Append(context.Background(), connect.NewRequest(&nirv1.AppendRequest{})); err == nil {
						got = res.Msg.GetPositions()[0].GetPersonKey()
					}
				} else {
					var res *connect.Response[nirv1.HistoryResponse]
					if res, err = client.History(context.Background(), connect.NewRequest(&nirv1.HistoryRequest{})); err == nil {
						got = res.Msg.GetPersonKey()
					}
				}
				if tt.code == 0 {
					if err != nil || got != tt.want {
						t.Fatalf("%s = %q, %v; want %q", tt.procedure, got, err, tt.want)
					}
					return
				}
				if connect.CodeOf(err) != tt.code {
					t.Fatalf("%s = %q, %v; want code %v", tt.procedure, got, err, tt.code)
				}
				if tt.code == connect.CodeUnauthenticated {
					var ce *connect.Error
					if errors.As(err, &ce) && !strings.HasPrefix(ce.Meta().Get("WWW-Authenticate"), "Bearer") {
						t.Errorf("no Bearer challenge in %v", ce.Meta())
					}
				}
			})
		}
	}
	t.Cleanup(func() {
		// The refusals were logged, naming principal and procedure, never a token.
		s := logs.String()
		if !strings.Contains(s, "principal=analyst:ssb") || !strings.Contains(s, "procedure=/nir.v1.RegistrationService/Append") {
			t.Errorf("refusal not logged with principal and procedure:\n%s", s)
		}
		if !strings.Contains(s, "unknown token") {
			t.Errorf("unknown token not logged:\n%s", s)
		}
		for _, token := range append(slices.Collect(maps.Values(tokens)), "nir_not-a-real-token") {
			if strings.Contains(s, token) || strings.Contains(s, HashToken(token)) {
				t.Errorf("log contains a token or its hash:\n%s", s)
			}
		}
	})
}

func TestGuard_Middleware(t *testing.T) {
	t.Parallel()
	tokens, _, authn := testTokens(t)
	srv := newTestServer(t, authn, io.Discard)
	tests := []struct {
		name   string
		token  string
		status int
		body   string
	}{
		{"OK", tokens["oslo-fagsystem"], http.StatusOK, "kommune:oslo-fagsystem@0301"},
		{"Forbidden", tokens["ssb"], http.StatusForbidden, "permission denied"},
		{"NoToken", "", http.StatusUnauthorized, "missing or invalid bearer token"},
		{"BadToken", "nir_x", http.StatusUnauthorized, "missing or invalid bearer token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/export/personliste.csv", nil)
			if tt.token != "" {
				SetBearer(req.Header, tt.token)
			}
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tt.status || strings.TrimSpace(string(body)) != tt.body {
				t.Fatalf("GET = %d %q, want %d %q", res.StatusCode, body, tt.status, tt.body)
			}
			if tt.status == http.StatusUnauthorized && !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without a Bearer challenge: %v", res.Header)
			}
		})
	}
}

func TestGuard_DevMode(t *testing.T) {
	t.Parallel()
	authn, err := NewDev(Principal{Name: "dev-oslo", Role: RoleKommune, Kommune: "0301"})
	if err != nil {
		t.Fatal(err)
	}
	srv := newTestServer(t, authn, io.Discard)
	client := nirv1connect.NewRegistrationServiceClient(srv.Client(), srv.URL)
	res, err := client.History(context.Background(), connect.NewRequest(&nirv1.HistoryRequest{}))
	if err != nil || res.Msg.GetPersonKey() != "kommune:dev-oslo@0301" {
		t.Fatalf("History without a token in dev mode = %v, %v", res, err)
	}
	// A role named as the token picks another dev principal.
	as := nirv1connect.NewRegistrationServiceClient(srv.Client(), srv.URL, connect.WithInterceptors(BearerInterceptor("kommune:4601")))
	res, err = as.History(context.Background(), connect.NewRequest(&nirv1.HistoryRequest{}))
	if err != nil || res.Msg.GetPersonKey() != "kommune:dev-kommune@4601" {
		t.Fatalf("History as kommune:4601 in dev mode = %v, %v", res, err)
	}
	// The policy still applies to the dev principal.
	ops, _ := NewDev(Principal{})
	srv = newTestServer(t, ops, io.Discard)
	client = nirv1connect.NewRegistrationServiceClient(srv.Client(), srv.URL)
	if _, err := client.History(context.Background(), connect.NewRequest(&nirv1.HistoryRequest{})); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("History as the default dev operator = %v, want PermissionDenied", err)
	}
}

// fakeStream is the least of a streaming handler connection that the guard reads: the spec and
// the request header. It is not a store fake; RegistrationService has no streaming method.
type fakeStream struct {
	connect.StreamingHandlerConn
	spec   connect.Spec
	header http.Header
}

func (f fakeStream) Spec() connect.Spec         { return f.spec }
func (f fakeStream) RequestHeader() http.Header { return f.header }

func TestGuard_Streaming(t *testing.T) {
	t.Parallel()
	tokens, _, authn := testTokens(t)
	guard := NewGuard(authn, DefaultPolicy(), nil)
	var seen Principal
	h := guard.WrapStreamingHandler(func(ctx context.Context, _ connect.StreamingHandlerConn) error {
		seen, _ = FromContext(ctx)
		return nil
	})
	tests := []struct {
		name      string
		procedure string
		token     string
		code      connect.Code
		want      string
	}{
		{"OK", "/nir.v1.QueryService/WatchDeadlines", tokens["ssb"], 0, "ssb"},
		{"PermissionDenied", "/nir.v1.QueryService/WatchDeadlines", tokens["drift"], connect.CodePermissionDenied, ""},
		{"Unauthenticated", "/nir.v1.AdminService/Rebuild", "", connect.CodeUnauthenticated, ""},
		{"PublicWithoutToken", "/grpc.health.v1.Health/Watch", "", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen = Principal{}
			hdr := http.Header{}
			if tt.token != "" {
				SetBearer(hdr, tt.token)
			}
			err := h(context.Background(), fakeStream{spec: connect.Spec{Procedure: tt.procedure, StreamType: connect.StreamTypeServer}, header: hdr})
			if connect.CodeOf(err) != tt.code && !(tt.code == 0 && err == nil) {
				t.Fatalf("stream = %v, want code %v", err, tt.code)
			}
			if seen.Name != tt.want {
				t.Fatalf("handler saw principal %q, want %q", seen.Name, tt.want)
			}
		})
	}
}

func TestGuard_Check(t *testing.T) {
	t.Parallel()
	tokens, _, authn := testTokens(t)
	guard := NewGuard(authn, DefaultPolicy(), nil)
	procedure := nirv1connect.RegistrationServiceAppendProcedure
	tests := []struct {
		name   string
		header map[string][]string
		want   error
	}{
		{"OK", map[string][]string{"Authorization": {"Bearer " + tokens["oslo-fagsystem"]}}, nil},
		{"PermissionDenied", map[string][]string{"Authorization": {"Bearer " + tokens["ssb"]}}, ErrPermissionDenied},
		{"Unauthenticated", map[string][]string{}, ErrUnauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := guard.Check(tt.header, procedure)
			if !errors.Is(err, tt.want) || (tt.want == nil && p.Name != "oslo-fagsystem") {
				t.Fatalf("Check = %+v, %v; want %v", p, err, tt.want)
			}
		})
	}
	if _, err := guard.Check(nil, "/grpc.health.v1.Health/Check"); err != nil {
		t.Fatalf("public procedure: %v", err)
	}
	if got, want := guard.Stats(), (GuardStats{Allowed: 2, Unauthenticated: 1, Denied: 1}); got != want {
		t.Fatalf("Stats = %+v, want %+v", got, want)
	}
}

// TestGuard_TokenBoundToNATSUser: a token bound to a case system's NATS user passes only in
// that user's requests over NATS; over HTTP (Check, CheckHTTP, the CSV route) and from
// another NATS user it is refused as PermissionDenied, with a message that names neither
// the user nor the token. An unbound token passes from any NATS user, as before.
func TestGuard_TokenBoundToNATSUser(t *testing.T) {
	t.Parallel()
	var entries []Entry
	tokens := map[string]string{}
	for _, p := range []Principal{
		{Name: "oslo-nats", Role: RoleKommune, Kommune: "0301", NATSUser: "oslo-visma"},
		{Name: "oslo-any", Role: RoleKommune, Kommune: "0301"},
	} {
		token, e, err := GenerateToken(p)
		if err != nil {
			t.Fatal(err)
		}
		tokens[p.Name], entries = token, append(entries, e)
	}
	authn, err := New(entries)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncbuf.Buffer
	guard := NewGuard(authn, DefaultPolicy(), slog.New(slog.NewTextHandler(&logs, nil)))
	bearer := func(name string) map[string][]string {
		return map[string][]string{"Authorization": {"Bearer " + tokens[name]}}
	}
	procedure := nirv1connect.RegistrationServiceAppendProcedure
	if p, err := guard.CheckNATS(bearer("oslo-nats"), procedure, "oslo-visma"); err != nil || p.Name != "oslo-nats" || p.NATSUser != "oslo-visma" {
		t.Fatalf("bound token from its own NATS user: %+v, %v", p, err)
	}
	for _, via := range []string{"", "bergen-visma"} {
		p, err := guard.CheckNATS(bearer("oslo-nats"), procedure, via)
		if !errors.Is(err, ErrPermissionDenied) || p != (Principal{}) {
			t.Fatalf("bound token from NATS user %q: %+v, %v; want PermissionDenied", via, p, err)
		}
		if strings.Contains(err.Error(), "oslo-visma") || strings.Contains(err.Error(), tokens["oslo-nats"]) {
			t.Fatalf("the refusal names the bound user or the token: %v", err)
		}
	}
	if _, err := guard.Check(bearer("oslo-nats"), procedure); !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("bound token over HTTP: %v, want PermissionDenied", err)
	}
	req := httptest.NewRequest(http.MethodPost, procedure, nil)
	req.Header.Set("Authorization", "Bearer "+tokens["oslo-nats"])
	if _, _, err := guard.CheckHTTP(req); !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("bound token at the edge: %v, want PermissionDenied", err)
	}
	for _, via := range []string{"", "oslo-visma", "bergen-visma"} {
		if p, err := guard.CheckNATS(bearer("oslo-any"), procedure, via); err != nil || p.Name != "oslo-any" {
			t.Fatalf("unbound token from %q: %+v, %v", via, p, err)
		}
	}
	if got, want := guard.Stats(), (GuardStats{Allowed: 4, Denied: 4}); got != want {
		t.Fatalf("Stats = %+v, want %+v", got, want)
	}
	// --nats-bound-tokens: over NATS only bound tokens; HTTP as before.
	guard.RequireBoundOverNATS()
	if _, err := guard.CheckNATS(bearer("oslo-any"), procedure, "oslo-visma"); !errors.Is(err, ErrPermissionDenied) || !strings.Contains(err.Error(), "nats_user") {
		t.Fatalf("unbound token over NATS when bound ones are required: %v, want PermissionDenied naming nats_user", err)
	}
	if p, err := guard.CheckNATS(bearer("oslo-nats"), procedure, "oslo-visma"); err != nil || p.Name != "oslo-nats" {
		t.Fatalf("bound token from its own user when bound ones are required: %+v, %v", p, err)
	}
	if p, err := guard.Check(bearer("oslo-any"), procedure); err != nil || p.Name != "oslo-any" {
		t.Fatalf("unbound token over HTTP when bound ones are required over NATS: %+v, %v", p, err)
	}
	if !strings.Contains(logs.String(), "bound to another NATS user") || strings.Contains(logs.String(), tokens["oslo-nats"]) {
		t.Fatalf("log: want the refusals without the token:\n%s", logs.String())
	}
}

// TestGuard_LogsNoNationalID: the procedure is the request's URL path, which any client
// chooses; a refusal's log line must not carry a national id written into it.
func TestGuard_LogsNoNationalID(t *testing.T) {
	t.Parallel()
	tokens, _, authn := testTokens(t)
	logs := &syncbuf.Buffer{}
	guard := NewGuard(authn, DefaultPolicy(), slog.New(slog.NewTextHandler(logs, nil)))
	const fnr = "12849000452"
	for _, tt := range []struct {
		name   string
		header map[string][]string
		path   string
	}{
		{"Unauthenticated", nil, "/nir.v1.QueryService/" + fnr},
		{"UnauthenticatedInAToken", nil, "/nir.v1.QueryService/GetPerson/x" + fnr + "x"},
		{"Denied", map[string][]string{"Authorization": {"Bearer " + tokens["ssb"]}}, "/nir.v1.AdminService/" + fnr},
		{"Unknown", map[string][]string{"Authorization": {"Bearer " + tokens["oslo-fagsystem"]}}, "/" + fnr},
	} {
		if _, err := guard.Check(tt.header, tt.path); err == nil {
			t.Fatalf("%s: %s let through", tt.name, tt.path)
		}
	}
	if out := logs.String(); strings.Contains(out, fnr) || !strings.Contains(out, "/nir.v1.QueryService/") {
		t.Errorf("log holds the national id, or lost the service:\n%s", out)
	}
}

// TestGuard_CheckHTTP: the edge's check before the body is read puts the principal in the
// context, and the interceptor then lets the same procedure through without checking it a
// second time; a request checked for another path is checked again.
func TestGuard_CheckHTTP(t *testing.T) {
	t.Parallel()
	tokens, _, authn := testTokens(t)
	guard := NewGuard(authn, DefaultPolicy(), nil)
	procedure := nirv1connect.RegistrationServiceAppendProcedure
	mux := http.NewServeMux()
	mux.Handle(nirv1connect.NewRegistrationServiceHandler(whoami{}, connect.WithInterceptors(guard)))
	front := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, _, err := guard.CheckHTTP(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(front)
	t.Cleanup(srv.Close)
	client := nirv1connect.NewRegistrationServiceClient(srv.Client(), srv.URL, connect.WithInterceptors(BearerInterceptor(tokens["oslo-fagsystem"])))
	res, err := client.Append(context.Background(), connect.NewRequest(&nirv1.AppendRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Msg.Positions[0].PersonKey; got != "kommune:oslo-fagsystem@0301" {
		t.Errorf("principal in the handler = %q", got)
	}
	if got, want := guard.Stats(), (GuardStats{Allowed: 1}); got != want {
		t.Errorf("Stats = %+v, want %+v: checked once", got, want)
	}

	// The interceptor checks a request that CheckHTTP let through for another path.
	req := httptest.NewRequest(http.MethodPost, "/grpc.health.v1.Health/Check", nil)
	checked, _, err := guard.CheckHTTP(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := guard.enter(checked.Context(), procedure, http.Header{}); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Errorf("interceptor on a request checked for another procedure: %v, want Unauthenticated", err)
	}
}

// TestGuard_RefusalLogBounded: a refused request costs its sender little (a NATS message),
// and the guard refuses it before any principal's rate limit applies. Its log holds the
// first RefusalLogBurst refusals, then says how many it left out, while Stats counts all.
func TestGuard_RefusalLogBounded(t *testing.T) {
	t.Parallel()
	tokens, _, authn := testTokens(t)
	logs := &syncbuf.Buffer{}
	guard := NewGuard(authn, DefaultPolicy(), slog.New(slog.NewTextHandler(logs, nil)))
	now := time.Now()
	guard.refusals.Now = func() time.Time { return now } // the flood within one instant
	const flood = 1000
	for i := range flood {
		h := map[string][]string{"Authorization": {"Bearer not-a-token"}}
		if i%2 == 1 {
			h["Authorization"] = []string{"Bearer " + tokens["ssb"]} // denied
		}
		if _, err := guard.CheckNATS(h, "/nir.v1.AdminService/Erase", "oslo"); err == nil {
			t.Fatal("a refusal let through")
		}
	}
	if st := guard.Stats(); st.Unauthenticated+st.Denied != flood {
		t.Errorf("stats %+v, want %d refusals", st, flood)
	}
	if lines := strings.Count(logs.String(), "\n"); lines != RefusalLogBurst || strings.Count(logs.String(), "level=INFO") != lines {
		t.Errorf("%d refusals logged %d lines, want %d at Info:\n%s", flood, lines, RefusalLogBurst, logs.String())
	}
	now = now.Add(RefusalLogEvery) // room for the next refusal's line
	if _, err := guard.Check(nil, "/nir.v1.QueryService/GetPerson"); err == nil {
		t.Fatal("a request without a token let through")
	}
	if last := logs.String()[strings.LastIndex(strings.TrimSuffix(logs.String(), "\n"), "\n")+1:]; !strings.Contains(last, "unauthenticated request refused") || !strings.Contains(last, fmt.Sprintf("refusals_not_logged=%d", flood-RefusalLogBurst)) {
		t.Errorf("the line after the left-out refusals does not count them: %s", last)
	}
}
