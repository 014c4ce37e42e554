package eventstore_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

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
