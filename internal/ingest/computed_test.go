package ingest_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/proto"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/access"
	"github.com/introreg/nir/internal/ingest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// regelmotor is the system principal the regelmotor worker appends as.
var regelmotor = access.System(&nirv1.Actor{Subject: rules.RegelmotorSubject, Role: nirv1.ActorRole_ACTOR_ROLE_SYSTEM})

func on(id string, p any) *nirv1.Registration {
	ev := &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301"}
	switch p := p.(type) {
	case *nirv1.ProgrammeVedtakRegistered:
		ev.Payload = &nirv1.Event_ProgrammeVedtakRegistered{ProgrammeVedtakRegistered: p}
	case *nirv1.SluttmalRegistered:
		ev.Payload = &nirv1.Event_SluttmalRegistered{SluttmalRegistered: p}
	case *nirv1.TiltakRegistered:
		ev.Payload = &nirv1.Event_TiltakRegistered{TiltakRegistered: p}
	case *nirv1.TerminationRegistered:
		ev.Payload = &nirv1.Event_TerminationRegistered{TerminationRegistered: p}
	}
	return &nirv1.Registration{Person: &nirv1.PersonRef{NationalId: id}, Event: ev}
}

// TestService_ComputedTerminationJudgedOnTheStream: the regelmotor computes terminations
// from the read models, which may lag the stream (a catch-up after a restart, a full disk,
// another nird's lease). A termination computed from a state the stream has moved past is
// refused on the person's history as the append path reads it, and nothing is stored.
// DOMAIN.md Product decisions 5.
func TestService_ComputedTerminationJudgedOnTheStream(t *testing.T) {
	ctx := context.Background()
	svc, store := newService(t)
	id, key, due := terminationDue(t, svc, store, 7)

	// The kommune registers the actual reason before the regelmotor's models have seen it.
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{on(id, &nirv1.TerminationRegistered{
		Kind: nirv1.TerminationKind_TERMINATION_KIND_FULLFORT, Reason: nirv1.TerminationReason_TERMINATION_REASON_ARBEID, Date: d(2023, 2, 20)})}); err != nil {
		t.Fatal(err)
	}
	_, before, _ := store.Read(ctx, key)
	_, err := svc.Append(ctx, regelmotor, []*nirv1.Registration{{Person: &nirv1.PersonRef{PersonKey: key}, Event: due[0]}})
	var refused *ingest.RefusedError
	if !errors.As(err, &refused) {
		t.Fatalf("a termination computed from a stale state: err = %v, want a refusal", err)
	}
	if _, after, _ := store.Read(ctx, key); after != before {
		t.Errorf("the stale termination was stored (person at seq %d, was %d)", after, before)
	}

	// A termination still due is stored, once; one with other content than the rules
	// compute is refused.
	_, key2, due := terminationDue(t, svc, store, 8)
	forged := proto.CloneOf(due[0])
	forged.GetTerminationComputed().Date = d(2022, 1, 1)
	if _, err := svc.Append(ctx, regelmotor, []*nirv1.Registration{{Person: &nirv1.PersonRef{PersonKey: key2}, Event: forged}}); !errors.As(err, &refused) {
		t.Errorf("a computed termination the rules do not compute: err = %v, want a refusal", err)
	}
	if _, err := svc.Append(ctx, regelmotor, []*nirv1.Registration{{Person: &nirv1.PersonRef{PersonKey: key2}, Event: due[0]}}); err != nil {
		t.Fatalf("a due termination: %v", err)
	}
}

// fold is the person's state folded from the stream.
func fold(t *testing.T, ctx context.Context, store *eventstore.Store, key string) *rules.State {
	t.Helper()
	history, _, err := store.Read(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	st := rules.NewState(key)
	for _, e := range history {
		st.Apply(e.Seq, e.Event)
	}
	return st
}

// TestService_MaxPersonEvents: a request that would take a person past the most events one
// person may have is refused whole, naming the field and no id; nird's own writers are not
// bound. Without a bound, a client could grow one person without end, and every append for
// it that misses the history cache reads all of it (a helper's probe: 9 s an append at
// 500 000 events).
func TestService_MaxPersonEvents(t *testing.T) {
	ctx := context.Background()
	_, store := newService(t)
	svc := serviceOn(t, store, func(c *ingest.Config) { c.MaxPersonEvents = 3 })
	id, reg := person(9, false)
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{reg, offer(id)}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{offer(id), offer(id)}); !errors.Is(err, ingest.ErrPersonFull) ||
		!strings.Contains(err.Error(), "registrations[0]") || strings.Contains(err.Error(), id) {
		t.Fatalf("two more events on a person with two, at most three: %v, want ErrPersonFull naming registrations[0] and no id", err)
	}
	pos, err := svc.Append(ctx, oslo, []*nirv1.Registration{offer(id)})
	if err != nil {
		t.Fatalf("the third event: %v", err)
	}
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{offer(id)}); !errors.Is(err, ingest.ErrPersonFull) {
		t.Fatalf("a fourth event: %v, want ErrPersonFull", err)
	}
	system := access.System(&nirv1.Actor{Subject: "demo", Role: nirv1.ActorRole_ACTOR_ROLE_SYSTEM})
	if _, err := svc.Append(ctx, system, []*nirv1.Registration{{Person: &nirv1.PersonRef{PersonKey: pos[0].PersonKey}, Event: offer(id).Event}}); err != nil {
		t.Fatalf("nird's own writer past the bound: %v", err)
	}
}

// TestService_ComputedTerminationOfSplitKommuneStored: an IntroL participant of 1850 Tysfjord,
// split on 2020-01-01 into 1806 Narvik and 1875 Hamarøy (neither named Tysfjord), whose
// programme began in 2019. The regelmotor files its FRIST_UTLOPT, dated 2021-06-01, under the
// programme's own number 1850 (DOMAIN.md Product decisions 13: a number and its successors are
// one kommune for a programme).
//
// Found on 2026-12-06 (review of the regelmotor and read models): before, the append path's
// static validation checked 1850 on the termination date and refused the regelmotor's own
// termination on every pass (a failed pass each minute, the «ikke registrert» never stored);
// now a computed termination's kommune is checked on its programme_start, and it is stored.
func TestService_ComputedTerminationOfSplitKommuneStored(t *testing.T) {
	ctx := context.Background()
	svc, store := newService(t)
	loader := access.System(&nirv1.Actor{Subject: "load", Role: nirv1.ActorRole_ACTOR_ROLE_SYSTEM})
	id := rules.SyntheticFodselsnummer(rules.Date{Y: 1988, M: time.March, D: 3}, 91)
	reg := &nirv1.Registration{Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "1850",
		Payload: &nirv1.Event_PersonRegistered{PersonRegistered: &nirv1.PersonRegistered{
			Fodselsnummer: id, BirthDate: d(1988, 3, 3), Sex: nirv1.Sex_SEX_FEMALE,
			PermitDate: d(2018, 5, 1), PermitBasis: nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, ArrivalDate: d(2018, 1, 1),
			SettlementDate: d(2019, 3, 1), SettlementKommune: "1850", SettledByAgreement: true,
		}}}}
	vedtak := &nirv1.Registration{Person: &nirv1.PersonRef{NationalId: id}, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "1850",
		Payload: &nirv1.Event_ProgrammeVedtakRegistered{ProgrammeVedtakRegistered: &nirv1.ProgrammeVedtakRegistered{
			Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, VedtakDate: d(2019, 5, 20), FromDate: d(2019, 6, 1)}}}}
	pos, err := svc.Append(ctx, loader, []*nirv1.Registration{reg, vedtak})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	key := pos[0].PersonKey
	due := rules.DueTerminations(fold(t, ctx, store, key), rules.DateFromTime(fixedNow))
	if len(due) != 1 {
		t.Fatalf("%d terminations due, want 1", len(due))
	}
	if k := due[0].GetKommune(); k != "1850" {
		t.Fatalf("the computed termination names kommune %s, want the programme's 1850", k)
	}
	if _, err := svc.Append(ctx, regelmotor, []*nirv1.Registration{{Person: &nirv1.PersonRef{PersonKey: key}, Event: due[0]}}); err != nil {
		t.Fatalf("the regelmotor's own due termination is refused (retried every pass, never stored): %v", err)
	}
	st := fold(t, ctx, store, key)
	if n := len(st.Programmes); n != 1 {
		t.Fatalf("%d programmes, want 1", n)
	}
	term := st.Programmes[0].Termination
	if term == nil || term.EventID != due[0].GetId() {
		t.Fatalf("the programme's termination is %+v, want the stored computed %s", term, due[0].GetId())
	}
	if again := rules.DueTerminations(st, rules.DateFromTime(fixedNow)); len(again) != 0 {
		t.Errorf("still %d terminations due after the append", len(again))
	}

	// A computed termination under a number that did not exist when the programme began is
	// still refused, naming the field.
	forged := proto.CloneOf(due[0])
	forged.Kommune = "1806"
	forged.Id = rules.TerminationID(key, "1806", rules.MustDate(2019, 6, 1), forged.GetTerminationComputed().GetRule(), rules.MustDate(2021, 6, 1))
	_, err = svc.Append(ctx, regelmotor, []*nirv1.Registration{{Person: &nirv1.PersonRef{PersonKey: key}, Event: forged}})
	var invalid *ingest.InvalidError
	if !errors.As(err, &invalid) || !strings.Contains(err.Error(), "event.kommune") || !strings.Contains(err.Error(), "programme_start") {
		t.Errorf("a computed termination under 1806 (from 2020) for a programme begun in 2019: err = %v, want invalid event.kommune naming programme_start", err)
	}
}

// terminationDue registers person n in a tildeling whose last tiltak ended on 2023-02-28
// and returns their id, key and the one computed termination due on fixedNow.
func terminationDue(t *testing.T, svc *ingest.Service, store *eventstore.Store, n int) (string, string, []*nirv1.Event) {
	t.Helper()
	ctx := context.Background()
	id, reg := person(n, true)
	regs := []*nirv1.Registration{reg,
		on(id, &nirv1.ProgrammeVedtakRegistered{Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, VedtakDate: d(2021, 3, 1), FromDate: d(2021, 3, 1)}),
		on(id, &nirv1.TiltakRegistered{Code: nirv1.TiltakCode_TILTAK_CODE_KURS, FromDate: d(2021, 3, 2), ToDate: d(2023, 2, 28)}),
	}
	pos, err := svc.Append(ctx, oslo, regs)
	if err != nil {
		t.Fatal(err)
	}
	key := pos[0].PersonKey
	due := rules.DueTerminations(fold(t, ctx, store, key), rules.DateFromTime(fixedNow))
	if len(due) != 1 {
		t.Fatalf("%d terminations due on the scenario, want 1", len(due))
	}
	return id, key, due
}
