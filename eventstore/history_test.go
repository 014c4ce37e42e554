package eventstore_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/introreg/nir/eventstore"
)

// flipInBlock flips a byte in the middle of raw, a message's data as stored, in the first
// block file of stream in the store in dir (closed): a failing disk.
func flipInBlock(t *testing.T, dir, stream string, raw []byte) {
	t.Helper()
	blk := filepath.Join(dir, "jetstream", "$G", "streams", stream, "msgs", "1.blk")
	b, err := os.ReadFile(blk)
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(b, raw)
	if at < 0 || bytes.Contains(b[at+1:], raw) {
		t.Fatalf("the message is not in %s's block once", stream)
	}
	b[at+len(raw)/2] ^= 0x01
	if err := os.WriteFile(blk, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

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
	flipInBlock(t, dir, eventstore.StreamName, raw)
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
