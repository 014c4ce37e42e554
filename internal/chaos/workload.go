package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/proto"

	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/natsingress"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
	"github.com/introreg/nir/rules"
)

// Person is one synthetic person of the workload: a script of registrations its client
// sends one after another, each retried with the same event id until it is acknowledged or
// refused.
type Person struct {
	Index      int
	NationalID string
	// DNummer, for every third person, is a D-nummer registered beside the fødselsnummer:
	// nird claims it in the registration's atomic batch (DOMAIN.md Product decisions 15), and
	// the probes look the person up by it too.
	DNummer string
	// Due is true when the script ends with a programme whose latest end has passed, so
	// the regelmotor must append exactly one computed termination.
	Due    bool
	Events []*nirv1.Event

	// mu guards the fields below (the client and the read-your-writes probes).
	mu sync.Mutex
	// next is the index of the next event to send; done is set when the script ended
	// (every event acknowledged, or one refused).
	next int
	done bool
	// Acks are the acknowledged events in acknowledgement order.
	Acks []Ack
	// Refused are the ids of refused events.
	Refused []string
}

// Ack is an acknowledged event.
type Ack struct {
	EventID   string
	PersonKey string
	Seq       uint64
	Duplicate bool
	Via       string
	At        time.Time
}

// date is a short rules.Date to proto.
func date(y int, m time.Month, d int) *nirv1.Date { return rules.MustDate(y, m, d).Proto() }

// NewPerson returns person i's script. Every other person is Due: settled in 2022, with a
// programme whose latest end (two years after its start, DOMAIN.md 2.2) has passed once the
// sluttmål is registered; the others settled this year, with nothing due for years. nird
// stamps each event's recorded time, so no programme counts as inactive (Product decisions
// 5c) while its script runs.
func NewPerson(i int) *Person {
	due := i%2 == 0
	y := 2026
	if due {
		y = 2022
	}
	birth := rules.MustDate(1970+i%30, time.Month(1+i%12), 1+i%28)
	p := &Person{Index: i, Due: due, NationalID: rules.SyntheticFodselsnummer(birth, 100000+i)}
	if i%3 == 1 {
		p.DNummer = rules.SyntheticDNummer(birth, 100000+i)
	}
	ev := func(payload any) *nirv1.Event {
		e := &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301"}
		switch pl := payload.(type) {
		case *nirv1.PersonRegistered:
			e.Payload = &nirv1.Event_PersonRegistered{PersonRegistered: pl}
		case *nirv1.ProgrammeVedtakRegistered:
			e.Payload = &nirv1.Event_ProgrammeVedtakRegistered{ProgrammeVedtakRegistered: pl}
		case *nirv1.SluttmalRegistered:
			e.Payload = &nirv1.Event_SluttmalRegistered{SluttmalRegistered: pl}
		case *nirv1.OfferRegistered:
			e.Payload = &nirv1.Event_OfferRegistered{OfferRegistered: pl}
		}
		return e
	}
	p.Events = []*nirv1.Event{
		ev(&nirv1.PersonRegistered{
			Fodselsnummer: p.NationalID, DNummer: p.DNummer, BirthDate: birth.Proto(), Sex: nirv1.Sex_SEX_FEMALE,
			PermitDate: date(y, 1, 10), PermitBasis: nirv1.PermitBasis_PERMIT_BASIS_ASYL_28,
			ArrivalDate: date(y-1, 12, 11), SettlementDate: date(y, 2, 10), SettlementKommune: "0301", SettledByAgreement: true,
		}),
		ev(&nirv1.OfferRegistered{Programme: nirv1.Programme_PROGRAMME_INTRO, Date: date(y, 2, 20)}),
		ev(&nirv1.ProgrammeVedtakRegistered{Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, VedtakDate: date(y, 3, 1), FromDate: date(y, 3, 1)}),
		ev(&nirv1.SluttmalRegistered{Sluttmal: nirv1.Sluttmal_SLUTTMAL_ARBEID, Date: date(y, 3, 2)}),
	}
	return p
}

// Registration is event e of the script as a client sends it.
func (p *Person) registration(e int) *nirv1.Registration {
	ev := proto.Clone(p.Events[e]).(*nirv1.Event)
	r := &nirv1.Registration{Event: ev}
	if e > 0 {
		r.Person = &nirv1.PersonRef{NationalId: p.NationalID}
	}
	return r
}

// Outcome of one attempt.
type Outcome string

const (
	// OK: acknowledged with a position.
	OK Outcome = "ok"
	// Refused: definitely not stored (a rule refusal or invalid input); not retried.
	Refused Outcome = "refused"
	// Conflict: definitely not stored (Aborted); retried.
	Conflict Outcome = "conflict"
	// Unknown: the outcome is not known (a timeout, a lost connection, a server error);
	// retried with the same event id.
	Unknown Outcome = "unknown"
)

// Op is one attempt in the history.
type Op struct {
	N       int64     `json:"n"`
	Client  int       `json:"client"`
	Person  int       `json:"person"`
	Event   int       `json:"event"`
	EventID string    `json:"event_id"`
	Attempt int       `json:"attempt"`
	Via     string    `json:"via"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Outcome Outcome   `json:"outcome"`
	Seq     uint64    `json:"seq,omitempty"`
	Dup     bool      `json:"duplicate,omitempty"`
	Code    string    `json:"code,omitempty"`
	Err     string    `json:"err,omitempty"`
}

// Probe is one read-your-writes query: the person read on another nird with min_sequence.
type Probe struct {
	Person  int       `json:"person"`
	Nird    string    `json:"nird"`
	MinSeq  uint64    `json:"min_sequence"`
	At      time.Time `json:"at"`
	Outcome string    `json:"outcome"` // "ok", "stale" (a violation), "unavailable", "error"
	Err     string    `json:"err,omitempty"`
}

// Workload drives the clients.
type Workload struct {
	c       *Cluster
	clients int
	think   time.Duration

	// mu guards persons, ops and probes.
	mu      sync.Mutex
	persons []*Person
	ops     []Op
	probes  []Probe
	n       atomic.Int64
	// final is set when no new persons may start (the final phase).
	final atomic.Bool

	httpClient *http.Client
	nc         []*nats.Conn
}

// NewWorkload returns a workload of clients closed-loop clients, each pausing think between
// requests.
func NewWorkload(c *Cluster, clients int, think time.Duration) *Workload {
	return &Workload{c: c, clients: clients, think: think, httpClient: &http.Client{Timeout: 10 * time.Second}}
}

// Run runs the clients until ctx is done or, after Finish, every person's script has ended.
func (w *Workload) Run(ctx context.Context) error {
	var urls string
	for i, n := range w.c.Nodes {
		if i > 0 {
			urls += ","
		}
		urls += n.ClientURL()
	}
	for i := range w.clients {
		opts := []nats.Option{nats.UserInfo(w.c.CaseSystemUser, w.c.Password(w.c.CaseSystemUser)), nats.Name(fmt.Sprintf("chaos-client-%d", i)),
			nats.MaxReconnects(-1), nats.ReconnectWait(200 * time.Millisecond), nats.RetryOnFailedConnect(true)}
		opts = append(opts, nats.CustomInboxPrefix(w.c.CaseSystemInbox))
		nc, err := nats.Connect(urls, opts...)
		if err != nil {
			return fmt.Errorf("chaos: client %d: connect: %w", i, err)
		}
		defer nc.Close()
		w.nc = append(w.nc, nc)
	}
	var wg sync.WaitGroup
	for i := range w.clients {
		wg.Go(func() { w.client(ctx, i) })
	}
	wg.Wait()
	return nil
}

// Finish stops new persons from starting: the clients finish the scripts they have begun.
func (w *Workload) Finish() { w.final.Store(true) }

// Persons returns every person started.
func (w *Workload) Persons() []*Person {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]*Person(nil), w.persons...)
}

// Ops and Probes return the history so far.
func (w *Workload) Ops() []Op {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Op(nil), w.ops...)
}

func (w *Workload) Probes() []Probe {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Probe(nil), w.probes...)
}

// Pending counts persons whose script has not ended.
func (w *Workload) Pending() int {
	n := 0
	for _, p := range w.Persons() {
		p.mu.Lock()
		if !p.done {
			n++
		}
		p.mu.Unlock()
	}
	return n
}

// client works through persons: a few at a time, one request in flight, each person's
// events in order.
func (w *Workload) client(ctx context.Context, id int) {
	r := rand.New(rand.NewPCG(uint64(id), 42))
	const active = 4
	var mine []*Person
	attempts := map[string]int{}
	for ctx.Err() == nil {
		// Keep a few persons going; start new ones until the final phase.
		live := mine[:0]
		for _, p := range mine {
			p.mu.Lock()
			if !p.done {
				live = append(live, p)
			}
			p.mu.Unlock()
		}
		mine = live
		for len(mine) < active && !w.final.Load() {
			w.mu.Lock()
			p := NewPerson(len(w.persons))
			w.persons = append(w.persons, p)
			w.mu.Unlock()
			mine = append(mine, p)
		}
		if len(mine) == 0 {
			return
		}
		p := mine[r.IntN(len(mine))]
		p.mu.Lock()
		e := p.next
		p.mu.Unlock()
		evID := p.Events[e].GetId()
		attempts[evID]++
		op := w.attempt(ctx, r, id, p, e, attempts[evID])
		if ctx.Err() != nil && op.Outcome != OK {
			return
		}
		w.mu.Lock()
		w.ops = append(w.ops, op.Op)
		w.mu.Unlock()
		switch op.Outcome {
		case OK:
			p.mu.Lock()
			p.Acks = append(p.Acks, Ack{EventID: evID, PersonKey: op.personKey, Seq: op.Seq, Duplicate: op.Dup, Via: op.Via, At: op.End})
			p.next++
			p.done = p.next == len(p.Events)
			p.mu.Unlock()
			if r.IntN(4) == 0 {
				w.probe(ctx, r, p, op)
			}
		case Refused:
			p.mu.Lock()
			p.Refused = append(p.Refused, evID)
			p.done = true
			p.mu.Unlock()
		default:
			// Retried later with the same id, perhaps by another route.
			sleep(ctx, time.Duration(50+r.IntN(200))*time.Millisecond)
		}
		sleep(ctx, w.think)
	}
}

// attemptResult is an Op with the person key of its ack.
type attemptResult struct {
	Op
	personKey string
}

// attempt sends event e of p once, by HTTP to a random nird or by NATS to the ingress.
func (w *Workload) attempt(ctx context.Context, r *rand.Rand, client int, p *Person, e, attempt int) attemptResult {
	req := &nirv1.AppendRequest{Registrations: []*nirv1.Registration{p.registration(e)}}
	op := attemptResult{Op: Op{N: w.n.Add(1), Client: client, Person: p.Index, Event: e, EventID: p.Events[e].GetId(), Attempt: attempt, Start: time.Now()}}
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var res *nirv1.AppendResponse
	var err error
	if r.IntN(3) == 0 {
		op.Via = "nats"
		res, err = w.appendNATS(actx, w.nc[client], req)
	} else {
		k := r.IntN(len(w.c.Nirds))
		op.Via = "http:" + w.c.Nirds[k].Name
		var cres *connect.Response[nirv1.AppendResponse]
		cres, err = w.registration(k).Append(actx, connect.NewRequest(req))
		if err == nil {
			res = cres.Msg
		}
	}
	op.End = time.Now()
	if err == nil {
		if len(res.GetPositions()) != 1 || res.GetPositions()[0].GetEventId() != op.EventID {
			op.Outcome, op.Err = Unknown, fmt.Sprintf("ack names %v, not the event sent", res.GetPositions())
			return op
		}
		pos := res.GetPositions()[0]
		op.Outcome, op.Seq, op.Dup, op.personKey = OK, pos.GetSequence(), pos.GetDuplicate(), pos.GetPersonKey()
		return op
	}
	code := connect.CodeOf(err)
	var ce *natsCodeError
	if errors.As(err, &ce) {
		code = ce.code
	}
	op.Code, op.Err = code.String(), err.Error()
	switch code {
	case connect.CodeFailedPrecondition, connect.CodeInvalidArgument, connect.CodePermissionDenied, connect.CodeNotFound, connect.CodeUnauthenticated:
		op.Outcome = Refused
	case connect.CodeAborted:
		op.Outcome = Conflict
	default:
		op.Outcome = Unknown
	}
	return op
}

func (w *Workload) registration(k int) nirv1connect.RegistrationServiceClient {
	return nirv1connect.NewRegistrationServiceClient(w.httpClient, w.c.Nirds[k].URL(), connect.WithInterceptors(auth.BearerInterceptor(w.c.Token)))
}

func (w *Workload) query(k int) nirv1connect.QueryServiceClient {
	return nirv1connect.NewQueryServiceClient(w.httpClient, w.c.Nirds[k].URL(), connect.WithInterceptors(auth.BearerInterceptor(w.c.Token)))
}

// natsCodeError is an error reply of the NATS ingress: its Connect code.
type natsCodeError struct {
	code connect.Code
	msg  string
}

func (e *natsCodeError) Error() string { return e.code.String() + ": " + e.msg }

// appendNATS sends req to the case system's request subject as a case system does.
func (w *Workload) appendNATS(ctx context.Context, nc *nats.Conn, req *nirv1.AppendRequest) (*nirv1.AppendResponse, error) {
	body, err := proto.Marshal(req)
	if err != nil {
		return nil, err
	}
	m := nats.NewMsg(natsingress.RequestSubject(w.c.CaseSystemUser))
	m.Data = body
	m.Header.Set("Authorization", "Bearer "+w.c.Token)
	reply, err := nc.RequestMsgWithContext(ctx, m)
	if err != nil {
		return nil, err
	}
	if c := reply.Header.Get(micro.ErrorCodeHeader); c != "" {
		var code connect.Code
		if uerr := code.UnmarshalText([]byte(c)); uerr != nil {
			code = connect.CodeUnknown
		}
		return nil, &natsCodeError{code: code, msg: reply.Header.Get(micro.ErrorHeader)}
	}
	res := &nirv1.AppendResponse{}
	if err := proto.Unmarshal(reply.Data, res); err != nil {
		return nil, err
	}
	return res, nil
}

// probe reads p on a random nird with the sequence just acknowledged as min_sequence: the
// answer must hold every event acknowledged so far.
func (w *Workload) probe(ctx context.Context, r *rand.Rand, p *Person, op attemptResult) {
	k := r.IntN(len(w.c.Nirds))
	pr := Probe{Person: p.Index, Nird: w.c.Nirds[k].Name, MinSeq: op.Seq, At: time.Now()}
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	id := p.NationalID
	if p.DNummer != "" && op.Event > 0 && r.IntN(2) == 0 {
		// By the claimed D-nummer, once a later event's sequence covers the claim too (it
		// follows the registration in its batch).
		id = p.DNummer
	}
	res, err := w.query(k).GetPerson(qctx, connect.NewRequest(&nirv1.GetPersonRequest{Person: &nirv1.PersonRef{NationalId: id}, MinSequence: op.Seq}))
	switch {
	case err == nil:
		pr.Outcome = "ok"
		row := res.Msg.GetPerson()
		// The acknowledged events must show: the person at all, and from the tildeling on,
		// its programme vedtak.
		if row.GetPersonKey() != op.personKey || (op.Event >= 2 && !row.GetProgrammeVedtak()) {
			pr.Outcome, pr.Err = "stale", fmt.Sprintf("row %v after event %d acknowledged at seq %d", row.GetPersonKey(), op.Event, op.Seq)
		}
	case connect.CodeOf(err) == connect.CodeNotFound:
		pr.Outcome, pr.Err = "stale", err.Error()
	case connect.CodeOf(err) == connect.CodeUnavailable:
		pr.Outcome, pr.Err = "unavailable", err.Error()
	default:
		pr.Outcome, pr.Err = "error", err.Error()
	}
	w.mu.Lock()
	w.probes = append(w.probes, pr)
	w.mu.Unlock()
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
