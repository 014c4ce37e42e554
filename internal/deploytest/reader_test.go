package deploytest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/introreg/nir/eventstore"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestSingle_ReaderWithoutNird: the reader's consumers are created by nird (the readers'
// account may create none), so with no nird running a read as the reader fails at once, and
// the error says why (before: "no responders available for request", and no more).
func TestSingle_ReaderWithoutNird(t *testing.T) {
	creds := SetCredentials(t)
	s := RunServer(t, Options(t, "single.conf"))
	ctx := ctxT(t)
	store, err := openStore(ctx, s.ClientURL(), "nird", creds.Nird, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	key := "cccc03"
	if _, err := store.Append(ctx, eventstore.PersonAppend{PersonKey: key, Events: []*nirv1.Event{moved(key, "0301")}}); err != nil {
		t.Fatal(err)
	}
	reader, err := eventstore.Open(ctx, eventstore.Config{URL: s.ClientURL(), ReadOnly: true,
		NATSOptions: []nats.Option{nats.UserInfo("reader", creds.Reader), nats.CustomInboxPrefix(InboxPrefix("reader"))}})
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_, err = reader.Export(rctx, 1, 0, func(eventstore.RawMessage) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "is a nird running?") {
		t.Errorf("export as the reader without nird: %v; want an error asking whether a nird runs", err)
	}
}
