package api_test

// TestAccess is the one table of who may see and write which person (internal/access, README
// "Kommune boundaries"): every role × every endpoint × every relation of the caller's kommune
// to the person, through the real edges (Connect and the NATS ingress for appends, the query
// API and the CSV export over read models folded from the same stream), wired as cmd/nird
// wires them.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/api"
	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/feed"
	"github.com/introreg/nir/internal/ingest"
	"github.com/introreg/nir/internal/natsingress"
	"github.com/introreg/nir/internal/personkey"
	"github.com/introreg/nir/projections"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
	"github.com/introreg/nir/rules"
)

// accessNow is the register's clock: autumn 2024, after every move of the population.
var accessNow = time.Date(2024, 10, 1, 10, 0, 0, 0, time.UTC)

// The relations of Oslo (the calling kommune) to a person.
const (
	relOwn        = "own"                  // registered by Oslo, settled in Oslo
	relRegElse    = "registered-elsewhere" // Oslo wrote the registration of a person settled in Bergen (before the rule)
	relMovedAway  = "moved-away"           // settled in Oslo, moved to Bergen on 2024-06-01
	relMovedIn    = "moved-in"             // settled in Bergen, moved to Oslo on 2024-06-01
	relOther      = "never"                // Bergen's person, never in Oslo
	relUnknown    = "unknown"              // nobody registered the person
	accessMoveDay = "2024-06-01"
)

var accessRelations = []string{relOwn, relRegElse, relMovedAway, relMovedIn, relOther, relUnknown}

// Tokens of the table's roles.
const (
	atOslo     = "at-oslo"
	atBergen   = "at-bergen"
	atAnalyst  = "at-analyst"
	atOperator = "at-operator"
	atSystem   = "at-system"
	atNone     = ""
)

var accessRoles = []string{atOslo, atAnalyst, atOperator, atSystem, atNone}

// accessPerson is one person of a population, with the events the table refers to.
type accessPerson struct {
	fnr, key     string
	registration string // the PersonRegistered
	osloEvent    string // an offer Oslo registered ("" if none)
	bergenEvent  string // an offer Bergen registered ("" if none)
	lateForeign  string // an offer registered for Bergen dated after the person came to Oslo
}

type accessWorld struct {
	store *eventstore.Store
	proj  *projections.Projector
	url   string
	nc    *nats.Conn
	keys  *personkey.Keyer
	seq   int
}

func startAccess(t *testing.T) *accessWorld {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	users, ingressAuth, caseAuth := natsUsers(t)
	store, err := eventstore.Open(ctx, eventstore.Config{Dir: filepath.Join(t.TempDir(), "js"), Users: users})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := personkey.New([]byte("access test secret, not a real one"))
	if err != nil {
		t.Fatal(err)
	}
	var entries []auth.Entry
	for _, e := range []struct {
		tok, name string
		role      auth.Role
		kommune   string
	}{
		{atOslo, "oslo", auth.RoleKommune, "0301"}, {atBergen, "bergen", auth.RoleKommune, "4601"},
		{atAnalyst, "analyst", auth.RoleAnalyst, ""}, {atOperator, "operator", auth.RoleOperator, ""},
		{atSystem, "folkeregister", auth.RoleSystem, ""},
	} {
		entries = append(entries, auth.Entry{Name: e.name, Role: e.role, Kommune: e.kommune, TokenSHA256: auth.HashToken(e.tok)})
	}
	authn, err := auth.New(entries)
	if err != nil {
		t.Fatal(err)
	}
	events, err := feed.New(store)
	if err != nil {
		t.Fatal(err)
	}
	proj, err := projections.New(events, projections.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return accessNow }
	reg := api.NewRegistration(ingest.New(ingest.Config{Store: store, Keys: keys, Now: now}), nil, nil)
	query := api.NewQuery(api.QueryConfig{Source: proj, Keys: keys, Now: now})
	guard := auth.NewGuard(authn, api.Policy(), nil)
	opts := connect.WithHandlerOptions(connect.WithInterceptors(guard))
	mux := http.NewServeMux()
	mux.Handle(nirv1connect.NewRegistrationServiceHandler(reg, opts))
	mux.Handle(nirv1connect.NewQueryServiceHandler(query, opts))
	mux.Handle(api.ExportPersonsPath, guard.Middleware(query.ExportHandler()))
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
		<-done
		ingressConn.Close()
		hs.Close()
		proj.Close()
		events.Close()
		store.Close()
	})
	nc, err := store.Connect(caseAuth...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	waitForIngress(t, nc)
	return &accessWorld{store: store, proj: proj, url: hs.URL, nc: nc, keys: keys}
}

// fnr returns a synthetic fødselsnummer no other person of the test has.
func (w *accessWorld) fnr() string {
	w.seq++
	return rules.SyntheticFodselsnummer(rules.MustDate(1989, 8, 1+w.seq/400), w.seq%400)
}

func (w *accessWorld) reg(token string) nirv1connect.RegistrationServiceClient {
	var opts []connect.ClientOption
	if token != "" {
		opts = append(opts, connect.WithInterceptors(auth.BearerInterceptor(token)))
	}
	return nirv1connect.NewRegistrationServiceClient(http.DefaultClient, w.url, opts...)
}

func (w *accessWorld) query(token string) nirv1connect.QueryServiceClient {
	var opts []connect.ClientOption
	if token != "" {
		opts = append(opts, connect.WithInterceptors(auth.BearerInterceptor(token)))
	}
	return nirv1connect.NewQueryServiceClient(http.DefaultClient, w.url, opts...)
}

func ad(s string) *nirv1.Date { return rules.MustParseDate(s).Proto() }

// must appends as token and fails the test unless the events are stored.
func (w *accessWorld) must(t *testing.T, token string, regs ...*nirv1.Registration) {
	t.Helper()
	if _, err := w.reg(token).Append(context.Background(), connect.NewRequest(&nirv1.AppendRequest{Registrations: regs})); err != nil {
		t.Fatalf("setup append as %s: %v", token, err)
	}
}

func accessEv(key, kommune string, ev *nirv1.Event) *nirv1.Registration {
	ev.Id = newID()
	ev.Kommune = kommune
	return &nirv1.Registration{Person: &nirv1.PersonRef{PersonKey: key}, Event: ev}
}

func accessOffer(date string) *nirv1.Event {
	return offerEv(ad(date))
}

func accessProgramme(key, kommune, from, end string) []*nirv1.Registration {
	return []*nirv1.Registration{
		accessEv(key, kommune, &nirv1.Event{Payload: &nirv1.Event_ProgrammeVedtakRegistered{ProgrammeVedtakRegistered: &nirv1.ProgrammeVedtakRegistered{
			Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, VedtakDate: ad(from), FromDate: ad(from)}}}),
		accessEv(key, kommune, &nirv1.Event{Payload: &nirv1.Event_TerminationRegistered{TerminationRegistered: &nirv1.TerminationRegistered{
			Kind: nirv1.TerminationKind_TERMINATION_KIND_FULLFORT, Reason: nirv1.TerminationReason_TERMINATION_REASON_ARBEID, Date: ad(end)}}}),
	}
}

func accessMove(to, date string) *nirv1.Event {
	return &nirv1.Event{Payload: &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: to, Date: ad(date)}}}
}

func accessRetract(id string) *nirv1.Event {
	return &nirv1.Event{Payload: &nirv1.Event_EventRetracted{EventRetracted: &nirv1.EventRetracted{EventId: id, Reason: "feilregistrert"}}}
}

// population registers one person of every relation and waits for the read models.
func (w *accessWorld) population(t *testing.T) map[string]*accessPerson {
	t.Helper()
	out := map[string]*accessPerson{}
	for _, rel := range accessRelations {
		out[rel] = w.person(t, rel)
	}
	w.caughtUp(t)
	return out
}

// person registers a person of relation rel the way the rules let it come about.
func (w *accessWorld) person(t *testing.T, rel string) *accessPerson {
	t.Helper()
	newPerson := func(token, kommune, settled string) *accessPerson {
		fnr := w.fnr()
		r := personReg(fnr, kommune, false)
		r.Event.GetPersonRegistered().SettlementKommune = settled
		p := &accessPerson{fnr: fnr, key: w.keys.Key(fnr), registration: r.Event.Id}
		w.must(t, token, r)
		return p
	}
	offer := func(p *accessPerson, token, kommune, date string) string {
		r := accessEv(p.key, kommune, accessOffer(date))
		w.must(t, token, r)
		return r.Event.Id
	}
	switch rel {
	case relOwn:
		p := newPerson(atOslo, "0301", "0301")
		p.osloEvent = offer(p, atOslo, "0301", "2024-03-01")
		w.must(t, atOslo, accessProgramme(p.key, "0301", "2024-03-01", "2024-05-15")...)
		return p
	case relRegElse:
		// Before the rule that a kommune registers only persons settled in itself: written
		// here by the system principal, as such an old event was.
		return newPerson(atSystem, "0301", "4601")
	case relMovedAway:
		p := newPerson(atOslo, "0301", "0301")
		p.osloEvent = offer(p, atOslo, "0301", "2024-03-01")
		w.must(t, atOslo, accessProgramme(p.key, "0301", "2024-03-01", "2024-05-31")...)
		w.must(t, atOslo, accessEv(p.key, "0301", accessMove("4601", accessMoveDay)))
		p.bergenEvent = offer(p, atBergen, "4601", "2024-07-01")
		return p
	case relMovedIn:
		p := newPerson(atBergen, "4601", "4601")
		p.bergenEvent = offer(p, atBergen, "4601", "2024-03-01")
		w.must(t, atBergen, accessProgramme(p.key, "4601", "2024-03-01", "2024-05-31")...)
		w.must(t, atBergen, accessEv(p.key, "4601", accessMove("0301", accessMoveDay)))
		p.osloEvent = offer(p, atOslo, "0301", "2024-07-01")
		// Registered for Bergen, dated after the person came to Oslo (written before the
		// move was known; today's rules refuse it from Bergen, so the system principal
		// writes it).
		p.lateForeign = offer(p, atSystem, "4601", "2024-07-15")
		return p
	case relOther:
		p := newPerson(atBergen, "4601", "4601")
		p.bergenEvent = offer(p, atBergen, "4601", "2024-03-01")
		w.must(t, atBergen, accessProgramme(p.key, "4601", "2024-03-01", "2024-05-31")...)
		return p
	}
	fnr := w.fnr()
	return &accessPerson{fnr: fnr, key: w.keys.Key(fnr)}
}

func (w *accessWorld) caughtUp(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	last, err := w.store.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := w.proj.CatchUp(ctx); err != nil || c < last {
		t.Fatalf("read models at %d, %v; stream at %d", c, err, last)
	}
}

// outcome is what a cell of the table expects.
type outcome struct {
	na   bool         // the cell does not exist (the person has no such event)
	code connect.Code // 0: the call succeeds
	// For history reads: which events the answer holds. all: every event; own: Oslo's own
	// period (its events and the registration, not Bergen's after the move).
	history string
	// For lists, the CSV and the report: whether the person is in the answer.
	listed bool
}

var (
	ok         = outcome{}
	full       = outcome{history: "all"}
	ownPeriod  = outcome{history: "own"}
	listed     = outcome{listed: true}
	notListed  = outcome{listed: false}
	notFound   = outcome{code: connect.CodeNotFound}
	denied     = outcome{code: connect.CodePermissionDenied}
	unauth     = outcome{code: connect.CodeUnauthenticated}
	refused    = outcome{code: connect.CodeFailedPrecondition}
	notApplies = outcome{na: true}
)

// answer is what a call returned.
type answer struct {
	na     bool           // the population has no such event for the person: the cell does not exist
	events []*nirv1.Event // a history read
	listed bool           // the person is in a list, export or report
}

// What an endpoint concerns.
const (
	onOnePerson = iota // one person (reads by key, appends)
	onList             // a kommune's list, export or report, checked for the person
	onKommune          // a kommune's data, whoever the person
)

// endpoint is one thing a caller does. byRelation is Oslo's outcome per relation; byRole the
// outcome of the other roles, which want() adapts to the relation.
type endpoint struct {
	name       string
	kind       int
	write      bool // mutates: run on a fresh population per cell
	register   bool // registers the person (a person nobody has can be registered)
	call       func(t *testing.T, w *accessWorld, token string, p *accessPerson) (answer, error)
	byRelation map[string]outcome
	byRole     map[string]outcome
}

// want is the outcome of role on a person of relation rel. Roles other than the kommune reach
// every person alike, so what differs by relation is whether the person (or the event the
// cell needs) exists, and whether a list of Oslo's shows the person.
func (ep endpoint) want(role, rel string) outcome {
	if role == atOslo {
		return ep.byRelation[rel]
	}
	if ep.byRelation[rel] == notApplies {
		return notApplies
	}
	w := ep.byRole[role]
	switch {
	case ep.kind == onKommune:
		return w
	case w.code != 0 && w.code != connect.CodeFailedPrecondition:
		return w // the role is refused, whoever the person
	case ep.kind == onList:
		return ep.byRelation[rel] // Oslo's list holds the persons who live in Oslo, for whoever reads it
	case rel == relUnknown && ep.register:
		return ok
	case rel == relUnknown:
		return notFound
	}
	return w
}

func TestAccess(t *testing.T) {
	w := startAccess(t)
	ctx := context.Background()

	appendVia := func(transport string) func(t *testing.T, w *accessWorld, token string, regs ...*nirv1.Registration) (answer, error) {
		return func(t *testing.T, w *accessWorld, token string, regs ...*nirv1.Registration) (answer, error) {
			req := &nirv1.AppendRequest{Registrations: regs}
			if transport == "connect" {
				_, err := w.reg(token).Append(ctx, connect.NewRequest(req))
				return answer{}, err
			}
			data, err := proto.Marshal(req)
			if err != nil {
				t.Fatal(err)
			}
			r := natsRequest(t, &server{nc: w.nc}, token, "", data)
			if r.raw != nil {
				t.Fatal(r.raw)
			}
			if r.code != 0 {
				return answer{}, connect.NewError(r.code, fmt.Errorf("%s", r.msg))
			}
			return answer{}, nil
		}
	}
	// kommuneOf is the envelope kommune a role writes with.
	kommuneOf := func(token string) string {
		if token == atOslo {
			return "0301"
		}
		return "4601" // the system principal writes for any kommune; analysts and operators are refused whatever they send
	}

	var endpoints []endpoint
	for _, tr := range []string{"connect", "nats"} {
		send := appendVia(tr)
		writeRoles := map[string]outcome{atAnalyst: denied, atOperator: denied, atSystem: ok, atNone: unauth}
		endpoints = append(endpoints,
			endpoint{kind: onOnePerson, name: "Append/" + tr + "/dated-before-move", write: true,
				call: func(t *testing.T, w *accessWorld, tok string, p *accessPerson) (answer, error) {
					return send(t, w, tok, accessEv(p.key, kommuneOf(tok), accessOffer("2024-04-01")))
				},
				byRelation: map[string]outcome{relOwn: ok, relRegElse: notFound, relMovedAway: ok, relMovedIn: ok, relOther: notFound, relUnknown: notFound},
				byRole:     writeRoles},
			endpoint{kind: onOnePerson, name: "Append/" + tr + "/dated-after-move", write: true,
				call: func(t *testing.T, w *accessWorld, tok string, p *accessPerson) (answer, error) {
					return send(t, w, tok, accessEv(p.key, kommuneOf(tok), accessOffer("2024-08-01")))
				},
				byRelation: map[string]outcome{relOwn: ok, relRegElse: notFound, relMovedAway: denied, relMovedIn: ok, relOther: notFound, relUnknown: notFound},
				byRole:     writeRoles},
			endpoint{kind: onOnePerson, name: "Move/" + tr + "/to-third-kommune", write: true,
				call: func(t *testing.T, w *accessWorld, tok string, p *accessPerson) (answer, error) {
					return send(t, w, tok, accessEv(p.key, kommuneOf(tok), accessMove("5001", "2024-09-01")))
				},
				byRelation: map[string]outcome{relOwn: ok, relRegElse: notFound, relMovedAway: denied, relMovedIn: ok, relOther: notFound, relUnknown: notFound},
				byRole:     writeRoles},
			endpoint{kind: onOnePerson, name: "Move/" + tr + "/to-itself", write: true,
				call: func(t *testing.T, w *accessWorld, tok string, p *accessPerson) (answer, error) {
					return send(t, w, tok, accessEv(p.key, kommuneOf(tok), accessMove(kommuneOf(tok), "2024-09-01")))
				},
				byRelation: map[string]outcome{relOwn: denied, relRegElse: notFound, relMovedAway: denied, relMovedIn: denied, relOther: notFound, relUnknown: notFound},
				// The system principal moves anyone (the population register); to where the
				// person lives already is a no-op it may record.
				byRole: writeRoles},
			endpoint{kind: onOnePerson, register: true, name: "Register/" + tr + "/settled-in-itself", write: true,
				call: func(t *testing.T, w *accessWorld, tok string, p *accessPerson) (answer, error) {
					r := personReg(p.fnr, kommuneOf(tok), false)
					return send(t, w, tok, r)
				},
				// A second registration of a person Oslo has is the regelmotor's refusal; a
				// person it does not have is not found; a new person is registered.
				byRelation: map[string]outcome{relOwn: refused, relRegElse: notFound, relMovedAway: refused, relMovedIn: refused, relOther: notFound, relUnknown: ok},
				byRole:     map[string]outcome{atAnalyst: denied, atOperator: denied, atSystem: refused, atNone: unauth}},
			endpoint{kind: onOnePerson, register: true, name: "Register/" + tr + "/settled-elsewhere", write: true,
				call: func(t *testing.T, w *accessWorld, tok string, p *accessPerson) (answer, error) {
					r := personReg(p.fnr, kommuneOf(tok), false)
					r.Event.GetPersonRegistered().SettlementKommune = "5001"
					return send(t, w, tok, r)
				},
				byRelation: map[string]outcome{relOwn: denied, relRegElse: denied, relMovedAway: denied, relMovedIn: denied, relOther: denied, relUnknown: denied},
				byRole:     map[string]outcome{atAnalyst: denied, atOperator: denied, atSystem: refused, atNone: unauth}},
			endpoint{kind: onOnePerson, name: "Retract/" + tr + "/registration", write: true,
				call: func(t *testing.T, w *accessWorld, tok string, p *accessPerson) (answer, error) {
					if p.registration == "" {
						return answer{na: true}, nil
					}
					return send(t, w, tok, accessEv(p.key, kommuneOf(tok), accessRetract(p.registration)))
				},
				byRelation: map[string]outcome{relOwn: ok, relRegElse: notFound, relMovedAway: denied, relMovedIn: denied, relOther: notFound, relUnknown: notApplies},
				byRole:     map[string]outcome{atAnalyst: denied, atOperator: denied, atSystem: ok, atNone: unauth}},
			endpoint{kind: onOnePerson, name: "Retract/" + tr + "/oslo-event", write: true,
				call: func(t *testing.T, w *accessWorld, tok string, p *accessPerson) (answer, error) {
					if p.osloEvent == "" {
						return answer{na: true}, nil
					}
					return send(t, w, tok, accessEv(p.key, kommuneOf(tok), accessRetract(p.osloEvent)))
				},
				byRelation: map[string]outcome{relOwn: ok, relRegElse: notApplies, relMovedAway: ok, relMovedIn: ok, relOther: notApplies, relUnknown: notApplies},
				byRole:     map[string]outcome{atAnalyst: denied, atOperator: denied, atSystem: ok, atNone: unauth}},
			endpoint{kind: onOnePerson, name: "Retract/" + tr + "/bergen-event", write: true,
				call: func(t *testing.T, w *accessWorld, tok string, p *accessPerson) (answer, error) {
					if p.bergenEvent == "" {
						return answer{na: true}, nil
					}
					return send(t, w, tok, accessEv(p.key, kommuneOf(tok), accessRetract(p.bergenEvent)))
				},
				byRelation: map[string]outcome{relOwn: notApplies, relRegElse: notApplies, relMovedAway: denied, relMovedIn: denied, relOther: notFound, relUnknown: notApplies},
				byRole:     map[string]outcome{atAnalyst: denied, atOperator: denied, atSystem: ok, atNone: unauth}},
			endpoint{kind: onOnePerson, name: "Retract/" + tr + "/bergen-event-in-oslo-period", write: true,
				call: func(t *testing.T, w *accessWorld, tok string, p *accessPerson) (answer, error) {
					if p.lateForeign == "" {
						return answer{na: true}, nil
					}
					return send(t, w, tok, accessEv(p.key, kommuneOf(tok), accessRetract(p.lateForeign)))
				},
				byRelation: map[string]outcome{relOwn: notApplies, relRegElse: notApplies, relMovedAway: notApplies, relMovedIn: ok, relOther: notApplies, relUnknown: notApplies},
				byRole:     map[string]outcome{atAnalyst: denied, atOperator: denied, atSystem: ok, atNone: unauth}},
		)
	}

	endpoints = append(endpoints,
		endpoint{kind: onOnePerson, name: "History",
			call: func(t *testing.T, w *accessWorld, tok string, p *accessPerson) (answer, error) {
				res, err := w.reg(tok).History(ctx, connect.NewRequest(&nirv1.HistoryRequest{Person: &nirv1.PersonRef{PersonKey: p.key}}))
				if err != nil {
					return answer{}, err
				}
				var a answer
				for _, e := range res.Msg.GetEvents() {
					a.events = append(a.events, e.GetEvent())
				}
				return a, nil
			},
			byRelation: map[string]outcome{relOwn: full, relRegElse: notFound, relMovedAway: ownPeriod, relMovedIn: full, relOther: notFound, relUnknown: notFound},
			byRole:     map[string]outcome{atAnalyst: denied, atOperator: denied, atSystem: full, atNone: unauth}},
		endpoint{kind: onOnePerson, name: "AuditHistory",
			call: func(t *testing.T, w *accessWorld, tok string, p *accessPerson) (answer, error) {
				res, err := w.query(tok).AuditHistory(ctx, connect.NewRequest(&nirv1.AuditHistoryRequest{Person: &nirv1.PersonRef{PersonKey: p.key}}))
				if err != nil {
					return answer{}, err
				}
				var a answer
				for _, e := range res.Msg.GetEntries() {
					a.events = append(a.events, e.GetEvent())
				}
				return a, nil
			},
			byRelation: map[string]outcome{relOwn: full, relRegElse: notFound, relMovedAway: ownPeriod, relMovedIn: full, relOther: notFound, relUnknown: notFound},
			byRole:     map[string]outcome{atAnalyst: denied, atOperator: denied, atSystem: denied, atNone: unauth}},
		endpoint{kind: onOnePerson, name: "GetPerson",
			call: func(t *testing.T, w *accessWorld, tok string, p *accessPerson) (answer, error) {
				res, err := w.query(tok).GetPerson(ctx, connect.NewRequest(&nirv1.GetPersonRequest{Person: &nirv1.PersonRef{PersonKey: p.key}}))
				if err == nil && (res.Msg.GetPerson().GetPersonKey() != p.key || (tok == atAnalyst) != (res.Msg.GetPerson().GetNationalId() == "")) {
					t.Errorf("GetPerson as %s: key %s, national id shown %v", tok, res.Msg.GetPerson().GetPersonKey(), res.Msg.GetPerson().GetNationalId() != "")
				}
				return answer{}, err
			},
			byRelation: map[string]outcome{relOwn: ok, relRegElse: notFound, relMovedAway: notFound, relMovedIn: ok, relOther: notFound, relUnknown: notFound},
			byRole:     map[string]outcome{atAnalyst: ok, atOperator: denied, atSystem: denied, atNone: unauth}},
		endpoint{kind: onOnePerson, name: "PersonDeadlines",
			call: func(t *testing.T, w *accessWorld, tok string, p *accessPerson) (answer, error) {
				_, err := w.query(tok).PersonDeadlines(ctx, connect.NewRequest(&nirv1.PersonDeadlinesRequest{Person: &nirv1.PersonRef{PersonKey: p.key}}))
				return answer{}, err
			},
			byRelation: map[string]outcome{relOwn: ok, relRegElse: notFound, relMovedAway: notFound, relMovedIn: ok, relOther: notFound, relUnknown: notFound},
			byRole:     map[string]outcome{atAnalyst: ok, atOperator: denied, atSystem: denied, atNone: unauth}},
		endpoint{kind: onList, name: "ListPersons/0301",
			call: func(t *testing.T, w *accessWorld, tok string, p *accessPerson) (answer, error) {
				res, err := w.query(tok).ListPersons(ctx, connect.NewRequest(&nirv1.ListPersonsRequest{Kommune: "0301", PageSize: 1000}))
				if err != nil {
					return answer{}, err
				}
				for _, r := range res.Msg.GetRows() {
					if (tok == atAnalyst) != (r.GetNationalId() == "") {
						t.Errorf("ListPersons as %s: national id shown %v", tok, r.GetNationalId() != "")
					}
					if r.GetPersonKey() == p.key {
						return answer{listed: true}, nil
					}
				}
				return answer{}, nil
			},
			byRelation: map[string]outcome{relOwn: listed, relRegElse: notListed, relMovedAway: notListed, relMovedIn: listed, relOther: notListed, relUnknown: notListed},
			byRole:     map[string]outcome{atAnalyst: listed, atOperator: denied, atSystem: denied, atNone: unauth}},
		endpoint{kind: onKommune, name: "ListPersons/4601",
			call: func(t *testing.T, w *accessWorld, tok string, p *accessPerson) (answer, error) {
				_, err := w.query(tok).ListPersons(ctx, connect.NewRequest(&nirv1.ListPersonsRequest{Kommune: "4601"}))
				return answer{}, err
			},
			byRelation: map[string]outcome{relOwn: denied, relRegElse: denied, relMovedAway: denied, relMovedIn: denied, relOther: denied, relUnknown: denied},
			byRole:     map[string]outcome{atAnalyst: ok, atOperator: denied, atSystem: denied, atNone: unauth}},
		endpoint{kind: onList, name: "ExportCSV/0301",
			call: func(t *testing.T, w *accessWorld, tok string, p *accessPerson) (answer, error) {
				status, body := w.csv(t, tok, "0301")
				switch status {
				case http.StatusOK:
				case http.StatusUnauthorized:
					return answer{}, connect.NewError(connect.CodeUnauthenticated, fmt.Errorf("%s", body))
				case http.StatusForbidden:
					return answer{}, connect.NewError(connect.CodePermissionDenied, fmt.Errorf("%s", body))
				default:
					return answer{}, fmt.Errorf("status %d: %s", status, body)
				}
				if tok == atAnalyst && strings.Contains(body, p.fnr) {
					t.Errorf("the analyst's CSV holds a national id")
				}
				if strings.Contains(body, p.key) {
					return answer{listed: true}, nil
				}
				return answer{}, nil
			},
			byRelation: map[string]outcome{relOwn: listed, relRegElse: notListed, relMovedAway: notListed, relMovedIn: listed, relOther: notListed, relUnknown: notListed},
			byRole:     map[string]outcome{atAnalyst: listed, atOperator: denied, atSystem: denied, atNone: unauth}},
		endpoint{kind: onList, name: "TerminatedReport/0301",
			call: func(t *testing.T, w *accessWorld, tok string, p *accessPerson) (answer, error) {
				res, err := w.query(tok).TerminatedReport(ctx, connect.NewRequest(&nirv1.TerminatedReportRequest{Year: 2024, Kommune: "0301"}))
				if err != nil {
					return answer{}, err
				}
				for _, r := range res.Msg.GetRows() {
					if r.GetPersonKey() == p.key {
						return answer{listed: true}, nil
					}
				}
				return answer{}, nil
			},
			// A kommune's report holds its own programmes: the one of the person who moved
			// away (its own period) too, not the one the person who moved in had in Bergen.
			byRelation: map[string]outcome{relOwn: listed, relRegElse: notListed, relMovedAway: listed, relMovedIn: notListed, relOther: notListed, relUnknown: notListed},
			byRole:     map[string]outcome{atAnalyst: listed, atOperator: denied, atSystem: denied, atNone: unauth}},
		endpoint{kind: onKommune, name: "Statistics/kommune-4601",
			call: func(t *testing.T, w *accessWorld, tok string, p *accessPerson) (answer, error) {
				_, err := w.query(tok).Statistics(ctx, connect.NewRequest(&nirv1.StatisticsRequest{Year: 2024, Level: nirv1.StatisticsLevel_STATISTICS_LEVEL_KOMMUNE, Area: "4601"}))
				return answer{}, err
			},
			byRelation: map[string]outcome{relOwn: denied, relRegElse: denied, relMovedAway: denied, relMovedIn: denied, relOther: denied, relUnknown: denied},
			byRole:     map[string]outcome{atAnalyst: ok, atOperator: denied, atSystem: denied, atNone: unauth}},
	)

	shared := w.population(t)
	for _, ep := range endpoints {
		for _, role := range accessRoles {
			for _, rel := range accessRelations {
				want := ep.want(role, rel)
				if want == notApplies {
					continue
				}
				name := strings.TrimPrefix(role, "at-")
				if name == "" {
					name = "no-token"
				}
				t.Run(ep.name+"/"+name+"/"+rel, func(t *testing.T) {
					// A call that stores something gets a person of its own; the others
					// share one population (they must leave it as it was).
					p := shared[rel]
					if ep.write && want.code == 0 {
						p = w.person(t, rel)
					}
					before := w.lastSeq(t)
					got, err := ep.call(t, w, role, p)
					if got.na {
						t.Fatal("the population lacks the event this cell needs")
					}
					if code := codeOfErr(err); code != want.code {
						t.Fatalf("code %v (%v), want %v", code, err, want.code)
					}
					if err != nil {
						if strings.Contains(err.Error(), p.fnr) {
							t.Errorf("the error names the national id: %v", err)
						}
						if after := w.lastSeq(t); after != before {
							t.Errorf("a refused call changed the stream: %d → %d", before, after)
						}
						return
					}
					if ep.write {
						if after := w.lastSeq(t); after <= before {
							t.Errorf("an allowed append stored nothing: %d → %d", before, after)
						}
						return
					}
					checkAnswer(t, p, got, want)
				})
			}
		}
	}
}

// checkAnswer compares what a read returned with the outcome wanted.
func checkAnswer(t *testing.T, p *accessPerson, got answer, want outcome) {
	t.Helper()
	if want.history == "" {
		if got.listed != want.listed {
			t.Errorf("listed %v, want %v", got.listed, want.listed)
		}
		return
	}
	has := func(id string) bool {
		return id != "" && slices.ContainsFunc(got.events, func(e *nirv1.Event) bool { return e.GetId() == id })
	}
	if !has(p.registration) {
		t.Error("the history lacks the person's registration")
	}
	if p.osloEvent != "" && !has(p.osloEvent) {
		t.Error("the history lacks Oslo's event")
	}
	switch want.history {
	case "all":
		if p.bergenEvent != "" && !has(p.bergenEvent) {
			t.Error("the history lacks Bergen's event")
		}
	case "own":
		// The registration, Oslo's own events and the move away from Oslo; nothing Bergen
		// registered after the move.
		for _, e := range got.events {
			if e.GetKommune() != "0301" && e.GetPersonRegistered() == nil {
				t.Errorf("a former kommune reads an event of kommune %s (%s)", e.GetKommune(), e.GetId())
			}
		}
		if has(p.bergenEvent) {
			t.Error("a former kommune reads what Bergen registered after the move")
		}
	}
}

func (w *accessWorld) lastSeq(t *testing.T) uint64 {
	t.Helper()
	seq, err := w.store.LastSeq(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

func (w *accessWorld) csv(t *testing.T, token, kommune string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, w.url+api.ExportPersonsPath+"?"+url.Values{"kommune": {kommune}}.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		auth.SetBearer(req.Header, token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

func codeOfErr(err error) connect.Code {
	if err == nil {
		return 0
	}
	return connect.CodeOf(err)
}
