package natsingress_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/api"
	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/ingest"
	"github.com/introreg/nir/internal/natsauth"
	"github.com/introreg/nir/internal/natsingress"
	"github.com/introreg/nir/internal/personkey"
)

// TestIngress_CaseSystemConnections: case systems in accounts of their own (as
// internal/natsauth makes them), each served on an ingress connection of its own
// (AddCaseSystem). Each is answered in its own account, whatever reply subject it names; a
// case system whose connection is gone (the server cut it) has no answer, and the other is
// served as before; the ingress's own connection serves no request subject.
func TestIngress_CaseSystemConnections(t *testing.T) {
	names := []string{caseSystem, otherCaseSystem}
	global, reader, cases, err := natsauth.EmbeddedAccounts(names)
	if err != nil {
		t.Fatal(err)
	}
	ingressUser, ingressAuth, err := eventstore.InProcessUser(natsingress.Permissions())
	if err != nil {
		t.Fatal(err)
	}
	users := []*server.NkeyUser{ingressUser}
	laneAuth := map[string]nats.Option{}
	clientAuth := map[string]nats.Option{}
	for _, n := range names {
		u, a, err := eventstore.InProcessUser(natsingress.CaseSystemPermissions(n))
		if err != nil {
			t.Fatal(err)
		}
		c, ca, err := eventstore.InProcessUser(natsauth.CaseSystemPermissions(n))
		if err != nil {
			t.Fatal(err)
		}
		c.Account = cases[n]
		users = append(users, u, c)
		laneAuth[n], clientAuth[n] = a, ca
	}
	// A client of the register's account that may send on any request subject.
	rogueUser, rogueAuth, err := eventstore.InProcessUser(&server.Permissions{
		Publish:   &server.SubjectPermission{Allow: []string{"nir.cmd.>"}},
		Subscribe: &server.SubjectPermission{Allow: []string{natsingress.ReplyPrefix + ">"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	users = append(users, rogueUser)
	accounts := []*server.Account{global, reader}
	for _, n := range names {
		accounts = append(accounts, cases[n])
	}
	store, err := eventstore.Open(context.Background(), eventstore.Config{Dir: filepath.Join(t.TempDir(), "js"), Users: users, Accounts: accounts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	keys, err := personkey.New([]byte("natsingress test secret"))
	if err != nil {
		t.Fatal(err)
	}
	// tokBound is Oslo's too, bound to the test case system's NATS user.
	const tokBound = "tok-oslo-bound"
	authn, err := auth.New([]auth.Entry{
		{Name: "oslo", Role: auth.RoleKommune, Kommune: "0301", TokenSHA256: auth.HashToken(tokOslo)},
		{Name: "oslo-bound", Role: auth.RoleKommune, Kommune: "0301", NATSUser: caseSystem, TokenSHA256: auth.HashToken(tokBound)},
	})
	if err != nil {
		t.Fatal(err)
	}
	svc := ingest.New(ingest.Config{Store: store, Keys: keys, Now: func() time.Time { return time.Date(2024, 6, 3, 10, 0, 0, 0, time.UTC) }})
	connect := func(opts ...nats.Option) *nats.Conn {
		t.Helper()
		nc, err := store.Connect(opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	main := connect(ingressAuth)
	guard := auth.NewGuard(authn, auth.DefaultPolicy(), nil)
	in := natsingress.New(main, guard, api.NewRegistration(svc, nil, nil), nil)
	lanes := map[string]*nats.Conn{}
	clients := map[string]*nats.Conn{}
	for _, n := range names {
		lanes[n] = connect(laneAuth[n], nats.MaxReconnects(0))
		in.AddCaseSystem(n, lanes[n])
		clients[n] = connect(clientAuth[n], nats.CustomInboxPrefix(natsingress.Inbox(n)))
	}
	rogue := connect(rogueAuth)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	sendAs := func(n string, i int, token string) (*nats.Msg, error) {
		msg := nats.NewMsg(natsingress.RequestSubject(n))
		msg.Data = mustMarshal(registerPerson(900 + i))
		msg.Header.Set("Authorization", "Bearer "+token)
		return clients[n].RequestMsg(msg, 5*time.Second)
	}
	send := func(n string, i int) (*nats.Msg, error) { return sendAs(n, i, tokOslo) }
	answered := func(n string, i int) {
		t.Helper()
		var reply *nats.Msg
		var err error
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			// The subscriptions are made in Run: wait until they are there.
			if reply, err = send(n, i); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("%s's request: %v", n, err)
		}
		if code := reply.Header.Get(micro.ErrorCodeHeader); code != "" {
			t.Fatalf("%s's request: %s %s", n, code, reply.Header.Get(micro.ErrorHeader))
		}
	}
	answered(caseSystem, 0)
	answered(otherCaseSystem, 1)

	// A token bound to the test case system's NATS user is refused in the other's requests
	// (a leaked token is of no use without that user's key), and stored in its own.
	reply, err := sendAs(otherCaseSystem, 5, tokBound)
	if err != nil {
		t.Fatal(err)
	}
	if code := reply.Header.Get(micro.ErrorCodeHeader); code != "permission_denied" {
		t.Errorf("bound token in the other case system's request: code %q (%s), want permission_denied", code, reply.Header.Get(micro.ErrorHeader))
	}
	if reply, err = sendAs(caseSystem, 5, tokBound); err != nil {
		t.Fatal(err)
	}
	if code := reply.Header.Get(micro.ErrorCodeHeader); code != "" {
		t.Errorf("bound token in its own case system's request: %s %s", code, reply.Header.Get(micro.ErrorHeader))
	}

	// The test case system names the other's inbox: the answer goes back into its own
	// account, and the other's inbox gets nothing.
	otherInbox, err := clients[otherCaseSystem].SubscribeSync(natsingress.Inbox(otherCaseSystem) + ".>")
	if err != nil {
		t.Fatal(err)
	}
	if err := clients[otherCaseSystem].Flush(); err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg(natsingress.RequestSubject(caseSystem))
	msg.Data = mustMarshal(registerPerson(910))
	msg.Header.Set("Authorization", "Bearer "+tokOslo)
	msg.Reply = natsingress.Inbox(otherCaseSystem) + ".fixed"
	if err := clients[caseSystem].PublishMsg(msg); err != nil {
		t.Fatal(err)
	}
	answered(caseSystem, 2)
	if m, err := otherInbox.NextMsg(300 * time.Millisecond); err == nil {
		t.Errorf("the other case system received %q (error %q) on %s", m.Data, m.Header.Get(micro.ErrorHeader), m.Subject)
	}

	// The ingress's own connection serves no request subject once case systems have
	// their own: one not added has no responder.
	if _, err := rogue.Request(natsingress.RequestSubject("third"), nil, 2*time.Second); !errors.Is(err, nats.ErrNoResponders) {
		t.Errorf("a request of a case system not added: %v, want no responders", err)
	}

	// The test case system's connection is gone, as when the server cuts it: the other
	// case system is served as before.
	lanes[caseSystem].Close()
	if m, err := send(caseSystem, 3); err == nil {
		t.Errorf("a request without its case system's connection was answered: %q %q", m.Data, m.Header.Get(micro.ErrorHeader))
	}
	answered(otherCaseSystem, 4)
	// nird --nats-bound-tokens: an unbound token is refused over NATS.
	guard.RequireBoundOverNATS()
	reply, err = sendAs(otherCaseSystem, 6, tokOslo)
	if err != nil {
		t.Fatal(err)
	}
	if code := reply.Header.Get(micro.ErrorCodeHeader); code != "permission_denied" {
		t.Errorf("an unbound token when bound ones are required: code %q (%s), want permission_denied", code, reply.Header.Get(micro.ErrorHeader))
	}
	if got := in.Dropped(); got != 0 {
		t.Errorf("Dropped() = %d, want 0: the server made every reply subject", got)
	}
}
