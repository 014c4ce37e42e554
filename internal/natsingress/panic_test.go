package natsingress_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/micro"

	"google.golang.org/protobuf/proto"

	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/natsingress"
	"github.com/introreg/nir/internal/syncbuf"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// panicky is an append path with a bug: it panics on its first call, quoting the request,
// and appends through the real one after.
type panicky struct {
	once sync.Once
	next natsingress.Appender
}

func (a *panicky) AppendAs(ctx context.Context, req *nirv1.AppendRequest) ([]*nirv1.Position, error) {
	var boom bool
	a.once.Do(func() { boom = true })
	if boom {
		panic("bug with " + req.GetRegistrations()[0].GetEvent().GetPersonRegistered().GetFodselsnummer())
	}
	return a.next.AppendAs(ctx, req)
}

// A panic while serving one request is that request's Internal error: nird goes on serving
// (before, the ingress's goroutines had no recover and the panic ended the process), and the
// log line holds no national id. The panic comes in the append path (the goroutine serving
// the request) or in the checks before it (nats.go's subscription goroutine).
func TestIngress_PanicIsOneRequestsError(t *testing.T) {
	e := newEnv(t)
	for i, where := range []string{"append", "admission"} {
		t.Run(where, func(t *testing.T) {
			conn, err := e.store.Connect(e.ingress)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			var logs syncbuf.Buffer
			var app natsingress.Appender = e.reg
			if where == "append" {
				app = &panicky{next: e.reg}
			}
			in := natsingress.New(conn, e.guard, app, slog.New(slog.NewTextHandler(&logs, nil)))
			if where == "admission" {
				var once sync.Once
				in.Admit = func(p auth.Principal, _ string) (func(), error) {
					once.Do(func() { panic("bug admitting " + p.String()) })
					return func() {}, nil
				}
			}
			e.run(t, in)

			first := registerPerson(10*i + 1)
			data, _ := proto.Marshal(first)
			reply := request(t, e.nc, tokOslo, "", data)
			if code := reply.Header.Get(micro.ErrorCodeHeader); code != "internal" {
				t.Fatalf("the panicking request: error code %q (%s), want internal", code, reply.Header.Get(micro.ErrorHeader))
			}
			data, _ = proto.Marshal(registerPerson(10*i + 2))
			reply = request(t, e.nc, tokOslo, "", data)
			if code := reply.Header.Get(micro.ErrorCodeHeader); code != "" {
				t.Fatalf("the next request: %s %s", code, reply.Header.Get(micro.ErrorHeader))
			}
			var res nirv1.AppendResponse
			if err := proto.Unmarshal(reply.Data, &res); err != nil || len(res.GetPositions()) != 1 {
				t.Fatalf("the next request: %v, %d positions", err, len(res.GetPositions()))
			}
			if in.Panics() != 1 {
				t.Errorf("Panics() = %d, want 1", in.Panics())
			}
			id := first.GetRegistrations()[0].GetEvent().GetPersonRegistered().GetFodselsnummer()
			if !strings.Contains(logs.String(), "panic serving a request") {
				t.Errorf("the panic was not logged:\n%s", logs.String())
			}
			if strings.Contains(logs.String(), id) {
				t.Errorf("the log holds the national id:\n%s", logs.String())
			}
		})
	}
}
