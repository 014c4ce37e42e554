// Package natsingress serves the registration API to case systems that speak NATS: a NATS
// micro service whose endpoint on nir.cmd.append runs the same handler as the HTTP API, with
// the same authentication (an Authorization: Bearer header on the request message) and the
// same errors.
//
// A request is a nir.v1.AppendRequest, in binary protobuf, or in protojson when the message
// has the header Content-Type: application/json. The reply is a nir.v1.AppendResponse in the
// same encoding, or a micro error whose code is the Connect error code ("invalid_argument",
// "failed_precondition", "aborted", …) and whose description is the Connect message.
package natsingress

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/introreg/nir/internal/auth"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
)

// AppendSubject is the subject of the append endpoint.
const AppendSubject = "nir.cmd.append"

// MaxRequestBytes bounds one request message.
const MaxRequestBytes = 4 << 20

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
}

// New returns an ingress on nc. A nil logger discards.
func New(nc *nats.Conn, guard *auth.Guard, app Appender, log *slog.Logger) *Ingress {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Ingress{nc: nc, guard: guard, app: app, log: log.With("component", "natsingress"), timeout: 30 * time.Second}
}

// Run serves until ctx is cancelled, then stops the service (in-flight requests finish).
func (in *Ingress) Run(ctx context.Context) error {
	svc, err := micro.AddService(in.nc, micro.Config{
		Name:        "nir",
		Version:     "1.0.0",
		Description: "nir registration ingress",
		QueueGroup:  "nir",
	})
	if err != nil {
		return err
	}
	if err := svc.AddEndpoint("append", micro.ContextHandler(ctx, in.handle), micro.WithEndpointSubject(AppendSubject)); err != nil {
		_ = svc.Stop()
		return err
	}
	<-ctx.Done()
	return svc.Stop()
}

func (in *Ingress) handle(ctx context.Context, req micro.Request) {
	ctx, cancel := context.WithTimeout(ctx, in.timeout)
	defer cancel()
	json := req.Headers().Get("Content-Type") == "application/json"
	if len(req.Data()) > MaxRequestBytes {
		in.fail(req, connect.NewError(connect.CodeResourceExhausted, errors.New("request larger than 4 MiB")))
		return
	}
	p, err := in.guard.Check(map[string][]string(req.Headers()), nirv1connect.RegistrationServiceAppendProcedure)
	if err != nil {
		code := connect.CodeUnauthenticated
		if errors.Is(err, auth.ErrPermissionDenied) {
			code = connect.CodePermissionDenied
		}
		in.fail(req, connect.NewError(code, err))
		return
	}
	msg := &nirv1.AppendRequest{}
	if json {
		err = protojson.Unmarshal(req.Data(), msg)
	} else {
		err = proto.Unmarshal(req.Data(), msg)
	}
	if err != nil {
		in.fail(req, connect.NewError(connect.CodeInvalidArgument, errors.New("request is not a nir.v1.AppendRequest: "+err.Error())))
		return
	}
	positions, err := in.app.AppendAs(auth.NewContext(ctx, p), msg)
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
func (in *Ingress) fail(req micro.Request, err error) {
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
