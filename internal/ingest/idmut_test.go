package ingest_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/introreg/nir/internal/access"
	"github.com/introreg/nir/internal/ingest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestService_FutureULIDQuarterWindow: a client's id is refused once its ULID time lies more
// than a quarter of the dedupe window ahead (idAhead), not only beyond the whole window: an id
// half a window ahead, stored now, would be taken for recent (allRecent: the last half window)
// until the moment the window forgets it, with no margin for the clocks. Found by mutation
// testing (2026-12-07): TestService_FutureULIDRefused sends an id three windows ahead, and a
// bound of a whole window passed it.
func TestService_FutureULIDQuarterWindow(t *testing.T) {
	ctx := context.Background()
	svc, _ := newService(t) // the default window, 2 minutes, on both sides
	id, reg := person(34, false)
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{reg}); err != nil {
		t.Fatal(err)
	}
	half := offer(id)
	half.Event.Id = ulid.MustNew(ulid.Timestamp(time.Now().Add(time.Minute)), ulid.DefaultEntropy()).String()
	_, err := svc.Append(ctx, oslo, []*nirv1.Registration{half})
	var inv *ingest.InvalidError
	if !errors.As(err, &inv) || inv.Field != "registrations[0].event.id" || !strings.Contains(inv.Reason, "ahead of the register's clock") {
		t.Errorf("an id stamped a minute (half the window) ahead: %v; want an InvalidError naming registrations[0].event.id", err)
	}
}

// TestService_ULIDTimeZeroNotReserved: an id with ULID time 0 (1970-01-01, the time `nirctl
// import` gives the ids it derives for lines without one) is a kommune's to use; only the
// regelmotor's midnights after it are reserved (idReserved). Found by mutation testing
// (2026-12-07): only cmd/nirctl's TestImport_DerivedIDsAsKommune held it, not this package.
func TestService_ULIDTimeZeroNotReserved(t *testing.T) {
	ctx := context.Background()
	svc, _ := newService(t)
	id, reg := person(35, false)
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{reg}); err != nil {
		t.Fatal(err)
	}
	zero := offer(id)
	zero.Event.Id = ulid.MustNew(0, ulid.DefaultEntropy()).String()
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{zero}); err != nil {
		t.Errorf("an id with ULID time 0 from a kommune: %v; want it stored", err)
	}
	midnight := offer(id)
	midnight.Event.Id = ulid.MustNew(ulid.Timestamp(time.Date(2024, 6, 3, 0, 0, 0, 0, time.UTC)), ulid.DefaultEntropy()).String()
	var inv *ingest.InvalidError
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{midnight}); !errors.As(err, &inv) || !strings.Contains(inv.Reason, "midnight UTC") {
		t.Errorf("an id at midnight UTC from a kommune: %v; want it refused naming the midnight rule", err)
	}
}

// TestService_FutureIDNotRecent: an id whose ULID time lies ahead of this machine's clock is
// not taken for recent (allRecent), since it may have been stored any time before: only
// clients' ids are bounded ahead (idAhead), and the system's are not (a computed termination
// dated today by Norway's calendar is stamped at midnight UTC, up to two hours ahead). An id
// the system stored for person A an hour ahead of its time, once the dedupe window has
// forgotten it, is not stored again for person B while the event-id index lags (a repair of
// the read models): the append waits for the index and is Unavailable, nothing stored. Found
// by mutation testing (2026-12-07, M27): allRecent without its bound on future times failed
// no test of the package.
func TestService_FutureIDNotRecent(t *testing.T) {
	ctx := context.Background()
	w := newIDWorld(t, true) // a window of 1 s
	system := access.System(&nirv1.Actor{Subject: "load", Role: nirv1.ActorRole_ACTOR_ROLE_SYSTEM})
	svc := w.service(w.proj)
	a, regA := person(36, false)
	b, regB := person(37, false)
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{regA, regB}); err != nil {
		t.Fatal(err)
	}
	stored := offer(a)
	stored.Event.Id = ulid.MustNew(ulid.Timestamp(time.Now().Add(time.Hour)), ulid.DefaultEntropy()).String()
	if _, err := svc.Append(ctx, system, []*nirv1.Registration{stored}); err != nil {
		t.Fatalf("the system stores an event under an id an hour ahead: %v", err)
	}
	w.forget(t)
	lagging := ingest.New(ingest.Config{Store: w.store, Keys: w.keys, IDs: repairingIndex{}, DedupeWindow: time.Second,
		ConflictTimeout: 200 * time.Millisecond, Now: func() time.Time { return fixedNow }})
	was, err := w.store.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	reuse := offer(b)
	reuse.Event.Id = stored.Event.Id
	if _, err := lagging.Append(ctx, system, []*nirv1.Registration{reuse}); !errors.Is(err, ingest.ErrUnavailable) {
		t.Errorf("the id an hour ahead, for another person, while the index lags: %v; want ErrUnavailable", err)
	}
	if last, err := w.store.LastSeq(ctx); err != nil || last != was {
		t.Errorf("the stream's last sequence %d (%v); want %d, nothing stored", last, err, was)
	}
}

// TestService_TipSamplesPruned: the sequence the event-id index must have read is the oldest
// sample of the stream's tip taken within the last half dedupe window (tipLog.bound), not the
// oldest ever taken: a nird whose index stopped where its first sample was taken counted as
// complete for an id stored after that sample and forgotten by the window since, and stored
// it again for another person. Now the old sample is dropped and the append waits for the
// index (Unavailable). Found by mutation testing (2026-12-07, M64): a tipLog that kept every
// sample failed no test of the package.
func TestService_TipSamplesPruned(t *testing.T) {
	ctx := context.Background()
	w := newIDWorld(t, true) // the window: 1 s
	svc := w.service(w.proj)
	a, regA := person(53, false)
	b, regB := person(54, false)
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{regA, regB}); err != nil {
		t.Fatal(err)
	}
	first, err := w.store.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	other := ingest.New(ingest.Config{Store: w.store, Keys: w.keys, IDs: indexAt{first}, DedupeWindow: time.Second,
		ConflictTimeout: 300 * time.Millisecond, Now: func() time.Time { return fixedNow }})
	if _, err := other.Append(ctx, oslo, []*nirv1.Registration{offer(a)}); err != nil {
		t.Fatalf("the append that takes the first sample, at %d: %v", first, err)
	}
	stored := offer(a) // after the first sample
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{stored}); err != nil {
		t.Fatal(err)
	}
	w.forget(t)
	time.Sleep(600 * time.Millisecond) // the id and the first sample older than half the window
	reuse := offer(b)
	reuse.Event.Id = stored.Event.Id
	if _, err := other.Append(ctx, oslo, []*nirv1.Registration{reuse}); err == nil {
		t.Fatalf("an event id stored for person A (after seq %d) was stored again for person B: the index counted as complete at a sample older than half the window", first)
	} else if !errors.Is(err, ingest.ErrUnavailable) {
		t.Errorf("the append while the index lags: %v, want Unavailable", err)
	}
}
