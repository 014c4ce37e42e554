package eventstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/introreg/nir/eventstore"
)

// TestStore_Import_CallersLeaveNoBatches: Import published each atomic batch on the caller's
// context, and an atomic batch's publish sends its messages without looking at the context,
// then not the commit once the context has ended (as TestStore_GroupCommit_LoneCallersLeaveNoBatches
// found for the group committer): every import whose context ended while its batch was
// being sent left the batch open on the server until the server's batch timeout (10 s), and
// the server keeps at most 50 open on a stream. Found on 2026-12-07: 60 such imports, then an
// import of the rest failed with the server's limit of open batches. Since the review's fix
// (TestStore_Import_StopsWhenTheCallerStops) an import whose context ended while its batch was
// being made begins no batch at all, so this test now fails only if neither that check nor
// the batch's own context is there; the window between the check and the batch's send, which
// only the batch's own context covers, is not hit on demand.
func TestStore_Import_CallersLeaveNoBatches(t *testing.T) {
	s, _ := openStore(t, nil)
	key := personKey("imported")
	subject, err := eventstore.Subject(key)
	if err != nil {
		t.Fatal(err)
	}
	msgs := func(from uint64, n int, end context.CancelFunc) func(yield func(eventstore.RawMessage, error) bool) {
		return func(yield func(eventstore.RawMessage, error) bool) {
			for i := range n {
				if i == n-1 && end != nil {
					end() // the caller gives up while its last batch is being made
				}
				data, err := eventstore.Encode(newEvent(key))
				if !yield(eventstore.RawMessage{Seq: from + uint64(i), Subject: subject, Data: data}, err) {
					return
				}
			}
		}
	}
	for i := range 60 {
		ctx, cancel := context.WithCancel(context.Background())
		// Stored or context.Canceled: the caller stops waiting, the stream says what was stored.
		if _, err := s.Import(ctx, msgs(mustLastSeq(t, s)+1, 3, cancel)); err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("import %d with its context ended: %v", i, err)
		}
	}
	from := mustLastSeq(t, s) + 1
	last, err := s.Import(context.Background(), msgs(from, 3, nil))
	if err != nil {
		t.Fatalf("an import after callers gave up: %v", err)
	}
	if last != from+2 || mustLastSeq(t, s) != from+2 {
		t.Fatalf("imported through %d, the stream ends at %d; want %d", last, mustLastSeq(t, s), from+2)
	}
}

// TestStore_Import_StopsWhenTheCallerStops: since each atomic batch runs on a context of its
// own (TestStore_Import_CallersLeaveNoBatches), nothing in Import looked at the caller's
// context any more: an operator who stopped nirctl restore (Ctrl-C, SIGTERM) had the whole
// backup imported anyway, batch after batch, however long it took, and only then the error.
// Found on 2026-12-07 in a review of that fix: 1 000 messages were imported after the
// caller's context ended at the 150th. Now no batch is begun once the context has ended:
// Import returns the context's error and the last sequence stored, and the stream holds
// nothing after it (a restore left unfinished, which a restore again starts over).
func TestStore_Import_StopsWhenTheCallerStops(t *testing.T) {
	s, _ := openStore(t, nil)
	key := personKey("imported")
	subject, err := eventstore.Subject(key)
	if err != nil {
		t.Fatal(err)
	}
	const n, stopAt = 1000, 150
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs := func(yield func(eventstore.RawMessage, error) bool) {
		for i := range n {
			if i == stopAt {
				cancel() // the operator stops the restore
			}
			data, err := eventstore.Encode(newEvent(key))
			if !yield(eventstore.RawMessage{Seq: uint64(i) + 1, Subject: subject, Data: data}, err) {
				return
			}
		}
	}
	last, err := s.Import(ctx, msgs)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("import whose context ended at message %d: %v; want context.Canceled", stopAt, err)
	}
	if got := mustLastSeq(t, s); got != last || got >= n {
		t.Fatalf("import whose context ended at message %d: returned %d, the stream ends at %d; want both the same and below %d", stopAt, last, got, n)
	}
}
