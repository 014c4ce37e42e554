package ingest_test

import (
	"context"
	"errors"
	"testing"

	"github.com/oklog/ulid/v2"

	"github.com/introreg/nir/internal/access"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestService_KommuneCheckedOnEveryAttempt: the access rules judge a kommune's event again on
// every attempt, on the history read after the race it lost, not only on the first (cached)
// one. Oslo moves its person to Bergen through one nird; through another, whose cache still
// has the person in Oslo, Oslo records a move to Trondheim: the first attempt, on the stale
// cache, passes and loses the race; the second, on the stream's history, finds the person
// Bergen's, and a move is recorded only by the kommune the person lives in (README "Kommune
// boundaries"). Found by mutation testing (2026-12-07): skipping CheckEvent on all but the
// first attempt failed no test of the package.
func TestService_KommuneCheckedOnEveryAttempt(t *testing.T) {
	ctx := context.Background()
	a, store := newService(t)
	b := serviceOn(t, store)
	id, reg := person(38, false)
	if _, err := a.Append(ctx, oslo, []*nirv1.Registration{reg}); err != nil {
		t.Fatal(err)
	}
	move := func(to string, day int) *nirv1.Registration {
		return &nirv1.Registration{Person: &nirv1.PersonRef{NationalId: id}, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301",
			Payload: &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: to, Date: d(2024, 6, day)}}}}
	}
	if _, err := b.Append(ctx, oslo, []*nirv1.Registration{move("4601", 2)}); err != nil {
		t.Fatalf("Oslo moves its person to Bergen: %v", err)
	}
	was, err := store.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Append(ctx, oslo, []*nirv1.Registration{move("5001", 3)})
	var denied *access.DeniedError
	if !errors.As(err, &denied) {
		t.Errorf("Oslo moves Bergen's person on, through a nird whose cache still has it in Oslo: %v; want denied", err)
	}
	if last, err := store.LastSeq(ctx); err != nil || last != was {
		t.Errorf("the stream's last sequence %d (%v); want %d, nothing stored", last, err, was)
	}
}
