package eventstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/introreg/nir/internal/natstest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestCommitter_CloseCommitsOpenBatch: Close while a batch is forming (its messages already
// on the server, the committer waiting for the callers of the last batch) commits it:
// every caller gets its position and its event is stored, once. The committer is set up
// to expect ten callers right after a batch of ten, so five callers wait for an hour.
func TestCommitter_CloseCommitsOpenBatch(t *testing.T) {
	srv := natstest.RunServer(t, natstest.Options{})
	open := func() *Store {
		s, err := Open(context.Background(), Config{URL: srv.ClientURL(), GroupCommit: GroupCommit{PlainMax: 1, MaxWait: time.Hour}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	s.gc.mu.Lock()
	s.gc.lastSize, s.gc.lastMembers, s.gc.lastEnd = 10, 10, time.Now()
	s.gc.mu.Unlock()

	const n = 5
	keys := make([]string, n)
	ids := make([]string, n)
	errs := make([]error, n)
	pos := make([][]Position, n)
	var wg sync.WaitGroup
	for i := range n {
		h := sha256.Sum256(fmt.Appendf(nil, "closing-%d", i))
		keys[i] = hex.EncodeToString(h[:])
		ev := &nirv1.Event{Id: ulid.Make().String(), PersonKey: keys[i], Kommune: "0301", Actor: &nirv1.Actor{Subject: "test"},
			RecordedAt: timestamppb.Now(), Payload: &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: "4601", Date: &nirv1.Date{Year: 2024, Month: 3, Day: 1}}}}
		ids[i] = ev.Id
		wg.Go(func() {
			pos[i], errs[i] = s.Append(context.Background(), PersonAppend{PersonKey: keys[i], ExpectedLastSeq: Expect(0), Events: []*nirv1.Event{ev}})
		})
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		s.gc.mu.Lock()
		forming := s.gc.open != nil && len(s.gc.open.members) == n
		s.gc.mu.Unlock()
		if forming && s.Stats().Streamed >= n-1 { // the last message is held back as the commit
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the five appends did not form an open batch: stats %+v", s.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("Close took %v: it waited out MaxWait", d)
	}
	s = open()
	defer s.Close()
	for i, key := range keys {
		if errs[i] != nil {
			t.Fatalf("append %d: %v, want it committed by Close", i, errs[i])
		}
		evs, _, err := s.Read(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 1 || evs[0].Event.GetId() != ids[i] || evs[0].Seq != pos[i][0].Seq {
			t.Errorf("append %d: stored %d events (want its one event at seq %d)", i, len(evs), pos[i][0].Seq)
		}
	}
}
