package adversarial

// Kommune boundaries (issue 10, finding 4; README "Kommune boundaries"): a hostile kommune's
// case system, holding a valid token for its own kommune, tries to reach another kommune's
// persons through the registration API, over HTTP and over NATS, and through the query API
// and the CSV export. nird runs as a process in development mode, where the bearer token
// "kommune:0301" is Oslo's case system.

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/proto"

	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/natsingress"
	"github.com/introreg/nir/internal/natstest"
	"github.com/introreg/nir/internal/nirdtest"
	"github.com/introreg/nir/internal/personkey"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
	"github.com/introreg/nir/rules"
)

// Development-mode tokens: the token names the principal.
const (
	kbOslo      = "kommune:0301"
	kbBergen    = "kommune:4601"
	kbTrondheim = "kommune:5001"
	kbOperator  = "operator"
	kbSystem    = "system"
)

// kbNird is one nird process and the ways a case system reaches it.
type kbNird struct {
	n  *nirdtest.Nird
	nc *nats.Conn
	// user is the case system's NATS user whose requests nc sends: this nird alone serves
	// its request subject.
	user string
	// afterWindow, when set, is how long an attack waits after its setup, so that the ids
	// it reuses have left JetStream's dedupe window (events_test.go).
	afterWindow time.Duration
}

// waitWindow lets the dedupe window pass, when the test asks for it.
func (w *kbNird) waitWindow() {
	time.Sleep(w.afterWindow)
}

// kbStart runs nird in development mode with extra args and connects to its NATS server
// the way a case system does.
func kbStart(t *testing.T, args ...string) *kbNird {
	t.Helper()
	n := nirdtest.Start(t, append([]string{"--data", filepath.Join(t.TempDir(), "data"), "--nats-case-systems", "fagsystem"}, args...)...)
	return &kbNird{n: n, nc: n.ConnectNATS(t, "fagsystem"), user: "fagsystem"}
}

func (w *kbNird) reg(token string) nirv1connect.RegistrationServiceClient {
	return nirv1connect.NewRegistrationServiceClient(http.DefaultClient, w.n.URL(), connect.WithInterceptors(auth.BearerInterceptor(token)))
}

func (w *kbNird) query(token string) nirv1connect.QueryServiceClient {
	return nirv1connect.NewQueryServiceClient(http.DefaultClient, w.n.URL(), connect.WithInterceptors(auth.BearerInterceptor(token)))
}

// kbResult is what a caller learns from one append, over either transport.
type kbResult struct {
	code      connect.Code // 0: stored
	msg       string
	positions []*nirv1.Position
}

// kbTransports are the two ways a case system appends.
var kbTransports = []string{"connect", "nats"}

// appendVia sends req with token over the named transport.
func (w *kbNird) appendVia(t *testing.T, transport, token string, req *nirv1.AppendRequest) kbResult {
	t.Helper()
	if transport == "connect" {
		res, err := w.reg(token).Append(context.Background(), connect.NewRequest(req))
		if err != nil {
			var ce *connect.Error
			if !errors.As(err, &ce) {
				t.Fatalf("append over HTTP: %v", err)
			}
			return kbResult{code: ce.Code(), msg: ce.Message()}
		}
		return kbResult{positions: res.Msg.GetPositions()}
	}
	data, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg(natsingress.RequestSubject(w.user))
	msg.Data = data
	msg.Header.Set("Authorization", "Bearer "+token)
	reply, err := w.nc.RequestMsg(msg, 30*time.Second)
	if err != nil {
		t.Fatalf("append over NATS: %v", err)
	}
	if code := reply.Header.Get(micro.ErrorCodeHeader); code != "" {
		var c connect.Code
		if err := c.UnmarshalText([]byte(code)); err != nil {
			t.Fatalf("NATS error code %q: %v", code, err)
		}
		return kbResult{code: c, msg: reply.Header.Get(micro.ErrorHeader)}
	}
	res := &nirv1.AppendResponse{}
	if err := proto.Unmarshal(reply.Data, res); err != nil {
		t.Fatalf("NATS reply: %v", err)
	}
	return kbResult{positions: res.GetPositions()}
}

// mustAppend appends over HTTP and fails the test unless it is stored.
func (w *kbNird) mustAppend(t *testing.T, token string, regs ...*nirv1.Registration) []*nirv1.Position {
	t.Helper()
	res, err := w.reg(token).Append(context.Background(), connect.NewRequest(&nirv1.AppendRequest{Registrations: regs}))
	if err != nil {
		t.Fatalf("append as %s: %v", token, err)
	}
	return res.Msg.GetPositions()
}

// history returns the events token gets from History, or the error code.
func (w *kbNird) history(token, personKey string) ([]*nirv1.Event, connect.Code) {
	res, err := w.reg(token).History(context.Background(), connect.NewRequest(&nirv1.HistoryRequest{Person: &nirv1.PersonRef{PersonKey: personKey}}))
	if err != nil {
		return nil, connect.CodeOf(err)
	}
	var out []*nirv1.Event
	for _, e := range res.Msg.GetEvents() {
		out = append(out, e.GetEvent())
	}
	return out, 0
}

// lastSeq is the stream's last sequence, as the operator sees it.
func (w *kbNird) lastSeq(t *testing.T) uint64 {
	t.Helper()
	st := w.status(t)
	return st.GetLastSequence()
}

func (w *kbNird) status(t *testing.T) *nirv1.ProjectionStatusResponse {
	t.Helper()
	c := nirv1connect.NewAdminServiceClient(http.DefaultClient, w.n.URL(), connect.WithInterceptors(auth.BearerInterceptor(kbOperator)))
	res, err := c.ProjectionStatus(context.Background(), connect.NewRequest(&nirv1.ProjectionStatusRequest{}))
	if err != nil {
		t.Fatalf("projection status: %v", err)
	}
	return res.Msg
}

// caughtUp waits until the read models hold every event of the stream.
func (w *kbNird) caughtUp(t *testing.T) {
	t.Helper()
	const patience = 60 * time.Second
	deadline := time.Now().Add(patience)
	for {
		st := w.status(t)
		if st.GetLag() == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("read models still %d behind after %v", st.GetLag(), patience)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// csv fetches the person list export of kommune as token; it returns the status and body.
func (w *kbNird) csv(t *testing.T, token, kommune string) (int, string) {
	t.Helper()
	return w.http(t, http.MethodGet, "/export/persons.csv?"+url.Values{"kommune": {kommune}}.Encode(), token, "")
}

// http sends a plain HTTP request to nird's API address, as token (none if empty), with a
// JSON body if one is given, and returns the status and the body.
func (w *kbNird) http(t *testing.T, method, path, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, w.n.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		auth.SetBearer(req.Header, token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func kbDate(y, m, d int) *nirv1.Date {
	return &nirv1.Date{Year: int32(y), Month: int32(m), Day: int32(d)}
}

var kbPersonSeq atomic.Int64

// kbPerson is a synthetic person: a valid fødselsnummer no other test uses.
func kbPerson() string {
	return rules.SyntheticFodselsnummer(rules.MustDate(1991, 3, 14), int(kbPersonSeq.Add(1)))
}

// kbRegister is kommune's registration of a person settled in settledIn on 2024-02-01.
func kbRegister(fnr, kommune, settledIn string) *nirv1.Registration {
	return &nirv1.Registration{Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: kommune,
		Payload: &nirv1.Event_PersonRegistered{PersonRegistered: &nirv1.PersonRegistered{
			Fodselsnummer: fnr, BirthDate: kbDate(1991, 3, 14), Sex: nirv1.Sex_SEX_MALE,
			PermitDate: kbDate(2024, 1, 10), PermitBasis: nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, ArrivalDate: kbDate(2023, 12, 1),
			SettlementDate: kbDate(2024, 2, 1), SettlementKommune: settledIn, SettledByAgreement: true,
		}}}}
}

// kbOn is a registration of ev for kommune on the person with key.
func kbOn(key, kommune string, ev *nirv1.Event) *nirv1.Registration {
	ev.Id = ulid.Make().String()
	ev.Kommune = kommune
	return &nirv1.Registration{Person: &nirv1.PersonRef{PersonKey: key}, Event: ev}
}

func kbMove(to string, date *nirv1.Date) *nirv1.Event {
	return &nirv1.Event{Payload: &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: to, Date: date}}}
}

func kbOffer(date *nirv1.Date) *nirv1.Event {
	return &nirv1.Event{Payload: &nirv1.Event_OfferRegistered{OfferRegistered: &nirv1.OfferRegistered{Programme: nirv1.Programme_PROGRAMME_INTRO, Date: date}}}
}

func kbRetract(id string) *nirv1.Event {
	return &nirv1.Event{Payload: &nirv1.Event_EventRetracted{EventRetracted: &nirv1.EventRetracted{EventId: id, Reason: "feilregistrert"}}}
}

// kbOsloPerson registers a person settled in Oslo with an offer, and returns the person key,
// the registration's id and the offer's id.
func (w *kbNird) osloPerson(t *testing.T) (key, registered, offer string) {
	t.Helper()
	fnr := kbPerson()
	reg := kbRegister(fnr, "0301", "0301")
	pos := w.mustAppend(t, kbOslo, reg)
	key = pos[0].GetPersonKey()
	off := kbOn(key, "0301", kbOffer(kbDate(2024, 3, 1)))
	w.mustAppend(t, kbOslo, off)
	return key, reg.Event.Id, off.Event.Id
}

// refused fails the test unless res is a refusal that stored nothing: the code is one of
// want and the stream did not grow.
func (w *kbNird) refused(t *testing.T, res kbResult, before uint64, want ...connect.Code) {
	t.Helper()
	ok := false
	for _, c := range want {
		ok = ok || res.code == c
	}
	if !ok {
		t.Errorf("the attack was answered %v %q (positions %v); want one of %v", res.code, res.msg, res.positions, want)
	}
	if after := w.lastSeq(t); after != before {
		t.Errorf("the attack changed the stream: last sequence %d → %d", before, after)
	}
}

// ownPeriodOnly fails the test unless Oslo, which the person left for Bergen, reads through
// w its own period's events own in the person's History, and neither there nor in the
// AuditHistory the event later, which Bergen recorded after the move.
func (w *kbNird) ownPeriodOnly(t *testing.T, key, later string, own ...string) {
	t.Helper()
	events, code := w.history(kbOslo, key)
	if code != 0 {
		t.Fatalf("Oslo's history of its former person: %v", code)
	}
	if holdsEvent(events, later) {
		t.Error("History gives Oslo the event Bergen registered after the move")
	}
	for _, id := range own {
		if !holdsEvent(events, id) {
			t.Errorf("History no longer gives Oslo its own period's event %s", id)
		}
	}
	w.caughtUp(t)
	res, err := w.query(kbOslo).AuditHistory(context.Background(), connect.NewRequest(&nirv1.AuditHistoryRequest{Person: &nirv1.PersonRef{PersonKey: key}}))
	if err != nil {
		t.Fatalf("Oslo's audit history of its former person: %v", err)
	}
	for _, e := range res.Msg.GetEntries() {
		if e.GetEvent().GetId() == later {
			t.Error("AuditHistory gives Oslo the event Bergen registered after the move")
		}
	}
}

// holdsEvent reports whether events hold the event with id.
func holdsEvent(events []*nirv1.Event, id string) bool {
	for _, e := range events {
		if e.GetId() == id {
			return true
		}
	}
	return false
}

func TestKommuneAttacks(t *testing.T) {
	w := kbStart(t)
	ctx := context.Background()

	// Bergen knows only the person key of an Oslo person (a key is no secret: it is in
	// every list an analyst sees). It records that the person moved to Bergen, to become
	// the kommune that has the person; then it reads the national id and retracts Oslo's
	// events. Every step must fail, and Oslo's person must stay out of Bergen's reach.
	for _, tr := range kbTransports {
		t.Run("TakeoverByPersonMoved/"+tr, func(t *testing.T) {
			key, registered, offer := w.osloPerson(t)
			before := w.lastSeq(t)
			res := w.appendVia(t, tr, kbBergen, &nirv1.AppendRequest{Registrations: []*nirv1.Registration{kbOn(key, "4601", kbMove("4601", kbDate(2024, 6, 1)))}})
			w.refused(t, res, before, connect.CodeNotFound)
			w.caughtUp(t)

			t.Run("ThenHistory", func(t *testing.T) {
				if events, code := w.history(kbBergen, key); code != connect.CodeNotFound {
					t.Errorf("Bergen reads the Oslo person's history: code %v, %d events", code, len(events))
				}
			})
			t.Run("ThenAuditHistory", func(t *testing.T) {
				_, err := w.query(kbBergen).AuditHistory(ctx, connect.NewRequest(&nirv1.AuditHistoryRequest{Person: &nirv1.PersonRef{PersonKey: key}}))
				if connect.CodeOf(err) != connect.CodeNotFound {
					t.Errorf("Bergen reads the Oslo person's audit history: %v", err)
				}
			})
			t.Run("ThenGetPerson", func(t *testing.T) {
				_, err := w.query(kbBergen).GetPerson(ctx, connect.NewRequest(&nirv1.GetPersonRequest{Person: &nirv1.PersonRef{PersonKey: key}}))
				if connect.CodeOf(err) != connect.CodeNotFound {
					t.Errorf("Bergen reads the Oslo person's status: %v", err)
				}
			})
			t.Run("ThenCSV", func(t *testing.T) {
				status, body := w.csv(t, kbBergen, "4601")
				if status != http.StatusOK {
					t.Fatalf("Bergen's own CSV: %d %s", status, body)
				}
				if strings.Contains(body, key) {
					t.Error("the Oslo person is in Bergen's CSV export")
				}
			})
			t.Run("ThenRetractRegistration", func(t *testing.T) {
				before := w.lastSeq(t)
				res := w.appendVia(t, tr, kbBergen, &nirv1.AppendRequest{Registrations: []*nirv1.Registration{kbOn(key, "4601", kbRetract(registered))}})
				w.refused(t, res, before, connect.CodeNotFound)
			})
			t.Run("ThenRetractOffer", func(t *testing.T) {
				before := w.lastSeq(t)
				res := w.appendVia(t, tr, kbBergen, &nirv1.AppendRequest{Registrations: []*nirv1.Registration{kbOn(key, "4601", kbRetract(offer))}})
				w.refused(t, res, before, connect.CodeNotFound)
			})
			events, code := w.history(kbOslo, key)
			if code != 0 || len(events) != 2 {
				t.Errorf("Oslo's person after the attack: code %v, %d events, want its 2", code, len(events))
			}
		})
	}

	// Bergen registers a person with Oslo as the settlement kommune: the person would land
	// in Oslo's list, put there by another kommune.
	for _, tr := range kbTransports {
		t.Run("RegisterPersonIntoAnotherKommune/"+tr, func(t *testing.T) {
			before := w.lastSeq(t)
			reg := kbRegister(kbPerson(), "4601", "0301")
			res := w.appendVia(t, tr, kbBergen, &nirv1.AppendRequest{Registrations: []*nirv1.Registration{reg}})
			w.refused(t, res, before, connect.CodePermissionDenied)
			if !strings.Contains(res.msg, "settlement_kommune") {
				t.Errorf("the refusal %q does not name the field settlement_kommune", res.msg)
			}
		})
	}

	// A legitimate move: Oslo, where the person lives, records the move to Bergen on
	// 2024-06-01. Bergen now has the person; Oslo keeps its own period.
	moved := func(t *testing.T) (key, registered, offer string) {
		key, registered, offer = w.osloPerson(t)
		w.mustAppend(t, kbOslo, kbOn(key, "0301", kbMove("4601", kbDate(2024, 6, 1))))
		return key, registered, offer
	}

	// The receiving kommune rewrites the sending kommune's period: retracts its registration
	// (the national id) and its offer.
	for _, tr := range kbTransports {
		t.Run("NewKommuneRetractsOldKommunesEvents/"+tr, func(t *testing.T) {
			key, registered, offer := moved(t)
			for _, target := range []struct{ name, id string }{{"PersonRegistered", registered}, {"Offer", offer}} {
				before := w.lastSeq(t)
				res := w.appendVia(t, tr, kbBergen, &nirv1.AppendRequest{Registrations: []*nirv1.Registration{kbOn(key, "4601", kbRetract(target.id))}})
				if res.code != connect.CodePermissionDenied {
					t.Errorf("Bergen retracts Oslo's %s: %v %q, want PermissionDenied", target.name, res.code, res.msg)
				}
				if after := w.lastSeq(t); after != before {
					t.Errorf("Bergen's retraction of Oslo's %s was stored", target.name)
				}
			}
		})
	}

	// The sending kommune, after the move, moves the person back to itself: only the
	// kommune that has the person (or the population register) records a move.
	for _, tr := range kbTransports {
		t.Run("FormerKommuneTakesPersonBack/"+tr, func(t *testing.T) {
			key, _, _ := moved(t)
			before := w.lastSeq(t)
			res := w.appendVia(t, tr, kbOslo, &nirv1.AppendRequest{Registrations: []*nirv1.Registration{kbOn(key, "0301", kbMove("0301", kbDate(2024, 9, 1)))}})
			w.refused(t, res, before, connect.CodePermissionDenied)
		})
	}

	// A third kommune, given the key of a person who moved, inserts a move to itself: the
	// receiving kommune alone never records a move.
	for _, tr := range kbTransports {
		t.Run("ThirdKommuneMovesPersonToItself/"+tr, func(t *testing.T) {
			key, _, _ := moved(t)
			before := w.lastSeq(t)
			res := w.appendVia(t, tr, kbTrondheim, &nirv1.AppendRequest{Registrations: []*nirv1.Registration{kbOn(key, "5001", kbMove("5001", kbDate(2024, 9, 1)))}})
			w.refused(t, res, before, connect.CodeNotFound)
			if events, code := w.history(kbTrondheim, key); code != connect.CodeNotFound {
				t.Errorf("Trondheim reads the person: %v, %d events", code, len(events))
			}
		})
	}

	// The sending kommune reads what the receiving kommune records after the move: Oslo
	// keeps its own period, not Bergen's.
	t.Run("FormerKommuneReadsNewKommunesEvents", func(t *testing.T) {
		key, registered, offer := moved(t)
		bergenOffer := kbOn(key, "4601", kbOffer(kbDate(2024, 7, 1)))
		w.mustAppend(t, kbBergen, bergenOffer)
		w.ownPeriodOnly(t, key, bergenOffer.Event.Id, registered, offer)
		// Bergen, which has the person now, sees everything.
		events, code := w.history(kbBergen, key)
		if code != 0 || !holdsEvent(events, registered) || !holdsEvent(events, bergenOffer.Event.Id) {
			t.Errorf("Bergen's history of the person it has: code %v, %d events", code, len(events))
		}
	})

	// The attacks above must not have cost the register anything: every kommune still
	// reaches its own persons (and the system principal everybody).
	// Bergen names a national id and learns from the answer whether another kommune has
	// the person, without storing anything: the answer for Oslo's person must equal the
	// answer for a person nobody registered. Two such oracles were found (an expected
	// sequence was judged before the person's reach; a registration the rules refuse was
	// refused for a new person and not found for Oslo's).
	t.Run("ExistenceOracle", func(t *testing.T) {
		oslo := kbPerson()
		w.mustAppend(t, kbOslo, kbRegister(oslo, "0301", "0301"))
		probes := map[string]func(fnr string) *nirv1.Registration{
			"OfferWithExpectedSequence": func(fnr string) *nirv1.Registration {
				r := kbOn("", "4601", kbOffer(kbDate(2024, 3, 2)))
				r.Person = &nirv1.PersonRef{NationalId: fnr}
				r.ExpectedLastSequence = proto.Uint64(7)
				return r
			},
			"RegistrationWithExpectedSequence": func(fnr string) *nirv1.Registration {
				r := kbRegister(fnr, "4601", "4601")
				r.ExpectedLastSequence = proto.Uint64(7)
				return r
			},
			"RegistrationRefusedByARule": func(fnr string) *nirv1.Registration {
				r := kbRegister(fnr, "4601", "4601")
				r.Event.GetPersonRegistered().SettlementDate = kbDate(2030, 1, 1) // NIR-R030: after today
				return r
			},
		}
		for name, probe := range probes {
			for _, tr := range kbTransports {
				t.Run(name+"/"+tr, func(t *testing.T) {
					before := w.lastSeq(t)
					other := w.appendVia(t, tr, kbBergen, evRegs(probe(oslo)))
					none := w.appendVia(t, tr, kbBergen, evRegs(probe(kbPerson())))
					if other.code != none.code || other.msg != none.msg {
						t.Errorf("Oslo's person: %v %q; a person nobody registered: %v %q; want the same answer", other.code, other.msg, none.code, none.msg)
					}
					if other.code == 0 {
						t.Errorf("the probe was stored")
					}
					if after := w.lastSeq(t); after != before {
						t.Errorf("stream went from %d to %d: something was stored", before, after)
					}
				})
			}
		}
	})

	t.Run("OwnPersonsStillReachable", func(t *testing.T) {
		key, _, _ := w.osloPerson(t)
		if _, code := w.history(kbOslo, key); code != 0 {
			t.Errorf("Oslo's own person: %v", code)
		}
		if _, code := w.history(kbSystem, key); code != 0 {
			t.Errorf("system: %v", code)
		}
		if res := w.appendVia(t, "nats", kbOslo, &nirv1.AppendRequest{Registrations: []*nirv1.Registration{kbOn(key, "0301", kbOffer(kbDate(2024, 4, 1)))}}); res.code != 0 {
			t.Errorf("Oslo's own append over NATS: %v %q", res.code, res.msg)
		}
	})
}

// kbShared runs two nird in development mode on one NATS server of the test's, sharing its
// stream and the register's keys (README "Several nird, one register"), each with a data
// directory, read models and history cache of its own. Case systems reach them over HTTP
// and over NATS: each nird alone serves a case system of its own (fagsystem-a,
// fagsystem-b; appendVia "nats" goes to that nird), and both serve kbSharedCaseSystem, each
// request to one of them. It returns the server's URL too.
func kbShared(t *testing.T) (a, b *kbNird, url string) {
	t.Helper()
	url = natstest.RunServer(t, natstest.Options{}).ClientURL()
	data := filepath.Join(t.TempDir(), "data")
	a = kbOnServer(t, url, "fagsystem-a", "--data", data)
	b = kbOnServer(t, url, "fagsystem-b", "--data", filepath.Join(t.TempDir(), "data"),
		"--person-key-file", filepath.Join(data, personkey.FileName), "--master-key-file", filepath.Join(data, "master.key"),
		"--checkpoint-key", filepath.Join(data, "checkpoint.key"))
	return a, b, url
}

// kbSharedCaseSystem is the case system both nird of kbShared serve.
const kbSharedCaseSystem = "fagsystem"

// kbOnServer runs nird with args on the NATS server at url, serving case systems user and
// kbSharedCaseSystem, and connects as user (a development server takes anyone).
func kbOnServer(t *testing.T, url, user string, args ...string) *kbNird {
	t.Helper()
	n := nirdtest.Start(t, append(args, "--nats-url", url, "--nats-case-systems", kbSharedCaseSystem+","+user)...)
	return &kbNird{n: n, nc: kbConnect(t, url, user), user: user}
}

// kbConnect connects to the NATS server at url as case system user: its replies come to
// its own inbox.
func kbConnect(t *testing.T, url, user string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.CustomInboxPrefix(natsingress.Inbox(user)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// TestKommuneAttacks_StaleCache: Oslo, which a person has left for Bergen, writes through a
// nird whose history cache still has the person in Oslo. Two nird, A and B, share the
// stream; each caches the histories it reads and appends itself, and learns of the other's
// appends only by reading the stream again. Oslo registers the person through A, which
// caches it, then records the move to Bergen through B, where Bergen registers an offer.
// Through A, Oslo then does what only the kommune the person lives in may (README "Kommune
// boundaries"): moves the person on, registers for a date after the move, retracts the
// person's registration. A's first attempt, judged on its stale cache, passes and loses the
// race on the person's subject; the retry, on the history read from the stream, must be
// judged again, and answered as B answers: PermissionDenied naming the field (Oslo keeps its
// own period, so the person is not hidden from it as from a stranger). Found by mutation
// testing (2026-12-07): with the kommune check made on the first, cached attempt only, all
// three were stored through A (the retraction took the person from Bergen, whose History
// then answered NotFound), which only TestService_KommuneCheckedOnEveryAttempt in
// internal/ingest caught. Each attack goes over HTTP and over the NATS ingress, to the
// nird of its case system (only HTTP did before 2026-12-07).
func TestKommuneAttacks_StaleCache(t *testing.T) {
	a, b, url := kbShared(t)
	// moved is a person Oslo registered through A and Bergen has now: A's cache still has
	// the person in Oslo. It returns the person key, the ids of Oslo's registration and
	// offer, and the id of Bergen's offer.
	moved := func(t *testing.T) (key, registered, offer, bergens string) {
		t.Helper()
		key, registered, offer = a.osloPerson(t)
		b.mustAppend(t, kbOslo, kbOn(key, "0301", kbMove("4601", kbDate(2024, 6, 1))))
		bergenOffer := kbOn(key, "4601", kbOffer(kbDate(2024, 7, 1)))
		b.mustAppend(t, kbBergen, bergenOffer)
		return key, registered, offer, bergenOffer.Event.Id
	}
	for _, attack := range []struct {
		name string
		ev   func(registered string) *nirv1.Event
	}{
		{"MovesPersonOn", func(string) *nirv1.Event { return kbMove("5001", kbDate(2024, 8, 1)) }},
		{"RegistersAfterMove", func(string) *nirv1.Event { return kbOffer(kbDate(2024, 8, 1)) }},
		{"RetractsRegistration", kbRetract},
	} {
		for _, tr := range kbTransports {
			t.Run(attack.name+"/"+tr, func(t *testing.T) { kbStaleAttack(t, a, b, tr, attack.name, attack.ev, moved) })
		}
	}

	// Oslo reads through A, whose cache still has the person in Oslo and whose read models
	// are its own, only its own period: not Bergen's offer, nor the person's status now.
	t.Run("ReadsLaterHistory", func(t *testing.T) {
		key, registered, offer, bergens := moved(t)
		a.ownPeriodOnly(t, key, bergens, registered, offer)
		_, err := a.query(kbOslo).GetPerson(context.Background(), connect.NewRequest(&nirv1.GetPersonRequest{Person: &nirv1.PersonRef{PersonKey: key}}))
		if connect.CodeOf(err) != connect.CodeNotFound {
			t.Errorf("Oslo reads the status of the person it has left through A: %v, want NotFound", err)
		}
	})

	// A case system both nird serve: each of its requests is served by one of them, once,
	// and answered once.
	t.Run("SharedCaseSystemServedOnce", func(t *testing.T) {
		nc := kbConnect(t, url, kbSharedCaseSystem)
		replies, err := nc.SubscribeSync(natsingress.Inbox(kbSharedCaseSystem) + ".once")
		if err != nil {
			t.Fatal(err)
		}
		before := a.lastSeq(t)
		const count = 20
		for range count {
			m := nats.NewMsg(natsingress.RequestSubject(kbSharedCaseSystem))
			if m.Data, err = proto.Marshal(&nirv1.AppendRequest{Registrations: []*nirv1.Registration{kbRegister(kbPerson(), "0301", "0301")}}); err != nil {
				t.Fatal(err)
			}
			m.Header.Set("Authorization", "Bearer "+kbOslo)
			m.Reply = replies.Subject
			if err := nc.PublishMsg(m); err != nil {
				t.Fatal(err)
			}
		}
		for i := range count {
			m, err := replies.NextMsg(30 * time.Second)
			if err != nil {
				t.Fatalf("answer %d of %d: %v", i+1, count, err)
			}
			if code := m.Header.Get(micro.ErrorCodeHeader); code != "" {
				t.Fatalf("answer %d: %s %s", i+1, code, m.Header.Get(micro.ErrorHeader))
			}
		}
		if m, err := replies.NextMsg(time.Second); err == nil {
			t.Errorf("a request answered twice: %d more bytes", len(m.Data))
		}
		if after := a.lastSeq(t); after != before+count {
			t.Errorf("the stream went from %d to %d: want the %d registrations, each once", before, after, count)
		}
	})
}

// kbStaleAttack is one attack of TestKommuneAttacks_StaleCache over transport tr: Oslo
// sends ev (given the id of the person's registration) for a person moved (see there)
// through B, whose cache is current, and through A, whose cache is stale; both must
// refuse it alike and store nothing.
func kbStaleAttack(t *testing.T, a, b *kbNird, tr, name string, ev func(string) *nirv1.Event, moved func(*testing.T) (key, registered, offer, bergens string)) {
	t.Helper()
	key, registered, _, _ := moved(t)
	reg := kbOn(key, "0301", ev(registered))
	req := &nirv1.AppendRequest{Registrations: []*nirv1.Registration{reg}}
	before := b.lastSeq(t)
	// B's cache is current: its answer is the one A must give.
	want := b.appendVia(t, tr, kbOslo, req)
	b.refused(t, want, before, connect.CodePermissionDenied)
	conflicts := metric(t, a.n, "nir_store_conflicts_total")
	got := a.appendVia(t, tr, kbOslo, req)
	a.refused(t, got, before, connect.CodePermissionDenied)
	// What this attack is about: A's first attempt, on its stale cache, reached the
	// stream and lost the race; the answer is the second attempt's.
	if after := metric(t, a.n, "nir_store_conflicts_total"); after <= conflicts {
		t.Errorf("nir_store_conflicts_total on A went from %v to %v: the first attempt did not reach the stream, so the attack did not test the retry", conflicts, after)
	}
	if got.code != want.code || got.msg != want.msg {
		t.Errorf("through the nird with the stale cache: %v %q; through the other: %v %q; want the same answer", got.code, got.msg, want.code, want.msg)
	}
	events, code := b.history(kbBergen, key)
	if code != 0 {
		t.Fatalf("Bergen's history of its person: %v", code)
	}
	if holdsEvent(events, reg.Event.Id) {
		t.Errorf("Bergen's history of its person holds Oslo's %s", name)
	}
}
