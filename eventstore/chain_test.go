package eventstore_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/introreg/nir/eventstore"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestStore_Chain: every event appended with an expectation names the hash of its person's
// previous stored message, within one call and across calls, also when the previous message
// was not appended by this store (a fresh store, as another nird); an append without an
// expectation carries no link, whatever the caller put there.
func TestStore_Chain(t *testing.T) {
	ctx := context.Background()
	s, srv := openStore(t, nil)
	a, b := personKey("chain-a"), personKey("chain-b")
	if _, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: a, ExpectedLastSeq: eventstore.Expect(0), Events: events(a, 3)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: b, ExpectedLastSeq: eventstore.Expect(0), Events: events(b, 1)}); err != nil {
		t.Fatal(err)
	}
	other, err := eventstore.Open(ctx, eventstore.Config{URL: srv.ClientURL()})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Append(ctx, eventstore.PersonAppend{PersonKey: a, ExpectedLastSeq: eventstore.Expect(3), Events: events(a, 2)}); err != nil {
		t.Fatal(err)
	}
	forged := newEvent(b)
	forged.PrevHash = bytes.Repeat([]byte{7}, 32)
	if _, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: b, Events: []*nirv1.Event{forged}}); err != nil {
		t.Fatal(err)
	}

	raw := map[uint64][]byte{}
	if _, err := s.Export(ctx, 0, 0, func(m eventstore.RawMessage) error {
		raw[m.Seq] = bytes.Clone(m.Data)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	check := func(key string, want [][]byte) {
		t.Helper()
		evs, _ := mustRead(t, s, key)
		if len(evs) != len(want) {
			t.Fatalf("%d events, want %d", len(evs), len(want))
		}
		for i, e := range evs {
			if !bytes.Equal(e.Event.GetPrevHash(), want[i]) {
				t.Errorf("event %d at %d: prev_hash %x, want %x", i, e.Seq, e.Event.GetPrevHash(), want[i])
			}
		}
	}
	// a: 1, 2, 3 in one call, then 5, 6 by another store.
	check(a, [][]byte{nil, eventstore.HashOf(raw[1]), eventstore.HashOf(raw[2]), eventstore.HashOf(raw[3]), eventstore.HashOf(raw[5])})
	// b: 4 first, then 7 without an expectation: no link, the forged one dropped.
	check(b, [][]byte{nil, nil})
}
