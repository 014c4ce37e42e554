package eventstore_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/natstest"
)

// TestStore_Read_HistoryBroken: one of a person's events damaged on disk is answered by the
// server as no message, so Read gets the person's history without it. The event after it
// links to it (the chain), and Read fails with ErrHistoryBroken naming that event's sequence
// instead of returning a history an append would be judged on. Before, Read returned the
// history without the event, unseen: the rules refused an offer as if the person had never
// been registered. A person whose remaining events chain is read as before.
func TestStore_Read_HistoryBroken(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "js")
	s, err := eventstore.Open(ctx, eventstore.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	broken, whole := personKey("broken"), personKey("whole")
	for _, key := range []string{broken, whole} {
		var last uint64
		for range 3 {
			pos, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: key, ExpectedLastSeq: eventstore.Expect(last), Events: events(key, 1)})
			if err != nil {
				t.Fatal(err)
			}
			last = pos[0].Seq
		}
	}
	// broken's events are seqs 1-3: its second one is damaged.
	_, raw, err := s.MsgAt(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	natstest.FlipInBlock(t, dir, eventstore.StreamName, raw)
	s, err = eventstore.Open(ctx, eventstore.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	if evs, last, err := s.Read(ctx, broken); !errors.Is(err, eventstore.ErrHistoryBroken) || !strings.Contains(err.Error(), "stream sequence 3") {
		t.Errorf("Read of the person with a damaged event = %d events (last %d), %v; want ErrHistoryBroken naming seq 3", len(evs), last, err)
	}
	if evs, last, err := s.Read(ctx, whole); err != nil || len(evs) != 3 || last != 6 {
		t.Errorf("Read of the other person = %d events, last %d, %v; want 3, 6", len(evs), last, err)
	}
}

// TestStore_Read_LinkOverQuarantined: a message on a person's subject that is not a usable
// event (stored behind nird's back) is quarantined by Read but still counted: nird's next
// append expects its sequence and links to its hash, as to any message. Read must take that
// link as intact. Mutation testing (2026-12-07) found no test that failed when Read forgot
// the quarantined message's hash: the person's history would then read as broken
// (ErrHistoryBroken) and every append to the person be refused.
func TestStore_Read_LinkOverQuarantined(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t, nil)
	key := personKey("link-over-quarantined")
	first, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: key, ExpectedLastSeq: eventstore.Expect(0), Events: events(key, 1)})
	if err != nil {
		t.Fatal(err)
	}
	subject, err := eventstore.Subject(key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Conn().Request(subject, []byte{0xff, 0xff, 0xff, 0x01}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	evs, last := mustRead(t, s, key)
	if len(evs) != 1 || last != first[0].Seq+1 {
		t.Fatalf("Read after the poison = %d events, last %d; want 1, %d", len(evs), last, first[0].Seq+1)
	}
	pos, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: key, ExpectedLastSeq: eventstore.Expect(last), Events: events(key, 1)})
	if err != nil {
		t.Fatal(err)
	}
	evs, last, err = s.Read(ctx, key)
	if err != nil || len(evs) != 2 || last != pos[0].Seq || len(evs[1].Event.GetPrevHash()) == 0 {
		t.Fatalf("Read after a linked append over the quarantined message = %d events, last %d, %v; want 2 (the second linked), last %d", len(evs), last, err, pos[0].Seq)
	}
}
