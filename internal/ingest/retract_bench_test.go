package ingest_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/ingest"
	"github.com/introreg/nir/internal/personkey"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// BenchmarkServiceAppend_Retractions is one request of r retractions, each of an offer of a
// person of 1 000 events (a registration and 999 offers), up to about as many as the default
// MaxRefoldEvents lets one request hold for such a person (1 000 000/1 600 = 625); each is
// judged on the person re-folded with those before it. The person is stored before the clock
// runs, a new one for each op:
//
//	go test -run '^$' -bench BenchmarkServiceAppend_Retractions -benchtime 3x -cpuprofile cpu.out ./internal/ingest/
//
// Its time grows with r times the person's events, as each retraction re-folds the person
// (rules.State.Apply), and nothing grows faster: 150, 300 and 600 took 0.13, 0.13 and 0.31 s
// under a load of 9-10 (0.49 s for 600 under 14), 95% of the request in the re-folds
// (applying and settling each event, a fifth of it the person's law looked up again after
// each, rules.LawOf in State.finish, and as much the ids indexed again, State.knownAt), the
// rest the access check, the store and the request's bookkeeping (helper-146, 2026-12-07).
func BenchmarkServiceAppend_Retractions(b *testing.B) {
	ctx := context.Background()
	store, err := eventstore.Open(ctx, eventstore.Config{Dir: filepath.Join(b.TempDir(), "js")})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	keys, err := personkey.New([]byte("test secret for the ingest tests"))
	if err != nil {
		b.Fatal(err)
	}
	svc := ingest.New(ingest.Config{Store: store, Keys: keys, Now: func() time.Time { return fixedNow }})
	i := 0
	for _, r := range []int{150, 300, 600} {
		b.Run(fmt.Sprintf("retractions=%d", r), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				i++
				retractions := storedOffers(b, svc, 1000+i, r)
				b.StartTimer()
				if _, err := svc.Append(ctx, oslo, retractions); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// storedOffers stores person i with 999 offers and returns the retractions of the first r.
func storedOffers(b *testing.B, svc *ingest.Service, i, r int) []*nirv1.Registration {
	id, reg := person(i, false)
	regs := []*nirv1.Registration{reg}
	for range 999 {
		regs = append(regs, offer(id))
	}
	pos, err := svc.Append(context.Background(), oslo, regs)
	if err != nil {
		b.Fatal(err)
	}
	var retractions []*nirv1.Registration
	for _, p := range pos[1 : r+1] {
		retractions = append(retractions, retractOn(p.PersonKey, p.EventId))
	}
	return retractions
}
