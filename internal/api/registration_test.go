package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/api"
	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/ingest"
	"github.com/introreg/nir/internal/natsingress"
	"github.com/introreg/nir/internal/personkey"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
	"github.com/introreg/nir/rules"
)

// These tests drive the registration API from outside, as case systems do: over HTTP with a
// real Connect client (and raw HTTP for bodies a client cannot produce), and over NATS with
// requests to nir.cmd.append.<case system>, both served by the same handler on one embedded
// JetStream server with the production guard and policy.

// fixedNow is the register's clock in these tests: mid 2024, integreringsloven time.
var fixedNow = time.Date(2024, 6, 3, 10, 0, 0, 0, time.UTC)

// Principals of the token table, by token.
const (
	tokOslo     = "tok-oslo"     // kommune 0301
	tokBergen   = "tok-bergen"   // kommune 4601
	tokAnalyst  = "tok-analyst"  // analyst
	tokOperator = "tok-operator" // operator
	tokSystem   = "tok-system"   // system (regelmotor)
)

type server struct {
	store  *eventstore.Store
	url    string
	nc     *nats.Conn // a case system's own NATS connection
	client func(token string) nirv1connect.RegistrationServiceClient
	reg    *api.Registration // the handler itself, for in-process calls without the guard
}

func d(y, m, day int) *nirv1.Date {
	return &nirv1.Date{Year: int32(y), Month: int32(m), Day: int32(day)}
}

// startServer wires the registration API the way nird does (cmd/nird/run.go): event store,
// append path, guard with the default policy as a Connect interceptor, and the NATS ingress
// on a connection of its own.
func startServer(t *testing.T) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	users, ingressAuth, caseAuth := natsUsers(t)
	store, err := eventstore.Open(ctx, eventstore.Config{Dir: filepath.Join(t.TempDir(), "js"), Users: users})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := personkey.New([]byte("api test secret, not a real one"))
	if err != nil {
		t.Fatal(err)
	}
	var entries []auth.Entry
	for _, e := range []struct{ tok, name, kommune string }{
		{tokOslo, "oslo", "0301"}, {tokBergen, "bergen", "4601"},
		{tokAnalyst, "analyst", ""}, {tokOperator, "operator", ""}, {tokSystem, "regelmotor", ""},
	} {
		role := auth.RoleKommune
		switch e.tok {
		case tokAnalyst:
			role = auth.RoleAnalyst
		case tokOperator:
			role = auth.RoleOperator
		case tokSystem:
			role = auth.RoleSystem
		}
		entries = append(entries, auth.Entry{Name: e.name, Role: role, Kommune: e.kommune, TokenSHA256: auth.HashToken(e.tok)})
	}
	authn, err := auth.New(entries)
	if err != nil {
		t.Fatal(err)
	}
	svc := ingest.New(ingest.Config{Store: store, Keys: keys, Now: func() time.Time { return fixedNow }})
	reg := api.NewRegistration(svc, nil, nil)
	guard := auth.NewGuard(authn, auth.DefaultPolicy(), nil)
	mux := http.NewServeMux()
	mux.Handle(nirv1connect.NewRegistrationServiceHandler(reg, connect.WithInterceptors(guard), api.Decoding(natsingress.MaxRequestBytes)))
	hs := httptest.NewServer(mux)

	ingressConn, err := store.Connect(ingressAuth)
	if err != nil {
		t.Fatal(err)
	}
	in := natsingress.New(ingressConn, guard, reg, nil)
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ingress Run: %v", err)
		}
		hs.Close()
		ingressConn.Close()
		store.Close()
	})
	nc, err := store.Connect(caseAuth...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	waitForIngress(t, nc)
	s := &server{store: store, url: hs.URL, nc: nc, reg: reg}
	s.client = func(token string) nirv1connect.RegistrationServiceClient {
		return nirv1connect.NewRegistrationServiceClient(hs.Client(), hs.URL, connect.WithInterceptors(auth.BearerInterceptor(token)))
	}
	return s
}

// natsCaseSystem is the NATS user of the case system in these tests.
const natsCaseSystem = "test"

// natsUsers are the users of the embedded server in these tests, as nird has them: the
// NATS ingress, with its own permissions, and a case system that may only send requests
// on its own subject and read its own replies. It returns the options each connects with (Store.Connect).
func natsUsers(t *testing.T) (users []*natsserver.NkeyUser, ingress nats.Option, caseSystem []nats.Option) {
	t.Helper()
	ingressUser, ingressAuth, err := eventstore.InProcessUser(natsingress.Permissions())
	if err != nil {
		t.Fatal(err)
	}
	caseUser, caseAuth, err := eventstore.InProcessUser(&natsserver.Permissions{
		Publish:   &natsserver.SubjectPermission{Allow: []string{natsingress.RequestSubject(natsCaseSystem)}},
		Subscribe: &natsserver.SubjectPermission{Allow: []string{natsingress.Inbox(natsCaseSystem) + ".>"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return []*natsserver.NkeyUser{ingressUser, caseUser}, ingressAuth, []nats.Option{caseAuth, nats.CustomInboxPrefix(natsingress.Inbox(natsCaseSystem))}
}

// waitForIngress polls until the micro service answers on the case system's subject.
func waitForIngress(t *testing.T, nc *nats.Conn) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, err := nc.Request(natsingress.RequestSubject(natsCaseSystem), nil, time.Second)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("NATS ingress not answering within 10s: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *server) lastSeq(t *testing.T) uint64 {
	t.Helper()
	seq, err := s.store.LastSeq(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// result is what a caller learns from one append, whatever the transport.
type result struct {
	code      connect.Code // 0 on success
	msg       string
	refusals  []*nirv1.RuleRefusal // HTTP only: the NATS ingress carries code and message
	fields    []*nirv1.FieldViolation
	positions []*nirv1.Position
	raw       error // transport error before the server answered
}

// transport sends one AppendRequest with a token.
type transport struct {
	name string
	send func(t *testing.T, s *server, token string, req *nirv1.AppendRequest) result
}

var (
	viaConnect = transport{"connect", func(t *testing.T, s *server, token string, req *nirv1.AppendRequest) result {
		res, err := s.client(token).Append(context.Background(), connect.NewRequest(req))
		if err == nil {
			return result{positions: res.Msg.GetPositions()}
		}
		return connectResult(err)
	}}
	viaNATS = transport{"nats", func(t *testing.T, s *server, token string, req *nirv1.AppendRequest) result {
		data, err := proto.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		return natsRequest(t, s, token, "", data)
	}}
	viaNATSJSON = transport{"nats-json", func(t *testing.T, s *server, token string, req *nirv1.AppendRequest) result {
		data, err := protojson.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		return natsRequest(t, s, token, "application/json", data)
	}}
	transports = []transport{viaConnect, viaNATS, viaNATSJSON}
)

func connectResult(err error) result {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return result{raw: err}
	}
	r := result{code: ce.Code(), msg: ce.Message()}
	for _, det := range ce.Details() {
		v, derr := det.Value()
		if derr != nil {
			continue
		}
		switch v := v.(type) {
		case *nirv1.RuleRefusal:
			r.refusals = append(r.refusals, v)
		case *nirv1.FieldViolation:
			r.fields = append(r.fields, v)
		}
	}
	return r
}

// natsRequest sends data to nir.cmd.append.<case system> as a case system would and decodes
// the reply: a micro error (code and description headers) or an AppendResponse.
func natsRequest(t *testing.T, s *server, token, contentType string, data []byte) result {
	t.Helper()
	msg := nats.NewMsg(natsingress.RequestSubject(natsCaseSystem))
	msg.Data = data
	if token != "" {
		msg.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		msg.Header.Set("Content-Type", contentType)
	}
	reply, err := s.nc.RequestMsg(msg, 30*time.Second)
	if err != nil {
		return result{raw: err}
	}
	if code := reply.Header.Get(micro.ErrorCodeHeader); code != "" {
		var c connect.Code
		if err := c.UnmarshalText([]byte(code)); err != nil {
			t.Fatalf("micro error code %q is not a Connect code: %v", code, err)
		}
		return result{code: c, msg: reply.Header.Get(micro.ErrorHeader)}
	}
	res := &nirv1.AppendResponse{}
	if contentType == "application/json" {
		err = protojson.Unmarshal(reply.Data, res)
	} else {
		err = proto.Unmarshal(reply.Data, res)
	}
	if err != nil {
		t.Fatalf("reply is not an AppendResponse: %v", err)
	}
	return result{positions: res.GetPositions()}
}

// postRaw POSTs body to the Append procedure with the Connect unary protocol, with the
// headers hdr names and values in turn, and decodes the Connect error body.
func postRaw(t *testing.T, s *server, token, contentType string, body []byte, hdr ...string) result {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.url+nirv1connect.RegistrationServiceAppendProcedure, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return result{raw: err}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		return result{}
	}
	var e struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("HTTP %d with a body that is not a Connect error: %q", resp.StatusCode, b)
	}
	var c connect.Code
	if err := c.UnmarshalText([]byte(e.Code)); err != nil {
		t.Fatalf("Connect error code %q: %v", e.Code, err)
	}
	return result{code: c, msg: e.Message}
}

// persons seeded in every fixture.
type fixture struct {
	*server
	oslo     string // IL person settled in Oslo, with an offer
	introl   string // introduksjonsloven person settled in Oslo
	bergen   string // IL person settled in Bergen
	osloLast uint64 // the Oslo person's last sequence
	offerID  string // the Oslo person's offer event
	ids      []string
}

func newID() string { return ulid.Make().String() }

func personReg(id, kommune string, introl bool) *nirv1.Registration {
	permit, arrival, settled := d(2024, 1, 10), d(2023, 12, 1), d(2024, 2, 1)
	if introl {
		permit, arrival, settled = d(2019, 5, 2), d(2019, 3, 1), d(2020, 6, 1)
	}
	return &nirv1.Registration{Event: &nirv1.Event{Id: newID(), Kommune: kommune,
		Payload: &nirv1.Event_PersonRegistered{PersonRegistered: &nirv1.PersonRegistered{
			Fodselsnummer: id, BirthDate: d(1990, 4, 12), Sex: nirv1.Sex_SEX_FEMALE,
			PermitDate: permit, PermitBasis: nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, ArrivalDate: arrival,
			SettlementDate: settled, SettlementKommune: kommune, SettledByAgreement: true,
		}}}}
}

func onPerson(id, kommune string, ev *nirv1.Event) *nirv1.Registration {
	if ev.Id == "" {
		ev.Id = newID()
	}
	ev.Kommune = kommune
	return &nirv1.Registration{Person: &nirv1.PersonRef{NationalId: id}, Event: ev}
}

func offerEv(date *nirv1.Date) *nirv1.Event {
	return &nirv1.Event{Payload: &nirv1.Event_OfferRegistered{OfferRegistered: &nirv1.OfferRegistered{Programme: nirv1.Programme_PROGRAMME_INTRO, Date: date}}}
}

var fixtureSeq int

func newFixture(t *testing.T) *fixture {
	t.Helper()
	s := startServer(t)
	fixtureSeq++
	birth := rules.MustDate(1990, time.April, 12)
	f := &fixture{server: s,
		oslo:   rules.SyntheticFodselsnummer(birth, 3*fixtureSeq),
		introl: rules.SyntheticFodselsnummer(birth, 3*fixtureSeq+1),
		bergen: rules.SyntheticFodselsnummer(birth, 3*fixtureSeq+2),
	}
	f.ids = []string{f.oslo, f.introl, f.bergen}
	offer := onPerson(f.oslo, "0301", offerEv(d(2024, 3, 1)))
	f.offerID = offer.Event.Id
	ctx := context.Background()
	for _, c := range []struct {
		tok  string
		regs []*nirv1.Registration
	}{
		{tokOslo, []*nirv1.Registration{personReg(f.oslo, "0301", false), offer}},
		{tokOslo, []*nirv1.Registration{personReg(f.introl, "0301", true)}},
		{tokBergen, []*nirv1.Registration{personReg(f.bergen, "4601", false)}},
	} {
		res, err := s.client(c.tok).Append(ctx, connect.NewRequest(&nirv1.AppendRequest{Registrations: c.regs}))
		if err != nil {
			t.Fatalf("seed: %v", err)
		}
		if c.regs[0].Event.GetPersonRegistered().GetFodselsnummer() == f.oslo {
			f.osloLast = res.Msg.Positions[1].Sequence
		}
	}
	return f
}

// nationalIDRun finds digit runs that could be a national id (11 digits) or a DUF-nummer
// (12 digits) in an error message.
var nationalIDRun = regexp.MustCompile(`\d{11,12}`)

// badCase is one bad input. build returns the request; transports limits the case to some
// transports (all when nil). A case with raw set sends bytes instead of a request.
type badCase struct {
	name       string
	token      string
	build      func(f *fixture) *nirv1.AppendRequest
	transports []string
	raw        func(t *testing.T, f *fixture) result // overrides build and transports
	want       connect.Code
	rule       string // the RuleRefusal code expected for FailedPrecondition
	field      string // a field path the message must name, for InvalidArgument
}

func one(r *nirv1.Registration) *nirv1.AppendRequest {
	return &nirv1.AppendRequest{Registrations: []*nirv1.Registration{r}}
}

// unknownBytes encodes a length-delimited field with a number the schema does not define.
func unknownBytes(num protowire.Number, value string) []byte {
	b := protowire.AppendTag(nil, num, protowire.BytesType)
	return protowire.AppendString(b, value)
}

// corruptCheckDigit returns id with its last digit changed, so the check digits fail.
func corruptCheckDigit(id string) string {
	last := id[len(id)-1]
	return id[:len(id)-1] + string('0'+(last-'0'+1)%10)
}

func badCases() []badCase {
	expect := func(seq uint64) *uint64 { return &seq }
	return []badCase{
		// Malformed bodies: what a client library cannot produce, so raw bytes.
		{name: "malformed JSON over HTTP", want: connect.CodeInvalidArgument, raw: func(t *testing.T, f *fixture) result {
			return postRaw(t, f.server, tokOslo, "application/json", []byte(`{"registrations": [{"event": {"id": `))
		}},
		{name: "JSON of the wrong shape over HTTP", want: connect.CodeInvalidArgument, raw: func(t *testing.T, f *fixture) result {
			return postRaw(t, f.server, tokOslo, "application/json", []byte(`{"registrations": "all of them"}`))
		}},
		{name: "unknown enum name over HTTP", want: connect.CodeInvalidArgument, raw: func(t *testing.T, f *fixture) result {
			body := fmt.Sprintf(`{"registrations":[{"person":{"nationalId":%q},"event":{"id":%q,"kommune":"0301","offerRegistered":{"programme":"PROGRAMME_HOLIDAY","date":{"year":2024,"month":3,"day":2}}}}]}`, f.oslo, newID())
			return postRaw(t, f.server, tokOslo, "application/json", []byte(body))
		}},
		// JSON can carry an unknown field by name: refused naming the message that holds it
		// (never the key: it may be a national id), as the binary path refuses unknown field
		// numbers, never silently dropped.
		{name: "unknown JSON field over HTTP", want: connect.CodeInvalidArgument, field: "registrations[0].event: holds fields", raw: func(t *testing.T, f *fixture) result {
			body := fmt.Sprintf(`{"registrations":[{"person":{"nationalId":%q},"event":{"id":%q,"kommune":"0301","gjelder":%q,"offerRegistered":{"programme":"PROGRAMME_INTRO","date":{"year":2024,"month":3,"day":2}}}}]}`, f.oslo, newID(), f.bergen)
			return postRaw(t, f.server, tokOslo, "application/json", []byte(body))
		}},
		{name: "unknown JSON field over NATS", want: connect.CodeInvalidArgument, field: "registrations[0].event: holds fields", raw: func(t *testing.T, f *fixture) result {
			body := fmt.Sprintf(`{"registrations":[{"person":{"nationalId":%q},"event":{"id":%q,"kommune":"0301","gjelder":%q,"offerRegistered":{"programme":"PROGRAMME_INTRO","date":{"year":2024,"month":3,"day":2}}}}]}`, f.oslo, newID(), f.bergen)
			return natsRequest(t, f.server, tokOslo, "application/json", []byte(body))
		}},
		// A case system that sends the national id as a JSON number (or any value of the
		// wrong type) must not have it echoed: the decoder's message quotes the value.
		{name: "national id as a JSON number over HTTP", want: connect.CodeInvalidArgument, raw: func(t *testing.T, f *fixture) result {
			body := fmt.Sprintf(`{"registrations":[{"person":{"nationalId":%s},"event":{"id":%q,"kommune":"0301","offerRegistered":{"programme":"PROGRAMME_INTRO","date":{"year":2024,"month":3,"day":2}}}}]}`, f.oslo, newID())
			return postRaw(t, f.server, tokOslo, "application/json", []byte(body))
		}},
		{name: "national id as a JSON number over NATS", want: connect.CodeInvalidArgument, raw: func(t *testing.T, f *fixture) result {
			body := fmt.Sprintf(`{"registrations":[{"person":{"nationalId":%s},"event":{"id":%q,"kommune":"0301","offerRegistered":{"programme":"PROGRAMME_INTRO","date":{"year":2024,"month":3,"day":2}}}}]}`, f.oslo, newID())
			return natsRequest(t, f.server, tokOslo, "application/json", []byte(body))
		}},
		{name: "national id as a JSON field name over HTTP", want: connect.CodeInvalidArgument, raw: func(t *testing.T, f *fixture) result {
			body := fmt.Sprintf(`{"registrations":[{"person":{%q:"x"}}]}`, f.oslo)
			return postRaw(t, f.server, tokOslo, "application/json", []byte(body))
		}},
		{name: "national id in a bad enum value over HTTP", want: connect.CodeInvalidArgument, raw: func(t *testing.T, f *fixture) result {
			body := fmt.Sprintf(`{"registrations":[{"event":{"offerRegistered":{"programme":%q}}}]}`, f.oslo)
			return postRaw(t, f.server, tokOslo, "application/json", []byte(body))
		}},
		{name: "malformed protobuf over HTTP", want: connect.CodeInvalidArgument, raw: func(t *testing.T, f *fixture) result {
			return postRaw(t, f.server, tokOslo, "application/proto", []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01})
		}},
		{name: "malformed protobuf over NATS", want: connect.CodeInvalidArgument, raw: func(t *testing.T, f *fixture) result {
			return natsRequest(t, f.server, tokOslo, "", []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01})
		}},
		{name: "malformed JSON over NATS", want: connect.CodeInvalidArgument, raw: func(t *testing.T, f *fixture) result {
			return natsRequest(t, f.server, tokOslo, "application/json", []byte(`{"registrations": [`))
		}},
		{name: "unknown enum name over NATS", want: connect.CodeInvalidArgument, raw: func(t *testing.T, f *fixture) result {
			body := fmt.Sprintf(`{"registrations":[{"person":{"nationalId":%q},"event":{"id":%q,"kommune":"0301","offerRegistered":{"programme":"PROGRAMME_HOLIDAY","date":{"year":2024,"month":3,"day":2}}}}]}`, f.oslo, newID())
			return natsRequest(t, f.server, tokOslo, "application/json", []byte(body))
		}},
		{name: "body over 4 MiB over HTTP", want: connect.CodeResourceExhausted, raw: func(t *testing.T, f *fixture) result {
			r := onPerson(f.oslo, "0301", offerEv(d(2024, 3, 2)))
			r.Event.CorrelationId = strings.Repeat("x", natsingress.MaxRequestBytes)
			b, _ := proto.Marshal(one(r))
			return postRaw(t, f.server, tokOslo, "application/proto", b)
		}},
		{name: "no token over HTTP", want: connect.CodeUnauthenticated, raw: func(t *testing.T, f *fixture) result {
			b, _ := protojson.Marshal(one(onPerson(f.oslo, "0301", offerEv(d(2024, 3, 2)))))
			return postRaw(t, f.server, "", "application/json", b)
		}},

		// Well-formed requests with bad content, over every transport.
		{name: "no registrations", token: tokOslo, want: connect.CodeInvalidArgument, field: "registrations",
			build: func(f *fixture) *nirv1.AppendRequest { return &nirv1.AppendRequest{} }},
		{name: "registration without event", token: tokOslo, want: connect.CodeInvalidArgument, field: "registrations[0].event",
			build: func(f *fixture) *nirv1.AppendRequest {
				return one(&nirv1.Registration{Person: &nirv1.PersonRef{NationalId: f.oslo}})
			}},
		{name: "missing event id", token: tokOslo, want: connect.CodeInvalidArgument, field: "event.id",
			build: func(f *fixture) *nirv1.AppendRequest {
				r := onPerson(f.oslo, "0301", offerEv(d(2024, 3, 2)))
				r.Event.Id = ""
				return one(r)
			}},
		{name: "event id not a ULID", token: tokOslo, want: connect.CodeInvalidArgument, field: "event.id",
			build: func(f *fixture) *nirv1.AppendRequest {
				r := onPerson(f.oslo, "0301", offerEv(d(2024, 3, 2)))
				r.Event.Id = strings.ToLower(newID())
				return one(r)
			}},
		{name: "missing payload", token: tokOslo, want: connect.CodeInvalidArgument, field: "event.payload",
			build: func(f *fixture) *nirv1.AppendRequest {
				return one(onPerson(f.oslo, "0301", &nirv1.Event{}))
			}},
		{name: "unknown enum number", token: tokOslo, want: connect.CodeInvalidArgument, field: "offer_registered.programme",
			build: func(f *fixture) *nirv1.AppendRequest {
				ev := offerEv(d(2024, 3, 2))
				ev.GetOfferRegistered().Programme = 42
				return one(onPerson(f.oslo, "0301", ev))
			}},
		{name: "unspecified enum", token: tokOslo, want: connect.CodeInvalidArgument, field: "offer_registered.programme",
			build: func(f *fixture) *nirv1.AppendRequest {
				ev := offerEv(d(2024, 3, 2))
				ev.GetOfferRegistered().Programme = nirv1.Programme_PROGRAMME_UNSPECIFIED
				return one(onPerson(f.oslo, "0301", ev))
			}},
		{name: "not a calendar date", token: tokOslo, want: connect.CodeInvalidArgument, field: "offer_registered.date",
			build: func(f *fixture) *nirv1.AppendRequest {
				return one(onPerson(f.oslo, "0301", offerEv(d(2024, 2, 30))))
			}},
		{name: "missing date", token: tokOslo, want: connect.CodeInvalidArgument, field: "offer_registered.date",
			build: func(f *fixture) *nirv1.AppendRequest {
				return one(onPerson(f.oslo, "0301", offerEv(nil)))
			}},
		{name: "period ends before it starts", token: tokOslo, want: connect.CodeInvalidArgument, field: "tiltak_registered.to_date",
			build: func(f *fixture) *nirv1.AppendRequest {
				return one(onPerson(f.oslo, "0301", &nirv1.Event{Payload: &nirv1.Event_TiltakRegistered{TiltakRegistered: &nirv1.TiltakRegistered{
					Code: nirv1.TiltakCode_TILTAK_CODE_SPRAKPRAKSIS, FromDate: d(2024, 4, 1), ToDate: d(2024, 3, 1), HoursPerWeek: 10}}}))
			}},
		{name: "negative hours", token: tokOslo, want: connect.CodeInvalidArgument, field: "training_hours_registered.hours",
			build: func(f *fixture) *nirv1.AppendRequest {
				return one(onPerson(f.oslo, "0301", &nirv1.Event{Payload: &nirv1.Event_TrainingHoursRegistered{TrainingHoursRegistered: &nirv1.TrainingHoursRegistered{
					Type: nirv1.HoursType_HOURS_TYPE_NORSK, Month: &nirv1.YearMonth{Year: 2024, Month: 4}, Hours: -5}}}))
			}},
		{name: "missing envelope kommune", token: tokSystem, want: connect.CodeInvalidArgument, field: "event.kommune",
			build: func(f *fixture) *nirv1.AppendRequest {
				return one(onPerson(f.oslo, "", offerEv(d(2024, 3, 2))))
			}},
		{name: "missing envelope kommune from a kommune", token: tokOslo, want: connect.CodeInvalidArgument, field: "event.kommune",
			build: func(f *fixture) *nirv1.AppendRequest {
				return one(onPerson(f.oslo, "", offerEv(d(2024, 3, 2))))
			}},
		{name: "unknown kommunenummer", token: tokSystem, want: connect.CodeInvalidArgument, field: "event.kommune",
			build: func(f *fixture) *nirv1.AppendRequest {
				return one(onPerson(f.oslo, "9999", offerEv(d(2024, 3, 2))))
			}},
		{name: "kommune not valid on the move date", token: tokOslo, want: connect.CodeInvalidArgument, field: "person_moved.to_kommune",
			build: func(f *fixture) *nirv1.AppendRequest {
				// Drammen was 3005 until the 2024 reform (DOMAIN.md 7.3).
				return one(onPerson(f.oslo, "0301", &nirv1.Event{Payload: &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: "3005", Date: d(2024, 5, 1)}}}))
			}},
		{name: "invalid fødselsnummer in the person", token: tokOslo, want: connect.CodeInvalidArgument, field: "person.national_id",
			build: func(f *fixture) *nirv1.AppendRequest {
				return one(onPerson(corruptCheckDigit(f.oslo), "0301", offerEv(d(2024, 3, 2))))
			}},
		{name: "invalid fødselsnummer in the payload", token: tokOslo, want: connect.CodeInvalidArgument, field: "person_registered.fodselsnummer",
			build: func(f *fixture) *nirv1.AppendRequest {
				r := personReg(corruptCheckDigit(rules.SyntheticFodselsnummer(rules.MustDate(1985, 1, 1), 7)), "0301", false)
				return one(r)
			}},
		{name: "invalid D-nummer", token: tokOslo, want: connect.CodeInvalidArgument, field: "person_registered.d_nummer",
			build: func(f *fixture) *nirv1.AppendRequest {
				r := personReg("", "0301", false)
				r.Event.GetPersonRegistered().DNummer = corruptCheckDigit(rules.SyntheticDNummer(rules.MustDate(1985, 1, 1), 7))
				return one(r)
			}},
		{name: "invalid DUF-nummer", token: tokOslo, want: connect.CodeInvalidArgument, field: "person_registered.duf_nummer",
			build: func(f *fixture) *nirv1.AppendRequest {
				r := personReg("", "0301", false)
				r.Event.GetPersonRegistered().DufNummer = "201512345699"
				return one(r)
			}},
		{name: "national id in free text", token: tokOslo, want: connect.CodeInvalidArgument, field: "event_retracted.reason",
			build: func(f *fixture) *nirv1.AppendRequest {
				return one(onPerson(f.oslo, "0301", &nirv1.Event{Payload: &nirv1.Event_EventRetracted{EventRetracted: &nirv1.EventRetracted{
					EventId: f.offerID, Reason: "wrong person, meant " + f.bergen}}}))
			}},
		{name: "national id and person key both given", token: tokOslo, want: connect.CodeInvalidArgument, field: "registrations[0].person",
			build: func(f *fixture) *nirv1.AppendRequest {
				r := onPerson(f.oslo, "0301", offerEv(d(2024, 3, 2)))
				r.Person.PersonKey = strings.Repeat("ab", 32)
				return one(r)
			}},
		{name: "person key of the wrong form", token: tokOslo, want: connect.CodeInvalidArgument, field: "person.person_key",
			build: func(f *fixture) *nirv1.AppendRequest {
				r := onPerson(f.oslo, "0301", offerEv(d(2024, 3, 2)))
				r.Person = &nirv1.PersonRef{PersonKey: "not-a-key"}
				return one(r)
			}},
		{name: "envelope person key of another person", token: tokOslo, want: connect.CodeInvalidArgument, field: "event.person_key",
			build: func(f *fixture) *nirv1.AppendRequest {
				r := onPerson(f.oslo, "0301", offerEv(d(2024, 3, 2)))
				r.Event.PersonKey = strings.Repeat("ab", 32)
				return one(r)
			}},
		{name: "unknown field smuggling a national id", token: tokOslo, want: connect.CodeInvalidArgument, field: "registrations[0].event",
			transports: []string{"connect", "nats"}, // JSON cannot carry an unknown field number
			build: func(f *fixture) *nirv1.AppendRequest {
				r := onPerson(f.oslo, "0301", offerEv(d(2024, 3, 2)))
				r.Event.ProtoReflect().SetUnknown(unknownBytes(999, "gjelder "+f.bergen))
				return one(r)
			}},
		{name: "unknown field in a payload", token: tokOslo, want: connect.CodeInvalidArgument, field: "registrations[0].event.offer_registered.date",
			transports: []string{"connect", "nats"},
			build: func(f *fixture) *nirv1.AppendRequest {
				r := onPerson(f.oslo, "0301", offerEv(d(2024, 3, 2)))
				r.Event.GetOfferRegistered().GetDate().ProtoReflect().SetUnknown(unknownBytes(4, "x"))
				return one(r)
			}},
		{name: "unknown field in the person reference", token: tokOslo, want: connect.CodeInvalidArgument, field: "registrations[0].person",
			transports: []string{"connect", "nats"},
			build: func(f *fixture) *nirv1.AppendRequest {
				r := onPerson(f.oslo, "0301", offerEv(d(2024, 3, 2)))
				r.Person.ProtoReflect().SetUnknown(unknownBytes(3, f.bergen))
				return one(r)
			}},
		{name: "same event id twice in a request", token: tokOslo, want: connect.CodeInvalidArgument, field: "registrations[1].event.id",
			build: func(f *fixture) *nirv1.AppendRequest {
				a := onPerson(f.oslo, "0301", offerEv(d(2024, 3, 2)))
				b := onPerson(f.oslo, "0301", offerEv(d(2024, 3, 3)))
				b.Event.Id = a.Event.Id
				return &nirv1.AppendRequest{Registrations: []*nirv1.Registration{a, b}}
			}},
		{name: "computed termination from a kommune", token: tokOslo, want: connect.CodePermissionDenied, field: "termination_computed",
			build: func(f *fixture) *nirv1.AppendRequest {
				return one(onPerson(f.oslo, "0301", &nirv1.Event{Payload: &nirv1.Event_TerminationComputed{TerminationComputed: &nirv1.TerminationComputed{
					Rule: nirv1.TerminationRule_TERMINATION_RULE_FRIST_UTLOPT, Reason: nirv1.TerminationReason_TERMINATION_REASON_IKKE_REGISTRERT,
					Date: d(2024, 5, 1), ProgrammeStart: d(2022, 5, 1), RuleVersion: "x"}}}))
			}},
		{name: "valid registration followed by an invalid one", token: tokOslo, want: connect.CodeInvalidArgument, field: "registrations[1]",
			build: func(f *fixture) *nirv1.AppendRequest {
				good := onPerson(f.oslo, "0301", offerEv(d(2024, 3, 2)))
				bad := onPerson(f.oslo, "0301", offerEv(d(2024, 13, 1)))
				return &nirv1.AppendRequest{Registrations: []*nirv1.Registration{good, bad}}
			}},
		{name: "differing expectations for one person", token: tokOslo, want: connect.CodeInvalidArgument, field: "expected_last_sequence",
			build: func(f *fixture) *nirv1.AppendRequest {
				a := onPerson(f.oslo, "0301", offerEv(d(2024, 3, 2)))
				b := onPerson(f.oslo, "0301", offerEv(d(2024, 3, 3)))
				a.ExpectedLastSequence, b.ExpectedLastSequence = expect(f.osloLast), expect(f.osloLast+1)
				return &nirv1.AppendRequest{Registrations: []*nirv1.Registration{a, b}}
			}},
		{name: "too many registrations", token: tokOslo, want: connect.CodeResourceExhausted,
			build: func(f *fixture) *nirv1.AppendRequest {
				req := &nirv1.AppendRequest{}
				for range ingest.DefaultMaxRegistrations + 1 {
					req.Registrations = append(req.Registrations, onPerson(f.oslo, "0301", offerEv(d(2024, 3, 2))))
				}
				return req
			}},
		{name: "unknown person", token: tokOslo, want: connect.CodeNotFound,
			build: func(f *fixture) *nirv1.AppendRequest {
				return one(onPerson(rules.SyntheticFodselsnummer(rules.MustDate(1970, 7, 7), 99), "0301", offerEv(d(2024, 3, 2))))
			}},
		{name: "unknown person by key", token: tokOslo, want: connect.CodeNotFound,
			build: func(f *fixture) *nirv1.AppendRequest {
				r := onPerson(f.oslo, "0301", offerEv(d(2024, 3, 2)))
				r.Person = &nirv1.PersonRef{PersonKey: strings.Repeat("0f", 32)}
				return one(r)
			}},

		// Rule refusals (FailedPrecondition with the rule's code).
		{name: "person registered twice", token: tokOslo, want: connect.CodeFailedPrecondition, rule: "NIR-R002",
			build: func(f *fixture) *nirv1.AppendRequest { return one(personReg(f.oslo, "0301", false)) }},
		{name: "retraction of an unknown event", token: tokOslo, want: connect.CodeFailedPrecondition, rule: "NIR-R003",
			build: func(f *fixture) *nirv1.AppendRequest {
				return one(onPerson(f.oslo, "0301", &nirv1.Event{Payload: &nirv1.Event_EventRetracted{EventRetracted: &nirv1.EventRetracted{EventId: newID(), Reason: "feilregistrert"}}}))
			}},
		{name: "sluttmål under introduksjonsloven", token: tokOslo, want: connect.CodeFailedPrecondition, rule: "NIR-R010",
			build: func(f *fixture) *nirv1.AppendRequest {
				return one(onPerson(f.introl, "0301", &nirv1.Event{Payload: &nirv1.Event_SluttmalRegistered{SluttmalRegistered: &nirv1.SluttmalRegistered{Sluttmal: nirv1.Sluttmal_SLUTTMAL_ARBEID, Date: d(2021, 1, 5)}}}))
			}},
		{name: "utdanningsbakgrunn under introduksjonsloven", token: tokOslo, want: connect.CodeFailedPrecondition, rule: "NIR-R012",
			build: func(f *fixture) *nirv1.AppendRequest {
				return one(onPerson(f.introl, "0301", &nirv1.Event{Payload: &nirv1.Event_UtdanningsbakgrunnRegistered{UtdanningsbakgrunnRegistered: &nirv1.UtdanningsbakgrunnRegistered{UpperSecondaryCompleted: true, Date: d(2021, 1, 5)}}}))
			}},
		{name: "refusal after a valid registration in the same request", token: tokOslo, want: connect.CodeFailedPrecondition, rule: "NIR-R010",
			build: func(f *fixture) *nirv1.AppendRequest {
				good := onPerson(f.oslo, "0301", offerEv(d(2024, 3, 2)))
				bad := onPerson(f.introl, "0301", &nirv1.Event{Payload: &nirv1.Event_SluttmalRegistered{SluttmalRegistered: &nirv1.SluttmalRegistered{Sluttmal: nirv1.Sluttmal_SLUTTMAL_ARBEID, Date: d(2021, 1, 5)}}})
				return &nirv1.AppendRequest{Registrations: []*nirv1.Registration{good, bad}}
			}},

		// Conflicts.
		{name: "stale expected sequence", token: tokOslo, want: connect.CodeAborted,
			build: func(f *fixture) *nirv1.AppendRequest {
				r := onPerson(f.oslo, "0301", offerEv(d(2024, 3, 2)))
				r.ExpectedLastSequence = expect(f.osloLast - 1)
				return one(r)
			}},
		{name: "expected a new person but it exists", token: tokOslo, want: connect.CodeAborted,
			build: func(f *fixture) *nirv1.AppendRequest {
				r := onPerson(f.oslo, "0301", offerEv(d(2024, 3, 2)))
				r.ExpectedLastSequence = expect(0)
				return one(r)
			}},

		// Authentication and authorization.
		{name: "unknown token", token: "tok-stolen", want: connect.CodeUnauthenticated,
			build: func(f *fixture) *nirv1.AppendRequest { return one(onPerson(f.oslo, "0301", offerEv(d(2024, 3, 2)))) }},
		{name: "no token", token: "", want: connect.CodeUnauthenticated, transports: []string{"nats", "nats-json"},
			build: func(f *fixture) *nirv1.AppendRequest { return one(onPerson(f.oslo, "0301", offerEv(d(2024, 3, 2)))) }},
		{name: "analyst may not append", token: tokAnalyst, want: connect.CodePermissionDenied,
			build: func(f *fixture) *nirv1.AppendRequest { return one(onPerson(f.oslo, "0301", offerEv(d(2024, 3, 2)))) }},
		{name: "operator may not append", token: tokOperator, want: connect.CodePermissionDenied,
			build: func(f *fixture) *nirv1.AppendRequest { return one(onPerson(f.oslo, "0301", offerEv(d(2024, 3, 2)))) }},
		{name: "kommune writing for another kommune", token: tokBergen, want: connect.CodePermissionDenied, field: "event.kommune",
			build: func(f *fixture) *nirv1.AppendRequest { return one(onPerson(f.oslo, "0301", offerEv(d(2024, 3, 2)))) }},
		{name: "kommune registering a person in another kommune", token: tokBergen, want: connect.CodePermissionDenied, field: "registrations[0].event.kommune",
			build: func(f *fixture) *nirv1.AppendRequest {
				return one(personReg(rules.SyntheticFodselsnummer(rules.MustDate(1988, 8, 8), 5), "0301", false))
			}},
		{name: "second registration of a batch for another kommune", token: tokOslo, want: connect.CodePermissionDenied, field: "registrations[1].event.kommune",
			build: func(f *fixture) *nirv1.AppendRequest {
				return &nirv1.AppendRequest{Registrations: []*nirv1.Registration{
					onPerson(f.oslo, "0301", offerEv(d(2024, 3, 2))), onPerson(f.bergen, "4601", offerEv(d(2024, 3, 2)))}}
			}},
	}
}

// TestAppend_BadInputs sends every bad input over every transport and checks the typed error,
// that nothing was stored, and that the message holds no national id.
func TestAppend_BadInputs(t *testing.T) {
	f := newFixture(t)
	before := f.lastSeq(t)
	cases := badCases()
	n := 0
	for _, c := range cases {
		type attempt struct {
			transport string
			run       func() result
		}
		var attempts []attempt
		if c.raw != nil {
			attempts = append(attempts, attempt{"raw", func() result { return c.raw(t, f) }})
		} else {
			for _, tr := range transports {
				if c.transports != nil && !slices.Contains(c.transports, tr.name) {
					continue
				}
				req := c.build(f)
				attempts = append(attempts, attempt{tr.name, func() result { return tr.send(t, f.server, c.token, req) }})
			}
		}
		for _, a := range attempts {
			n++
			t.Run(c.name+"/"+a.transport, func(t *testing.T) {
				r := a.run()
				if r.raw != nil {
					t.Fatalf("transport error: %v", r.raw)
				}
				if r.code != c.want {
					t.Fatalf("code = %v (%q), want %v", r.code, r.msg, c.want)
				}
				if c.field != "" && !strings.Contains(r.msg, c.field) {
					t.Errorf("message %q does not name the field %q", r.msg, c.field)
				}
				if c.rule != "" {
					if !strings.Contains(r.msg, c.rule) {
						t.Errorf("message %q does not name rule %s", r.msg, c.rule)
					}
					if a.transport == "connect" && !slices.ContainsFunc(r.refusals, func(x *nirv1.RuleRefusal) bool { return x.GetCode() == c.rule }) {
						t.Errorf("error details %v hold no nir.v1.RuleRefusal with code %s", r.refusals, c.rule)
					}
				}
				if m := nationalIDRun.FindString(r.msg); m != "" {
					t.Errorf("message holds a digit run %q that could be a national id: %q", m, r.msg)
				}
				for _, id := range f.ids {
					if strings.Contains(r.msg, id) {
						t.Errorf("message holds a fixture national id: %q", r.msg)
					}
				}
				if got := f.lastSeq(t); got != before {
					t.Fatalf("stream last sequence %d after the refused request, was %d: something was stored", got, before)
				}
			})
		}
	}
	if n < 30 {
		t.Errorf("only %d bad inputs; the table should hold at least 30", n)
	}
	// The same request, well-formed, still goes through afterwards: the table's refusals came
	// from the inputs, not from a broken server.
	for _, tr := range transports {
		r := tr.send(t, f.server, tokOslo, one(onPerson(f.oslo, "0301", offerEv(d(2024, 3, 2)))))
		if r.code != 0 || r.raw != nil || len(r.positions) != 1 {
			t.Fatalf("%s: good request after the bad ones: %v %q %v", tr.name, r.code, r.msg, r.raw)
		}
	}
}

// TestAppend_OversizedNATSMessage checks that a request larger than the server's max payload
// is refused before it is sent, and stores nothing.
func TestAppend_OversizedNATSMessage(t *testing.T) {
	f := newFixture(t)
	before := f.lastSeq(t)
	data := bytes.Repeat([]byte{0}, int(f.nc.MaxPayload())+1)
	r := natsRequest(t, f.server, tokOslo, "", data)
	if !errors.Is(r.raw, nats.ErrMaxPayload) {
		t.Fatalf("oversized request: %+v, want nats.ErrMaxPayload", r)
	}
	if got := f.lastSeq(t); got != before {
		t.Fatalf("last sequence %d, was %d", got, before)
	}
}

// TestRegistration_Roles calls Append and History as every role.
func TestRegistration_Roles(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()

	// The Oslo person moves to Bergen: from then on Bergen sees the person too, and Oslo still
	// does (a kommune sees the whole history of a person it has had).
	mover := rules.SyntheticFodselsnummer(rules.MustDate(1992, 2, 2), 77)
	if _, err := f.client(tokOslo).Append(ctx, connect.NewRequest(&nirv1.AppendRequest{Registrations: []*nirv1.Registration{
		personReg(mover, "0301", false),
		onPerson(mover, "0301", &nirv1.Event{Payload: &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: "4601", Date: d(2024, 5, 1)}}}),
	}})); err != nil {
		t.Fatal(err)
	}

	history := []struct {
		token  string
		person string
		want   connect.Code
	}{
		{tokOslo, f.oslo, 0},
		{tokOslo, f.introl, 0},
		{tokOslo, f.bergen, connect.CodeNotFound},
		{tokBergen, f.bergen, 0},
		{tokBergen, f.oslo, connect.CodeNotFound},
		{tokBergen, mover, 0},
		{tokOslo, mover, 0},
		{tokSystem, f.oslo, 0},
		{tokSystem, f.bergen, 0},
		{tokAnalyst, f.oslo, connect.CodePermissionDenied},
		{tokOperator, f.oslo, connect.CodePermissionDenied},
		{"tok-unknown", f.oslo, connect.CodeUnauthenticated},
		{tokOslo, rules.SyntheticFodselsnummer(rules.MustDate(1970, 7, 7), 98), connect.CodeNotFound},
		{tokSystem, rules.SyntheticFodselsnummer(rules.MustDate(1970, 7, 7), 98), connect.CodeNotFound},
	}
	for _, c := range history {
		t.Run(fmt.Sprintf("History/%s/%s", c.token, map[bool]string{true: "own", false: "other"}[c.want == 0]), func(t *testing.T) {
			res, err := f.client(c.token).History(ctx, connect.NewRequest(&nirv1.HistoryRequest{Person: &nirv1.PersonRef{NationalId: c.person}}))
			if c.want == 0 {
				if err != nil {
					t.Fatalf("history: %v", err)
				}
				if len(res.Msg.GetEvents()) == 0 || res.Msg.GetEvents()[0].GetEvent().GetPersonRegistered().GetFodselsnummer() != c.person {
					t.Fatalf("history of another person or empty: %d events", len(res.Msg.GetEvents()))
				}
				return
			}
			if connect.CodeOf(err) != c.want {
				t.Fatalf("history: %v, want %v", err, c.want)
			}
			if err != nil && strings.Contains(err.Error(), c.person) {
				t.Errorf("error holds the national id")
			}
		})
	}

	// A kommune that never had the person learns nothing about whether it exists: the answer
	// for an existing person of another kommune is the same as for a person nobody has.
	_, errOther := f.client(tokBergen).History(ctx, connect.NewRequest(&nirv1.HistoryRequest{Person: &nirv1.PersonRef{NationalId: f.oslo}}))
	_, errNone := f.client(tokBergen).History(ctx, connect.NewRequest(&nirv1.HistoryRequest{Person: &nirv1.PersonRef{NationalId: rules.SyntheticFodselsnummer(rules.MustDate(1970, 7, 7), 98)}}))
	var ceOther, ceNone *connect.Error
	if !errors.As(errOther, &ceOther) || !errors.As(errNone, &ceNone) || ceOther.Code() != ceNone.Code() || ceOther.Message() != ceNone.Message() {
		t.Errorf("another kommune's person (%v) is distinguishable from an unknown person (%v)", errOther, errNone)
	}

	appendCases := []struct {
		token   string
		kommune string
		person  string
		want    connect.Code
	}{
		{tokOslo, "0301", f.oslo, 0},
		{tokBergen, "4601", f.bergen, 0},
		{tokSystem, "0301", f.oslo, 0},
		{tokSystem, "4601", f.bergen, 0},
		{tokBergen, "0301", f.oslo, connect.CodePermissionDenied},
		{tokOslo, "4601", f.bergen, connect.CodePermissionDenied},
		{tokAnalyst, "0301", f.oslo, connect.CodePermissionDenied},
		{tokOperator, "0301", f.oslo, connect.CodePermissionDenied},
	}
	for _, c := range appendCases {
		for _, tr := range transports {
			t.Run(fmt.Sprintf("Append/%s/%s/%s", c.token, c.kommune, tr.name), func(t *testing.T) {
				before := f.lastSeq(t)
				r := tr.send(t, f.server, c.token, one(onPerson(c.person, c.kommune, offerEv(d(2024, 3, 4)))))
				if r.raw != nil {
					t.Fatal(r.raw)
				}
				if r.code != c.want {
					t.Fatalf("append: %v %q, want %v", r.code, r.msg, c.want)
				}
				after := f.lastSeq(t)
				if c.want == 0 && (len(r.positions) != 1 || r.positions[0].GetSequence() != after || after != before+1) {
					t.Errorf("allowed append: positions %v, last sequence %d → %d", r.positions, before, after)
				}
				if c.want != 0 && after != before {
					t.Errorf("refused append changed the stream: %d → %d", before, after)
				}
			})
		}
	}

	// The actor recorded is the caller, whatever the transport.
	res, err := f.client(tokSystem).History(ctx, connect.NewRequest(&nirv1.HistoryRequest{Person: &nirv1.PersonRef{NationalId: f.bergen}}))
	if err != nil {
		t.Fatal(err)
	}
	actors := map[string]nirv1.ActorRole{}
	for _, e := range res.Msg.GetEvents() {
		actors[e.GetEvent().GetActor().GetSubject()] = e.GetEvent().GetActor().GetRole()
	}
	if actors["bergen"] != nirv1.ActorRole_ACTOR_ROLE_KOMMUNE || actors["regelmotor"] != nirv1.ActorRole_ACTOR_ROLE_SYSTEM || len(actors) != 2 {
		t.Errorf("actors of the Bergen person's events = %v, want bergen (kommune) and regelmotor (system)", actors)
	}
}

// TestAppend_ResentCorrections is a case system that sends a batch of corrections, times out
// before the answer, and re-sends the whole batch, over and over and concurrently, over both
// transports: every event is stored exactly once, and every answer gives the same positions.
func TestAppend_ResentCorrections(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id := rules.SyntheticFodselsnummer(rules.MustDate(1991, 9, 9), 11)

	// An IL person in a programme with two tiltak, one of them with the wrong code.
	vedtak := onPerson(id, "0301", &nirv1.Event{Payload: &nirv1.Event_ProgrammeVedtakRegistered{ProgrammeVedtakRegistered: &nirv1.ProgrammeVedtakRegistered{
		Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, VedtakDate: d(2024, 2, 20), FromDate: d(2024, 3, 1), ToDate: d(2025, 2, 28)}}})
	sluttmal := onPerson(id, "0301", &nirv1.Event{Payload: &nirv1.Event_SluttmalRegistered{SluttmalRegistered: &nirv1.SluttmalRegistered{Sluttmal: nirv1.Sluttmal_SLUTTMAL_ARBEID, Date: d(2024, 2, 20)}}})
	tiltak := func(code nirv1.TiltakCode, from *nirv1.Date) *nirv1.Registration {
		return onPerson(id, "0301", &nirv1.Event{Payload: &nirv1.Event_TiltakRegistered{TiltakRegistered: &nirv1.TiltakRegistered{
			Code: code, FromDate: from, ToDate: d(2024, 5, 31), HoursPerWeek: 15}}})
	}
	wrong1, wrong2 := tiltak(nirv1.TiltakCode_TILTAK_CODE_ARBEID_OFFENTLIG, d(2024, 3, 1)), tiltak(nirv1.TiltakCode_TILTAK_CODE_KURS, d(2024, 4, 1))
	if _, err := f.client(tokOslo).Append(ctx, connect.NewRequest(&nirv1.AppendRequest{Registrations: []*nirv1.Registration{
		personReg(id, "0301", false), vedtak, sluttmal, wrong1, wrong2,
	}})); err != nil {
		t.Fatalf("seed: %v", err)
	}

	// The regelmotor has computed a termination for the introduksjonsloven person, which the
	// kommune deletes (DOMAIN.md "Product decisions" 5).
	introlVedtak := onPerson(f.introl, "0301", &nirv1.Event{Payload: &nirv1.Event_ProgrammeVedtakRegistered{ProgrammeVedtakRegistered: &nirv1.ProgrammeVedtakRegistered{
		Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, VedtakDate: d(2021, 4, 20), FromDate: d(2021, 5, 1), ToDate: d(2023, 4, 30)}}})
	if _, err := f.client(tokOslo).Append(ctx, connect.NewRequest(one(introlVedtak))); err != nil {
		t.Fatalf("programme vedtak: %v", err)
	}
	hist, err := f.client(tokSystem).History(ctx, connect.NewRequest(&nirv1.HistoryRequest{Person: &nirv1.PersonRef{NationalId: f.introl}}))
	if err != nil {
		t.Fatal(err)
	}
	st := rules.NewState(hist.Msg.GetPersonKey())
	for _, e := range hist.Msg.GetEvents() {
		st.Apply(e.GetSequence(), e.GetEvent())
	}
	due := rules.DueTerminations(st, rules.DateFromTime(fixedNow))
	if len(due) != 1 {
		t.Fatalf("%d computed terminations due, want 1", len(due))
	}
	due[0].Actor = nil
	computed := &nirv1.Registration{Person: &nirv1.PersonRef{NationalId: f.introl}, Event: due[0]}
	if _, err := f.client(tokSystem).Append(ctx, connect.NewRequest(one(computed))); err != nil {
		t.Fatalf("computed termination: %v", err)
	}

	// The corrections: retract both tiltak and register the right ones, delete the computed
	// termination, and retract the Oslo fixture person's offer (a mistake), in one batch.
	retract := func(of *nirv1.Registration, pid string) *nirv1.Registration {
		return onPerson(pid, "0301", &nirv1.Event{Payload: &nirv1.Event_EventRetracted{EventRetracted: &nirv1.EventRetracted{EventId: of.Event.Id, Reason: "feil tiltakskode"}}})
	}
	batch := &nirv1.AppendRequest{Registrations: []*nirv1.Registration{
		retract(wrong1, id), tiltak(nirv1.TiltakCode_TILTAK_CODE_ARBEID_PRIVAT, d(2024, 3, 1)),
		retract(wrong2, id), tiltak(nirv1.TiltakCode_TILTAK_CODE_SPRAKPRAKSIS, d(2024, 4, 1)),
		retract(&nirv1.Registration{Event: &nirv1.Event{Id: f.offerID}}, f.oslo),
		onPerson(f.introl, "0301", &nirv1.Event{Payload: &nirv1.Event_ComputedTerminationDeleted{ComputedTerminationDeleted: &nirv1.ComputedTerminationDeleted{
			ComputedEventId: computed.Event.Id, Reason: "deltakeren fortsetter i forsterket program"}}}),
	}}
	before := f.lastSeq(t)

	// The first send's answer is lost: the ingress stores it, the reply goes to an inbox the
	// case system has stopped listening on.
	data, err := proto.Marshal(batch)
	if err != nil {
		t.Fatal(err)
	}
	lost := nats.NewMsg(natsingress.RequestSubject(natsCaseSystem))
	lost.Data = data
	lost.Header.Set("Authorization", "Bearer "+tokOslo)
	lost.Reply = f.nc.NewRespInbox()
	if err := f.nc.PublishMsg(lost); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for f.lastSeq(t) < before+uint64(len(batch.Registrations)) {
		if time.Now().After(deadline) {
			t.Fatalf("the first send was not stored within 20s (last sequence %d, was %d)", f.lastSeq(t), before)
		}
		time.Sleep(5 * time.Millisecond)
	}
	stored := f.lastSeq(t)

	// Sends that time out on the client's side, some before and some after the server
	// stored or answered: whatever happened, nothing more is stored.
	for i := range 6 {
		tctx, cancel := context.WithTimeout(ctx, time.Duration(i)*time.Millisecond)
		_, _ = f.client(tokOslo).Append(tctx, connect.NewRequest(batch))
		cancel()
	}
	if got := f.lastSeq(t); got != stored {
		t.Fatalf("timed-out re-sends moved the stream from %d to %d", stored, got)
	}

	// The case system re-sends the whole batch: concurrently over both transports, then again.
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		answers [][]*nirv1.Position
	)
	for round := range 3 {
		for _, tr := range transports {
			wg.Go(func() {
				r := tr.send(t, f.server, tokOslo, batch)
				if r.raw != nil || r.code != 0 {
					t.Errorf("round %d %s: re-send failed: %v %v %q", round, tr.name, r.raw, r.code, r.msg)
					return
				}
				mu.Lock()
				answers = append(answers, r.positions)
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	if got := f.lastSeq(t); got != stored {
		t.Fatalf("re-sends moved the stream from %d to %d", stored, got)
	}
	if len(answers) != 3*len(transports) {
		t.Fatalf("%d answers, want %d", len(answers), 3*len(transports))
	}
	for _, ps := range answers {
		if len(ps) != len(batch.Registrations) {
			t.Fatalf("answer has %d positions, want %d", len(ps), len(batch.Registrations))
		}
		for i, p := range ps {
			if !p.GetDuplicate() || p.GetEventId() != batch.Registrations[i].Event.Id || p.GetSequence() <= before || p.GetSequence() > stored {
				t.Errorf("position %d = %v, want the stored duplicate of %s", i, p, batch.Registrations[i].Event.Id)
			}
			if p.GetSequence() != answers[0][i].GetSequence() {
				t.Errorf("position %d: sequence %d, another answer said %d", i, p.GetSequence(), answers[0][i].GetSequence())
			}
		}
	}

	// A batch half of which got through (the case system split it and the second half timed
	// out before sending): re-sending the whole batch stores only the missing half.
	second := &nirv1.AppendRequest{Registrations: []*nirv1.Registration{
		retract(batch.Registrations[1], id), tiltak(nirv1.TiltakCode_TILTAK_CODE_ARBEIDSPRAKSIS, d(2024, 3, 1)),
	}}
	if r := viaNATS.send(t, f.server, tokOslo, &nirv1.AppendRequest{Registrations: second.Registrations[:1]}); r.code != 0 || r.raw != nil {
		t.Fatalf("first half: %v %q %v", r.code, r.msg, r.raw)
	}
	r := viaConnect.send(t, f.server, tokOslo, second)
	if r.code != 0 || r.raw != nil {
		t.Fatalf("whole batch: %v %q %v", r.code, r.msg, r.raw)
	}
	if !r.positions[0].GetDuplicate() || r.positions[1].GetDuplicate() {
		t.Errorf("positions %v: want the first a duplicate and the second new", r.positions)
	}

	// Every event id is in the history once.
	for _, pid := range []string{id, f.oslo, f.introl} {
		res, err := f.client(tokSystem).History(ctx, connect.NewRequest(&nirv1.HistoryRequest{Person: &nirv1.PersonRef{NationalId: pid}}))
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		for _, e := range res.Msg.GetEvents() {
			seen[e.GetEvent().GetId()]++
		}
		for evID, n := range seen {
			if n != 1 {
				t.Errorf("event %s stored %d times", evID, n)
			}
		}
	}
	if got, want := f.lastSeq(t), stored+2; got != want {
		t.Errorf("last sequence %d, want %d (the batch once, then the missing half)", got, want)
	}
}

// TestError_Unconfirmed: a refusal withheld because the stream leader was not confirmed
// reaches the case system as Unavailable (retry), never as a refusal or an internal error.
func TestError_Unconfirmed(t *testing.T) {
	err := fmt.Errorf("append: %w", fmt.Errorf("%w: 1 of the 2 replicas needed answered it", ingest.ErrUnconfirmed))
	got := api.Error(context.Background(), slog.New(slog.DiscardHandler), "append", err)
	if connect.CodeOf(got) != connect.CodeUnavailable || !strings.Contains(got.Error(), "retry") {
		t.Errorf("api.Error(ErrUnconfirmed) = %v (%v), want Unavailable asking to retry", got, connect.CodeOf(got))
	}
}

// TestError_FoldFault: a registration the rules failed folding (nird's bug) is Internal,
// naming the registration and saying that nothing was stored and it may be sent again, but
// not what the rules panicked with.
func TestError_FoldFault(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	err := fmt.Errorf("append: %w", &ingest.FoldFaultError{Index: 2, Field: "registrations[2].event", EventID: "01JTESTEVENT", Panic: "panic(main.secret)"})
	got := api.Error(context.Background(), log, "append", err)
	if connect.CodeOf(got) != connect.CodeInternal || !strings.Contains(got.Error(), "registrations[2].event") ||
		!strings.Contains(got.Error(), "nothing was stored") || strings.Contains(got.Error(), "panic(") {
		t.Errorf("api.Error(FoldFaultError) = %v (%v), want Internal naming the registration, nothing stored, no panic", got, connect.CodeOf(got))
	}
}

// TestAppend_FoldFault: a case system that sends an event the rules panic on (a bug in nird;
// rules.SetFaultForTest stands in for the input that would hit it) gets Internal over every
// transport, naming the registration and saying that nothing was stored, and nothing is:
// stored, the event would be left out of the person's state and every read model. The same
// request is stored once the rules take it.
// Not parallel: the fault hook is the rules package's, for every fold in the process.
func TestAppend_FoldFault(t *testing.T) {
	f := newFixture(t)
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			bad := onPerson(f.oslo, "0301", offerEv(d(2024, 3, 4)))
			req := &nirv1.AppendRequest{Registrations: []*nirv1.Registration{onPerson(f.oslo, "0301", offerEv(d(2024, 3, 5))), bad}}
			restore := rules.SetFaultForTest(func(ev *nirv1.Event) bool { return ev.GetId() == bad.GetEvent().GetId() })
			defer restore()
			before := f.lastSeq(t)
			res := tr.send(t, f.server, tokOslo, req)
			if res.code != connect.CodeInternal || !strings.Contains(res.msg, "registrations[1].event") || !strings.Contains(res.msg, "nothing was stored") ||
				nationalIDRun.MatchString(res.msg) {
				t.Fatalf("append = %v %q; want Internal naming registrations[1].event, nothing stored, no national id", res.code, res.msg)
			}
			if after := f.lastSeq(t); after != before {
				t.Fatalf("the stream went from %d to %d; nothing may be stored", before, after)
			}
			restore()
			if res := tr.send(t, f.server, tokOslo, req); res.code != 0 || len(res.positions) != 2 {
				t.Fatalf("the same request once the rules take it = %v %q", res.code, res.msg)
			}
		})
	}
}

// TestAppend_NoExistenceOracle checks that a kommune cannot tell another kommune's person from
// a person nobody registered by what an append answers, whatever the request holds: the same
// request for either gets the same code and message, and stores nothing.
func TestAppend_NoExistenceOracle(t *testing.T) {
	f := newFixture(t)
	unknown := rules.SyntheticFodselsnummer(rules.MustDate(1991, time.May, 3), 7)
	expect := func(seq uint64) *uint64 { return &seq }
	for _, c := range []struct {
		name  string
		build func(fnr string) *nirv1.Registration
	}{
		{"Offer", func(fnr string) *nirv1.Registration { return onPerson(fnr, "4601", offerEv(d(2024, 3, 2))) }},
		{"OfferWithExpectedSequence", func(fnr string) *nirv1.Registration {
			r := onPerson(fnr, "4601", offerEv(d(2024, 3, 2)))
			r.ExpectedLastSequence = expect(7)
			return r
		}},
		{"RegistrationWithExpectedSequence", func(fnr string) *nirv1.Registration {
			r := personReg(fnr, "4601", false)
			r.ExpectedLastSequence = expect(7)
			return r
		}},
		{"RegistrationRefusedByARule", func(fnr string) *nirv1.Registration {
			r := personReg(fnr, "4601", false)
			r.Event.GetPersonRegistered().SettlementDate = d(2030, 1, 1) // NIR-R030: after today
			return r
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := f.lastSeq(t)
			var got []result
			for _, fnr := range []string{f.oslo, unknown} {
				for _, tr := range transports {
					got = append(got, tr.send(t, f.server, tokBergen, one(c.build(fnr))))
				}
			}
			n := len(transports)
			for i := range n {
				other, none := got[i], got[n+i]
				if other.raw != nil || none.raw != nil {
					t.Fatalf("%s: transport error: %v, %v", transports[i].name, other.raw, none.raw)
				}
				if other.code != none.code || other.msg != none.msg {
					t.Errorf("%s: Oslo's person: %v %q; a person nobody registered: %v %q; want the same answer",
						transports[i].name, other.code, other.msg, none.code, none.msg)
				}
			}
			if after := f.lastSeq(t); after != before {
				t.Errorf("stream went from %d to %d: something was stored", before, after)
			}
		})
	}
}

// TestAppendAs_OversizedCostsNothingPerRegistration: a request over the registrations an
// append takes is refused before anything is done per registration. Before, AppendAs
// built an error path for each registration (its unknown-field check) ahead of the count
// check: 10 000 allocations for a refused request of 10 000.
func TestAppendAs_OversizedCostsNothingPerRegistration(t *testing.T) {
	s := startServer(t)
	ctx := auth.NewContext(context.Background(), auth.Principal{Name: "oslo", Role: auth.RoleKommune, Kommune: "0301"})
	reg := onPerson(rules.SyntheticFodselsnummer(rules.MustDate(1990, time.April, 12), 1), "0301", offerEv(d(2024, 3, 2)))
	req := &nirv1.AppendRequest{Registrations: make([]*nirv1.Registration, 10*ingest.DefaultMaxRegistrations)}
	for i := range req.Registrations {
		req.Registrations[i] = reg
	}
	var err error
	allocs := testing.AllocsPerRun(5, func() { _, err = s.reg.AppendAs(ctx, req) })
	if connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Fatalf("AppendAs: %v, want ResourceExhausted", err)
	}
	if allocs > 100 {
		t.Errorf("refusing %d registrations took %.0f allocations, want a few whatever the count", len(req.Registrations), allocs)
	}
}
