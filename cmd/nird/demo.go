package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/demo"
	"github.com/introreg/nir/internal/ingest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// demoSeed fixes the demo population, so that every newcomer sees the same persons.
const demoSeed = 1

// loadDemo fills an empty register with a synthetic population (internal/demo) through the
// ordinary append path, one atomic append per person, as that person's kommune's case system
// would send it. A register that holds any event is left alone.
func loadDemo(ctx context.Context, store *eventstore.Store, svc *ingest.Service, persons int, log *slog.Logger) error {
	last, err := store.LastSeq(ctx)
	if err != nil {
		return err
	}
	if last > 0 {
		log.Info("demo population not loaded: the register already holds events", "last_seq", last)
		return nil
	}
	start := time.Now()
	work := make(chan []*nirv1.Event)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		events  int
		loadErr error
	)
	for range 16 {
		wg.Go(func() {
			for evs := range work {
				regs, actor := demoRegistrations(evs)
				_, err := svc.Append(ctx, actor, regs)
				mu.Lock()
				if err != nil && loadErr == nil {
					loadErr = fmt.Errorf("demo person: %w", err)
				}
				events += len(regs)
				mu.Unlock()
			}
		})
	}
	for evs := range demo.Generate(demoSeed, persons, svc.Today()) {
		mu.Lock()
		failed := loadErr != nil
		mu.Unlock()
		if failed || ctx.Err() != nil {
			break
		}
		work <- evs
	}
	close(work)
	wg.Wait()
	if loadErr != nil {
		return loadErr
	}
	log.Info("demo population loaded", "persons", persons, "events", events, "seconds", time.Since(start).Seconds())
	return ctx.Err()
}

// demoRegistrations turns one demo person's events into registrations, keyed by the national
// id of the person's first event, and the actor of the kommune that registers them.
func demoRegistrations(evs []*nirv1.Event) ([]*nirv1.Registration, *nirv1.Actor) {
	pr := evs[0].GetPersonRegistered()
	id := pr.GetFodselsnummer()
	if id == "" {
		id = pr.GetDNummer()
	}
	if id == "" {
		id = pr.GetDufNummer()
	}
	regs := make([]*nirv1.Registration, len(evs))
	for i, ev := range evs {
		regs[i] = &nirv1.Registration{Person: &nirv1.PersonRef{NationalId: id}, Event: ev}
	}
	return regs, &nirv1.Actor{Subject: "demo-fagsystem-" + evs[0].GetKommune(), Role: nirv1.ActorRole_ACTOR_ROLE_KOMMUNE, System: "nird --demo"}
}
