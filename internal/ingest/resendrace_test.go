package ingest_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/ingest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// replicaBehind is the real event store where another nird stores first: race runs once,
// just before the first append, and the read that follows it is answered as by a replica one
// event behind the stream leader (the newest event of the person left out); with stuck, every
// read after it is.
type replicaBehind struct {
	*eventstore.Store
	stuck  bool
	mu     sync.Mutex // guards the fields below
	race   func()
	behind bool
}

func (r *replicaBehind) Append(ctx context.Context, batch ...eventstore.PersonAppend) ([]eventstore.Position, error) {
	r.mu.Lock()
	race := r.race
	r.race = nil
	r.behind = r.behind || race != nil
	r.mu.Unlock()
	if race != nil {
		race()
	}
	return r.Store.Append(ctx, batch...)
}

func (r *replicaBehind) Read(ctx context.Context, key string) ([]eventstore.Stored, uint64, error) {
	history, last, err := r.Store.Read(ctx, key)
	r.mu.Lock()
	behind := r.behind
	r.behind = r.stuck
	r.mu.Unlock()
	if err != nil || !behind || len(history) < 2 {
		return history, last, err
	}
	history = history[:len(history)-1]
	return history, history[len(history)-1].Seq, nil
}

// offerExpecting registers person i through svc and returns an offer for the person that
// expects the registration's sequence, and that sequence.
func offerExpecting(t *testing.T, svc *ingest.Service, i int) (*nirv1.Registration, uint64) {
	t.Helper()
	id, reg := person(i, false)
	pos, err := svc.Append(context.Background(), oslo, []*nirv1.Registration{reg})
	if err != nil {
		t.Fatal(err)
	}
	n := pos[0].Sequence
	e := offer(id)
	e.ExpectedLastSequence = &n
	return e, n
}

// TestService_ResendWithExpectationRacedTwice: a re-send with expected_last_sequence whose
// first send another nird stores while this one judges it is the duplicate of the stored
// event, also when the event store finds it stored (ErrNotNew) on an attempt after the first:
// there the history read came from a replica behind the leader. The expectation is the
// caller's own, and its own event after it is no conflict; the next attempt reads the person
// and answers the duplicate. Found by mutation testing (2026-12-07, M03): ErrNotNew on a later
// attempt returned as a conflict to a caller with an expectation failed no test.
func TestService_ResendWithExpectationRacedTwice(t *testing.T) {
	ctx := context.Background()
	b, store := newService(t)
	e, n := offerExpecting(t, b, 39)
	var first []*nirv1.Position
	var err error
	raced := &replicaBehind{Store: store, race: func() {
		if first, err = b.Append(ctx, oslo, []*nirv1.Registration{e}); err != nil {
			t.Errorf("the first send, through another nird: %v", err)
		}
	}}
	a := serviceOn(t, raced)
	got, err := a.Append(ctx, oslo, []*nirv1.Registration{e})
	if err != nil {
		t.Fatalf("the re-send with its expectation, raced by its first send: %v; want its duplicate", err)
	}
	if !got[0].Duplicate || got[0].Sequence != first[0].Sequence {
		t.Errorf("the re-send answered %v; want duplicate at %d", got[0], first[0].Sequence)
	}
	if last, err := store.LastSeq(ctx); err != nil || last != n+1 {
		t.Errorf("the stream's last sequence %d (%v); want %d, the offer stored once", last, err, n+1)
	}
}

// TestService_NotNewGivesUp: a re-send that the event store finds stored on every attempt
// (ErrNotNew), each read answered by a replica stuck behind the leader, is read and checked
// again with a pause that grows, and only for Config.ConflictTimeout: then it is ErrConflict,
// nothing stored twice, well before the caller's own deadline. Found by mutation testing
// (2026-12-07, M03): ErrNotNew passed over without pause or bound on every attempt, not
// only on the first, failed no test; the request then hammered the stream with reads and
// appends until the caller's deadline.
func TestService_NotNewGivesUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, store := newService(t)
	id, reg := person(40, false)
	if _, err := b.Append(ctx, oslo, []*nirv1.Registration{reg}); err != nil {
		t.Fatal(err)
	}
	e := offer(id)
	stuck := &replicaBehind{Store: store, stuck: true, race: func() {
		if _, err := b.Append(ctx, oslo, []*nirv1.Registration{e}); err != nil {
			t.Errorf("the first send, through another nird: %v", err)
		}
	}}
	a := serviceOn(t, stuck, func(c *ingest.Config) { c.ConflictTimeout = 300 * time.Millisecond })
	began := time.Now()
	_, err := a.Append(ctx, oslo, []*nirv1.Registration{e})
	if took := time.Since(began); !errors.Is(err, ingest.ErrConflict) || took > 5*time.Second {
		t.Errorf("the re-send, found stored on every attempt: %v after %v; want ErrConflict once ConflictTimeout (300ms) has passed", err, took)
	}
	if last, err := store.LastSeq(context.Background()); err != nil || last != 2 {
		t.Errorf("the stream's last sequence %d (%v); want 2, the offer stored once", last, err)
	}
}
