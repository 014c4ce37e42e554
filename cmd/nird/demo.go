package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/access"
	"github.com/introreg/nir/internal/demo"
	"github.com/introreg/nir/internal/ingest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// demoSeed fixes the demo population, so that every newcomer sees the same persons.
const demoSeed = 1

// loadDemo fills an empty register with a synthetic population (internal/demo) through the
// ordinary append path, one atomic append per person, as that person's kommune's case system
// would send it. Each event carries the time it would have been recorded (demo.RecordedTimes:
// days after the fact, some corrections after the ajourføring deadline), and the computed
// terminations the regelmotor would have recorded the night after they fell due are added
// with theirs, so an as-of replay (`nirctl replay --year 2022`, a snapshot
// "2022@2023-02-28") shows the register as it was known then. A register that holds any
// event is left alone.
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
	now, today := time.Now(), svc.Today()
	work := make(chan []*nirv1.Event)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		events   int
		computed int
		loadErr  error
	)
	for range 16 {
		wg.Go(func() {
			for evs := range work {
				n, c, err := loadDemoPerson(ctx, svc, evs, now, today)
				mu.Lock()
				if err != nil && loadErr == nil {
					loadErr = fmt.Errorf("demo person: %w", err)
				}
				events += n
				computed += c
				mu.Unlock()
			}
		})
	}
	for evs := range demo.Generate(demoSeed, persons, today) {
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
	if err := ctx.Err(); err != nil {
		return err
	}
	// Every event so far was recorded in the past: as-of replays must not cut them by the
	// stream's receive time.
	if last, err = store.LastSeq(ctx); err != nil {
		return err
	}
	if err := store.MarkBackdated(ctx, last); err != nil {
		return err
	}
	log.Info("demo population loaded", "persons", persons, "events", events, "computed_terminations", computed,
		"seconds", time.Since(start).Seconds())
	return nil
}

// loadDemoPerson appends one person's events with their recorded times, then the computed
// terminations due today, each recorded the night after it fell due.
func loadDemoPerson(ctx context.Context, svc *ingest.Service, evs []*nirv1.Event, now time.Time, today rules.Date) (events, computed int, err error) {
	regs := demo.Registrations(evs)
	times := demo.RecordedTimes(evs, now)
	pos, err := svc.AppendAt(ctx, access.System(demoActor(evs)), regs, times)
	if err != nil {
		return 0, 0, err
	}
	key := pos[0].GetPersonKey()
	// Folded as stored, with their recorded times: the inactivity rule counts from the last
	// registration, and the append path judges a computed termination on the stored history.
	stored := make([]*nirv1.Event, len(evs))
	for i, ev := range evs {
		stored[i] = proto.CloneOf(ev)
		stored[i].RecordedAt = timestamppb.New(times[i])
	}
	st := rules.Fold(key, stored)
	due := rules.DueTerminations(st, today)
	if len(due) == 0 {
		return len(regs), 0, nil
	}
	cregs := make([]*nirv1.Registration, len(due))
	at := make([]time.Time, len(due))
	for i, ev := range due {
		ev.Actor = nil // set by the append path
		cregs[i] = &nirv1.Registration{Person: &nirv1.PersonRef{PersonKey: key}, Event: ev}
		at[i] = demo.ComputedRecordedAt(dueDay(st, ev.GetId(), today), now)
	}
	if _, err := svc.AppendAt(ctx, access.System(regelmotorActor), cregs, at); err != nil {
		return len(regs), 0, fmt.Errorf("computed termination: %w", err)
	}
	return len(regs), len(due), nil
}

// dueDay returns the first day on which the computed termination id was due (the regelmotor
// computes it on that day's pass): the termination's date, or later for a rule that waits
// (a stans without a reason is due 30 days after it, DOMAIN.md Product decisions 11).
func dueDay(st *rules.State, id string, today rules.Date) rules.Date {
	isDue := func(d rules.Date) bool {
		return slices.ContainsFunc(rules.DueTerminations(st, d), func(ev *nirv1.Event) bool { return ev.GetId() == id })
	}
	// Offsets back from today: today-hi is due, today-lo is not (or lies far enough back).
	hi, lo := 0, 1
	for lo < 40*365 && isDue(today.AddDays(-lo)) {
		hi, lo = lo, lo*2
	}
	for lo-hi > 1 {
		mid := (lo + hi) / 2
		if isDue(today.AddDays(-mid)) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return today.AddDays(-hi)
}

// demoActor is the actor of a demo person's events: the case system of the kommune that
// registered the person.
func demoActor(evs []*nirv1.Event) *nirv1.Actor {
	return &nirv1.Actor{Subject: "demo-fagsystem-" + evs[0].GetKommune(), Role: nirv1.ActorRole_ACTOR_ROLE_KOMMUNE, System: "nird --demo"}
}
