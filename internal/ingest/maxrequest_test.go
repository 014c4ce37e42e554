package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/ingest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// TestService_LargestRequestFits: a request of ingest.DefaultMaxRegistrations registrations,
// which the API promises to take, is stored whatever events nird adds to it, through the real
// append path (embedded JetStream). The most a registration brings is a person registered
// with three national ids: two IdentifierClaimed besides the registration, in the same atomic
// batch (alias.go). Found on 2026-12-08 by `nirctl import --batch 1000` of a demo population:
// a batch of 1000 registrations of which one added an id was refused with "1001 events, at
// most 1000 per call", the server's default atomic batch limit, which nird now raises.
func TestService_LargestRequestFits(t *testing.T) {
	svc, store := newService(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	regs := make([]*nirv1.Registration, ingest.DefaultMaxRegistrations)
	for i := range regs {
		regs[i] = threeIDs(t, i)
	}
	positions, err := svc.Append(ctx, oslo, regs)
	if err != nil {
		t.Fatalf("%d registrations of three ids each: %v", len(regs), err)
	}
	if len(positions) != len(regs) {
		t.Fatalf("%d positions for %d registrations", len(positions), len(regs))
	}
	if last, err := store.LastSeq(ctx); err != nil || last != uint64(3*len(regs)) {
		t.Errorf("stream at %d (%v); want %d: every registration and its two claims", last, err, 3*len(regs))
	}
}

// TestService_RequestPastTheBatch: a Service configured to take more registrations than
// always fit one atomic batch (ingest.Config.MaxRegistrations) refuses a request whose events,
// with the claims nird adds, pass eventstore.MaxBatchEvents: ErrTooLarge, nothing stored, and
// the message names the limit and how many registrations to send instead. Before, the store's
// "3003 events, at most 3000 per call" named neither.
func TestService_RequestPastTheBatch(t *testing.T) {
	_, store := newService(t)
	svc := serviceOn(t, store, func(c *ingest.Config) { c.MaxRegistrations = 2 * ingest.DefaultMaxRegistrations })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	regs := make([]*nirv1.Registration, ingest.DefaultMaxRegistrations+1)
	for i := range regs {
		regs[i] = threeIDs(t, i)
	}
	_, err := svc.Append(ctx, oslo, regs)
	want := fmt.Sprintf("the 1001 new registrations make 3003 events with the ids they claim and the merges they close, and one request is stored in one atomic batch of at most %d events; send at most 1000 registrations in a request", eventstore.MaxBatchEvents)
	if !errors.Is(err, ingest.ErrTooLarge) || !strings.Contains(err.Error(), want) {
		t.Fatalf("1001 registrations of three ids each: %v; want ErrTooLarge saying %q", err, want)
	}
	if last, err := store.LastSeq(ctx); err != nil || last != 0 {
		t.Errorf("the refused request left the stream at %d (%v)", last, err)
	}
}

// threeIDs is the registration of person i by fødselsnummer, D-nummer and DUF-nummer.
func threeIDs(t *testing.T, i int) *nirv1.Registration {
	t.Helper()
	birth := rules.Date{Y: 1990, M: time.Month(1 + i%12), D: 1 + i%28}
	_, reg := person(i, false)
	pr := reg.GetEvent().GetPersonRegistered()
	pr.DNummer, pr.DufNummer = rules.SyntheticDNummer(birth, i), dufNummer(t, i)
	return reg
}

// dufNummer returns a valid DUF-nummer for i: ten digits of i and the check digits that fit.
func dufNummer(t *testing.T, i int) string {
	t.Helper()
	for c := range 100 {
		id := fmt.Sprintf("2024%06d%02d", i, c)
		if _, err := rules.ParseNationalID(id); err == nil {
			return id
		}
	}
	t.Fatalf("no check digits for DUF-nummer %d", i)
	return ""
}
