// Package natsingress serves the registration API to case systems that speak NATS: a NATS
// micro service whose endpoint on nir.cmd.append.* runs the same handler as the HTTP API,
// with the same authentication (an Authorization: Bearer header on the request message) and
// the same errors.
//
// A request is a nir.v1.AppendRequest, in binary protobuf, or in protojson when the message
// has the header Content-Type: application/json. The reply is a nir.v1.AppendResponse in the
// same encoding, or a micro error whose code is the Connect error code ("invalid_argument",
// "failed_precondition", "aborted", …) and whose description is the Connect message.
//
// # Where requests come from
//
// Each case system sends its requests to a subject of its own, nir.cmd.append.<its NATS
// user> ([RequestSubject]), and NATS lets it publish to no other (deploy/nats/accounts.conf,
// internal/natsauth). So the subject a request came on names the NATS user that sent it,
// as NATS authenticated it: the caller chooses the reply subject, but not this.
//
// # Where replies go
//
// The caller chooses a request's reply subject, so the ingress must never answer over a
// connection that may publish events: it runs on a connection of its own whose NATS user
// has [Permissions] (may only publish under _INBOX. and the server's service replies
// _R_.), never on the event store's. And it only acts on a request whose reply subject is
// an inbox of the user its subject names, under _INBOX.<user>., or a reply subject the
// server made for a request through a service import, under [ServiceReplyPrefix] (see
// [ReplyAllowed]); any other request, including one without a reply subject or one of a
// case system in the ingress's account naming another case system's inbox, is dropped
// unprocessed, counted ([Ingress.Dropped]) and logged without its subjects. A case system
// in an account of its own (deploy/nats/accounts.conf, internal/natsauth) always reaches
// the ingress through such an import: whatever reply subject it names, the answer goes
// back into its own account. Each case system receives its replies under its own prefix
// _INBOX.<its NATS user>, which is all it may subscribe to; nird's own inbox is elsewhere
// (eventstore.InboxPrefix).
// Before, any _INBOX. subject would do, and one case system could have nird answer its
// requests into another's inbox: a client that listens on a predictable reply subject
// could be told that a request of its own was stored when it was not, or refused when it
// was stored.
//
// # One case system does not cut another off
//
// Each case system can be given a connection of the ingress's own ([Ingress.AddCaseSystem]),
// subscribed to its request subject alone: the server holds what it has not yet written
// to a connection up to a bound (64 MiB by default) and cuts a connection past it as a
// slow consumer. One case system sending requests of the largest size the server takes,
// as fast as it can, so had the one connection all case systems shared cut again and
// again, and the others got "no responders"; now only its own connection is cut. Without
// case systems named, the ingress serves them all on its one connection, as before. A
// case system in an account of its own (internal/natsauth) reaches its request subject
// through a service import: the server then delivers the request with a reply subject of
// its own making under [ServiceReplyPrefix], and delivers the answer back into the case
// system's account alone, onto the reply subject the case system named.
//
// # One case system does not hold up another
//
// The subscription's callback only checks a request (its subjects, size and token) and
// admits it; the append runs in a goroutine of its own. Admission is the HTTP API's
// ([Ingress.Admit]: the principal's rate, its requests in flight, nird's), so a case system
// that floods its subject gets ResourceExhausted at once, and the others are served beside
// it. Before, requests were served one at a time in the order they came, and one case
// system's burst kept every other waiting behind it.
//
// # What a case system's requests can hold
//
// An admitted request's body is drawn from the HTTP API's body budget ([Ingress.Body]:
// --max-body-memory, beyond the first 64 KiB of each) before it is decoded, and given back
// once it is served; one that does not fit is answered ResourceExhausted at once. Before,
// only the requests in flight bounded them (64 a principal, 256 in all, 4 MiB each, held
// and decoded), and nird's peak grew with each case system flooding its subject. What a
// connection has received and the ingress has not yet looked at is at most [PendingBytes]
// a subscription (nats.go's default is 64 MiB); what the server holds for the connection
// is at most its max_pending (64 MiB by default), past which it cuts the connection as a
// slow consumer.
package natsingress

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/introreg/nir/internal/api"
	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/ingest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
	"github.com/introreg/nir/ratelog"
	"github.com/introreg/nir/rules"
)

// RequestSubjectPrefix begins every append request's subject: the rest is the NATS user
// of the case system that sends it ([RequestSubject]).
const RequestSubjectPrefix = "nir.cmd.append."

// EndpointSubject is the subject the append endpoint serves: every case system's request
// subject. The bare nir.cmd.append is not served (it names no sender).
const EndpointSubject = RequestSubjectPrefix + "*"

// RequestSubject is the subject case system user sends its append requests to, the only
// one its NATS user may publish to.
func RequestSubject(user string) string { return RequestSubjectPrefix + user }

// MaxUserLen bounds a case system's NATS user as the ingress accepts it in a subject.
const MaxUserLen = 64

// Sender returns the NATS user whose request subject is subject (see [RequestSubject]):
// one token of printable ASCII, without wildcards, of at most MaxUserLen bytes. ok is false
// for any other subject.
func Sender(subject string) (user string, ok bool) {
	user, ok = strings.CutPrefix(subject, RequestSubjectPrefix)
	if !ok || !validUser(user) {
		return "", false
	}
	return user, true
}

// validUser reports whether user can be a case system's token in a request subject and
// its inbox prefix.
func validUser(user string) bool {
	if user == "" || len(user) > MaxUserLen {
		return false
	}
	for i := 0; i < len(user); i++ {
		if c := user[i]; c <= ' ' || c >= 0x7f || c == '.' || c == '*' || c == '>' {
			return false
		}
	}
	return true
}

// MaxRequestBytes bounds one request message.
const MaxRequestBytes = 4 << 20

// ReplyPrefix begins every reply subject: a case system's replies come under
// ReplyPrefix + its NATS user ([Inbox]), the nats CLI's under _INBOX.reader.
const ReplyPrefix = "_INBOX."

// Inbox is the inbox prefix of NATS user user (nats.CustomInboxPrefix): the ingress
// answers user's requests only under it.
func Inbox(user string) string { return ReplyPrefix + user }

// ServiceReplyPrefix begins the reply subjects the server makes for a request that came
// through a service import: a case system in an account of its own. The server delivers
// an answer on one only into the account that sent the request, onto the reply subject
// that account's client named, and refuses a client's publish that names one as its reply
// (nats-server's isReservedReply), so no case system can have its requests answered in
// another's account.
const ServiceReplyPrefix = "_R_."

// maxReplyLen bounds a reply subject (nats.go's inboxes are about 50 bytes).
const maxReplyLen = 256

// ReplyAllowed reports whether the ingress may answer a request of user (see [Sender]) on
// reply: a literal subject under Inbox(user) (a case system in the ingress's account) or
// under ServiceReplyPrefix (one in an account of its own) with at least one token after
// it, of printable ASCII without wildcards.
func ReplyAllowed(user, reply string) bool {
	if !validUser(user) {
		return false
	}
	rest, ok := strings.CutPrefix(reply, Inbox(user)+".")
	if !ok {
		rest, ok = strings.CutPrefix(reply, ServiceReplyPrefix)
	}
	if !ok || rest == "" || len(reply) > maxReplyLen {
		return false
	}
	for _, tok := range strings.Split(rest, ".") {
		if tok == "" || tok == "*" || tok == ">" {
			return false
		}
	}
	for i := 0; i < len(reply); i++ {
		if c := reply[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// Permissions are what the ingress's own NATS connection needs and no more: receive
// requests on EndpointSubject and the micro service's discovery requests ($SRV.>), and
// publish replies under ReplyPrefix. Events, commands and the JetStream API are denied
// outright, so that no allow added later can open them. They are the ingress's
// permissions on the embedded server and the ingress user's in deploy/nats/accounts.conf
// (internal/deploytest checks that both agree).
func Permissions() *server.Permissions {
	return &server.Permissions{
		Publish: &server.SubjectPermission{
			// _R_.> : the server's reply subjects for requests through an import (the
			// readers' account's service discovery); no client can name one.
			Allow: []string{ReplyPrefix + ">", "_R_.>"},
			Deny:  []string{"nir.>", "$JS.>", "$KV.>", "$O.>"},
		},
		Subscribe: &server.SubjectPermission{Allow: []string{EndpointSubject, "$SRV.>"}},
	}
}

// CaseSystemPermissions are the embedded server's ingress connection for case system
// user's alone ([Ingress.AddCaseSystem]): its requests in, and answers on the server's
// service replies out (the case system is in an account of its own), nothing else.
func CaseSystemPermissions(user string) *server.Permissions {
	return &server.Permissions{
		Publish: &server.SubjectPermission{
			Allow: []string{ServiceReplyPrefix + ">"},
			Deny:  []string{"nir.>", "$JS.>", "$KV.>", "$O.>"},
		},
		Subscribe: &server.SubjectPermission{Allow: []string{RequestSubject(user)}},
	}
}

// Appender is the registration handler shared with the HTTP API; *api.Registration
// satisfies it. It returns Connect errors.
type Appender interface {
	AppendAs(ctx context.Context, req *nirv1.AppendRequest) ([]*nirv1.Position, error)
}

// Ingress is the NATS micro service.
type Ingress struct {
	nc      *nats.Conn
	guard   *auth.Guard
	app     Appender
	log     *slog.Logger
	timeout time.Duration

	// Admit admits one request of a principal and returns the function that ends it, or a
	// Connect error (ResourceExhausted) to answer with: the HTTP API's limits (edge.Edge.Admit),
	// shared with it. Nil admits every request up to DefaultMaxInflight at once.
	Admit func(p auth.Principal, procedure string) (func(), error)
	// Body draws an admitted request's body of n bytes from the budget the HTTP API's
	// bodies draw from (edge.Edge.DrawBody), before the request is decoded, and returns the
	// function that gives it back once the request is served, or a Connect error
	// (ResourceExhausted) to answer with at once. Nil draws from no budget: only the
	// requests in flight bound what the ingress holds.
	Body func(n int64) (func(), error)
	// Panicked, when not nil, is called for each request whose serving panicked.
	Panicked func()

	slots chan struct{} // requests in flight without Admit
	lanes []lane        // the case systems served on connections of their own

	// runMu guards stopped and the Add of running: once Run stops, no request is started,
	// and running.Wait waits for every one that was.
	runMu   sync.Mutex
	stopped bool
	running sync.WaitGroup // the requests being served

	dropped atomic.Uint64 // requests dropped for their reply subject
	panics  atomic.Uint64 // requests whose serving panicked
	// dropLog bounds the lines of dropped requests to one a minute, with the count since,
	// so that a flood cannot fill the log.
	dropLog ratelog.Limiter
}

// New returns an ingress on nc, which must be a connection of its own with Permissions
// (never the event store's: see the package doc). A nil logger discards.
func New(nc *nats.Conn, guard *auth.Guard, app Appender, log *slog.Logger) *Ingress {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Ingress{nc: nc, guard: guard, app: app, log: log.With("component", "natsingress"), timeout: ServeTimeout,
		slots: make(chan struct{}, DefaultMaxInflight)}
}

// ServeTimeout bounds the serving of one request: it is answered within it, stored or not.
const ServeTimeout = 30 * time.Second

// DefaultMaxInflight bounds the requests served at once when the ingress has no Admit.
const DefaultMaxInflight = 64

// PendingBytes bounds what the ingress holds of one subscription's requests received and
// not yet through its checks (nats.go's pending limits, which count the request being
// checked until it is through; nats.go's default is 64 MiB and 512 Ki messages): two of
// the largest requests with their headers, the one being checked and one waiting. Past it
// nats.go drops a request unanswered (its sender times out, as when the server cuts a slow
// consumer) and reports a slow consumer; the checks take no time to speak of (the append
// runs in a goroutine of its own), so only a flood that outruns them is dropped.
// PendingMsgs bounds them in number.
const (
	PendingBytes = 2 * (MaxRequestBytes + 64<<10)
	PendingMsgs  = 1024
)

// QueueGroup is the queue group of the ingress's subscriptions: several nird on one NATS
// share each request subject, and each request goes to one of them.
const QueueGroup = "nir"

// lane is a case system served on a connection of its own.
type lane struct {
	user string
	nc   *nats.Conn
}

// AddCaseSystem serves case system user's requests (on RequestSubject(user)) on nc, a
// connection of the ingress's own for this case system alone, so that the server cutting
// it as a slow consumer (the case system sends more than nird reads) cuts off no other
// case system. nc must be able to do no more than CaseSystemPermissions (or Permissions)
// allow. Once a case system is added, the connection given to New serves only the
// service's discovery: a case system not added gets no answer. Call it before Run.
func (in *Ingress) AddCaseSystem(user string, nc *nats.Conn) {
	in.lanes = append(in.lanes, lane{user: user, nc: nc})
}

// Run serves until ctx is cancelled, then stops the service (in-flight requests finish).
func (in *Ingress) Run(ctx context.Context) error {
	svc, err := micro.AddService(in.nc, micro.Config{
		Name:        "nir",
		Version:     "1.0.0",
		Description: "nir registration ingress",
		QueueGroup:  QueueGroup,
	})
	if err != nil {
		return err
	}
	var subs []*nats.Subscription
	stop := func() error {
		var errs []error
		for _, sub := range subs {
			if err := sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
				errs = append(errs, err)
			}
		}
		errs = append(errs, svc.Stop())
		in.runMu.Lock()
		in.stopped = true
		in.runMu.Unlock()
		in.running.Wait()
		return errors.Join(errs...)
	}
	if len(in.lanes) == 0 {
		err = svc.AddEndpoint("append", micro.ContextHandler(ctx, func(ctx context.Context, req micro.Request) {
			in.handle(ctx, req, in.nc)
		}), micro.WithEndpointSubject(EndpointSubject), micro.WithEndpointPendingLimits(PendingMsgs, PendingBytes))
		if err != nil {
			_ = stop()
			return err
		}
	}
	for _, l := range in.lanes {
		sub, err := l.nc.QueueSubscribe(RequestSubject(l.user), QueueGroup, func(m *nats.Msg) {
			in.handle(ctx, msgRequest{m: m, nc: l.nc}, l.nc)
		})
		if err != nil {
			_ = stop()
			return fmt.Errorf("NATS ingress: case system %s: %w", l.user, err)
		}
		subs = append(subs, sub)
		if err := sub.SetPendingLimits(PendingMsgs, PendingBytes); err != nil {
			_ = stop()
			return fmt.Errorf("NATS ingress: case system %s: %w", l.user, err)
		}
	}
	<-ctx.Done()
	return stop()
}

// request is a request as handle reads it: micro.Request on the service's endpoint, or
// msgRequest on a case system's own connection.
type request interface {
	Subject() string
	Reply() string
	Data() []byte
	Headers() micro.Headers
	replier
}

// msgRequest is a request that came on a case system's own connection nc.
type msgRequest struct {
	m  *nats.Msg
	nc *nats.Conn
}

func (r msgRequest) Subject() string        { return r.m.Subject }
func (r msgRequest) Reply() string          { return r.m.Reply }
func (r msgRequest) Data() []byte           { return r.m.Data }
func (r msgRequest) Headers() micro.Headers { return micro.Headers(r.m.Header) }

func (r msgRequest) Respond(data []byte, opts ...micro.RespondOpt) error {
	return asyncReply{nc: r.nc, subject: r.m.Reply}.Respond(data, opts...)
}

func (r msgRequest) Error(code, description string, data []byte, opts ...micro.RespondOpt) error {
	return asyncReply{nc: r.nc, subject: r.m.Reply}.Error(code, description, data, opts...)
}

// admit is Admit, or the ingress's own bound on requests in flight.
func (in *Ingress) admit(p auth.Principal) (func(), error) {
	if in.Admit != nil {
		return in.Admit(p, nirv1connect.RegistrationServiceAppendProcedure)
	}
	select {
	case in.slots <- struct{}{}:
		return func() { <-in.slots }, nil
	default:
		return nil, connect.NewError(connect.CodeResourceExhausted, errors.New("nird is serving its most requests at once; retry later"))
	}
}

// drawBody is Body, or no budget.
func (in *Ingress) drawBody(n int) (func(), error) {
	if in.Body == nil {
		return func() {}, nil
	}
	return in.Body(int64(n))
}

// Panics returns how many requests panicked while being served (each answered Internal).
func (in *Ingress) Panics() uint64 { return in.panics.Load() }

// Dropped returns how many requests were dropped unprocessed because their subject named
// no case system or their reply subject was not an inbox of the one it named.
func (in *Ingress) Dropped() uint64 { return in.dropped.Load() }

// drop counts a request whose subject or reply subject is not allowed and logs it at most
// once a minute. Neither subject is logged: the caller chose them, and they may hold
// anything.
func (in *Ingress) drop() {
	n := in.dropped.Add(1)
	if leftOut, ok := in.dropLog.Allow(); ok {
		in.log.Warn("request dropped: its reply subject is not an inbox under "+ReplyPrefix+"<the NATS user its subject names>", "dropped_since_last_log", leftOut+1, "dropped_total", n)
	}
}

// handle runs in the subscription's callback, one request after another: it checks and
// admits the request, and serves it in a goroutine of its own, answering over nc, the
// connection the request came on.
func (in *Ingress) handle(ctx context.Context, req request, nc *nats.Conn) {
	user, ok := Sender(req.Subject())
	if !ok || !ReplyAllowed(user, req.Reply()) {
		in.drop()
		return
	}
	// This runs on nats.go's subscription goroutine, which has no recover: a panic in the
	// checks below would end nird.
	defer in.recoverPanic(req, "")
	if len(req.Data()) > MaxRequestBytes {
		in.fail(req, connect.NewError(connect.CodeResourceExhausted, errors.New("request larger than 4 MiB")))
		return
	}
	p, err := in.guard.CheckNATS(map[string][]string(req.Headers()), nirv1connect.RegistrationServiceAppendProcedure, user)
	if err != nil {
		code := connect.CodeUnauthenticated
		if errors.Is(err, auth.ErrPermissionDenied) {
			code = connect.CodePermissionDenied
		}
		in.fail(req, connect.NewError(code, err))
		return
	}
	admitted, err := in.admit(p)
	if err != nil {
		in.fail(req, err)
		return
	}
	drawn, err := in.drawBody(len(req.Data()))
	if err != nil {
		admitted()
		in.fail(req, err)
		return
	}
	release := func() { drawn(); admitted() }
	// micro's request is not to be used once this callback returns (micro reads what it
	// answered, for its stats): the goroutine answers on the reply subject itself.
	data, json := req.Data(), req.Headers().Get("Content-Type") == "application/json"
	reply := asyncReply{nc: nc, subject: req.Reply()}
	in.runMu.Lock()
	defer in.runMu.Unlock()
	if in.stopped {
		release()
		return
	}
	in.running.Go(func() {
		defer release()
		in.serve(ctx, reply, data, json, p)
	})
}

// replier answers one request: micro.Request in the subscription's callback, asyncReply
// after it.
type replier interface {
	Respond(data []byte, opts ...micro.RespondOpt) error
	Error(code, description string, data []byte, opts ...micro.RespondOpt) error
}

// asyncReply answers a request on its reply subject as micro.Request does, from a
// goroutine of the ingress's own.
type asyncReply struct {
	nc      *nats.Conn
	subject string
}

func (r asyncReply) Respond(data []byte, _ ...micro.RespondOpt) error {
	return r.nc.PublishMsg(&nats.Msg{Subject: r.subject, Data: data})
}

func (r asyncReply) Error(code, description string, data []byte, _ ...micro.RespondOpt) error {
	return r.nc.PublishMsg(&nats.Msg{Subject: r.subject, Data: data, Header: nats.Header{
		micro.ErrorHeader: []string{description}, micro.ErrorCodeHeader: []string{code}}})
}

// recoverPanic, deferred, answers a request whose serving panicked with Internal and logs
// the panic with its stack; the panic's value may quote the request, so national ids are
// masked. principal is the request's, once known.
func (in *Ingress) recoverPanic(req replier, principal string) {
	r := recover()
	if r == nil {
		return
	}
	in.panics.Add(1)
	if in.Panicked != nil {
		in.Panicked()
	}
	in.fail(req, api.PanicError(in.log, "panic serving a request", r, "principal", principal))
}

// serve decodes and appends one admitted request and answers it.
func (in *Ingress) serve(ctx context.Context, req replier, data []byte, json bool, p auth.Principal) {
	// A panic in the append path must not stop nird: net/http recovers a handler's panic,
	// and this goroutine is the ingress's own.
	defer in.recoverPanic(req, p.String())
	ctx, cancel := context.WithTimeout(ctx, in.timeout)
	defer cancel()
	var err error
	msg := &nirv1.AppendRequest{}
	// Counted before it is decoded, as over HTTP (api.Unmarshal): a body of empty
	// registrations decoded into 75 times its size.
	if err = api.Unmarshal(data, json, msg); err != nil {
		// The FieldViolation over HTTP, here its field and reason in the description.
		var uf *api.UnknownFieldsError
		if errors.As(err, &uf) {
			in.fail(req, uf.ConnectError())
			return
		}
		// The errors quote no value (a national id sent as a number).
		in.fail(req, connect.NewError(connect.CodeInvalidArgument, errors.New("request is not a nir.v1.AppendRequest: "+rules.RedactInput(err.Error()))))
		return
	}
	positions, err := in.app.AppendAs(ingest.WithTransport(auth.NewContext(ctx, p), ingest.TransportNATS), msg)
	if err != nil {
		in.fail(req, err)
		return
	}
	res := &nirv1.AppendResponse{Positions: positions}
	var out []byte
	if json {
		out, err = protojson.Marshal(res)
	} else {
		out, err = proto.Marshal(res)
	}
	if err != nil {
		in.fail(req, connect.NewError(connect.CodeInternal, err))
		return
	}
	if err := req.Respond(out); err != nil {
		in.log.Warn("reply failed", "err", err)
	}
}

// fail replies with the Connect code and message of err.
func (in *Ingress) fail(req replier, err error) {
	code := connect.CodeOf(err)
	msg := err.Error()
	var ce *connect.Error
	if errors.As(err, &ce) {
		msg = ce.Message()
	}
	if rerr := req.Error(code.String(), msg, nil); rerr != nil {
		in.log.Warn("error reply failed", "err", rerr)
	}
}
