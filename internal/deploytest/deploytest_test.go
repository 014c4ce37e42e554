package deploytest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/conf"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/oklog/ulid/v2"
	"github.com/synadia-io/orbit.go/jetstreamext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/natsauth"
	"github.com/introreg/nir/internal/natsingress"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// streamConfig mirrors eventstore's definition of NIR_EVENTS (the parts the permissions
// depend on: name, subjects, direct get, atomic batches).
func streamConfig(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:               "NIR_EVENTS",
		Subjects:           []string{"nir.ev.*"},
		Storage:            jetstream.FileStorage,
		Replicas:           replicas,
		AllowDirect:        true,
		AllowAtomicPublish: true,
		DenyDelete:         true,
		DenyPurge:          true,
	}
}

// client is a connection as one of the users of accounts.conf, with the asynchronous errors
// (permission violations) the server sent it.
type client struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	errs chan error
}

// dial connects as user, with the inbox prefix accounts.conf gives it.
func dial(tb testing.TB, urls, user, password string) *client {
	tb.Helper()
	c := &client{errs: make(chan error, 64)}
	opts := []nats.Option{nats.UserInfo(user, password), nats.Name("deploytest-" + user),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case c.errs <- err:
			default:
			}
		})}
	if p := InboxPrefix(user); p != "" {
		opts = append(opts, nats.CustomInboxPrefix(p))
	}
	nc, err := nats.Connect(urls, opts...)
	if err != nil {
		tb.Fatalf("connect as %s: %v", user, err)
	}
	tb.Cleanup(nc.Close)
	c.nc = nc
	if c.js, err = jetstream.New(nc); err != nil {
		tb.Fatal(err)
	}
	return c
}

// violation waits for the server's permissions violation that mentions want, e.g.
// `publish to "nir.ev.x"`, and fails the test if none comes within the deadline.
func (c *client) violation(tb testing.TB, want string) {
	tb.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case err := <-c.errs:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(strings.ToLower(err.Error()), strings.ToLower(want)) {
				return
			}
		case <-deadline:
			tb.Fatalf("no permissions violation for %s", want)
		}
	}
}

// refusedPublish publishes to subject and expects the server to refuse it.
func (c *client) refusedPublish(tb testing.TB, subject string) {
	tb.Helper()
	if err := c.nc.Publish(subject, []byte("x")); err != nil {
		tb.Fatal(err)
	}
	if err := c.nc.Flush(); err != nil {
		tb.Fatal(err)
	}
	c.violation(tb, `publish to "`+subject+`"`)
}

// refusedSubscribe subscribes to subject and expects the server to refuse it.
func (c *client) refusedSubscribe(tb testing.TB, subject string) {
	tb.Helper()
	sub, err := c.nc.SubscribeSync(subject)
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := c.nc.Flush(); err != nil {
		tb.Fatal(err)
	}
	c.violation(tb, `subscription to "`+subject+`"`)
}

// serveIngress answers nir.cmd.append.* as nird's ingress does (queue group "nir"), with
// "ok".
func serveIngress(tb testing.TB, ingress *client) {
	tb.Helper()
	sub, err := ingress.nc.QueueSubscribe(natsingress.EndpointSubject, "nir", func(m *nats.Msg) { _ = m.Respond([]byte("ok")) })
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := ingress.nc.Flush(); err != nil {
		tb.Fatal(err)
	}
}

// ctxT bounds a whole test against a single server: what is waited for with it must happen,
// and a hang fails the test instead of blocking it. It is a minute, not the 10 s it was: the
// bound covers everything a test does (TestSingle_EventStore spends 3 s of it on the three
// refused opens alone, then opens the store, appends, replays and takes a lease), which on a
// loaded 2-core CI machine under the race detector can take several times as long as idle.
// No assertion compares a time with it; a refusal that is waited for has a short deadline of
// its own.
func ctxT(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	tb.Cleanup(cancel)
	return ctx
}

// TestSingle_Permissions loads deploy/nats/single.conf (and so accounts.conf) and proves what
// each user may do: only nird publishes events, case systems only request on their own
// nir.cmd.append.<user>, the reader only reads.
func TestSingle_Permissions(t *testing.T) {
	creds := SetCredentials(t)
	opts := Options(t, "single.conf")
	if !opts.JetStream || !opts.SyncAlways || opts.MaxPayload != 8<<20 {
		t.Fatalf("single.conf: jetstream %v, sync always %v, max payload %d; want true, true, 8 MiB",
			opts.JetStream, opts.SyncAlways, opts.MaxPayload)
	}
	s := RunServer(t, opts)
	url := s.ClientURL()
	nird := dial(t, url, "nird", creds.Nird)
	ingress := dial(t, url, "ingress", creds.Ingress)
	fag := dial(t, url, "oslo-fagsystem", creds.Password("oslo-fagsystem"))
	reader := dial(t, url, "reader", creds.Reader)
	ctx := ctxT(t)
	stream, err := nird.js.CreateOrUpdateStream(ctx, streamConfig(1))
	if err != nil {
		t.Fatalf("nird creates NIR_EVENTS: %v", err)
	}
	serveIngress(t, ingress)
	stopGuard, err := eventstore.ServeReaderConsumersOn(nird.nc, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stopGuard)
	stored := 0 // events nird stored; a refused publish must not change it

	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"nird/PublishEvent", func(t *testing.T) {
			ack, err := nird.js.Publish(ctx, "nir.ev.k1", []byte("e1"), jetstream.WithMsgID("e1"))
			if err != nil || ack.Sequence != 1 {
				t.Fatalf("publish = %+v, %v", ack, err)
			}
			stored++
		}},
		{"nird/AtomicBatch", func(t *testing.T) {
			msgs := []*nats.Msg{
				{Subject: "nir.ev.k2", Data: []byte("e2"), Header: nats.Header{"Nats-Msg-Id": {"e2"}, "Nats-Expected-Last-Subject-Sequence": {"0"}}},
				{Subject: "nir.ev.k2", Data: []byte("e3"), Header: nats.Header{"Nats-Msg-Id": {"e3"}}},
				{Subject: "nir.ev.k3", Data: []byte("e4"), Header: nats.Header{"Nats-Msg-Id": {"e4"}}},
			}
			ack, err := jetstreamext.PublishMsgBatch(ctx, nird.js, msgs)
			if err != nil || ack.BatchSize != 3 {
				t.Fatalf("batch = %+v, %v", ack, err)
			}
			stored += 3
		}},
		{"nird/PurgeRefused", func(t *testing.T) { nird.refusedPublish(t, "$JS.API.STREAM.PURGE.NIR_EVENTS") }},
		{"nird/DeleteStreamRefused", func(t *testing.T) { nird.refusedPublish(t, "$JS.API.STREAM.DELETE.NIR_EVENTS") }},
		{"nird/DeleteMsgRefused", func(t *testing.T) { nird.refusedPublish(t, "$JS.API.STREAM.MSG.DELETE.NIR_EVENTS") }},
		{"nird/AccountPurgeRefused", func(t *testing.T) { nird.refusedPublish(t, "$JS.API.ACCOUNT.PURGE.NIR") }},
		{"nird/ReplyToCaseSystemRefused", func(t *testing.T) { nird.refusedPublish(t, "_INBOX.oslo-fagsystem.x") }},
		{"nird/SubscribeCommandsRefused", func(t *testing.T) { nird.refusedSubscribe(t, natsingress.EndpointSubject) }},

		// The case system is in an account of its own: its inbox is not NIR's, and the
		// ingress reaches it only by answering a request through the import.
		{"ingress/CaseSystemInboxOutOfReach", func(t *testing.T) {
			sub, err := fag.nc.SubscribeSync("_INBOX.oslo-fagsystem.direct")
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = sub.Unsubscribe() }()
			_ = fag.nc.Flush()
			if err := ingress.nc.Publish("_INBOX.oslo-fagsystem.direct", []byte("reply")); err != nil {
				t.Fatal(err)
			}
			if m, err := sub.NextMsg(300 * time.Millisecond); err == nil {
				t.Fatalf("the ingress published into the case system's account: %q", m.Data)
			}
		}},
		{"ingress/PublishEventRefused", func(t *testing.T) { ingress.refusedPublish(t, "nir.ev.k1") }},
		{"ingress/JetStreamAPIRefused", func(t *testing.T) { ingress.refusedPublish(t, "$JS.API.STREAM.INFO.NIR_EVENTS") }},
		{"ingress/ReplyToNirdInboxRefused", func(t *testing.T) { ingress.refusedPublish(t, eventstore.InboxPrefix+".x") }},
		{"ingress/SubscribeEventsRefused", func(t *testing.T) { ingress.refusedSubscribe(t, "nir.ev.>") }},
		{"ingress/SnoopInboxesRefused", func(t *testing.T) { ingress.refusedSubscribe(t, "_INBOX.>") }},

		{"fagsystem/RequestAppend", func(t *testing.T) {
			m, err := fag.nc.RequestWithContext(ctx, natsingress.RequestSubject("oslo-fagsystem"), []byte("AppendRequest"))
			if err != nil || string(m.Data) != "ok" {
				t.Fatalf("request = %v, %v", m, err)
			}
		}},
		// The request subject names the sender to nird, which answers only in its inbox:
		// another case system's subject, or one that names nobody, is not the case system's.
		{"fagsystem/RequestAsOtherCaseSystemRefused", func(t *testing.T) {
			fag.refusedPublish(t, natsingress.RequestSubject("bergen-fagsystem"))
		}},
		{"fagsystem/RequestOnBareSubjectRefused", func(t *testing.T) { fag.refusedPublish(t, "nir.cmd.append") }},
		{"fagsystem/RequestBelowOwnSubjectRefused", func(t *testing.T) {
			fag.refusedPublish(t, natsingress.RequestSubject("oslo-fagsystem")+".x")
		}},
		{"fagsystem/PublishEventRefused", func(t *testing.T) { fag.refusedPublish(t, "nir.ev.k1") }},
		{"fagsystem/PublishOtherCommandRefused", func(t *testing.T) { fag.refusedPublish(t, "nir.cmd.rebuild") }},
		{"fagsystem/JetStreamAPIRefused", func(t *testing.T) { fag.refusedPublish(t, "$JS.API.INFO") }},
		{"fagsystem/SubscribeEventsRefused", func(t *testing.T) { fag.refusedSubscribe(t, "nir.ev.>") }},
		{"fagsystem/SnoopIngressRefused", func(t *testing.T) { fag.refusedSubscribe(t, natsingress.EndpointSubject) }},
		{"fagsystem/SnoopOtherCaseSystemRequestsRefused", func(t *testing.T) {
			fag.refusedSubscribe(t, natsingress.RequestSubject("bergen-fagsystem"))
		}},
		{"fagsystem/SnoopOtherCaseSystemRefused", func(t *testing.T) { fag.refusedSubscribe(t, "_INBOX.bergen-fagsystem.>") }},
		{"fagsystem/SnoopAllInboxesRefused", func(t *testing.T) { fag.refusedSubscribe(t, "_INBOX.>") }},
		{"fagsystem/SnoopNirdInboxRefused", func(t *testing.T) { fag.refusedSubscribe(t, eventstore.InboxPrefix+".>") }},
		{"fagsystem/ServiceDiscoveryRefused", func(t *testing.T) { fag.refusedPublish(t, "$SRV.PING") }},

		{"reader/StreamInfo", func(t *testing.T) {
			st, err := reader.js.Stream(ctx, "NIR_EVENTS")
			if err != nil {
				t.Fatal(err)
			}
			if info, err := st.Info(ctx); err != nil || info.State.Msgs != uint64(stored) {
				t.Fatalf("info = %+v, %v; want %d messages", info, err, stored)
			}
		}},
		{"reader/GetMessage", func(t *testing.T) {
			st, err := reader.js.Stream(ctx, "NIR_EVENTS")
			if err != nil {
				t.Fatal(err)
			}
			m, err := st.GetLastMsgForSubject(ctx, "nir.ev.k2")
			if err != nil || string(m.Data) != "e3" {
				t.Fatalf("last for k2 = %v, %v", m, err)
			}
		}},
		{"reader/GetBatch", func(t *testing.T) {
			msgs, err := jetstreamext.GetBatch(ctx, reader.js, "NIR_EVENTS", 10, jetstreamext.GetBatchSeq(1))
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, err := range msgs {
				if err != nil {
					t.Fatal(err)
				}
				n++
			}
			if n != stored {
				t.Fatalf("got %d messages, want %d", n, stored)
			}
		}},
		{"reader/OrderedConsumer", func(t *testing.T) {
			cons, err := reader.js.OrderedConsumer(ctx, "NIR_EVENTS", jetstream.OrderedConsumerConfig{})
			if err != nil {
				t.Fatal(err)
			}
			m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
			if err != nil || string(m.Data()) != "e1" {
				t.Fatalf("next = %v, %v", m, err)
			}
		}},
		{"reader/PublishEventRefused", func(t *testing.T) { reader.refusedPublish(t, "nir.ev.k1") }},
		{"reader/UpdateStreamRefused", func(t *testing.T) { reader.refusedPublish(t, "$JS.API.STREAM.UPDATE.NIR_EVENTS") }},
		{"reader/DeleteStreamRefused", func(t *testing.T) { reader.refusedPublish(t, "$JS.API.STREAM.DELETE.NIR_EVENTS") }},
		{"reader/DeleteConsumerRefused", func(t *testing.T) { reader.refusedPublish(t, "$JS.API.CONSUMER.DELETE.NIR_EVENTS.projections") }},
		{"reader/AppendRefused", func(t *testing.T) { reader.refusedPublish(t, natsingress.RequestSubject("oslo-fagsystem")) }},
		{"reader/AppendAsReaderRefused", func(t *testing.T) { reader.refusedPublish(t, natsingress.RequestSubject("reader")) }},
		{"reader/SnoopCaseSystemRefused", func(t *testing.T) { reader.refusedSubscribe(t, "_INBOX.oslo-fagsystem.>") }},
		{"reader/SnoopNirdInboxRefused", func(t *testing.T) { reader.refusedSubscribe(t, eventstore.InboxPrefix+".>") }},
		// From its own account, the reader's requests are answered back into it, and its
		// consumers are pull consumers: nothing it sends is stored (internal/adversarial's
		// natsReaderWritesNothing has the whole attack).
		{"reader/ReplyIntoStreamStoresNothing", func(t *testing.T) {
			if err := reader.nc.PublishRequest("$JS.API.STREAM.INFO.NIR_EVENTS", "nir.ev.k1", nil); err != nil {
				t.Fatal(err)
			}
			if _, err := reader.nc.Request("$JS.API.STREAM.INFO.NIR_EVENTS", nil, 5*time.Second); err != nil {
				t.Fatal(err)
			}
			if info, err := stream.Info(ctx); err != nil || info.State.Msgs != uint64(stored) {
				t.Fatalf("stream info = %+v, %v; want %d messages", info, err, stored)
			}
		}},
		{"reader/PushConsumerRefused", func(t *testing.T) {
			_, err := reader.js.CreateOrUpdatePushConsumer(ctx, "NIR_EVENTS", jetstream.ConsumerConfig{DeliverSubject: "nir.checkpoint"})
			if err == nil || !strings.Contains(err.Error(), "deliver_subject") {
				t.Fatalf("push consumer = %v, want refused naming deliver_subject", err)
			}
		}},

		{"anonymous/Refused", func(t *testing.T) {
			if nc, err := nats.Connect(url); err == nil {
				nc.Close()
				t.Fatal("connected without credentials")
			} else if !errors.Is(err, nats.ErrAuthorization) {
				t.Fatalf("connect = %v, want an authorization violation", err)
			}
		}},
		{"wrongPassword/Refused", func(t *testing.T) {
			if nc, err := nats.Connect(url, nats.UserInfo("nird", creds.Nird+"x")); err == nil {
				nc.Close()
				t.Fatal("connected with a wrong password")
			} else if !errors.Is(err, nats.ErrAuthorization) {
				t.Fatalf("connect = %v, want an authorization violation", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}

	// No refused publish reached the stream: it holds exactly what nird stored.
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(stored) || stored != 4 {
		t.Fatalf("stream holds %d messages, want %d (nird's 4)", info.State.Msgs, stored)
	}
}

// moved is a small valid event for person key.
func moved(key, to string) *nirv1.Event {
	return &nirv1.Event{
		Id:         ulid.Make().String(),
		PersonKey:  key,
		Kommune:    "0301",
		RecordedAt: timestamppb.Now(),
		Payload:    &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: to}},
	}
}

// openStore opens nird's real event store against urls as the given NATS user. A cluster's
// store bounds each request by 2 s, for the requests to a lost leader (TestCluster_R3); a
// single server's keeps eventstore's default. A caller's later deadline does not lift the
// bound from an append's publish (eventstore's committer flushes a lone append under its own
// RequestTimeout unless the caller's deadline is sooner), so a minute's context alone left
// TestSingle_ReaderWithoutNird's first append, which CI saw fail after 2 s on a machine at
// a load of 13, under the 2 s.
func openStore(ctx context.Context, urls, user, password string, replicas int) (*eventstore.Store, error) {
	cfg := eventstore.Config{URL: urls, Replicas: replicas, NATSOptions: []nats.Option{nats.UserInfo(user, password)}}
	if replicas > 1 {
		cfg.RequestTimeout = 2 * time.Second
	}
	return eventstore.Open(ctx, cfg)
}

// TestSingle_EventStore runs nird's event store (package eventstore: stream definition,
// atomic batches, direct gets, replay) against single.conf as the nird user, so that the
// permissions are proven to be enough for nird itself; and shows that no other user can set
// the stream up.
func TestSingle_EventStore(t *testing.T) {
	creds := SetCredentials(t)
	s := RunServer(t, Options(t, "single.conf"))
	ctx := ctxT(t)

	for _, user := range []string{"oslo-fagsystem", "reader", "ingress"} {
		// The refused stream request is never answered: bound the wait.
		octx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := openStore(octx, s.ClientURL(), user, creds.Password(user), 1)
		cancel()
		if err == nil {
			st.Close()
			t.Fatalf("%s could create the event stream", user)
		}
	}

	store, err := openStore(ctx, s.ClientURL(), "nird", creds.Nird, 1)
	if err != nil {
		t.Fatalf("nird opens the event store: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	a, b := "aaaa01", "bbbb02"
	batch := []eventstore.PersonAppend{
		{PersonKey: a, ExpectedLastSeq: eventstore.Expect(0), Events: []*nirv1.Event{moved(a, "4601"), moved(a, "5001")}},
		{PersonKey: b, ExpectedLastSeq: eventstore.Expect(0), Events: []*nirv1.Event{moved(b, "0301")}},
	}
	pos, err := store.Append(ctx, batch...)
	if err != nil || len(pos) != 3 || pos[2].Seq != 3 {
		t.Fatalf("Append = %+v, %v", pos, err)
	}
	again, err := store.Append(ctx, batch...)
	if err != nil || !again[0].Duplicate || again[0].Seq != pos[0].Seq {
		t.Fatalf("retried Append = %+v, %v; want the original positions", again, err)
	}
	if _, err := store.Append(ctx, eventstore.PersonAppend{PersonKey: a, ExpectedLastSeq: eventstore.Expect(1), Events: []*nirv1.Event{moved(a, "0301")}}); !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("stale Append = %v, want ErrConflict", err)
	}
	events, last, err := store.Read(ctx, a)
	if err != nil || len(events) != 2 || last != 2 {
		t.Fatalf("Read = %d events, last %d, %v", len(events), last, err)
	}
	n := 0
	for _, err := range store.Replay(ctx, eventstore.ReplayOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 3 {
		t.Fatalf("Replay delivered %d events, want 3", n)
	}

	// The regelmotor's lease (a key-value bucket) works with nird's permissions.
	lease := store.NewLease(eventstore.LeaseOptions{Name: "regelmotor", Holder: "deploytest", TTL: 3 * time.Second})
	lctx, stop := context.WithCancel(ctx)
	running := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- lease.Run(lctx, func(ctx context.Context) error {
			// fn runs again if a loaded machine loses and retakes the lease: close once.
			select {
			case <-running:
			default:
				close(running)
			}
			<-ctx.Done()
			return nil
		})
	}()
	select {
	case <-running:
	case <-ctx.Done():
		t.Fatal("the lease was never taken with nird's permissions")
	}
	if h, err := lease.Holder(ctx); err != nil || h != "deploytest" {
		t.Errorf("lease holder = %q, %v", h, err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestCluster_R3 starts the three nodes of deploy/nats/cluster-*.conf, opens nird's event
// store on them with three replicas as the nird user, and proves that an acknowledged batch is
// on all replicas, that the register keeps accepting and serving events after the stream
// leader is stopped, and that the permissions hold across routes.
func TestCluster_R3(t *testing.T) {
	creds := SetCredentials(t)
	start := time.Now()
	servers := RunCluster(t, "cluster-1.conf", "cluster-2.conf", "cluster-3.conf")
	urls := ClientURLs(servers...)
	nird := dial(t, urls, "nird", creds.Nird)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()

	var store *eventstore.Store
	poll(t, ctx, "open the event store with 3 replicas", func(ctx context.Context) error {
		var err error
		store, err = openStore(ctx, urls, "nird", creds.Nird, 3)
		return err
	})
	t.Cleanup(func() { store.Close() })
	a := "aaaa01"
	events := make([]*nirv1.Event, 10)
	for i := range events {
		events[i] = moved(a, "4601")
	}
	pos, err := store.Append(ctx, eventstore.PersonAppend{PersonKey: a, ExpectedLastSeq: eventstore.Expect(0), Events: events})
	if err != nil || len(pos) != 10 || pos[9].Seq != 10 {
		t.Fatalf("Append = %+v, %v", pos, err)
	}
	stream, err := nird.js.Stream(ctx, eventstore.StreamName)
	if err != nil {
		t.Fatal(err)
	}

	var leader string
	poll(t, ctx, "all replicas current", func(ctx context.Context) error {
		info, err := stream.Info(ctx)
		if err != nil {
			return err
		}
		if info.Config.Replicas != 3 || info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
			return errors.New("stream is not on three nodes yet")
		}
		for _, r := range info.Cluster.Replicas {
			if !r.Current {
				return errors.New("replica " + r.Name + " is not current")
			}
		}
		leader = info.Cluster.Leader
		return nil
	})

	// A case system on another node than nird's responder still reaches it, and is still
	// refused the event subjects.
	ingress := dial(t, urls, "ingress", creds.Ingress)
	serveIngress(t, ingress)
	var other *server.Server
	for _, s := range servers {
		if s.Name() != ingress.nc.ConnectedServerName() {
			other = s
			break
		}
	}
	if other == nil {
		t.Fatal("every server is the ingress's")
	}
	fag := dial(t, other.ClientURL(), "oslo-fagsystem", creds.Password("oslo-fagsystem"))
	poll(t, ctx, "request across routes", func(ctx context.Context) error {
		m, err := fag.nc.RequestWithContext(ctx, natsingress.RequestSubject("oslo-fagsystem"), []byte("AppendRequest"))
		if err == nil && string(m.Data) != "ok" {
			err = errors.New("unexpected reply " + string(m.Data))
		}
		return err
	})
	fag.refusedPublish(t, "nir.ev."+a)

	// Stop the stream leader: two of three nodes are a quorum, so appends and reads go on.
	for _, s := range servers {
		if s.Name() == leader {
			s.Shutdown()
			s.WaitForShutdown()
		}
	}
	b := "bbbb02"
	after := moved(b, "0301") // the same id on every attempt: a retry is idempotent
	poll(t, ctx, "append after losing the leader", func(ctx context.Context) error {
		_, err := store.Append(ctx, eventstore.PersonAppend{PersonKey: b, Events: []*nirv1.Event{after}})
		return err
	})
	poll(t, ctx, "read after losing the leader", func(ctx context.Context) error {
		got, last, err := store.Read(ctx, a)
		if err != nil {
			return err
		}
		if len(got) != 10 || last != 10 {
			return fmt.Errorf("read %d events of %s, last %d; want 10", len(got), a, last)
		}
		info, err := stream.Info(ctx)
		if err != nil {
			return err
		}
		if info.State.Msgs != 11 {
			return fmt.Errorf("stream holds %d messages, want 11", info.State.Msgs)
		}
		if info.Cluster.Leader == leader || info.Cluster.Leader == "" {
			return errors.New("no new leader yet")
		}
		return nil
	})
	t.Logf("3-node cluster: start, R3 stream, batch, leader failover in %v", time.Since(start).Round(time.Millisecond))
}

// poll calls f until it returns nil or ctx ends; then it fails the test with f's last error.
// Each attempt gets its own short deadline, because a JetStream API request made while the
// cluster has no leader is never answered.
func poll(tb testing.TB, ctx context.Context, what string, f func(ctx context.Context) error) {
	tb.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := f(actx)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("%s: %v", what, err)
		case <-tick.C:
		}
	}
}

// recorder is the registration handler behind the NATS ingress in this test (the seam
// natsingress declares): it answers with the principal the ingress authenticated.
type recorder struct{}

func (recorder) AppendAs(ctx context.Context, req *nirv1.AppendRequest) ([]*nirv1.Position, error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return nil, errors.New("no principal")
	}
	return []*nirv1.Position{{PersonKey: p.String(), Sequence: uint64(len(req.GetRegistrations()))}}, nil
}

// TestSingle_NATSIngress runs nird's NATS ingress (a micro service on nir.cmd.append.*) as the
// ingress user and calls it as a case system's user: the NATS permissions let the request through,
// and the bearer token in its header decides the principal (internal/auth).
func TestSingle_NATSIngress(t *testing.T) {
	creds := SetCredentials(t)
	s := RunServer(t, Options(t, "single.conf"))
	ctx := ctxT(t)
	oslo, e1, _ := auth.GenerateToken(auth.Principal{Name: "oslo-fagsystem", Role: auth.RoleKommune, Kommune: "0301"})
	ssb, e2, _ := auth.GenerateToken(auth.Principal{Name: "ssb", Role: auth.RoleAnalyst})
	authn, err := auth.New([]auth.Entry{e1, e2})
	if err != nil {
		t.Fatal(err)
	}
	ingress := dial(t, s.ClientURL(), "ingress", creds.Ingress)
	in := natsingress.New(ingress.nc, auth.NewGuard(authn, auth.DefaultPolicy(), nil), recorder{}, nil)
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("ingress Run: %v", err)
		}
	})

	fag := dial(t, s.ClientURL(), "oslo-fagsystem", creds.Password("oslo-fagsystem"))
	reader := dial(t, s.ClientURL(), "reader", creds.Reader)
	body, err := proto.Marshal(&nirv1.AppendRequest{Registrations: []*nirv1.Registration{{}, {}}})
	if err != nil {
		t.Fatal(err)
	}
	request := func(ctx context.Context, token string) (*nats.Msg, error) {
		m := nats.NewMsg(natsingress.RequestSubject("oslo-fagsystem"))
		m.Data = body
		if token != "" {
			m.Header.Set("Authorization", "Bearer "+token)
		}
		return fag.nc.RequestMsgWithContext(ctx, m)
	}
	// The service subscribes asynchronously: wait until it answers.
	var reply *nats.Msg
	poll(t, ctx, "ingress answers", func(ctx context.Context) error {
		var err error
		reply, err = request(ctx, oslo)
		return err
	})
	var res nirv1.AppendResponse
	if err := proto.Unmarshal(reply.Data, &res); err != nil || reply.Header.Get(micro.ErrorCodeHeader) != "" {
		t.Fatalf("reply %q (error %q): %v", reply.Data, reply.Header.Get(micro.ErrorHeader), err)
	}
	if got := res.GetPositions()[0]; got.GetPersonKey() != "kommune:oslo-fagsystem@0301" || got.GetSequence() != 2 {
		t.Fatalf("handler saw %v, want the oslo principal and 2 registrations", got)
	}

	for _, tt := range []struct{ name, token, code string }{
		{"NoToken", "", "unauthenticated"},
		{"UnknownToken", "nir_unknown", "unauthenticated"},
		{"AnalystMayNotAppend", ssb, "permission_denied"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := request(ctx, tt.token)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Header.Get(micro.ErrorCodeHeader); got != tt.code {
				t.Fatalf("error code %q (%q), want %q", got, m.Header.Get(micro.ErrorHeader), tt.code)
			}
			if tt.token != "" && strings.Contains(string(m.Data)+m.Header.Get(micro.ErrorHeader), tt.token) {
				t.Fatal("the error reply repeats the token")
			}
		})
	}

	// Service discovery works for the reader (nats micro ls), which still cannot append.
	if m, err := reader.nc.RequestWithContext(ctx, "$SRV.PING.nir", nil); err != nil || !strings.Contains(string(m.Data), `"name":"nir"`) {
		t.Fatalf("$SRV.PING.nir = %v, %v", m, err)
	}
	reader.refusedPublish(t, natsingress.RequestSubject("oslo-fagsystem"))

	// Oslo names Bergen's inbox as reply subject: the server answers it back into Oslo's
	// account (each case system is in an account of its own), and Bergen's inbox gets
	// nothing.
	bergen := dial(t, s.ClientURL(), "bergen-fagsystem", creds.Password("bergen-fagsystem"))
	sub, err := bergen.nc.SubscribeSync(natsingress.Inbox("bergen-fagsystem") + ".>")
	if err != nil {
		t.Fatal(err)
	}
	if err := bergen.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(natsingress.RequestSubject("oslo-fagsystem"))
	m.Data, m.Reply = body, natsingress.Inbox("bergen-fagsystem")+".fixed"
	m.Header.Set("Authorization", "Bearer "+oslo)
	if err := fag.nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	if _, err := request(ctx, oslo); err != nil {
		t.Fatalf("Oslo's own request after it: %v", err)
	}
	if m, err := sub.NextMsg(300 * time.Millisecond); err == nil {
		t.Fatalf("Bergen received %q (error %q) on %s", m.Data, m.Header.Get(micro.ErrorHeader), m.Subject)
	}
	if got := in.Dropped(); got != 0 {
		t.Fatalf("Dropped() = %d, want 0: the server made every reply subject", got)
	}
}

// TestAccounts_SameModelAsNird: the permissions of accounts.conf's users are exactly the
// ones nird's code gives the same roles on its embedded server (eventstore, natsingress,
// natsauth), so the two cannot drift apart.
func TestAccounts_SameModelAsNird(t *testing.T) {
	SetCredentials(t)
	opts := Options(t, "single.conf")
	want := map[string]*server.Permissions{
		"nird":    eventstore.StorePermissions(),
		"ingress": natsingress.Permissions(),
		"reader":  natsauth.ReaderPermissions(),
	}
	for user := range CaseSystems {
		want[user] = natsauth.CaseSystemPermissions(user)
	}
	got := map[string]*server.Permissions{}
	for _, u := range opts.Users {
		account := natsauth.RegisterAccount
		if u.Username == natsauth.Reader {
			account = natsauth.ReaderAccount
		}
		if _, ok := CaseSystems[u.Username]; ok {
			account = natsauth.CaseSystemAccount(u.Username)
		}
		if u.Account == nil || u.Account.Name != account {
			t.Errorf("user %s is not in account %s", u.Username, account)
		}
		got[u.Username] = u.Permissions
	}
	if len(opts.Nkeys) != 0 {
		t.Errorf("accounts.conf has %d nkey users; the commented examples must stay comments", len(opts.Nkeys))
	}
	norm := func(p *server.Permissions) string {
		if p == nil {
			return "all"
		}
		side := func(name string, sp *server.SubjectPermission) string {
			if sp == nil {
				return name + ": -"
			}
			a, d := slices.Clone(sp.Allow), slices.Clone(sp.Deny)
			slices.Sort(a)
			slices.Sort(d)
			return fmt.Sprintf("%s: allow %q deny %q", name, a, d)
		}
		return side("publish", p.Publish) + "; " + side("subscribe", p.Subscribe) + fmt.Sprintf("; responses %v", p.Response)
	}
	for user, w := range want {
		g, ok := got[user]
		if !ok {
			t.Errorf("accounts.conf has no user %s", user)
			continue
		}
		if norm(g) != norm(w) {
			t.Errorf("user %s:\n accounts.conf %s\n nird's code   %s", user, norm(g), norm(w))
		}
		delete(got, user)
	}
	for user := range got {
		t.Errorf("accounts.conf has user %s, unknown to the tests (add it to CaseSystems)", user)
	}
}

// TestAccounts_SameReaderImports: the readers' account of accounts.conf imports exactly
// what nird's embedded server gives it (natsauth.EmbeddedAccounts), and the register's
// account exports nothing else, as the running servers report them.
func TestAccounts_SameReaderImports(t *testing.T) {
	SetCredentials(t)
	deployed := RunServer(t, Options(t, "single.conf"))
	global, reader, _, err := natsauth.EmbeddedAccounts(nil)
	if err != nil {
		t.Fatal(err)
	}
	embedded := RunServer(t, &server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: t.TempDir(), Accounts: []*server.Account{global, reader}, NoSigs: true})
	want := map[string]bool{}
	for _, im := range natsauth.ReaderImports() {
		kind := "service"
		if im.Stream {
			kind = "stream"
		}
		want[fmt.Sprintf("%s %s <- %s", kind, im.Subject, im.Remote())] = true
	}
	for name, c := range map[string]struct {
		srv              *server.Server
		register, reader string
	}{
		"accounts.conf": {deployed, natsauth.RegisterAccount, natsauth.ReaderAccount},
		"embedded":      {embedded, "$G", natsauth.ReaderAccount},
	} {
		imports := accountInfo(t, c.srv, c.reader).Imports
		got := map[string]bool{}
		for _, im := range imports {
			if im.Account != c.register {
				// The server's own imports ($JS.API.INFO's "not enabled" answer and the
				// system account's), not one of ours.
				continue
			}
			local := string(im.LocalSubject)
			if local == "" {
				local = string(im.Subject)
			}
			got[fmt.Sprintf("%s %s <- %s", im.Type, local, im.Subject)] = true
		}
		if !maps.Equal(got, want) {
			t.Errorf("%s: the readers' account imports\n %v\nwant\n %v", name, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
		}
		exports := map[string]bool{}
		for _, ex := range accountInfo(t, c.srv, c.register).Exports {
			exports[string(ex.Subject)] = true
		}
		for _, im := range natsauth.ReaderImports() {
			delete(exports, im.Remote())
		}
		for user := range CaseSystems {
			delete(exports, natsingress.RequestSubject(user)) // TestAccounts_SameCaseSystemAccounts
		}
		for subj := range exports {
			if strings.HasPrefix(subj, "$JS.API") || strings.HasPrefix(subj, "nir.") {
				t.Errorf("%s: the register's account exports %s, which the readers do not import", name, subj)
			}
		}
	}
}

// accountInfo is what srv reports of account name.
func accountInfo(t *testing.T, srv *server.Server, name string) *server.AccountInfo {
	t.Helper()
	z, err := srv.Accountz(&server.AccountzOptions{Account: name})
	if err != nil || z.Account == nil {
		t.Fatalf("account %s: %v", name, err)
	}
	return z.Account
}

// TestAccounts_SameCaseSystemAccounts: each case system of accounts.conf is alone in an
// account of its own with the limits nird's embedded server gives it
// (natsauth.AccountsConfig), importing its own request subject and nothing else, which the
// register's account exports to it alone; and the register's account exports no other
// request subject.
func TestAccounts_SameCaseSystemAccounts(t *testing.T) {
	SetCredentials(t)
	deployed, err := conf.ParseFile(filepath.Join(Dir(), "single.conf"))
	if err != nil {
		t.Fatal(err)
	}
	names := slices.Sorted(maps.Keys(CaseSystems))
	embedded, err := conf.Parse(natsauth.AccountsConfig(natsauth.RegisterAccount, names))
	if err != nil {
		t.Fatal(err)
	}
	// model is what a configuration says of the case systems: each one's limits and
	// imports, and the register's exports of request subjects.
	model := func(m map[string]any) map[string]string {
		accounts, _ := m["accounts"].(map[string]any)
		out := map[string]string{}
		for _, name := range names {
			acc, _ := accounts[natsauth.CaseSystemAccount(name)].(map[string]any)
			if acc == nil {
				out[name] = "no account"
				continue
			}
			out[name+" limits"] = fmt.Sprint(acc["limits"])
			out[name+" imports"] = fmt.Sprint(acc["imports"])
			var users []string
			list, _ := acc["users"].([]any)
			for _, u := range list {
				m, _ := u.(map[string]any)
				users = append(users, fmt.Sprint(m["user"]))
			}
			out[name+" users"] = fmt.Sprint(users)
		}
		register, _ := accounts[natsauth.RegisterAccount].(map[string]any)
		exports, _ := register["exports"].([]any)
		for _, ex := range exports {
			e, _ := ex.(map[string]any)
			if subj, _ := e["service"].(string); strings.HasPrefix(subj, natsingress.RequestSubjectPrefix) {
				out["export "+subj] = fmt.Sprint(e)
			}
		}
		return out
	}
	got, want := model(deployed), model(embedded)
	for _, name := range names {
		// nird's embedded server gives a case system's account its user itself.
		want[name+" users"] = fmt.Sprint([]string{name})
	}
	if !maps.Equal(got, want) {
		for _, k := range slices.Sorted(maps.Keys(want)) {
			if got[k] != want[k] {
				t.Errorf("%s:\n accounts.conf %s\n nird's code   %s", k, got[k], want[k])
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("accounts.conf has %s: %s, which nird's code does not", k, got[k])
			}
		}
	}
}

// TestSingle_CaseSystemLimits: a case system's account takes its limits' connections and
// no more, and no message larger than its most, which still holds the largest request.
func TestSingle_CaseSystemLimits(t *testing.T) {
	creds := SetCredentials(t)
	s := RunServer(t, Options(t, "single.conf"))
	ingress := dial(t, s.ClientURL(), "ingress", creds.Ingress)
	serveIngress(t, ingress)
	var conns []*client
	for range natsauth.CaseSystemMaxConnections {
		conns = append(conns, dial(t, s.ClientURL(), "oslo-fagsystem", creds.Password("oslo-fagsystem")))
	}
	if nc, err := nats.Connect(s.ClientURL(), nats.UserInfo("oslo-fagsystem", creds.Password("oslo-fagsystem")), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Errorf("connection %d of one case system admitted, want at most %d", natsauth.CaseSystemMaxConnections+1, natsauth.CaseSystemMaxConnections)
	}
	// Another case system's connections are its own.
	dial(t, s.ClientURL(), "bergen-fagsystem", creds.Password("bergen-fagsystem"))

	ctx := ctxT(t)
	m := nats.NewMsg(natsingress.RequestSubject("oslo-fagsystem"))
	m.Header.Set("Authorization", "Bearer nir_"+strings.Repeat("x", 43))
	m.Data = make([]byte, natsingress.MaxRequestBytes)
	if r, err := conns[0].nc.RequestMsgWithContext(ctx, m); err != nil || string(r.Data) != "ok" {
		t.Fatalf("a request of the largest size the ingress takes: %v, %v", r, err)
	}
	// The server tells the client the account's most, and the client refuses to send more.
	if got := conns[1].nc.MaxPayload(); got != natsauth.CaseSystemMaxPayload {
		t.Errorf("the case system's connection takes messages of %d bytes, want %d", got, natsauth.CaseSystemMaxPayload)
	}
	m.Data = make([]byte, natsauth.CaseSystemMaxPayload)
	if err := conns[1].nc.PublishMsg(m); !errors.Is(err, nats.ErrMaxPayload) {
		t.Errorf("a message larger than the account's most: %v, want %v", err, nats.ErrMaxPayload)
	}
	for i := 0; i < natsauth.CaseSystemMaxSubscriptions+1; i++ {
		if _, err := conns[2].nc.SubscribeSync(fmt.Sprintf("_INBOX.oslo-fagsystem.%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	_ = conns[2].nc.Flush()
	select {
	case err := <-conns[2].errs:
		if !strings.Contains(strings.ToLower(err.Error()), "maximum subscriptions") {
			t.Errorf("subscription %d: %v", natsauth.CaseSystemMaxSubscriptions+1, err)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("subscription %d of a connection taken, want at most %d", natsauth.CaseSystemMaxSubscriptions+1, natsauth.CaseSystemMaxSubscriptions)
	}
}
