package eventstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/introreg/nir/internal/natstest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// openDeletable opens a store on the stream as nird makes it but with deletes allowed, for
// a test to take messages away, and returns the stream's admin handle.
func openDeletable(tb testing.TB) (*Store, jetstream.Stream) {
	tb.Helper()
	srv := natstest.RunServer(tb, natstest.Options{})
	ctx := context.Background()
	js, err := jetstream.New(natstest.Connect(tb, srv))
	if err != nil {
		tb.Fatal(err)
	}
	cfg := streamConfig(Config{Replicas: 1, DuplicateWindow: 2 * time.Minute})
	cfg.DenyDelete = false
	stream, err := js.CreateStream(ctx, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := Open(ctx, Config{URL: srv.ClientURL()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s, stream
}

// appendPersons appends one event for each of n persons, in calls of up to 100 persons.
func appendPersons(tb testing.TB, s *Store, prefix string, n int) {
	tb.Helper()
	var batch []PersonAppend
	for p := range n {
		h := sha256.Sum256([]byte(prefix + strconv.Itoa(p)))
		key := hex.EncodeToString(h[:])
		ev := &nirv1.Event{Id: ulid.Make().String(), PersonKey: key, Kommune: "0301", Actor: &nirv1.Actor{Subject: "test"},
			RecordedAt: timestamppb.Now(), Payload: &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: "4601", Date: &nirv1.Date{Year: 2024, Month: 3, Day: 1}}}}
		batch = append(batch, PersonAppend{PersonKey: key, Events: []*nirv1.Event{ev}})
		if len(batch) == 100 || p == n-1 {
			if _, err := s.Append(context.Background(), batch...); err != nil {
				tb.Fatal(err)
			}
			batch = nil
		}
	}
}

func lastSeq(tb testing.TB, s *Store) uint64 {
	tb.Helper()
	seq, err := s.LastSeq(context.Background())
	if err != nil {
		tb.Fatalf("LastSeq: %v", err)
	}
	return seq
}

// TestLastSeq_LastMessageDeleted: LastSeq asks for the stream's last sequence first; when
// that message is gone (nird's stream denies deletes, so by damage or an operator's hand)
// it is the last message still stored, and an empty stream is 0.
func TestLastSeq_LastMessageDeleted(t *testing.T) {
	s, stream := openDeletable(t)
	ctx := context.Background()
	if got := lastSeq(t, s); got != 0 {
		t.Fatalf("LastSeq of an empty stream = %d, want 0", got)
	}
	appendPersons(t, s, "deleted-", 6)
	if got := lastSeq(t, s); got != 6 {
		t.Fatalf("LastSeq = %d, want 6", got)
	}
	for _, seq := range []uint64{6, 5} {
		if err := stream.DeleteMsg(ctx, seq); err != nil {
			t.Fatal(err)
		}
	}
	if got := lastSeq(t, s); got != 4 {
		t.Fatalf("LastSeq with seqs 5 and 6 deleted = %d, want 4", got)
	}
	if got, err := s.leaderLast(ctx, ""); err != nil || got != 4 {
		t.Fatalf("leaderLast with seqs 5 and 6 deleted = %d, %v; want 4", got, err)
	}
}

// BenchmarkLastSeq measures LastSeq on a stream whose last block holds 12 000 messages of
// 4 000 persons: the stream's last message (the usual case), and, with that message
// deleted, the last one on the stream's subjects, which the server finds by searching the
// block's subjects (what LastSeq always asked for before).
func BenchmarkLastSeq(b *testing.B) {
	s, stream := openDeletable(b)
	for round := range 3 {
		appendPersons(b, s, "bench-"+strconv.Itoa(round)+"-", 4000)
	}
	last := uint64(3 * 4000)
	run := func(b *testing.B, want uint64) {
		for b.Loop() {
			if got := lastSeq(b, s); got != want {
				b.Fatalf("LastSeq = %d, want %d", got, want)
			}
		}
	}
	b.Run("Last", func(b *testing.B) { run(b, last) })
	deleted := false // sub-benchmarks run again with -count
	b.Run("LastDeleted", func(b *testing.B) {
		if !deleted {
			if err := stream.DeleteMsg(context.Background(), last); err != nil {
				b.Fatal(err)
			}
			deleted = true
		}
		run(b, last-1)
	})
}
