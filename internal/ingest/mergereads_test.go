package ingest_test

import (
	"context"
	"sync"
	"testing"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/proto"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/access"
	"github.com/introreg/nir/internal/auth"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

type countingStore struct {
	*eventstore.Store
	mu    sync.Mutex
	reads map[string]int
}

func (c *countingStore) Read(ctx context.Context, key string) ([]eventstore.Stored, uint64, error) {
	c.mu.Lock()
	c.reads[key]++
	c.mu.Unlock()
	return c.Store.Read(ctx, key)
}

// Found on 2026-12-06 (review after merging de5354b): a retry after a merge read the absorbed
// person's whole stream once per re-sent registration of a request (and again on every
// attempt): one request of n re-sends of merged events read it n times, storing nothing; with
// 1000 registrations and 10 000 events a person, up to 10^7 messages a request, which any
// kommune reaching the survivor could repeat. Now once an attempt.
func TestService_RetriesAfterMergeReadTheMergedOnce(t *testing.T) {
	ctx := context.Background()
	_, store := newService(t)
	cs := &countingStore{Store: store, reads: map[string]int{}}
	svc := serviceOn(t, cs)
	dnr, fnr, _, pos := registeredTwice(t, svc, 45)
	absorbed := pos[1].PersonKey
	const n = 40
	var sent []*nirv1.Registration
	for i := 0; i < n; i++ {
		rp := &nirv1.Registration{Person: &nirv1.PersonRef{NationalId: fnr}, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301",
			Payload: &nirv1.Event_ReceptionParticipationRegistered{ReceptionParticipationRegistered: &nirv1.ReceptionParticipationRegistered{
				Activity: nirv1.ReceptionActivity_RECEPTION_ACTIVITY_NORSK, FromDate: d(2024, 1, 1+i%28), ToDate: d(2024, 1, 1+i%28), Hours: 1}}}}
		sent = append(sent, rp)
	}
	if _, err := svc.Append(ctx, oslo, sent); err != nil {
		t.Fatal(err)
	}
	operator := access.For(auth.Principal{Name: "drift", Role: auth.RoleOperator})
	if _, err := svc.Append(ctx, operator, []*nirv1.Registration{mergeReg(dnr, absorbed)}); err != nil {
		t.Fatal(err)
	}
	var again []*nirv1.Registration
	for _, r := range sent {
		again = append(again, proto.Clone(r).(*nirv1.Registration))
	}
	cs.mu.Lock()
	clear(cs.reads)
	cs.mu.Unlock()
	got, err := svc.Append(ctx, oslo, again)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range got {
		if !p.Duplicate {
			t.Fatalf("not a duplicate: %v", p)
		}
	}
	cs.mu.Lock()
	r := cs.reads[absorbed]
	cs.mu.Unlock()
	if r > 1 {
		t.Errorf("one request of %d re-sends read the absorbed person's stream %d times (want at most once)", n, r)
	}
}
