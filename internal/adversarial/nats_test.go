package adversarial

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/nats-io/nkeys"
	"github.com/oklog/ulid/v2"
	"github.com/synadia-io/orbit.go/jetstreamext"
	"google.golang.org/protobuf/proto"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/deploytest"
	"github.com/introreg/nir/internal/natsauth"
	"github.com/introreg/nir/internal/natsingress"
	"github.com/introreg/nir/internal/nirdtest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
	"github.com/introreg/nir/rules"
)

// The NATS surface: nobody but nird writes or manages the stream, nobody but an operator's
// read-only user reads it, a case system reaches nothing but its own request subject
// nir.cmd.append.<user> and its own replies, and no request can make nird publish where it
// must not, nor answer one case system's request in another's inbox.

// natsCtx is a context for one attack: short, because a refused JetStream request is never
// answered and must time out.
func natsCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// natsConn is a client connection with the asynchronous errors (permissions violations)
// the server sent it.
type natsConn struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	errs chan error
	user string // the NATS user, "" if anonymous
}

// natsDial connects to url with opts and records the connection's asynchronous errors.
func natsDial(t *testing.T, url string, opts ...nats.Option) (*natsConn, error) {
	t.Helper()
	c := &natsConn{errs: make(chan error, 64)}
	opts = append([]nats.Option{nats.MaxReconnects(0), nats.Timeout(3 * time.Second),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case c.errs <- err:
			default:
			}
		})}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, err
	}
	t.Cleanup(nc.Close)
	c.nc = nc
	c.js, _ = jetstream.New(nc, jetstream.WithDefaultTimeout(2*time.Second))
	return c, nil
}

// natsAnonymous tries to connect to url without credentials, as any local process can.
// It returns nil when the server refuses, which is what must happen; a test that gets a
// connection fails, then goes on with its attack to show what the hole lets through.
func natsAnonymous(t *testing.T, url string) *natsConn {
	t.Helper()
	c, err := natsDial(t, url)
	if err != nil {
		if !errors.Is(err, nats.ErrAuthorization) {
			t.Fatalf("anonymous connect = %v, want an authorization violation", err)
		}
		return nil
	}
	t.Errorf("an anonymous client connected to %s", url)
	return c
}

// violation waits for the server's permissions violation that mentions want.
func (c *natsConn) violation(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case err := <-c.errs:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(strings.ToLower(err.Error()), strings.ToLower(want)) {
				return
			}
		case <-deadline:
			t.Fatalf("no permissions violation for %s", want)
		}
	}
}

// refusedPublish publishes to subject and expects the server to refuse it.
func (c *natsConn) refusedPublish(t *testing.T, subject string) {
	t.Helper()
	if err := c.nc.Publish(subject, []byte("x")); err != nil {
		t.Fatal(err)
	}
	c.violation(t, `publish to "`+subject+`"`)
}

// refusedSubscribe subscribes to subject and expects the server to refuse it; no message
// may arrive on it meanwhile.
func (c *natsConn) refusedSubscribe(t *testing.T, subject string) {
	t.Helper()
	sub, err := c.nc.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := c.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	c.violation(t, `subscription to "`+subject+`"`)
}

// natsStream is what the stream looks like to the read-only user.
func natsStream(t *testing.T, reader *natsConn) *jetstream.StreamInfo {
	t.Helper()
	st, err := reader.js.Stream(natsCtx(t, 5*time.Second), eventstore.StreamName)
	if err != nil {
		t.Fatalf("stream %s as reader: %v", eventstore.StreamName, err)
	}
	return st.CachedInfo()
}

// natsRegistration registers a new person in kommune 0301 (person i of the test).
func natsRegistration(i int) *nirv1.AppendRequest {
	d := func(y, m, day int) *nirv1.Date { return &nirv1.Date{Year: int32(y), Month: int32(m), Day: int32(day)} }
	id := rules.SyntheticFodselsnummer(rules.Date{Y: 1985, M: 3, D: 1 + i%28}, 7000+i)
	return &nirv1.AppendRequest{Registrations: []*nirv1.Registration{{Event: &nirv1.Event{
		Id: ulid.Make().String(), Kommune: "0301",
		Payload: &nirv1.Event_PersonRegistered{PersonRegistered: &nirv1.PersonRegistered{
			Fodselsnummer: id, BirthDate: d(1985, 3, 1+i%28), Sex: nirv1.Sex_SEX_FEMALE,
			PermitDate: d(2024, 2, 1), PermitBasis: nirv1.PermitBasis_PERMIT_BASIS_ASYL_28,
			ArrivalDate: d(2023, 11, 1), SettlementDate: d(2024, 3, 1), SettlementKommune: "0301",
			SettledByAgreement: true,
		}},
	}}}}
}

// natsAppendHTTP stores req through nird's API and returns the first position.
func natsAppendHTTP(t *testing.T, n *nirdtest.Nird, token string, req *nirv1.AppendRequest) *nirv1.Position {
	t.Helper()
	var opts []connect.ClientOption
	if token != "" {
		opts = append(opts, connect.WithInterceptors(auth.BearerInterceptor(token)))
	}
	res, err := nirv1connect.NewRegistrationServiceClient(http.DefaultClient, n.URL(), opts...).Append(natsCtx(t, 20*time.Second), connect.NewRequest(req))
	if err != nil {
		t.Fatalf("append over HTTP: %v", err)
	}
	return res.Msg.GetPositions()[0]
}

// natsAppendRequest is an append request message of case system c, on its request subject
// nir.cmd.append.<user>, with a bearer token.
func natsAppendRequest(t *testing.T, c *natsConn, token string, req *nirv1.AppendRequest) *nats.Msg {
	t.Helper()
	m := nats.NewMsg(natsingress.RequestSubject(c.user))
	var err error
	if m.Data, err = proto.Marshal(req); err != nil {
		t.Fatal(err)
	}
	if token != "" {
		m.Header.Set("Authorization", "Bearer "+token)
	}
	return m
}

// natsAppendOK sends req as case system c and expects it stored.
func natsAppendOK(t *testing.T, c *natsConn, token string, req *nirv1.AppendRequest) *nirv1.Position {
	t.Helper()
	reply, err := c.nc.RequestMsgWithContext(natsCtx(t, 20*time.Second), natsAppendRequest(t, c, token, req))
	if err != nil {
		t.Fatalf("append over NATS: %v", err)
	}
	if code := reply.Header.Get(micro.ErrorCodeHeader); code != "" {
		t.Fatalf("append over NATS: %s %s", code, reply.Header.Get(micro.ErrorHeader))
	}
	var res nirv1.AppendResponse
	if err := proto.Unmarshal(reply.Data, &res); err != nil || len(res.GetPositions()) == 0 {
		t.Fatalf("append over NATS: reply %q: %v", reply.Data, err)
	}
	return res.GetPositions()[0]
}

// natsAlive fails the test if nird has exited or no longer answers on its API.
func natsAlive(t *testing.T, n *nirdtest.Nird) {
	t.Helper()
	select {
	case <-n.Done:
		t.Fatal("nird exited")
	default:
	}
	resp, err := http.Get(n.URL() + "/healthz")
	if err != nil {
		t.Fatalf("nird's API: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("nird's API: /healthz %d", resp.StatusCode)
	}
}

// natsNationalID is a national id an attacker puts in a reply subject, so that nird would
// write it to its log if it logged the subjects it refuses.
var natsNationalID = rules.SyntheticFodselsnummer(rules.Date{Y: 1990, M: 7, D: 14}, 42)

// natsNoNationalIDInLog fails the test if nird's log holds natsNationalID.
func natsNoNationalIDInLog(t *testing.T, n *nirdtest.Nird) {
	t.Helper()
	time.Sleep(100 * time.Millisecond) // the refusal comes back to nird asynchronously
	for _, l := range n.Logs() {
		if strings.Contains(l, natsNationalID) {
			t.Fatalf("nird logged a national id from a reply subject: %s", l)
		}
	}
}

// natsTokens writes a token file with one kommune token for Oslo and returns its path and
// the token.
func natsTokens(t *testing.T) (file, oslo string) {
	t.Helper()
	oslo, entry, err := auth.GenerateToken(auth.Principal{Name: "oslo-fagsystem", Role: auth.RoleKommune, Kommune: "0301"})
	if err != nil {
		t.Fatal(err)
	}
	file = filepath.Join(t.TempDir(), "tokens.json")
	if err := auth.WriteEntries(file, []auth.Entry{entry}); err != nil {
		t.Fatal(err)
	}
	return file, oslo
}

// natsAs connects to nird's embedded server as user, with the context nird wrote.
func natsAs(t *testing.T, n *nirdtest.Nird, user string) *natsConn {
	t.Helper()
	url, opts, err := natsauth.ReadContext(n.NATSContext(user))
	if err != nil {
		t.Fatal(err)
	}
	c, err := natsDial(t, url, opts...)
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	c.user = user
	return c
}

// TestNATS_Embedded attacks nird's own NATS server, with the TCP listener an operator
// turns on for the nats CLI and case systems (nird has none by default), with a token
// file and without one (development mode).
func TestNATS_Embedded(t *testing.T) {
	tokens, tokOslo := natsTokens(t)
	n := nirdtest.Start(t, "--data", t.TempDir(), "--tokens", tokens, "--nats-case-systems", "oslo,bergen")
	dev := nirdtest.Start(t, "--data", t.TempDir(), "--nats-case-systems", "oslo")
	if n.NATS == "" || dev.NATS == "" {
		t.Fatal("nird started without the NATS listener the test asked for")
	}
	reader := natsAs(t, n, "reader")
	osloNATS := natsAs(t, n, "oslo")
	key := natsAppendHTTP(t, n, tokOslo, natsRegistration(0)).GetPersonKey()
	before := natsStream(t, reader)
	if before.State.Msgs == 0 {
		t.Fatal("the reader sees an empty stream")
	}

	for name, nd := range map[string]*nirdtest.Nird{"Tokens": n, "DevelopmentMode": dev} {
		t.Run(name+"/Anonymous/Connect", func(t *testing.T) { natsAnonymous(t, nd.NATS) })
	}
	t.Run("Anonymous/ReadEvents", func(t *testing.T) {
		c := natsAnonymous(t, n.NATS)
		if c == nil {
			return
		}
		sub, _ := c.nc.SubscribeSync("nir.ev.>")
		_ = c.nc.Flush()
		natsAppendHTTP(t, n, tokOslo, natsRegistration(1))
		if m, err := sub.NextMsg(2 * time.Second); err == nil {
			t.Errorf("read an event (%d bytes, national id in clear) on %s", len(m.Data), m.Subject)
		}
	})
	t.Run("Anonymous/SniffAppendRequests", func(t *testing.T) {
		c := natsAnonymous(t, n.NATS)
		if c == nil {
			return
		}
		sub, _ := c.nc.SubscribeSync(natsingress.EndpointSubject)
		_ = c.nc.Flush()
		natsAppendOK(t, osloNATS, tokOslo, natsRegistration(2))
		if m, err := sub.NextMsg(2 * time.Second); err == nil && m.Header.Get("Authorization") != "" {
			t.Error("saw a case system's bearer token")
		}
	})
	t.Run("Anonymous/PublishForgedEvent", func(t *testing.T) {
		c := natsAnonymous(t, n.NATS)
		if c == nil {
			return
		}
		if ack, err := c.js.Publish(natsCtx(t, 2*time.Second), "nir.ev."+key, []byte("forged")); err == nil {
			t.Errorf("forged event stored at sequence %d", ack.Sequence)
		}
	})
	t.Run("Anonymous/UpdateStream", func(t *testing.T) {
		c := natsAnonymous(t, n.NATS)
		if c == nil {
			return
		}
		cfg := before.Config
		cfg.MaxMsgsPerSubject = 1
		if _, err := c.js.UpdateStream(natsCtx(t, 2*time.Second), cfg); err == nil {
			t.Error("stream updated to one message per person")
		}
	})
	t.Run("Anonymous/DeleteStream", func(t *testing.T) {
		c := natsAnonymous(t, n.NATS)
		if c == nil {
			return
		}
		if err := c.js.DeleteStream(natsCtx(t, 2*time.Second), eventstore.StreamName); err == nil {
			t.Error("stream deleted")
		}
	})
	t.Run("UnknownKey/Connect", func(t *testing.T) {
		kp, _ := nkeys.CreateUser()
		pub, _ := kp.PublicKey()
		if c, err := natsDial(t, n.NATS, nats.Nkey(pub, kp.Sign)); err == nil {
			c.nc.Close()
			t.Fatal("a key nird did not make connected")
		} else if !errors.Is(err, nats.ErrAuthorization) {
			t.Fatalf("connect = %v, want an authorization violation", err)
		}
	})

	// The read-only user reads, and can do nothing else.
	t.Run("Reader/Reads", func(t *testing.T) {
		st, err := reader.js.Stream(natsCtx(t, 5*time.Second), eventstore.StreamName)
		if err != nil {
			t.Fatal(err)
		}
		if m, err := st.GetLastMsgForSubject(natsCtx(t, 5*time.Second), "nir.ev."+key); err != nil || len(m.Data) == 0 {
			t.Fatalf("get the person's last event: %v", err)
		}
		cons, err := reader.js.OrderedConsumer(natsCtx(t, 5*time.Second), eventstore.StreamName, jetstream.OrderedConsumerConfig{})
		if err != nil {
			t.Fatal(err)
		}
		if m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second)); err != nil || len(m.Data()) == 0 {
			t.Fatalf("ordered consumer: %v", err)
		}
	})
	t.Run("Reader/PublishForgedEvent", func(t *testing.T) { reader.refusedPublish(t, "nir.ev."+key) })
	t.Run("Reader/PublishForgedCheckpoint", func(t *testing.T) { reader.refusedPublish(t, eventstore.CheckpointSubject) })
	t.Run("Reader/DeleteCheckpoints", func(t *testing.T) {
		reader.refusedPublish(t, "$JS.API.STREAM.DELETE."+eventstore.CheckpointStreamName)
	})
	t.Run("Reader/UpdateStream", func(t *testing.T) {
		reader.refusedPublish(t, "$JS.API.STREAM.UPDATE."+eventstore.StreamName)
	})
	t.Run("Reader/DeleteStream", func(t *testing.T) {
		reader.refusedPublish(t, "$JS.API.STREAM.DELETE."+eventstore.StreamName)
	})
	t.Run("Reader/PurgeStream", func(t *testing.T) {
		reader.refusedPublish(t, "$JS.API.STREAM.PURGE."+eventstore.StreamName)
	})
	t.Run("Reader/DeleteMessage", func(t *testing.T) {
		reader.refusedPublish(t, "$JS.API.STREAM.MSG.DELETE."+eventstore.StreamName)
	})
	t.Run("Reader/CreateStream", func(t *testing.T) { reader.refusedPublish(t, "$JS.API.STREAM.CREATE.SHADOW") })
	// The persons' data keys (DOMAIN.md Product decisions 15): destroying one erases a
	// person, writing one would seal a person's next ids with a key of the writer's. The
	// reader reads them wrapped (for backups), and can do nothing else with them.
	keysStream := "KV_" + eventstore.KeyBucket
	t.Run("Reader/SniffDataKeyWrites", func(t *testing.T) { reader.refusedSubscribe(t, "$KV."+eventstore.KeyBucket+".>") })
	t.Run("Reader/WriteDataKey", func(t *testing.T) { reader.refusedPublish(t, "$KV."+eventstore.KeyBucket+"."+key) })
	t.Run("Reader/UpdateDataKeyStream", func(t *testing.T) { reader.refusedPublish(t, "$JS.API.STREAM.UPDATE."+keysStream) })
	t.Run("Reader/DeleteDataKeyStream", func(t *testing.T) { reader.refusedPublish(t, "$JS.API.STREAM.DELETE."+keysStream) })
	t.Run("Reader/DeleteDataKeyMessage", func(t *testing.T) { reader.refusedPublish(t, "$JS.API.STREAM.MSG.DELETE."+keysStream) })
	t.Run("Reader/PurgeDataKeys", func(t *testing.T) { reader.refusedPublish(t, "$JS.API.STREAM.PURGE."+keysStream) })
	t.Run("Reader/SendAppendRequest", func(t *testing.T) { reader.refusedPublish(t, natsingress.RequestSubject("oslo")) })
	t.Run("Reader/SendAppendRequestAsReader", func(t *testing.T) { reader.refusedPublish(t, natsingress.RequestSubject("reader")) })
	t.Run("Reader/SniffAppendRequests", func(t *testing.T) { reader.refusedSubscribe(t, natsingress.EndpointSubject) })
	t.Run("Reader/SniffCaseSystemReplies", func(t *testing.T) { reader.refusedSubscribe(t, "_INBOX.oslo.>") })
	t.Run("Reader/SniffAllInboxes", func(t *testing.T) { reader.refusedSubscribe(t, "_INBOX.>") })
	t.Run("Reader/SniffNirdInbox", func(t *testing.T) { reader.refusedSubscribe(t, eventstore.InboxPrefix+".>") })

	// The micro service's discovery answers any reply subject, so only the ingress's own
	// connection, which may not publish events, keeps its answer off the stream.
	t.Run("Reader/ServiceDiscoveryReplyIntoStream", func(t *testing.T) {
		was := natsStream(t, reader).State
		for _, subj := range []string{"$SRV.PING", "$SRV.INFO.nir", "$SRV.STATS"} {
			for _, reply := range []string{"nir.ev." + key, "nir.ev." + natsNationalID} {
				if err := reader.nc.PublishRequest(subj, reply, nil); err != nil {
					t.Fatal(err)
				}
			}
		}
		// Discovery after them is answered, so they have been handled.
		if _, err := reader.nc.Request("$SRV.PING.nir", nil, 5*time.Second); err != nil {
			t.Fatalf("service discovery: %v", err)
		}
		natsAlive(t, n)
		if now := natsStream(t, reader).State; now.Msgs != was.Msgs {
			t.Fatalf("stream went from %d to %d messages", was.Msgs, now.Msgs)
		}
		natsNoNationalIDInLog(t, n)
	})

	// The reader may create pull consumers only (through nird; natsReaderWritesNothing has
	// the rest). Before, a push consumer delivered wherever its creator said: not into its
	// own stream (the server refuses a cycle), and into the ingress as messages without an
	// inbox to answer, which nird dropped.
	t.Run("Reader/ConsumerDeliversIntoStream", func(t *testing.T) {
		was := natsStream(t, reader).State
		_, err := reader.js.CreateOrUpdatePushConsumer(natsCtx(t, 3*time.Second), eventstore.StreamName, jetstream.ConsumerConfig{
			DeliverSubject: "nir.ev." + strings.Repeat("0f", 32), AckPolicy: jetstream.AckNonePolicy})
		if err == nil {
			time.Sleep(500 * time.Millisecond)
		}
		natsAlive(t, n)
		if now := natsStream(t, reader).State; now.Msgs != was.Msgs {
			t.Fatalf("stream went from %d to %d messages (consumer: %v)", was.Msgs, now.Msgs, err)
		}
	})
	t.Run("Reader/ConsumerDeliversIntoIngress", func(t *testing.T) {
		was := natsStream(t, reader).State
		for _, ack := range []jetstream.AckPolicy{jetstream.AckNonePolicy, jetstream.AckExplicitPolicy} {
			if _, err := reader.js.CreateOrUpdatePushConsumer(natsCtx(t, 3*time.Second), eventstore.StreamName, jetstream.ConsumerConfig{
				DeliverSubject: natsingress.RequestSubject("oslo"), AckPolicy: ack, InactiveThreshold: 5 * time.Second}); err != nil {
				t.Logf("push consumer refused: %v", err)
			}
		}
		time.Sleep(time.Second)
		natsAppendOK(t, osloNATS, tokOslo, natsRegistration(50))
		natsAlive(t, n)
		if now := natsStream(t, reader).State; now.Msgs != was.Msgs+1 {
			t.Fatalf("stream went from %d to %d messages; want only the one appended", was.Msgs, now.Msgs)
		}
	})

	natsReaderWritesNothing(t, reader, n, key)

	// A case system sends requests on its own nir.cmd.append.<user> and gets its own
	// replies, no more.
	t.Run("CaseSystem/Appends", func(t *testing.T) { natsAppendOK(t, osloNATS, tokOslo, natsRegistration(3)) })
	t.Run("CaseSystem/ReadEvents", func(t *testing.T) { osloNATS.refusedSubscribe(t, "nir.ev.>") })
	t.Run("CaseSystem/StreamInfo", func(t *testing.T) {
		osloNATS.refusedPublish(t, "$JS.API.STREAM.INFO."+eventstore.StreamName)
	})
	t.Run("CaseSystem/DirectGet", func(t *testing.T) {
		osloNATS.refusedPublish(t, "$JS.API.DIRECT.GET."+eventstore.StreamName+".nir.ev."+key)
	})
	t.Run("CaseSystem/PublishForgedEvent", func(t *testing.T) { osloNATS.refusedPublish(t, "nir.ev."+key) })
	t.Run("CaseSystem/PublishForgedCheckpoint", func(t *testing.T) { osloNATS.refusedPublish(t, eventstore.CheckpointSubject) })
	t.Run("CaseSystem/DeleteStream", func(t *testing.T) {
		osloNATS.refusedPublish(t, "$JS.API.STREAM.DELETE."+eventstore.StreamName)
	})
	t.Run("CaseSystem/SniffAppendRequests", func(t *testing.T) { osloNATS.refusedSubscribe(t, natsingress.EndpointSubject) })
	t.Run("CaseSystem/SniffOtherCaseSystemRequests", func(t *testing.T) {
		osloNATS.refusedSubscribe(t, natsingress.RequestSubject("bergen"))
	})
	t.Run("CaseSystem/SendAsOtherCaseSystem", func(t *testing.T) { osloNATS.refusedPublish(t, natsingress.RequestSubject("bergen")) })
	t.Run("CaseSystem/SendOnBareSubject", func(t *testing.T) { osloNATS.refusedPublish(t, "nir.cmd.append") })
	t.Run("CaseSystem/SendBelowOwnSubject", func(t *testing.T) {
		osloNATS.refusedPublish(t, natsingress.RequestSubject("oslo")+".x")
	})
	t.Run("CaseSystem/SniffOtherCaseSystemReplies", func(t *testing.T) { osloNATS.refusedSubscribe(t, "_INBOX.bergen.>") })
	t.Run("CaseSystem/SniffAllInboxes", func(t *testing.T) { osloNATS.refusedSubscribe(t, "_INBOX.>") })
	t.Run("CaseSystem/SniffNirdInbox", func(t *testing.T) { osloNATS.refusedSubscribe(t, eventstore.InboxPrefix+".>") })
	t.Run("CaseSystem/ServiceDiscovery", func(t *testing.T) { osloNATS.refusedPublish(t, "$SRV.PING") })

	// A reply subject on the stream, the JetStream API or nird's inbox gets nothing, and
	// nird goes on serving. The case system is in an account of its own: the server hands
	// nird the request with a reply subject of its own making and delivers the answer back
	// into the case system's account, where the subject is no stream's; the request itself
	// is the case system's, stored as any other (natsReplyStoredNothing).
	person := 100
	for name, reply := range map[string]string{
		"Stream":         "nir.ev." + key,
		"NewPerson":      "nir.ev." + strings.Repeat("ef", 32),
		"JetStreamAPI":   "$JS.API.STREAM.DELETE." + eventstore.StreamName,
		"NirdInbox":      eventstore.InboxPrefix + ".x.1",
		"NoReplySubject": "",
		"NationalID":     "nir.ev." + natsNationalID,
	} {
		t.Run("CaseSystem/ReplySubjectInto"+name, func(t *testing.T) {
			for _, nd := range []*nirdtest.Nird{n, dev} {
				c := natsAs(t, nd, "oslo")
				r := natsAs(t, nd, "reader")
				was := natsStream(t, r).State
				// A valid request: only its reply subject is wrong.
				m := natsAppendRequest(t, c, tokOslo, natsRegistration(person))
				m.Reply = reply
				if err := c.nc.PublishMsg(m); err != nil {
					t.Fatal(err)
				}
				// A request after it is answered, so the one before has been handled.
				natsAppendOK(t, c, tokOslo, natsRegistration(person+1))
				person += 2
				natsAlive(t, nd)
				natsReplyStoredNothing(t, r, was, reply, tokOslo)
				natsNoNationalIDInLog(t, nd)
			}
		})
	}

	after := natsStream(t, reader)
	if after.Config.MaxMsgsPerSubject != before.Config.MaxMsgsPerSubject || after.Config.MaxAge != before.Config.MaxAge || !after.Config.DenyDelete || !after.Config.DenyPurge {
		t.Errorf("stream config changed: %+v", after.Config)
	}
	if after.State.FirstSeq != 1 || after.State.Msgs != after.State.LastSeq {
		t.Errorf("stream state %+v: a message is gone", after.State)
	}
	natsAlive(t, n)
	natsAlive(t, dev)
}

// TestNATS_ReplyIntoOtherCaseSystemsInbox: case system Oslo, with its own valid token, sends
// a valid append request whose reply subject is in case system Bergen's inbox. NATS lets it
// (any _INBOX. subject may be a reply subject), and before the fix nird's ingress checked
// only the _INBOX. prefix: it stored Oslo's request and published the answer ("stored", with
// positions, or an error) into Bergen's inbox. A Bergen client listening on a fixed reply
// subject would take it for the answer to a request of its own, and lose or double accepted
// data. Now each case system sends on its own subject nir.cmd.append.<user> (NATS lets it
// publish to no other) from an account of its own: the server hands nird the request with
// a reply subject of its own making and delivers the answer back into Oslo's account, onto
// the subject Oslo named, where only Oslo could listen. Bergen receives nothing, and Oslo's
// requests on its own inbox are served as before. (With case systems in nird's account, the
// ingress answered only under _INBOX.<user>. and dropped the others unprocessed; it still
// does so for such a request.) Found by a helper probing the NATS ingress.
func TestNATS_ReplyIntoOtherCaseSystemsInbox(t *testing.T) {
	tokens, tokOslo, _ := floodTokens(t)
	n := nirdtest.Start(t, "--data", t.TempDir(), "--tokens", tokens, "--nats-case-systems", "oslo,bergen")
	natsReplyIntoOtherInbox(t, natsAs(t, n, "oslo"), natsAs(t, n, "bergen"), natsAs(t, n, "reader"), n, tokOslo, 0)
}

// natsReplyIntoOtherInbox is the attack of TestNATS_ReplyIntoOtherCaseSystemsInbox: oslo
// sends valid requests (persons person…) with reply subjects in bergen's inbox, then one
// on its own; bergen, listening on all of its inbox, must get nothing. Each came from
// oslo's own account, so each is oslo's request, stored as any other of oslo's: its answer
// went back into oslo's account.
func natsReplyIntoOtherInbox(t *testing.T, oslo, bergen, reader *natsConn, n *nirdtest.Nird, tokOslo string, person int) {
	t.Helper()
	bergenInbox := natsingress.Inbox(bergen.user)
	sub, err := bergen.nc.SubscribeSync(bergenInbox + ".>")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := bergen.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	was := natsStream(t, reader).State
	for i, reply := range []string{
		bergenInbox + ".fixed",                               // a client's fixed reply subject
		bergen.nc.NewRespInbox(),                             // one of Bergen's own inboxes
		bergenInbox + "." + natsNationalID,                   // not to be logged
		natsingress.Inbox(bergen.user+"x") + ".fixed",        // no one's inbox, Bergen's prefix
		natsingress.Inbox(oslo.user) + "x." + natsNationalID, // Oslo's prefix, not its inbox
	} {
		m := natsAppendRequest(t, oslo, tokOslo, natsRegistration(person+i))
		m.Reply = reply
		if err := oslo.nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	// Oslo's own request after them is answered, so those before have been handled.
	natsAppendOK(t, oslo, tokOslo, natsRegistration(person+10))
	if m, err := sub.NextMsg(500 * time.Millisecond); err == nil {
		t.Errorf("Bergen received an answer to Oslo's request on %s: %d bytes, error %q %q", m.Subject, len(m.Data),
			m.Header.Get(micro.ErrorCodeHeader), m.Header.Get(micro.ErrorHeader))
	}
	if now := natsStream(t, reader).State; now.Msgs != was.Msgs+6 {
		t.Errorf("stream went from %d to %d messages; want Oslo's 6 requests', answered into Oslo's own account", was.Msgs, now.Msgs)
	}
	natsAlive(t, n)
	natsNoNationalIDInLog(t, n)
}

// natsPoll calls f until it returns nil, each attempt with a short deadline (a JetStream
// request made while a cluster has no leader is never answered), and fails the test with
// f's last error after d.
func natsPoll(t *testing.T, d time.Duration, what string, f func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := f(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// natsDeployUser connects to the cluster as a user of deploy/nats/accounts.conf, with the
// inbox prefix that file gives it.
func natsDeployUser(t *testing.T, urls string, creds deploytest.Credentials, user string) *natsConn {
	t.Helper()
	opts := []nats.Option{nats.UserInfo(user, creds.Password(user))}
	if p := deploytest.InboxPrefix(user); p != "" {
		opts = append(opts, nats.CustomInboxPrefix(p))
	}
	c, err := natsDial(t, urls, opts...)
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	c.user = user
	return c
}

// TestNATS_Deploy attacks deploy/'s 3-node cluster configuration, run as nats-server
// processes built from the pinned module, with nird as a process on it as the users
// nird and ingress: the least-privileged users (a case system, the reader) cannot read,
// write or manage what is not theirs, and cannot make nird do it for them.
func TestNATS_Deploy(t *testing.T) {
	creds := deploytest.SetCredentials(t) // in the environment, for the servers
	procs := deploytest.RunProcesses(t, deploytest.BuildServer(t), "cluster-1.conf", "cluster-2.conf", "cluster-3.conf")
	urls := deploytest.URLs(procs)
	nirdUser := natsDeployUser(t, urls, creds, "nird")
	natsPoll(t, 30*time.Second, "JetStream on the cluster", func(ctx context.Context) error {
		_, err := nirdUser.js.AccountInfo(ctx)
		return err
	})
	tokens, tokOslo := natsTokens(t)
	n := nirdtest.Start(t, "--data", t.TempDir(), "--tokens", tokens, "--nats-url", urls, "--replicas", "3",
		"--nats-user", "nird", "--nats-password", creds.Nird,
		"--nats-ingress-user", "ingress", "--nats-ingress-password", creds.Ingress,
		"--nats-case-systems", "oslo-fagsystem,bergen-fagsystem")

	oslo := natsDeployUser(t, urls, creds, "oslo-fagsystem")
	bergen := natsDeployUser(t, urls, creds, "bergen-fagsystem")
	reader := natsDeployUser(t, urls, creds, "reader")
	var key string
	natsPoll(t, 20*time.Second, "the ingress answers", func(ctx context.Context) error {
		reply, err := oslo.nc.RequestMsgWithContext(ctx, natsAppendRequest(t, oslo, tokOslo, natsRegistration(0)))
		if err != nil {
			return err
		}
		var res nirv1.AppendResponse
		if err := proto.Unmarshal(reply.Data, &res); err != nil || len(res.GetPositions()) == 0 {
			return errors.New("no position in " + reply.Header.Get(micro.ErrorHeader))
		}
		key = res.GetPositions()[0].GetPersonKey()
		return nil
	})

	t.Run("Anonymous/Connect", func(t *testing.T) {
		for _, p := range procs {
			natsAnonymous(t, p.URL)
		}
	})
	t.Run("CaseSystem/ReadEvents", func(t *testing.T) { oslo.refusedSubscribe(t, "nir.ev.>") })
	t.Run("CaseSystem/StreamInfo", func(t *testing.T) {
		oslo.refusedPublish(t, "$JS.API.STREAM.INFO."+eventstore.StreamName)
	})
	t.Run("CaseSystem/DirectGet", func(t *testing.T) {
		oslo.refusedPublish(t, "$JS.API.DIRECT.GET."+eventstore.StreamName+".nir.ev."+key)
	})
	t.Run("CaseSystem/PublishForgedEvent", func(t *testing.T) { oslo.refusedPublish(t, "nir.ev."+key) })
	t.Run("CaseSystem/UpdateStream", func(t *testing.T) {
		oslo.refusedPublish(t, "$JS.API.STREAM.UPDATE."+eventstore.StreamName)
	})
	t.Run("CaseSystem/SniffAppendRequests", func(t *testing.T) { oslo.refusedSubscribe(t, natsingress.EndpointSubject) })
	t.Run("CaseSystem/SendAsOtherCaseSystem", func(t *testing.T) {
		oslo.refusedPublish(t, natsingress.RequestSubject("bergen-fagsystem"))
	})
	t.Run("CaseSystem/SendOnBareSubject", func(t *testing.T) { oslo.refusedPublish(t, "nir.cmd.append") })
	// Oslo, with its own valid token, names Bergen's inbox as reply subject.
	t.Run("CaseSystem/ReplySubjectIntoOtherCaseSystemInbox", func(t *testing.T) {
		natsReplyIntoOtherInbox(t, oslo, bergen, reader, n, tokOslo, 300)
	})
	t.Run("CaseSystem/SniffOtherCaseSystemReplies", func(t *testing.T) {
		oslo.refusedSubscribe(t, natsingress.ReplyPrefix+"bergen-fagsystem.>")
	})
	t.Run("CaseSystem/SniffAllInboxes", func(t *testing.T) { oslo.refusedSubscribe(t, "_INBOX.>") })
	t.Run("CaseSystem/SniffNirdInbox", func(t *testing.T) { oslo.refusedSubscribe(t, eventstore.InboxPrefix+".>") })
	t.Run("CaseSystem/SniffReaderInbox", func(t *testing.T) { oslo.refusedSubscribe(t, natsingress.ReplyPrefix+"reader.>") })
	// Bergen listens on all it may while Oslo appends over NATS and reads over HTTP (nird's
	// JetStream reads): nothing of it reaches Bergen.
	t.Run("CaseSystem/SniffWhileOthersWork", func(t *testing.T) {
		sub, err := bergen.nc.SubscribeSync(natsingress.ReplyPrefix + "bergen-fagsystem.>")
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = sub.Unsubscribe() }()
		if err := bergen.nc.Flush(); err != nil {
			t.Fatal(err)
		}
		pos := natsAppendOK(t, oslo, tokOslo, natsRegistration(1))
		_, err = nirv1connect.NewRegistrationServiceClient(http.DefaultClient, n.URL(), connect.WithInterceptors(auth.BearerInterceptor(tokOslo))).
			History(natsCtx(t, 10*time.Second), connect.NewRequest(&nirv1.HistoryRequest{Person: &nirv1.PersonRef{PersonKey: pos.GetPersonKey()}}))
		if err != nil {
			t.Fatalf("History: %v", err)
		}
		if m, err := sub.NextMsg(500 * time.Millisecond); err == nil {
			t.Fatalf("Bergen received %d bytes on %s", len(m.Data), m.Subject)
		}
	})
	t.Run("Reader/PublishForgedEvent", func(t *testing.T) { reader.refusedPublish(t, "nir.ev."+key) })
	t.Run("Reader/PublishForgedCheckpoint", func(t *testing.T) { reader.refusedPublish(t, eventstore.CheckpointSubject) })
	t.Run("Reader/DeleteCheckpoints", func(t *testing.T) {
		reader.refusedPublish(t, "$JS.API.STREAM.DELETE."+eventstore.CheckpointStreamName)
	})
	t.Run("Reader/SniffCaseSystemReplies", func(t *testing.T) {
		reader.refusedSubscribe(t, natsingress.ReplyPrefix+"oslo-fagsystem.>")
	})
	t.Run("Reader/SniffNirdInbox", func(t *testing.T) { reader.refusedSubscribe(t, eventstore.InboxPrefix+".>") })
	t.Run("Reader/ServiceDiscoveryReplyIntoStream", func(t *testing.T) {
		was := natsStream(t, reader).State
		for _, subj := range []string{"$SRV.PING", "$SRV.INFO.nir", "$SRV.STATS"} {
			for _, reply := range []string{"nir.ev." + key, "nir.ev." + natsNationalID} {
				if err := reader.nc.PublishRequest(subj, reply, nil); err != nil {
					t.Fatal(err)
				}
			}
		}
		if _, err := reader.nc.Request("$SRV.PING.nir", nil, 5*time.Second); err != nil {
			t.Fatalf("service discovery: %v", err)
		}
		natsAlive(t, n)
		if now := natsStream(t, reader).State; now.Msgs != was.Msgs {
			t.Fatalf("stream went from %d to %d messages", was.Msgs, now.Msgs)
		}
		natsNoNationalIDInLog(t, n)
	})

	natsReaderWritesNothing(t, reader, n, key)

	// The attack of the issue: the least-privileged case system, without a token even,
	// names the event subjects as reply subject.
	person := 100
	for _, tt := range []struct{ name, reply, token string }{
		{"ReplySubjectIntoStream", "nir.ev." + key, tokOslo},
		{"ReplySubjectIntoStreamWithoutToken", "nir.ev." + strings.Repeat("ef", 32), ""},
		{"ReplySubjectIntoJetStreamAPI", "$JS.API.STREAM.DELETE." + eventstore.StreamName, tokOslo},
		{"ReplySubjectIntoNirdInbox", eventstore.InboxPrefix + ".x.1", tokOslo},
		{"ReplySubjectWithNationalID", "nir.ev." + natsNationalID, tokOslo},
	} {
		t.Run("CaseSystem/"+tt.name, func(t *testing.T) {
			was := natsStream(t, reader).State
			m := natsAppendRequest(t, oslo, tt.token, natsRegistration(person))
			m.Reply = tt.reply
			if err := oslo.nc.PublishMsg(m); err != nil {
				t.Fatal(err)
			}
			natsAppendOK(t, oslo, tokOslo, natsRegistration(person+1))
			person += 2
			natsAlive(t, n)
			natsReplyStoredNothing(t, reader, was, tt.reply, tt.token)
			natsNoNationalIDInLog(t, n)
		})
	}
	natsAlive(t, n)
}

// natsReplyStoredNothing checks the stream after a request with reply subject reply and
// token, then an answered one, sent when the stream's state was was: no answer was stored
// on reply, and the stream holds the answered request's event and the first request's
// only if that one was a valid request of the case system (it names a reply subject, the
// server let it through, and its token is valid).
func natsReplyStoredNothing(t *testing.T, reader *natsConn, was jetstream.StreamState, reply, token string) {
	t.Helper()
	want := was.Msgs + 1
	if reply != "" && !strings.HasPrefix(reply, "$JS.") && token != "" {
		want++
	}
	// The first request may still be served when the second's answer has come (each is
	// served in a goroutine of its own).
	natsPoll(t, 10*time.Second, "the case system's requests stored", func(context.Context) error {
		if now := natsStream(t, reader).State; now.Msgs != want {
			return fmt.Errorf("stream went from %d to %d messages; want %d: the case system's requests' events only", was.Msgs, now.Msgs, want)
		}
		return nil
	})
	if subj, ok := strings.CutPrefix(reply, "nir.ev."); ok {
		st, err := reader.js.Stream(natsCtx(t, 5*time.Second), eventstore.StreamName)
		if err != nil {
			t.Fatal(err)
		}
		m, err := st.GetLastMsgForSubject(natsCtx(t, 5*time.Second), reply)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
		case err != nil:
			t.Fatal(err)
		case m.Sequence > was.LastSeq:
			t.Fatalf("the answer was stored on the reply subject (nir.ev.%d bytes of key): sequence %d", len(subj), m.Sequence)
		}
	}
}

// floodTokens writes a token file with one kommune token for Oslo and one for Bergen.
func floodTokens(t *testing.T) (file, oslo, bergen string) {
	t.Helper()
	oslo, eo, err := auth.GenerateToken(auth.Principal{Name: "oslo-fagsystem", Role: auth.RoleKommune, Kommune: "0301"})
	if err != nil {
		t.Fatal(err)
	}
	bergen, eb, err := auth.GenerateToken(auth.Principal{Name: "bergen-fagsystem", Role: auth.RoleKommune, Kommune: "4601"})
	if err != nil {
		t.Fatal(err)
	}
	file = filepath.Join(t.TempDir(), "tokens.json")
	if err := auth.WriteEntries(file, []auth.Entry{eo, eb}); err != nil {
		t.Fatal(err)
	}
	return file, oslo, bergen
}

// floodEvents is one request of k valid events for the person key.
func floodEvents(key string, k int) *nirv1.AppendRequest {
	r := &nirv1.AppendRequest{}
	for i := range k {
		r.Registrations = append(r.Registrations, &nirv1.Registration{Person: &nirv1.PersonRef{PersonKey: key}, Event: &nirv1.Event{
			Id: ulid.Make().String(), Kommune: "0301",
			Payload: &nirv1.Event_UtdanningsbakgrunnRegistered{UtdanningsbakgrunnRegistered: &nirv1.UtdanningsbakgrunnRegistered{
				UpperSecondaryCompleted: i%2 == 0, Date: &nirv1.Date{Year: 2024, Month: 5, Day: 1}}}}})
	}
	return r
}

// bergenRegistration registers a new person in kommune 4601.
func bergenRegistration(i int) *nirv1.AppendRequest {
	r := natsRegistration(i)
	e := r.Registrations[0].Event
	e.Kommune = "4601"
	p := e.GetPersonRegistered()
	p.SettlementKommune = "4601"
	p.Fodselsnummer = rules.SyntheticFodselsnummer(rules.Date{Y: 1986, M: 4, D: 1 + i%28}, 8000+i)
	p.BirthDate = &nirv1.Date{Year: 1986, Month: 4, Day: int32(1 + i%28)}
	return r
}

// TestNATS_FloodFromOneCaseSystem: one case system (Oslo) publishes a burst of valid append
// requests on nir.cmd.append.oslo without waiting for the replies; another case system (Bergen)
// then sends one small request. Before the fix the ingress served requests one at a time in
// the order they came, with no limit per case system, and Bergen's request timed out behind
// Oslo's 200 (of 1000 events each; over HTTP it was answered in 34 ms meanwhile). Now the
// ingress admits requests with the API's limits (Oslo's rate and share of requests in
// flight) and serves them beside each other. Found by a helper probing the write side.
func TestNATS_FloodFromOneCaseSystem(t *testing.T) {
	tokens, tokOslo, tokBergen := floodTokens(t)
	n := nirdtest.Start(t, "--data", t.TempDir(), "--tokens", tokens, "--nats-case-systems", "oslo,bergen")
	oslo := natsAs(t, n, "oslo")
	bergen := natsAs(t, n, "bergen")
	key := natsAppendOK(t, oslo, tokOslo, natsRegistration(0)).GetPersonKey()
	natsAppendOK(t, bergen, tokBergen, bergenRegistration(0))

	// Oslo's burst: 200 requests of 1000 events each, replies to an inbox nobody reads.
	inbox := oslo.nc.NewRespInbox()
	for range 200 {
		m := natsAppendRequest(t, oslo, tokOslo, floodEvents(key, 1000))
		m.Reply = inbox
		if err := oslo.nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := oslo.nc.Flush(); err != nil {
		t.Fatal(err)
	}

	t0 := time.Now()
	reply, err := bergen.nc.RequestMsgWithContext(natsCtx(t, 5*time.Second), natsAppendRequest(t, bergen, tokBergen, bergenRegistration(1)))
	if err != nil {
		t.Fatalf("Bergen's append behind Oslo's burst: %v after %v", err, time.Since(t0).Round(time.Millisecond))
	}
	if code := reply.Header.Get(micro.ErrorCodeHeader); code != "" {
		t.Fatalf("Bergen's append behind Oslo's burst: %s %s", code, reply.Header.Get(micro.ErrorHeader))
	}
	t.Logf("Bergen answered after %v", time.Since(t0).Round(time.Millisecond))
	natsAlive(t, n)
}

// TestAppend_OnePersonWithoutBound: a kommune appends valid events to one of its own persons,
// each request within every limit, to grow the person without end. Before the fix nothing
// bounded one person's events, and an append that missed the history cache read and folded
// all of them: a helper's probe took one person to 500 000 events in 42 s, after which one
// append of one event took 9 s and nird held 2.4 GB. Now a request that would take a person
// past --max-person-events is refused with ResourceExhausted, over HTTP and NATS, naming the
// field and no id, and the person's other appends stay answered.
func TestAppend_OnePersonWithoutBound(t *testing.T) {
	tokens, tokOslo, _ := floodTokens(t)
	n := nirdtest.Start(t, "--data", t.TempDir(), "--tokens", tokens, "--nats-case-systems", "oslo", "--max-person-events", "50")
	oslo := natsAs(t, n, "oslo")
	first := natsRegistration(0)
	fnr := first.Registrations[0].Event.GetPersonRegistered().GetFodselsnummer()
	key := natsAppendHTTP(t, n, tokOslo, first).GetPersonKey()
	natsAppendHTTP(t, n, tokOslo, floodEvents(key, 49))
	client := nirv1connect.NewRegistrationServiceClient(http.DefaultClient, n.URL(), connect.WithInterceptors(auth.BearerInterceptor(tokOslo)))
	_, err := client.Append(natsCtx(t, 20*time.Second), connect.NewRequest(floodEvents(key, 1)))
	if connect.CodeOf(err) != connect.CodeResourceExhausted || !strings.Contains(err.Error(), "registrations[0]") || strings.Contains(err.Error(), fnr) {
		t.Fatalf("an event past --max-person-events over HTTP: %v, want ResourceExhausted naming registrations[0] and no id", err)
	}
	reply, err := oslo.nc.RequestMsgWithContext(natsCtx(t, 20*time.Second), natsAppendRequest(t, oslo, tokOslo, floodEvents(key, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if code := reply.Header.Get(micro.ErrorCodeHeader); code != connect.CodeResourceExhausted.String() {
		t.Fatalf("an event past --max-person-events over NATS: %q %s", code, reply.Header.Get(micro.ErrorHeader))
	}
	natsAppendOK(t, oslo, tokOslo, natsRegistration(1))
	natsAlive(t, n)
	noIDInLog(t, n.Logs(), fnr)
}

// natsStreamsWritten reports the messages of the streams the reader may look at: the
// events, the checkpoints and the data keys.
func natsStreamsWritten(t *testing.T, reader *natsConn) map[string]uint64 {
	t.Helper()
	got := map[string]uint64{}
	for _, name := range []string{eventstore.StreamName, eventstore.CheckpointStreamName, "KV_" + eventstore.KeyBucket} {
		st, err := reader.js.Stream(natsCtx(t, 5*time.Second), name)
		if err != nil {
			t.Fatalf("stream %s as reader: %v", name, err)
		}
		got[name] = st.CachedInfo().State.Msgs
	}
	return got
}

// natsReaderWritesNothing is the read-only user trying to write through the server: the
// JetStream API answers any reply subject a request names, and a push consumer delivers to
// whatever subject its creator names, both as the server, past the user's permissions. A
// reply or a delivery onto nir.ev.<key>, nir.checkpoint or $KV.NIR_KEYS.<id> would be
// stored there: a forged event in a person's history, a forged checkpoint, a data key
// overwritten (the person's data lost). Found by probing each API the reader may use;
// before the reader had an account of its own, each of these was stored.
func natsReaderWritesNothing(t *testing.T, reader *natsConn, n *nirdtest.Nird, key string) {
	targets := []string{"nir.ev." + key, eventstore.CheckpointSubject, "$KV." + eventstore.KeyBucket + "." + strings.Repeat("ab", 16), "$KV." + eventstore.LeaseBucket + ".regelmotor"}
	t.Run("Reader/APIReplyIntoStores", func(t *testing.T) {
		was := natsStreamsWritten(t, reader)
		for _, api := range []struct{ subject, body string }{
			{"$JS.API.INFO", ""},
			{"$JS.API.STREAM.INFO." + eventstore.StreamName, ""},
			{"$JS.API.STREAM.NAMES", ""},
			{"$JS.API.STREAM.MSG.GET." + eventstore.StreamName, `{"seq":1}`},
			{"$JS.API.DIRECT.GET." + eventstore.StreamName, `{"seq":1}`},
			{"$JS.API.CONSUMER.CREATE." + eventstore.StreamName, `{"stream_name":"` + eventstore.StreamName + `","config":{"ack_policy":"none"}}`},
		} {
			for _, reply := range targets {
				// A refused publish is the server's answer too; the count below decides.
				_ = reader.nc.PublishRequest(api.subject, reply, []byte(api.body))
			}
		}
		if err := reader.nc.Flush(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		natsAlive(t, n)
		if now := natsStreamsWritten(t, reader); !maps.Equal(now, was) {
			t.Fatalf("messages went from %v to %v", was, now)
		}
	})
	t.Run("Reader/PushConsumerIntoStores", func(t *testing.T) {
		was := natsStreamsWritten(t, reader)
		for _, stream := range []string{eventstore.StreamName, eventstore.CheckpointStreamName, "KV_" + eventstore.KeyBucket} {
			for _, deliver := range targets {
				if _, err := reader.js.CreateOrUpdatePushConsumer(natsCtx(t, 3*time.Second), stream, jetstream.ConsumerConfig{
					DeliverSubject: deliver, AckPolicy: jetstream.AckNonePolicy, InactiveThreshold: 5 * time.Second}); err == nil {
					t.Errorf("push consumer on %s delivering to %s created", stream, deliver)
				}
			}
		}
		time.Sleep(time.Second)
		natsAlive(t, n)
		if now := natsStreamsWritten(t, reader); !maps.Equal(now, was) {
			t.Fatalf("messages went from %v to %v", was, now)
		}
	})
	// A consumer's name is no key to it: creation never updates an existing consumer (one
	// of nird's, say, whose filter a reader could otherwise narrow).
	t.Run("Reader/UpdateExistingConsumer", func(t *testing.T) {
		ctx := natsCtx(t, 5*time.Second)
		cfg := jetstream.ConsumerConfig{Name: "taken", AckPolicy: jetstream.AckNonePolicy, InactiveThreshold: 5 * time.Second}
		if _, err := reader.js.CreateConsumer(ctx, eventstore.StreamName, cfg); err != nil {
			t.Fatal(err)
		}
		cfg.FilterSubject = "nir.ev." + key
		if _, err := reader.js.CreateOrUpdateConsumer(ctx, eventstore.StreamName, cfg); err == nil {
			t.Fatal("the reader changed an existing consumer's filter")
		}
	})
	// Each creation is a consumer on the server: a flood of them is refused past a rate,
	// and the register goes on.
	t.Run("Reader/ConsumerCreationFlood", func(t *testing.T) {
		const flood = 400
		body := []byte(`{"stream_name":"` + eventstore.StreamName + `","config":{"ack_policy":"none","inactive_threshold":5000000000}}`)
		inbox := nats.NewInbox()
		inbox = natsauth.InboxPrefix(natsauth.Reader) + inbox[strings.Index(inbox, "."):]
		replies, err := reader.nc.SubscribeSync(inbox + ".*")
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = replies.Unsubscribe() }()
		start := time.Now()
		for i := range flood {
			if err := reader.nc.PublishRequest("$JS.API.CONSUMER.CREATE."+eventstore.StreamName, fmt.Sprintf("%s.%d", inbox, i), body); err != nil {
				t.Fatal(err)
			}
		}
		created, refused, last := 0, 0, start
		for created+refused < flood {
			m, err := replies.NextMsg(3 * time.Second)
			if err != nil {
				// The rest were dropped unanswered: nird's subscription holds 256 at most.
				break
			}
			last = time.Now()
			if strings.Contains(string(m.Data), `"error"`) {
				refused++
			} else {
				created++
			}
		}
		elapsed := last.Sub(start)
		t.Logf("%d creations in %s: %d created, %d refused, %d unanswered", flood, elapsed, created, refused, flood-created-refused)
		if most := 100 + int(20*elapsed.Seconds()) + 5; created > most {
			t.Errorf("%d consumers created, want at most %d", created, most)
		}
		natsAlive(t, n)
		// Until the flood's idle consumers go (5 s), they hold the readers' slots
		// (eventstore.ReaderConsumerMax), and the next reader's creation is refused.
		natsPoll(t, 30*time.Second, "the flood's consumers removed", func(ctx context.Context) error {
			info, err := reader.js.Stream(ctx, eventstore.StreamName)
			if err != nil {
				return err
			}
			if c := info.CachedInfo().State.Consumers; c > 20 {
				return fmt.Errorf("%d consumers", c)
			}
			return nil
		})
	})
	// The reader still reads all of it with an ordered consumer, as nirctl does.
	t.Run("Reader/OrderedConsumer", func(t *testing.T) {
		want := natsStreamsWritten(t, reader)[eventstore.StreamName]
		c, err := reader.js.OrderedConsumer(natsCtx(t, 5*time.Second), eventstore.StreamName, jetstream.OrderedConsumerConfig{})
		if err != nil {
			t.Fatal(err)
		}
		for i := uint64(0); i < want; i++ {
			// A pull sent before the new consumer's interest reached the server is answered
			// "no responders" (a CI run failed so at event 1 on a loaded machine, 2026-12-07);
			// the next pull is answered. nirctl reads with Consume, which pulls again by
			// itself. A refused or lost pull still fails: it ends in a timeout.
			_, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
			for try := 1; errors.Is(err, nats.ErrNoResponders) && try < 5; try++ {
				time.Sleep(100 * time.Millisecond)
				_, err = c.Next(jetstream.FetchMaxWait(5 * time.Second))
			}
			if err != nil {
				t.Fatalf("event %d of %d: %v", i+1, want, err)
			}
		}
	})
}

// TestNATS_ReaderHoldsTheConsumerSlots: a stream holds at most 1 000 consumers
// (nats-server's default), nird's own among them: a rebuild or an as-of replay reads with
// one, a projection that falls behind or loses its consumer to a leader change catches up
// with one, the key store watches its bucket with one. The read-only reader, creating
// consumers at the rate nird allows, each idle up to the longest inactive threshold, held
// all 1 000 within 45 s, and nird's rebuild failed ("maximum consumers limit reached").
// Readers now fill only the first eventstore.ReaderConsumerMax.
func TestNATS_ReaderHoldsTheConsumerSlots(t *testing.T) {
	tokOslo, oslo, err := auth.GenerateToken(auth.Principal{Name: "oslo-fagsystem", Role: auth.RoleKommune, Kommune: "0301"})
	if err != nil {
		t.Fatal(err)
	}
	tokOperator, operator, err := auth.GenerateToken(auth.Principal{Name: "drift", Role: auth.RoleOperator})
	if err != nil {
		t.Fatal(err)
	}
	tokens := filepath.Join(t.TempDir(), "tokens.json")
	if err := auth.WriteEntries(tokens, []auth.Entry{oslo, operator}); err != nil {
		t.Fatal(err)
	}
	n := nirdtest.Start(t, "--data", t.TempDir(), "--tokens", tokens, "--nats-case-systems", "oslo")
	reader := natsAs(t, n, "reader")
	// Long enough that a rebuild reads with a consumer, not with direct gets.
	key := natsAppendHTTP(t, n, tokOslo, natsRegistration(0)).GetPersonKey()
	for range 5 {
		natsAppendHTTP(t, n, tokOslo, floodEvents(key, 500))
	}

	ctx := natsCtx(t, 90*time.Second)
	cfg := jetstream.ConsumerConfig{AckPolicy: jetstream.AckNonePolicy, InactiveThreshold: 10 * time.Minute}
	var refusal error
	created := 0
	for created < 1000 && refusal == nil && ctx.Err() == nil {
		_, err := reader.js.CreateConsumer(ctx, eventstore.StreamName, cfg)
		switch {
		case err == nil:
			created++
		case strings.Contains(err.Error(), eventstore.ErrReaderConsumerRate.Error()):
			time.Sleep(50 * time.Millisecond)
		default:
			refusal = err
		}
	}
	held := natsStream(t, reader).State.Consumers
	t.Logf("the reader created %d, the stream holds %d consumers; refused with: %v", created, held, refusal)
	if held > eventstore.ReaderConsumerMax {
		t.Errorf("the reader left the stream holding %d consumers, want at most %d", held, eventstore.ReaderConsumerMax)
	}
	if refusal == nil || !strings.Contains(refusal.Error(), eventstore.ErrReaderConsumersHeld.Error()) {
		t.Errorf("refused with %v, want %q", refusal, eventstore.ErrReaderConsumersHeld)
	}

	admin := nirv1connect.NewAdminServiceClient(http.DefaultClient, n.URL())
	req := connect.NewRequest(&nirv1.RebuildRequest{FromStream: true})
	req.Header().Set("Authorization", "Bearer "+tokOperator)
	rebuild, err := admin.Rebuild(natsCtx(t, 30*time.Second), req)
	if err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	finished := false
	for rebuild.Receive() {
		finished = finished || rebuild.Msg().GetFinished()
	}
	if err := rebuild.Err(); err != nil || !finished {
		t.Fatalf("rebuild from the stream with the reader's consumers held: finished %v, %v", finished, err)
	}
	rebuild.Close()
	natsAppendHTTP(t, n, tokOslo, natsRegistration(1))
	natsAlive(t, n)
}

// TestNATS_ReaderPullHeartbeats: the server sends a waiting pull request's idle heartbeats
// as often as the request names, and nothing bounds that from below. The read-only reader,
// with eight consumers and 600 pull requests on each, every one asking for a heartbeat a
// nanosecond apart, had the server send 1.2 million heartbeats in 3 s on both cores of nird's
// process, and every append timed out. A reader's consumer now holds at most
// eventstore.ReaderMaxWaiting pull requests (the server refuses the rest).
func TestNATS_ReaderPullHeartbeats(t *testing.T) {
	tokens, tokOslo := natsTokens(t)
	n := nirdtest.Start(t, "--data", t.TempDir(), "--tokens", tokens)
	reader := natsAs(t, n, "reader")
	natsAppendHTTP(t, n, tokOslo, natsRegistration(0))

	inbox := nats.NewInbox()
	inbox = natsauth.InboxPrefix(natsauth.Reader) + inbox[strings.Index(inbox, "."):]
	sub, err := reader.nc.Subscribe(inbox+".>", func(*nats.Msg) {})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	_ = sub.SetPendingLimits(-1, -1)
	const consumers, pulls = 8, 600
	var names []string
	for range consumers {
		// A filter no event matches: the pull requests wait.
		c, err := reader.js.CreateConsumer(natsCtx(t, 5*time.Second), eventstore.StreamName, jetstream.ConsumerConfig{
			AckPolicy: jetstream.AckNonePolicy, InactiveThreshold: time.Minute, FilterSubject: "nir.ev." + strings.Repeat("0", 64)})
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, c.CachedInfo().Name)
		for i := range pulls {
			if err := reader.nc.PublishRequest("$JS.API.CONSUMER.MSG.NEXT."+eventstore.StreamName+"."+c.CachedInfo().Name,
				fmt.Sprintf("%s.%s.%d", inbox, c.CachedInfo().Name, i), []byte(`{"batch":1,"expires":600000000000,"idle_heartbeat":1}`)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := reader.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	for _, name := range names {
		c, err := reader.js.Consumer(natsCtx(t, 5*time.Second), eventstore.StreamName, name)
		if err != nil {
			t.Fatal(err)
		}
		if w := c.CachedInfo().NumWaiting; w > eventstore.ReaderMaxWaiting {
			t.Errorf("consumer %s holds %d pull requests waiting, want at most %d", name, w, eventstore.ReaderMaxWaiting)
		}
	}
	client := nirv1connect.NewRegistrationServiceClient(http.DefaultClient, n.URL(), connect.WithInterceptors(auth.BearerInterceptor(tokOslo)))
	for i := 1; i <= 10; i++ {
		if _, err := client.Append(natsCtx(t, 5*time.Second), connect.NewRequest(natsRegistration(i))); err != nil {
			t.Fatalf("append %d while the reader's pull requests wait: %v", i, err)
		}
	}
	natsAlive(t, n)
}

// TestNATS_ReaderAckPending: a reader's consumers took ack_policy, ack_wait and
// max_ack_pending as the reader sent them, and the server keeps an entry for every message a
// consumer with acks delivered and has not had acked, in nird's process. Explicit-ack
// consumers with max_ack_pending -1, pulled through the stream and never acked: with 16 on a
// stream of 55 000 events, 887 000 entries, nird 183 -> 459 MiB (a reviewer's probe,
// 2026-12-06). A reader's consumers now take no acks (eventstore.CheckReaderConsumer).
func TestNATS_ReaderAckPending(t *testing.T) {
	n, _ := edgeStart(t, "--demo", "100")
	reader := natsAs(t, n, "reader")
	s, err := reader.js.Stream(natsCtx(t, 5*time.Second), eventstore.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	last := s.CachedInfo().State.LastSeq
	for range 2 {
		c, err := reader.js.CreateConsumer(natsCtx(t, 5*time.Second), eventstore.StreamName, jetstream.ConsumerConfig{
			AckPolicy: jetstream.AckExplicitPolicy, AckWait: 10 * time.Minute, MaxAckPending: -1, InactiveThreshold: 10 * time.Minute})
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		got := 0
		for got < int(last) {
			b, err := c.Fetch(eventstore.ReaderMaxBatch, jetstream.FetchMaxWait(2*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			k := 0
			for range b.Messages() {
				k++
			}
			if k == 0 {
				break
			}
			got += k
		}
		info, err := c.Info(natsCtx(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if got < int(last) || info.NumAckPending != 0 || info.Config.AckPolicy != jetstream.AckNonePolicy {
			t.Errorf("read %d of %d messages; the consumer holds %d acks pending under ack policy %v, want every message read and none pending under none",
				got, last, info.NumAckPending, info.Config.AckPolicy)
		}
	}
	natsAlive(t, n)
}

// TestNATS_ReaderLimits: the reader's consumer creations are served on nird's event store
// connection. Sent 8 MiB each from four connections, the server held more than 64 MiB for
// that connection and cut it as a slow consumer, again and again: appends took 10 s at the
// median and failed deadline_exceeded. The readers' account now takes messages of at most
// natsauth.ReaderMaxPayload and natsauth.ReaderMaxConnections connections (each of which
// the server may hold 64 MiB for). The 8 MiB creations must be refused, and appends timed
// beside a flood of creations as large as the account takes (until 2026-12-07 the test timed
// them beside the refused 8 MiB flood alone, which sent nothing).
func TestNATS_ReaderLimits(t *testing.T) {
	tokens, tokOslo := natsTokens(t)
	n := nirdtest.Start(t, "--data", t.TempDir(), "--tokens", tokens)
	client := nirv1connect.NewRegistrationServiceClient(http.DefaultClient, n.URL(), connect.WithInterceptors(auth.BearerInterceptor(tokOslo)))
	natsAppendHTTP(t, n, tokOslo, natsRegistration(0))

	t.Run("LargeConsumerCreations", func(t *testing.T) {
		// The 8 MiB creations of the attack are refused at once...
		big := natsReaderFlood(t, n, "$JS.API.CONSUMER.CREATE."+eventstore.StreamName, make([]byte, 8<<20-4096))
		time.Sleep(200 * time.Millisecond)
		if sent := big(); sent != 0 {
			t.Fatalf("%d consumer creations of 8 MiB sent as the reader; want each refused (natsauth.ReaderMaxPayload)", sent)
		}
		// ...and creations as large as the readers' account takes, as fast as the server
		// takes them, leave the appends alone.
		payload := make([]byte, natsauth.ReaderMaxPayload-4096)
		stop := natsReaderFlood(t, n, "$JS.API.CONSUMER.CREATE."+eventstore.StreamName, payload)
		defer stop()
		var most time.Duration
		for i := 1; i <= 10; i++ {
			start := time.Now()
			if _, err := client.Append(natsCtx(t, 5*time.Second), connect.NewRequest(natsRegistration(i))); err != nil {
				t.Fatalf("append %d beside the reader's large consumer creations: %v", i, err)
			}
			most = max(most, time.Since(start))
			time.Sleep(500 * time.Millisecond)
		}
		sent := stop()
		t.Logf("%d creations of %d KiB sent; the slowest of 10 appends took %v", sent, len(payload)>>10, most)
		if sent == 0 {
			t.Errorf("no consumer creation of %d KiB sent as the reader: the appends were timed beside no flood", len(payload)>>10)
		}
		natsAlive(t, n)
	})
	t.Run("Connections", func(t *testing.T) {
		url, opts, err := natsauth.ReadContext(n.NATSContext("reader"))
		if err != nil {
			t.Fatal(err)
		}
		var refused error
		for i := 0; i < natsauth.ReaderMaxConnections+4 && refused == nil; i++ {
			nc, err := nats.Connect(url, append(opts, nats.MaxReconnects(0))...)
			if err != nil {
				refused = err
				break
			}
			t.Cleanup(nc.Close)
		}
		if refused == nil {
			t.Fatalf("%d reader connections admitted, want at most %d", natsauth.ReaderMaxConnections+4, natsauth.ReaderMaxConnections)
		}
		t.Logf("refused: %v", refused)
	})
}

// TestNATS_ReaderDirectGetWholeStream: the server copies a direct get's whole answer into
// the stream's send queue while it holds the lock every append takes. The reader's direct
// gets of the whole stream (batch and max_bytes as large as JSON allows), from four
// connections in a loop, held appends for 5 s at the median on a stream of 99 000 events
// (a helper's probe), and longer the longer the stream. nird now makes the readers' direct
// gets by request itself, at most eventstore.ReaderMaxBatch messages each, one at a time.
func TestNATS_ReaderDirectGetWholeStream(t *testing.T) {
	tokens, tokOslo := natsTokens(t)
	n := nirdtest.Start(t, "--data", t.TempDir(), "--tokens", tokens)
	client := nirv1connect.NewRegistrationServiceClient(http.DefaultClient, n.URL(), connect.WithInterceptors(auth.BearerInterceptor(tokOslo)))
	for i := range 10 {
		key := natsAppendHTTP(t, n, tokOslo, natsRegistration(i)).GetPersonKey()
		natsAppendHTTP(t, n, tokOslo, floodEvents(key, 1000))
	}
	whole := []byte(`{"seq":1,"batch":2000000000,"max_bytes":2000000000}`)
	reader := natsAs(t, n, "reader")
	answer, err := reader.nc.Request("$JS.API.DIRECT.GET."+eventstore.StreamName, whole, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if answer.Header.Get("Status") != "400" || !strings.Contains(answer.Header.Get("Description"), "batch") {
		t.Errorf("a direct get of the whole stream answered %q %q (%d bytes), want refused naming batch", answer.Header.Get("Status"), answer.Header.Get("Description"), len(answer.Data))
	}
	// The reader's batched direct gets within the bound still work (nirctl replay's).
	msgs, err := jetstreamext.GetBatch(natsCtx(t, 10*time.Second), reader.js, eventstore.StreamName, 500, jetstreamext.GetBatchSeq(1))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for _, err := range msgs {
		if err != nil {
			t.Fatalf("batched direct get after %d messages: %v", got, err)
		}
		got++
	}
	if got != 500 {
		t.Errorf("batched direct get of 500: %d messages", got)
	}

	defer natsReaderFlood(t, n, "$JS.API.DIRECT.GET."+eventstore.StreamName, whole)()
	var most time.Duration
	for i := 100; i < 110; i++ {
		start := time.Now()
		if _, err := client.Append(natsCtx(t, 5*time.Second), connect.NewRequest(natsRegistration(i))); err != nil {
			t.Fatalf("append beside the reader's whole-stream direct gets: %v", err)
		}
		most = max(most, time.Since(start))
		time.Sleep(300 * time.Millisecond)
	}
	t.Logf("the slowest of 10 appends beside the reader's whole-stream direct gets: %v", most)
	if most > 2*time.Second {
		t.Errorf("an append beside the reader's whole-stream direct gets took %v", most)
	}
	natsAlive(t, n)
}

// natsReaderFlood sends body to subject as requests from four reader connections, as fast
// as they take them (natsFlood).
func natsReaderFlood(t *testing.T, n *nirdtest.Nird, subject string, body []byte) (stop func() int64) {
	t.Helper()
	return natsFlood(t, n, "reader", func(c *natsConn) *nats.Msg {
		return &nats.Msg{Subject: subject, Reply: c.nc.NewRespInbox(), Data: body}
	})
}

// natsFlood publishes msg's messages from four connections of user, as fast as they take
// them, until the function it returns is called; that returns how many were sent (and may
// be called again). A connection stops at its first refused publish (larger than the
// account's most, say).
func natsFlood(t *testing.T, n *nirdtest.Nird, user string, msg func(*natsConn) *nats.Msg) (stop func() int64) {
	t.Helper()
	quit := make(chan struct{})
	var wg sync.WaitGroup
	var sent atomic.Int64
	for range 4 {
		c := natsAs(t, n, user)
		wg.Go(func() {
			for {
				select {
				case <-quit:
					return
				default:
				}
				if err := c.nc.PublishMsg(msg(c)); err != nil {
					return
				}
				sent.Add(1)
				_ = c.nc.Flush()
			}
		})
	}
	var once sync.Once
	return func() int64 {
		once.Do(func() { close(quit); wg.Wait() })
		return sent.Load()
	}
}

// TestNATS_CaseSystemLargeRequestsCutTheIngress: one case system (Oslo) sends requests of
// the largest payload the server takes from it on its own subject as fast as four
// connections go. Before, the server took 8 MiB and held more than 64 MiB for nird's one
// ingress connection, which every case system shared, and cut it as a slow consumer, again
// and again: Bergen got 1 to 3 answers of 15 ("no responders"), embedded and on deploy/'s
// cluster (helper-32's probe, 2026-12-06). Now each case system is in an account of its own
// whose messages are at most natsauth.CaseSystemMaxPayload (the 4 MiB a request needs, with
// its headers), and nird serves each on a connection of its own: the flood can have only
// Oslo's connection cut.
func TestNATS_CaseSystemLargeRequestsCutTheIngress(t *testing.T) {
	tokens, tokOslo, tokBergen := floodTokens(t)
	n := nirdtest.Start(t, "--data", t.TempDir(), "--tokens", tokens, "--nats-case-systems", "oslo,bergen")
	bergen := natsAs(t, n, "bergen")
	natsAppendOK(t, bergen, tokBergen, bergenRegistration(0))
	// The largest message the server takes from Oslo, less room for the headers.
	probe := natsAs(t, n, "oslo")
	if err := probe.nc.Flush(); err != nil { // the server's INFO with the account's most has come
		t.Fatal(err)
	}
	payload := make([]byte, probe.nc.MaxPayload()-4096)
	probe.nc.Close()
	stop := natsFlood(t, n, "oslo", func(c *natsConn) *nats.Msg {
		m := nats.NewMsg(natsingress.RequestSubject("oslo"))
		m.Data = payload
		m.Header.Set("Authorization", "Bearer "+tokOslo)
		m.Reply = c.nc.NewRespInbox()
		return m
	})
	defer stop()
	answered := 0
	var failures []string
	for i := range 15 {
		reply, err := bergen.nc.RequestMsgWithContext(natsCtx(t, 5*time.Second), natsAppendRequest(t, bergen, tokBergen, bergenRegistration(10+i)))
		switch {
		case err != nil:
			failures = append(failures, err.Error())
		case reply.Header.Get(micro.ErrorCodeHeader) != "":
			failures = append(failures, reply.Header.Get(micro.ErrorHeader))
		default:
			answered++
		}
		time.Sleep(500 * time.Millisecond)
	}
	sent := stop()
	natsAlive(t, n)
	t.Logf("Oslo sent %d requests of %d KiB; Bergen got %d answers of 15", sent, len(payload)>>10, answered)
	if answered < 15 {
		t.Errorf("beside Oslo's %d KiB requests Bergen got %d answers of 15; failures %q", len(payload)>>10, answered, failures[:min(3, len(failures))])
	}
	if sent < 15 {
		t.Errorf("Oslo's flood sent only %d requests: no attack", sent)
	}
}

// TestNATS_CaseSystemSubscriptions: one case system holds a million subscriptions in its
// own inbox from four connections. Before, nird's process (which embeds the server) grew by
// about 1 GB (helper-32's probe): the case systems shared the register's account with nird,
// so an account limit would have bounded nird too, and a limit a connection does not bound
// the connections. Now each case system is in an account of its own, with at most
// natsauth.CaseSystemMaxConnections connections of natsauth.CaseSystemMaxSubscriptions
// subscriptions each.
func TestNATS_CaseSystemSubscriptions(t *testing.T) {
	tokens, _, _ := floodTokens(t)
	n := nirdtest.Start(t, "--data", t.TempDir(), "--tokens", tokens, "--nats-case-systems", "oslo,bergen")
	_, before := edgeMemory(t, n)
	var wg sync.WaitGroup
	var refused atomic.Int32
	for i := range 4 {
		c := natsAs(t, n, "oslo")
		wg.Go(func() {
			for k := range 250_000 {
				// A connection the server refuses (its limit) stops: the client library
				// would otherwise go on making subscriptions of its own, a million of them
				// in the test's process (13 GB under -race), that the server never holds.
				if k%100 == 0 {
					if _ = c.nc.Flush(); c.nc.LastError() != nil || c.nc.IsClosed() {
						refused.Add(1)
						return
					}
				}
				if _, err := c.nc.Subscribe(fmt.Sprintf("_INBOX.oslo.%d.%s.%d", i, strings.Repeat("x", 100), k), func(*nats.Msg) {}); err != nil {
					return
				}
			}
			_ = c.nc.Flush()
		})
	}
	wg.Wait()
	time.Sleep(2 * time.Second)
	_, after := edgeMemory(t, n)
	natsAlive(t, n)
	if grew := (after - before) >> 20; grew > 256 {
		t.Errorf("nird grew by %d MiB for one case system's subscriptions", grew)
	}
	t.Logf("nird grew by %d MiB; %d of 4 connections were refused more subscriptions", (after-before)>>20, refused.Load())
}

// TestNATS_LeakedUnboundTokenWithBoundTokens: with --nats-bound-tokens a case system's NATS
// connection that sends a token bound to no NATS user (one leaked from an HTTP client, or a
// kommune's token copied to another case system) is refused PermissionDenied and stores
// nothing, while the token bound to that case system's user is served, and the unbound token
// still works over HTTP. Found on 2026-12-07 by mutation testing: nird could drop the flag
// (never calling auth.Guard.RequireBoundOverNATS) without a test failing; only the guard was
// tested, not that nird wires the flag to it.
func TestNATS_LeakedUnboundTokenWithBoundTokens(t *testing.T) {
	bound, boundEntry, err := auth.GenerateToken(auth.Principal{Name: "oslo-fagsystem", Role: auth.RoleKommune, Kommune: "0301", NATSUser: "oslo"})
	if err != nil {
		t.Fatal(err)
	}
	leaked, leakedEntry, err := auth.GenerateToken(auth.Principal{Name: "oslo-http", Role: auth.RoleKommune, Kommune: "0301"})
	if err != nil {
		t.Fatal(err)
	}
	tokens := filepath.Join(t.TempDir(), "tokens.json")
	if err := auth.WriteEntries(tokens, []auth.Entry{boundEntry, leakedEntry}); err != nil {
		t.Fatal(err)
	}
	n := nirdtest.Start(t, "--data", t.TempDir(), "--tokens", tokens, "--nats-case-systems", "oslo", "--nats-bound-tokens")
	oslo := natsAs(t, n, "oslo")
	reader := natsAs(t, n, "reader")
	natsAppendOK(t, oslo, bound, natsRegistration(0))
	before := natsStream(t, reader).State.Msgs
	reply, err := oslo.nc.RequestMsgWithContext(natsCtx(t, 20*time.Second), natsAppendRequest(t, oslo, leaked, natsRegistration(1)))
	if err != nil {
		t.Fatal(err)
	}
	if code := reply.Header.Get(micro.ErrorCodeHeader); code != connect.CodePermissionDenied.String() {
		t.Errorf("an unbound token over NATS with --nats-bound-tokens: %q %s, want permission_denied", code, reply.Header.Get(micro.ErrorHeader))
	}
	if after := natsStream(t, reader).State.Msgs; after != before {
		t.Errorf("the stream went from %d to %d messages on the refused append", before, after)
	}
	natsAppendHTTP(t, n, leaked, natsRegistration(2))
	natsAlive(t, n)
}
