package natsingress_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/edge"
	"github.com/introreg/nir/internal/natsingress"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// holding is an append path that holds every request until release is closed, and says on
// started when it has one.
type holding struct {
	started chan struct{}
	release chan struct{}
}

func (a *holding) AppendAs(ctx context.Context, _ *nirv1.AppendRequest) ([]*nirv1.Position, error) {
	a.started <- struct{}{}
	select {
	case <-a.release:
	case <-ctx.Done():
	}
	return nil, ctx.Err()
}

// A request's body is drawn from the API's body budget (edge.Edge.DrawBody) before it is
// decoded and given back when it is served: with a budget of 8 MiB, two requests of 3 MiB
// being served hold about 6 MiB of it, and a third is answered ResourceExhausted at once,
// counted as an HTTP body's refusal, without reaching the append path; a small request (its
// body within the free 64 KiB) is still served. Before, only the requests in flight bounded
// what the ingress held (64 a principal), whatever the budget.
func TestIngress_BodiesDrawFromTheBodyBudget(t *testing.T) {
	e := newEnv(t)
	conn, err := e.store.Connect(e.ingress)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ed, err := edge.New(e.guard, edge.Config{BodyMemory: 8 << 20, MaxBodyBytes: natsingress.MaxRequestBytes})
	if err != nil {
		t.Fatal(err)
	}
	app := &holding{started: make(chan struct{}, 8), release: make(chan struct{})}
	in := natsingress.New(conn, e.guard, app, nil)
	in.Admit, in.Body = ed.Admit, ed.DrawBody
	e.run(t, in)

	replies, send := e.replies(t, "budget")
	started := func(what string) {
		t.Helper()
		select {
		case <-app.started:
		case m := <-replies:
			t.Fatalf("%s answered %s %s, want it held in the append path", what, m.Header.Get(micro.ErrorCodeHeader), m.Header.Get(micro.ErrorHeader))
		case <-time.After(30 * time.Second):
			t.Fatalf("%s did not reach the append path in 30s", what)
		}
	}
	large := mustMarshal(&nirv1.AppendRequest{Registrations: []*nirv1.Registration{{Event: &nirv1.Event{CorrelationId: strings.Repeat("x", 3<<20)}}}})
	drawn := int64(len(large) - edge.FreeBodyBytes)
	send(large)
	started("the first large request")
	send(large)
	started("the second large request")
	if got := ed.Stats().BodyMemory; got != 2*drawn {
		t.Errorf("two large requests being served hold %d bytes of the budget, want %d", got, 2*drawn)
	}
	send(large)
	select {
	case m := <-replies:
		if code, msg := m.Header.Get(micro.ErrorCodeHeader), m.Header.Get(micro.ErrorHeader); code != "resource_exhausted" || !strings.Contains(msg, "body memory limit") {
			t.Errorf("the third large request: %q %q, want resource_exhausted naming the body memory limit", code, msg)
		}
	case <-app.started:
		t.Error("the third large request reached the append path: its body is not drawn from the budget")
	case <-time.After(30 * time.Second):
		t.Fatal("the third large request: no answer in 30s")
	}
	if st := ed.Stats(); st.RefusedBodyMemory != 1 || st.BodyMemory != 2*drawn {
		t.Errorf("after the third: %d refused for the body budget, %d bytes held; want 1 and %d", st.RefusedBodyMemory, st.BodyMemory, 2*drawn)
	}
	send(mustMarshal(registerPerson(1)))
	started("a small request while the budget is spent")

	close(app.release)
	for range 3 {
		select {
		case <-replies:
		case <-time.After(30 * time.Second):
			t.Fatal("the held requests: no answer in 30s")
		}
	}
	// The answer is sent before the request's body is given back.
	for deadline := time.Now().Add(10 * time.Second); ed.Stats().BodyMemory != 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if got := ed.Stats().BodyMemory; got != 0 {
		t.Errorf("%d bytes of the budget held once every request was served", got)
	}
}

// A case system's connection holds at most PendingBytes of its requests received and not yet
// through the ingress's checks (nats.go counts the one being checked until it is through):
// with the ingress stuck on a request of 3 MiB, the next one waits, the one after is dropped
// unanswered (nats.go reports a slow consumer), and a request after it is served once the
// ingress goes on. Before, nats.go held up to 64 MiB a subscription.
func TestIngress_PendingBytes(t *testing.T) {
	if 3*(3<<20) <= natsingress.PendingBytes || 2*(3<<20+4<<10) > natsingress.PendingBytes {
		t.Fatalf("PendingBytes %d: the test's three requests of 3 MiB must not fit, two must", natsingress.PendingBytes)
	}
	e := newEnv(t)
	main, err := e.store.Connect(e.ingress)
	if err != nil {
		t.Fatal(err)
	}
	defer main.Close()
	slow := make(chan struct{}, 1)
	lane, err := e.store.Connect(e.ingress, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrSlowConsumer) {
			select {
			case slow <- struct{}{}:
			default:
			}
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer lane.Close()
	in := natsingress.New(main, e.guard, e.reg, nil)
	in.AddCaseSystem(caseSystem, lane)
	entered, unblock := make(chan struct{}, 8), make(chan struct{})
	in.Admit = func(auth.Principal, string) (func(), error) {
		entered <- struct{}{}
		<-unblock
		return func() {}, nil
	}
	e.run(t, in)
	replies, send := e.replies(t, "pending")
	large := mustMarshal(&nirv1.AppendRequest{Registrations: []*nirv1.Registration{{Event: &nirv1.Event{CorrelationId: strings.Repeat("x", 3<<20)}}}})
	send(large)
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the first request did not reach admission in 30s")
	}
	send(large)
	send(large)
	select {
	case <-slow:
	case <-time.After(30 * time.Second):
		t.Fatal("no slow consumer in 30s: the connection holds three requests of 3 MiB not yet through the checks")
	}
	close(unblock)
	send(mustMarshal(registerPerson(1)))
	for stored := false; !stored; {
		select {
		case m := <-replies:
			stored = m.Header.Get(micro.ErrorCodeHeader) == "" // the small one's; the large are invalid
		case <-time.After(30 * time.Second):
			t.Fatal("the small request: no answer in 30s")
		}
	}
	// The small request came after the dropped one: had that one been kept, it would have
	// been admitted before the small one (one at a time, in order).
	if got := 1 + len(entered); got != 3 {
		t.Errorf("%d requests admitted, want 3: the first, the one that waited and the small one", got)
	}
}

// Without the API's limits (Admit nil) the ingress bounds the requests it serves at once to
// DefaultMaxInflight itself: with that many held in the append path, the next is answered
// ResourceExhausted at once, without reaching it. Mutation testing (2026-12-07): the bound
// removed passed every test.
func TestIngress_DefaultInflight(t *testing.T) {
	e := newEnv(t)
	conn, err := e.store.Connect(e.ingress)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	app := &holding{started: make(chan struct{}, natsingress.DefaultMaxInflight+2), release: make(chan struct{})}
	in := natsingress.New(conn, e.guard, app, nil)
	e.run(t, in)
	replies, send := e.replies(t, "inflight")
	small := mustMarshal(registerPerson(1))
	for i := range natsingress.DefaultMaxInflight {
		send(small)
		select {
		case <-app.started:
		case m := <-replies:
			t.Fatalf("request %d answered %s %s, want it held in the append path", i, m.Header.Get(micro.ErrorCodeHeader), m.Header.Get(micro.ErrorHeader))
		case <-time.After(30 * time.Second):
			t.Fatalf("request %d did not reach the append path in 30s", i)
		}
	}
	send(small)
	select {
	case m := <-replies:
		if code, msg := m.Header.Get(micro.ErrorCodeHeader), m.Header.Get(micro.ErrorHeader); code != "resource_exhausted" || !strings.Contains(msg, "most requests at once") {
			t.Errorf("the request over the bound: %q %q, want resource_exhausted", code, msg)
		}
	case <-app.started:
		t.Error("the request over the bound reached the append path")
	case <-time.After(30 * time.Second):
		t.Fatal("the request over the bound: no answer in 30s")
	}
	close(app.release)
}
