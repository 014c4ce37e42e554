package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/access"
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
				regs := demo.Registrations(evs)
				_, err := svc.Append(ctx, access.System(demoActor(evs)), regs)
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

// demoActor is the actor of a demo person's events: the case system of the kommune that
// registered the person.
func demoActor(evs []*nirv1.Event) *nirv1.Actor {
	return &nirv1.Actor{Subject: "demo-fagsystem-" + evs[0].GetKommune(), Role: nirv1.ActorRole_ACTOR_ROLE_KOMMUNE, System: "nird --demo"}
}
