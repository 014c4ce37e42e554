package eventstore_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/natstest"
)

func TestOpen_Config(t *testing.T) {
	tests := []struct {
		name string
		cfg  eventstore.Config
	}{
		{"NoDirNoURL", eventstore.Config{}},
		{"PublicListen", eventstore.Config{Dir: t.TempDir(), Listen: "0.0.0.0:4222"}},
		{"BadListen", eventstore.Config{Dir: t.TempDir(), Listen: "localhost"}},
		{"UsersWithURL", eventstore.Config{URL: "nats://127.0.0.1:4222", Users: []*server.NkeyUser{{Nkey: "UABC"}}}},
		{"BadUserKey", eventstore.Config{Dir: t.TempDir(), Users: []*server.NkeyUser{{Nkey: "not a key"}}}},
		{"NegativeWindow", eventstore.Config{Dir: t.TempDir(), DuplicateWindow: -time.Second}},
		{"TooManyReplicas", eventstore.Config{Dir: t.TempDir(), Replicas: 7}},
	}
	for _, tt := range tests {
		t.Run("ErrInvalid/"+tt.name, func(t *testing.T) {
			s, err := eventstore.Open(context.Background(), tt.cfg)
			if !errors.Is(err, eventstore.ErrInvalid) {
				_ = s.Close()
				t.Fatalf("Open = %v, want ErrInvalid", err)
			}
		})
	}
}

// TestOpen_Embedded runs the embedded server: the stream has the documented definition,
// the CLI URL works, and acknowledged events survive a restart on the same directory.
func TestOpen_Embedded(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	cli, cliAuth := tcpUser(t, nil)
	s, err := eventstore.Open(ctx, eventstore.Config{Dir: dir, Listen: "127.0.0.1:0", Users: []*server.NkeyUser{cli}})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	key := personKey("embedded")
	evs := events(key, 5)
	pos, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: key, ExpectedLastSeq: eventstore.Expect(0), Events: evs})
	if err != nil {
		t.Fatalf("Append: %v", err)
	}

	// An outside client (like the nats CLI) with a user's key sees the stream as defined.
	nc, err := nats.Connect(s.ClientURL(), cliAuth)
	if err != nil {
		t.Fatalf("connect to ClientURL %s: %v", s.ClientURL(), err)
	}
	js, _ := jetstream.New(nc)
	str, err := js.Stream(ctx, eventstore.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := str.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := info.Config
	if !c.AllowDirect || !c.AllowAtomicPublish || !c.DenyDelete || !c.DenyPurge || c.Storage != jetstream.FileStorage ||
		!slices.Equal(c.Subjects, []string{"nir.ev.*"}) || c.Duplicates != eventstore.DefaultDuplicateWindow || c.Replicas != 1 {
		t.Fatalf("stream config = %+v", c)
	}
	if info.State.Msgs != 5 {
		t.Fatalf("stream holds %d messages, want 5", info.State.Msgs)
	}
	nc.Close()

	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: key, Events: events(key, 1)}); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("Append after Close = %v, want ErrClosed", err)
	}
	if _, _, err := s.Read(ctx, key); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("Read after Close = %v, want ErrClosed", err)
	}

	// Restart on the same directory, with another dedupe window (stream updated).
	s2, err := eventstore.Open(ctx, eventstore.Config{Dir: dir, DuplicateWindow: time.Minute})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s2.Close()
	got, last := mustRead(t, s2, key)
	if !slices.Equal(ids(got), idsOfEvents(evs)) || last != pos[4].Seq {
		t.Fatalf("after restart: %d events, last %d; want the 5 appended, last %d", len(got), last, pos[4].Seq)
	}
	// A retry after the restart is still idempotent.
	again, err := s2.Append(ctx, eventstore.PersonAppend{PersonKey: key, ExpectedLastSeq: eventstore.Expect(0), Events: evs})
	if err != nil || !again[0].Duplicate || again[0].Seq != pos[0].Seq {
		t.Fatalf("retry after restart: %v %+v", err, again)
	}
	var nilStore *eventstore.Store
	if err := nilStore.Close(); err != nil {
		t.Fatalf("nil Close: %v", err)
	}
}

// tcpUser makes a user of the embedded server that connects over TCP with an nkey.
func tcpUser(t *testing.T, perms *server.Permissions) (*server.NkeyUser, nats.Option) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	return &server.NkeyUser{Nkey: pub, Permissions: perms}, nats.Nkey(pub, kp.Sign)
}

// TestOpen_EmbeddedAccess: the embedded server admits only its users. Without Listen it
// has no TCP port at all; with one, an anonymous client, a wrong key and nird's own
// in-process identities are refused over TCP; the store itself may not delete the stream;
// Connect gives an in-process connection with exactly its user's permissions.
func TestOpen_EmbeddedAccess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	t.Run("NoListener", func(t *testing.T) {
		s, err := eventstore.Open(ctx, eventstore.Config{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if u := s.ClientURL(); u != "" {
			t.Fatalf("ClientURL = %q without a listener, want empty", u)
		}
		key := personKey("inproc")
		if _, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: key, Events: events(key, 1)}); err != nil {
			t.Fatalf("Append in-process: %v", err)
		}
	})

	reader := &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: []string{"$JS.API.STREAM.INFO.>"}},
		Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
	}
	cli, cliAuth := tcpUser(t, reader)
	inproc, inprocAuth, err := eventstore.InProcessUser(reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := eventstore.Open(ctx, eventstore.Config{Dir: t.TempDir(), Listen: "127.0.0.1:0", Users: []*server.NkeyUser{cli, inproc}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, wrongAuth := tcpUser(t, nil)
	for name, opts := range map[string][]nats.Option{
		"Anonymous":           nil,
		"UnknownKey":          {wrongAuth},
		"InProcessKeyOverTCP": {inprocAuth},
	} {
		t.Run(name+"Refused", func(t *testing.T) {
			nc, err := nats.Connect(s.ClientURL(), append(opts, nats.MaxReconnects(0))...)
			if err == nil {
				nc.Close()
				t.Fatal("connected")
			}
			if !errors.Is(err, nats.ErrAuthorization) {
				t.Fatalf("connect = %v, want an authorization violation", err)
			}
		})
	}
	t.Run("TCPUser", func(t *testing.T) {
		nc, err := nats.Connect(s.ClientURL(), cliAuth)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		if _, err := js.Stream(ctx, eventstore.StreamName); err != nil {
			t.Fatalf("stream info as the TCP user: %v", err)
		}
	})
	t.Run("ConnectInProcess", func(t *testing.T) {
		nc, err := s.Connect(inprocAuth)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		if _, err := js.Stream(ctx, eventstore.StreamName); err != nil {
			t.Fatalf("stream info in-process: %v", err)
		}
		// Its permissions hold: no publishing events.
		errs := make(chan error, 1)
		nc.SetErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err })
		if err := nc.Publish("nir.ev."+personKey("x"), []byte("forged")); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-errs:
			if !errors.Is(err, nats.ErrPermissionViolation) {
				t.Fatalf("async error %v, want a permissions violation", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("publishing an event in-process as a reader was not refused")
		}
	})
	t.Run("StoreMayNotDeleteTheStream", func(t *testing.T) {
		js, _ := jetstream.New(s.Conn())
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if err := js.DeleteStream(dctx, eventstore.StreamName); err == nil {
			t.Fatal("the store's own connection deleted the stream")
		}
		if _, err := js.Stream(ctx, eventstore.StreamName); err != nil {
			t.Fatalf("stream after the refused delete: %v", err)
		}
	})
}

func idsOfEvents[E interface{ GetId() string }](evs []E) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.GetId()
	}
	return out
}

func TestSubject(t *testing.T) {
	tests := []struct {
		key  string
		want string
		ok   bool
	}{
		{"abc123", "nir.ev.abc123", true},
		{personKey("x"), "nir.ev." + personKey("x"), true},
		{"A-b_C", "nir.ev.A-b_C", true},
		{"", "", false},
		{"a.b", "", false},
		{"a b", "", false},
		{"*", "", false},
		{">", "", false},
		{"12345678901", "", false},  // fødselsnummer shape
		{"123456789012", "", false}, // DUF shape
		{"1234567890", "nir.ev.1234567890", true},
		{string(make([]byte, 129)), "", false},
	}
	for _, tt := range tests {
		got, err := eventstore.Subject(tt.key)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("Subject(%q) = %q, %v; want %q ok=%v", tt.key, got, err, tt.want, tt.ok)
		}
		if err != nil && !errors.Is(err, eventstore.ErrInvalid) {
			t.Errorf("Subject(%q) error %v is not ErrInvalid", tt.key, err)
		}
	}
}

func FuzzSubject(f *testing.F) {
	for _, s := range []string{"abc", personKey("x"), "a.b", "*", ">", "12345678901", "", "æøå", "a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		subj, err := eventstore.Subject(key)
		if err != nil {
			if !errors.Is(err, eventstore.ErrInvalid) {
				t.Fatalf("Subject error %q is not ErrInvalid", err)
			}
			return
		}
		if subj != "nir.ev."+key || strings.ContainsAny(key, ".*> \t\r\n") || key == "" {
			t.Fatalf("Subject(%q) = %q is not one safe token", key, subj)
		}
		allDigits := strings.Trim(key, "0123456789") == ""
		if allDigits && (len(key) == 11 || len(key) == 12) {
			t.Fatalf("Subject(%q) accepted a national-id-shaped key", key)
		}
	})
}

// TestOpen_EmbeddedMaxPayload: the embedded server takes messages up to
// EmbeddedMaxPayload, as deploy/nats's configurations do, so the NATS ingress's 4 MiB
// requests are not refused by the server's default 1 MiB.
func TestOpen_EmbeddedMaxPayload(t *testing.T) {
	s, err := eventstore.Open(context.Background(), eventstore.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.Conn().MaxPayload(); got != eventstore.EmbeddedMaxPayload {
		t.Errorf("embedded server max payload %d, want %d", got, eventstore.EmbeddedMaxPayload)
	}
}

// TestOpen_ExistingStream: on a stream that exists, Open changes nothing and reports what
// differs from the register's definition; RepairStream, the operator's step, puts back what
// would lose history (an age limit, allowed purges) and keeps what an operator may set (a
// byte quota); a stream whose storage cannot hold the register is refused.
func TestOpen_ExistingStream(t *testing.T) {
	ctx := context.Background()
	t.Run("ReportedThenRepaired", func(t *testing.T) {
		srv := natstest.RunServer(t, natstest.Options{})
		js, err := jetstream.New(natstest.Connect(t, srv))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: eventstore.StreamName, Subjects: []string{"nir.ev.*"},
			Storage: jetstream.FileStorage, MaxBytes: 1 << 30, MaxAge: time.Hour, AllowRollup: true}); err != nil {
			t.Fatal(err)
		}
		s, err := eventstore.Open(ctx, eventstore.Config{URL: srv.ClientURL()})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		config := func() jetstream.StreamConfig {
			st, err := js.Stream(ctx, eventstore.StreamName)
			if err != nil {
				t.Fatal(err)
			}
			return st.CachedInfo().Config
		}
		if c := config(); c.MaxAge != time.Hour || c.DenyPurge || !c.AllowRollup {
			t.Errorf("Open changed the stream: %+v", c)
		}
		check, err := s.CheckStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range check.Mismatches {
			got = append(got, m.Setting)
		}
		want := "discard max_age allow_direct allow_atomic deny_delete deny_purge allow_rollup_hdrs"
		if strings.Join(got, " ") != want {
			t.Errorf("mismatches %v, want %s", check.Mismatches, want)
		}
		if check.Replicas != 1 || check.CurrentReplicas != 1 {
			t.Errorf("check = %+v, want one current replica", check)
		}

		fixed, err := s.RepairStream(ctx)
		if err != nil || len(fixed) != len(got) {
			t.Fatalf("RepairStream = %v, %v; want the %d mismatches put back", fixed, err, len(got))
		}
		c := config()
		if c.MaxBytes != 1<<30 {
			t.Errorf("max bytes %d, want the operator's 1 GiB kept", c.MaxBytes)
		}
		if c.MaxAge != 0 || !c.DenyPurge || !c.DenyDelete || !c.AllowAtomicPublish || !c.AllowDirect || c.AllowRollup {
			t.Errorf("config %+v: the age limit and rollups must be gone, deletes and purges denied, atomic publish and direct get allowed", c)
		}
		if check, err := s.CheckStream(ctx); err != nil || len(check.Mismatches) != 0 {
			t.Errorf("after the repair: %+v, %v", check, err)
		}
		if again, err := s.RepairStream(ctx); err != nil || len(again) != 0 {
			t.Errorf("second repair = %v, %v; want nothing to do", again, err)
		}
		key := personKey("existing")
		if _, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: key, ExpectedLastSeq: eventstore.Expect(0), Events: events(key, 2)}); err != nil {
			t.Fatalf("append on the repaired stream: %v", err)
		}
		if check, err := s.CheckStream(ctx); err != nil || check.Messages != 2 || check.LastSeq != 2 {
			t.Errorf("after two events: %+v, %v", check, err)
		}
	})
	t.Run("MemoryStorageRefused", func(t *testing.T) {
		srv := natstest.RunServer(t, natstest.Options{})
		js, err := jetstream.New(natstest.Connect(t, srv))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: eventstore.StreamName, Subjects: []string{"nir.ev.*"}, Storage: jetstream.MemoryStorage}); err != nil {
			t.Fatal(err)
		}
		_, err = eventstore.Open(ctx, eventstore.Config{URL: srv.ClientURL()})
		if !errors.Is(err, eventstore.ErrInvalid) || !strings.Contains(err.Error(), "storage") {
			t.Fatalf("Open on a memory stream: %v, want ErrInvalid naming the storage", err)
		}
	})
}
