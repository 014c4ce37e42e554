package ingest_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/introreg/nir/internal/access"
	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/ingest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestService_RefoldBound: one request's retractions may re-fold at most
// Config.MaxRefoldEvents of one person's events (each retraction is judged against the
// person's history re-folded without its target). A kommune's request past it is refused
// whole with ErrTooLarge, naming the first retraction that does not fit and how many do, and
// holding no id; split, the same retractions are stored. nird's own writers are not bound.
// Found on 2026-12-07 (helper-124): one request of 500 absence and retraction pairs for a
// kommune's own person of 8 000 events took 3.8 s.
func TestService_RefoldBound(t *testing.T) {
	ctx := context.Background()
	_, store := newService(t)
	svc := serviceOn(t, store, func(c *ingest.Config) { c.MaxRefoldEvents = 40 })
	id, reg := person(62, false)
	regs := []*nirv1.Registration{reg}
	for range 9 {
		regs = append(regs, offer(id))
	}
	pos, err := svc.Append(ctx, oslo, regs)
	if err != nil {
		t.Fatal(err)
	}
	key := pos[0].PersonKey
	retract := func(from, to int) []*nirv1.Registration {
		var out []*nirv1.Registration
		for _, p := range pos[from:to] {
			out = append(out, retractOn(key, p.EventId))
		}
		return out
	}

	// 10 stored and 4 new events: 40/14, so two retractions fit; the third is refused.
	three := append(retract(1, 4), offer(id))
	_, err = svc.Append(ctx, oslo, three)
	if !errors.Is(err, ingest.ErrTooLarge) || !strings.Contains(err.Error(), "registrations[2]: a retraction of a person of 14 events, and at most 2 fit") {
		t.Fatalf("three retractions past the bound: %v; want ErrTooLarge naming registrations[2]", err)
	}
	if strings.Contains(err.Error(), id) || strings.Contains(err.Error(), key) {
		t.Fatal("the refusal holds the person's id or key")
	}
	if h, _, _ := store.Read(ctx, key); len(h) != 10 {
		t.Fatalf("%d events stored after the refusal, want the 10 before", len(h))
	}
	if _, err := svc.Append(ctx, oslo, three[:2]); err != nil {
		t.Fatalf("two retractions within the bound: %v", err)
	}
	if _, err := svc.Append(ctx, oslo, three[2:]); err != nil {
		t.Fatalf("the third in its own request: %v", err)
	}
	// The system scope (a load, the regelmotor) is not bound.
	if _, err := svc.Append(ctx, historyReader, retract(4, 9)); err != nil {
		t.Fatalf("five retractions by nird's own writer: %v", err)
	}
	h, _, err := store.Read(ctx, key)
	if st := ingest.FoldHistory(key, h); err != nil || len(st.Retracted) != 8 {
		t.Fatalf("%d events retracted (%v), want 8", len(st.Retracted), err)
	}
}

// TestService_RefoldBoundHidden: past the refold bound or the bound of one person's events,
// a request for another kommune's person and one for a person nobody registered get the same
// answer, NotFound, so neither bound's refusal tells a kommune which of the two it named.
func TestService_RefoldBoundHidden(t *testing.T) {
	ctx := context.Background()
	_, store := newService(t)
	bergen := access.For(auth.Principal{Name: "bergen-fagsystem", Role: auth.RoleKommune, Kommune: "4601"})
	_, reg := person(63, false)
	pos, err := serviceOn(t, store).Append(ctx, oslo, []*nirv1.Registration{reg})
	if err != nil {
		t.Fatal(err)
	}
	nobody, _ := person(64, false)
	refs := map[string]*nirv1.PersonRef{
		"another kommune's person":   {PersonKey: pos[0].PersonKey},
		"a person nobody registered": {NationalId: nobody},
	}
	bounds := map[string]func(*ingest.Config){
		"MaxRefoldEvents": func(c *ingest.Config) { c.MaxRefoldEvents = 2 },
		"MaxPersonEvents": func(c *ingest.Config) { c.MaxPersonEvents = 2 },
	}
	for bound, mod := range bounds {
		svc := serviceOn(t, store, mod)
		for what, ref := range refs {
			var regs []*nirv1.Registration
			for range 3 {
				r := retractOn("", pos[0].EventId)
				r.Person, r.Event.Kommune = ref, "4601"
				regs = append(regs, r)
			}
			if _, err := svc.Append(ctx, bergen, regs); !errors.Is(err, ingest.ErrNotFound) && !errors.Is(err, access.ErrNotFound) {
				t.Errorf("%s: three retractions for %s: %v, want NotFound", bound, what, err)
			}
		}
	}
}

// TestService_RefoldBoundMerged: the bound counts the events a merge copied into the person,
// which every re-fold applies, and not only the person's own stream: a kommune that merged
// a person of many events into one of few could otherwise send as many retractions as fit a
// person of few events, each re-folding the many.
func TestService_RefoldBoundMerged(t *testing.T) {
	ctx := context.Background()
	svc, store := newService(t)
	dnr, fnr, _, pos := registeredTwice(t, svc, 65)
	var offers []*nirv1.Registration
	for range 9 {
		offers = append(offers, offer(fnr))
	}
	op, err := svc.Append(ctx, oslo, offers)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{mergeReg(dnr, pos[1].PersonKey)}); err != nil {
		t.Fatal(err)
	}
	// The survivor stores 2 events (its registration and the merge) and folds 12: with 3
	// new, 40/15 lets two retractions in.
	bounded := serviceOn(t, store, func(c *ingest.Config) { c.MaxRefoldEvents = 40 })
	var three []*nirv1.Registration
	for _, p := range op[:3] {
		three = append(three, retractOn(pos[0].PersonKey, p.EventId))
	}
	_, err = bounded.Append(ctx, oslo, three)
	if !errors.Is(err, ingest.ErrTooLarge) || !strings.Contains(err.Error(), "registrations[2]: a retraction of a person of 15 events, and at most 2 fit") {
		t.Fatalf("three retractions of a merged person's copies: %v; want ErrTooLarge naming registrations[2]", err)
	}
	if _, err := bounded.Append(ctx, oslo, three[:2]); err != nil {
		t.Fatalf("two within the bound: %v", err)
	}
}

// TestService_RefoldBoundProgrammes: a person's programmes weigh in the bound, as a fold's
// cost per event grows with them (settling looks at each after every event): 250 of them
// count as one event more per event. Found on 2026-12-07 (review): a kommune's own person of
// 10 000 events alternating tildeling and termination (5 000 programmes) folded in 180 ms
// instead of under 10, so the 100 retractions the bound let one request hold cost 18 s.
func TestService_RefoldBoundProgrammes(t *testing.T) {
	ctx := context.Background()
	_, store := newService(t)
	svc := serviceOn(t, store, func(c *ingest.Config) { c.MaxRefoldEvents = 2100 })
	id, reg := person(63, true)
	regs := []*nirv1.Registration{reg, offer(id), offer(id), offer(id)}
	day := time.Date(2019, 6, 1, 0, 0, 0, 0, time.UTC)
	on := func(t time.Time) *nirv1.Date {
		return &nirv1.Date{Year: int32(t.Year()), Month: int32(t.Month()), Day: int32(t.Day())}
	}
	for range 250 {
		regs = append(regs,
			&nirv1.Registration{Person: &nirv1.PersonRef{NationalId: id}, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301",
				Payload: &nirv1.Event_ProgrammeVedtakRegistered{ProgrammeVedtakRegistered: &nirv1.ProgrammeVedtakRegistered{
					Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, VedtakDate: on(day), FromDate: on(day)}}}},
			&nirv1.Registration{Person: &nirv1.PersonRef{NationalId: id}, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301",
				Payload: &nirv1.Event_TerminationRegistered{TerminationRegistered: &nirv1.TerminationRegistered{
					Kind: nirv1.TerminationKind_TERMINATION_KIND_FULLFORT, Reason: nirv1.TerminationReason_TERMINATION_REASON_ARBEID, Date: on(day.AddDate(0, 0, 1))}}}})
		day = day.AddDate(0, 0, 2)
	}
	pos, err := svc.Append(ctx, oslo, regs)
	if err != nil {
		t.Fatal(err)
	}
	key := pos[0].PersonKey
	three := []*nirv1.Registration{retractOn(key, pos[1].EventId), retractOn(key, pos[2].EventId), retractOn(key, pos[3].EventId)}
	// 504 stored and 3 new events, 250 programmes: 2 100/(507×2) = 2 retractions fit (4
	// without the weight).
	_, err = svc.Append(ctx, oslo, three)
	if !errors.Is(err, ingest.ErrTooLarge) || !strings.Contains(err.Error(), "registrations[2]: a retraction of a person of 507 events and 250 programmes, and at most 2 fit") {
		t.Fatalf("three retractions of a person of 250 programmes: %v; want ErrTooLarge naming registrations[2]", err)
	}
	if _, err := svc.Append(ctx, oslo, three[:2]); err != nil {
		t.Fatalf("two retractions: %v", err)
	}
}
