package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/access"
	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/ingest"
	"github.com/introreg/nir/internal/personkey"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

var (
	// oslo is Oslo's case system: it registers persons settled in Oslo.
	oslo     = access.For(auth.Principal{Name: "oslo-fagsystem", Role: auth.RoleKommune, Kommune: "0301"})
	fixedNow = time.Date(2024, 6, 3, 10, 0, 0, 0, time.UTC)
)

func newService(t *testing.T) (*ingest.Service, *eventstore.Store) {
	t.Helper()
	store, err := eventstore.Open(context.Background(), eventstore.Config{Dir: filepath.Join(t.TempDir(), "js")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return serviceOn(t, store), store
}

// serviceOn is another append path on store, with its own empty history cache: as another
// nird process on the same stream.
func serviceOn(t *testing.T, store ingest.Store, mods ...func(*ingest.Config)) *ingest.Service {
	t.Helper()
	keys, err := personkey.New([]byte("test secret for the ingest tests"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := ingest.Config{Store: store, Keys: keys, Now: func() time.Time { return fixedNow }}
	for _, mod := range mods {
		mod(&cfg)
	}
	return ingest.New(cfg)
}

func d(y, m, day int) *nirv1.Date {
	return &nirv1.Date{Year: int32(y), Month: int32(m), Day: int32(day)}
}

// person returns a national id and the registration of a person under integreringsloven
// (permit 2024, DOMAIN.md 1.1), or under introduksjonsloven when introl is set.
func person(i int, introl bool) (string, *nirv1.Registration) {
	id := rules.SyntheticFodselsnummer(rules.Date{Y: 1990, M: time.Month(1 + i%12), D: 1 + i%28}, i)
	permit, arrival := d(2024, 1, 10), d(2023, 12, 1)
	if introl {
		permit, arrival = d(2019, 5, 2), d(2019, 3, 1)
	}
	return id, &nirv1.Registration{Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301",
		Payload: &nirv1.Event_PersonRegistered{PersonRegistered: &nirv1.PersonRegistered{
			Fodselsnummer: id, BirthDate: d(1990, 1+i%12, 1+i%28), Sex: nirv1.Sex_SEX_FEMALE,
			PermitDate: permit, PermitBasis: nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, ArrivalDate: arrival,
			SettlementDate: d(int(permit.Year), 6, 1), SettlementKommune: "0301", SettledByAgreement: true,
		}}}}
}

func offer(id string) *nirv1.Registration {
	return &nirv1.Registration{Person: &nirv1.PersonRef{NationalId: id}, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301",
		Payload: &nirv1.Event_OfferRegistered{OfferRegistered: &nirv1.OfferRegistered{Programme: nirv1.Programme_PROGRAMME_INTRO, Date: d(2024, 3, 1)}}}}
}

func TestService_Append(t *testing.T) {
	ctx := context.Background()

	t.Run("OK", func(t *testing.T) {
		svc, store := newService(t)
		id, reg := person(1, false)
		pos, err := svc.Append(ctx, oslo, []*nirv1.Registration{reg, offer(id)})
		if err != nil {
			t.Fatal(err)
		}
		if len(pos) != 2 || pos[0].Sequence+1 != pos[1].Sequence || pos[0].Duplicate || pos[0].PersonKey != pos[1].PersonKey {
			t.Fatalf("positions = %v", pos)
		}
		events, last, err := store.Read(ctx, pos[0].PersonKey)
		if err != nil {
			t.Fatal(err)
		}
		if len(events) != 2 || last != pos[1].Sequence {
			t.Fatalf("read %d events, last %d", len(events), last)
		}
		ev := events[0].Event
		if ev.GetActor().GetSubject() != "oslo-fagsystem" || !ev.GetRecordedAt().AsTime().Equal(fixedNow) || ev.GetPersonKey() != pos[0].PersonKey {
			t.Errorf("envelope not stamped: actor %v recorded %v key %q", ev.GetActor(), ev.GetRecordedAt().AsTime(), ev.GetPersonKey())
		}
		if strings.Contains(ev.GetPersonKey(), id) {
			t.Errorf("person key holds the national id")
		}
	})

	t.Run("AppendAt", func(t *testing.T) {
		// A trusted history load stamps each event with the time it was recorded, not now;
		// a recorded time in the future or a count that does not match is refused.
		svc, store := newService(t)
		id, reg := person(3, false)
		at := []time.Time{fixedNow.AddDate(0, -3, 0), fixedNow.AddDate(0, -2, 0)}
		pos, err := svc.AppendAt(ctx, oslo, []*nirv1.Registration{reg, offer(id)}, at)
		if err != nil {
			t.Fatal(err)
		}
		events, _, err := store.Read(ctx, pos[0].PersonKey)
		if err != nil || len(events) != 2 {
			t.Fatalf("read %d events, %v", len(events), err)
		}
		for i, e := range events {
			if got := e.Event.GetRecordedAt().AsTime(); !got.Equal(at[i]) {
				t.Errorf("event %d recorded at %v, want %v", i, got, at[i])
			}
		}
		if _, err := svc.AppendAt(ctx, oslo, []*nirv1.Registration{offer(id)}, []time.Time{fixedNow.Add(time.Hour)}); !errors.Is(err, ingest.ErrInvalid) {
			t.Errorf("future recorded time: err = %v, want ErrInvalid", err)
		}
		if _, err := svc.AppendAt(ctx, oslo, []*nirv1.Registration{offer(id)}, nil); !errors.Is(err, ingest.ErrInvalid) {
			t.Errorf("missing recorded times: err = %v, want ErrInvalid", err)
		}
	})

	t.Run("Duplicate", func(t *testing.T) {
		svc, _ := newService(t)
		id, reg := person(2, false)
		req := []*nirv1.Registration{reg, offer(id)}
		first, err := svc.Append(ctx, oslo, req)
		if err != nil {
			t.Fatal(err)
		}
		again, err := svc.Append(ctx, oslo, req)
		if err != nil {
			t.Fatalf("retry: %v", err)
		}
		for i := range first {
			if !again[i].Duplicate || again[i].Sequence != first[i].Sequence {
				t.Errorf("retry position %d = %v, want duplicate of %v", i, again[i], first[i])
			}
		}
		// A request mixing a stored event and a new one stores only the new one.
		more := offer(id)
		mixed, err := svc.Append(ctx, oslo, []*nirv1.Registration{req[1], more})
		if err != nil {
			t.Fatal(err)
		}
		if !mixed[0].Duplicate || mixed[1].Duplicate || mixed[1].Sequence <= first[1].Sequence {
			t.Errorf("mixed retry positions = %v", mixed)
		}
	})

	t.Run("ErrInvalid", func(t *testing.T) {
		svc, _ := newService(t)
		id, reg := person(3, false)
		bad := offer(id)
		bad.Person.NationalId = id[:10] + string('0'+(id[10]-'0'+1)%10)
		cases := map[string][]*nirv1.Registration{
			"no registrations": nil,
			"no event":         {{Person: &nirv1.PersonRef{NationalId: id}}},
			"bad national id":  {reg, bad},
			"repeated id":      {reg, {Person: reg.Person, Event: reg.Event}},
			"key mismatch":     {{Person: &nirv1.PersonRef{NationalId: id}, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301", PersonKey: strings.Repeat("a", 64), Payload: offer(id).Event.Payload}}},
		}
		// A computed termination from a kommune is refused by the access rules, naming the
		// field.
		computed := []*nirv1.Registration{{Person: &nirv1.PersonRef{NationalId: id}, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301",
			Payload: &nirv1.Event_TerminationComputed{TerminationComputed: &nirv1.TerminationComputed{Rule: nirv1.TerminationRule_TERMINATION_RULE_FRIST_UTLOPT, Reason: nirv1.TerminationReason_TERMINATION_REASON_IKKE_REGISTRERT, Date: d(2024, 1, 1), ProgrammeStart: d(2023, 1, 1)}}}}}
		var de *access.DeniedError
		if _, err := svc.Append(ctx, oslo, computed); !errors.As(err, &de) || de.Field != "registrations[0].event.termination_computed" {
			t.Errorf("computed termination from a kommune: %v, want a refusal naming registrations[0].event.termination_computed", err)
		}
		for name, regs := range cases {
			_, err := svc.Append(ctx, oslo, regs)
			var ie *ingest.InvalidError
			if !errors.As(err, &ie) || !errors.Is(err, ingest.ErrInvalid) {
				t.Errorf("%s: error = %v, want *InvalidError", name, err)
				continue
			}
			if ie.Field == "" {
				t.Errorf("%s: error names no field", name)
			}
			if strings.Contains(err.Error(), id) || strings.Contains(err.Error(), bad.Person.NationalId) {
				t.Errorf("%s: error message holds a national id: %v", name, err)
			}
		}
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		svc, _ := newService(t)
		id, _ := person(4, false)
		if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{offer(id)}); !errors.Is(err, ingest.ErrNotFound) {
			t.Errorf("append for unknown person: %v, want ErrNotFound", err)
		}
	})

	t.Run("ErrRefused", func(t *testing.T) {
		// DOMAIN.md 1.4: no sluttmål under introduksjonsloven.
		svc, store := newService(t)
		id, reg := person(5, true)
		pos, err := svc.Append(ctx, oslo, []*nirv1.Registration{reg})
		if err != nil {
			t.Fatal(err)
		}
		sluttmal := &nirv1.Registration{Person: &nirv1.PersonRef{NationalId: id}, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301",
			Payload: &nirv1.Event_SluttmalRegistered{SluttmalRegistered: &nirv1.SluttmalRegistered{Sluttmal: nirv1.Sluttmal_SLUTTMAL_ARBEID, Date: d(2020, 1, 5)}}}}
		_, err = svc.Append(ctx, oslo, []*nirv1.Registration{offer(id), sluttmal})
		var re *ingest.RefusedError
		if !errors.As(err, &re) || len(re.Refusals) == 0 || re.Refusals[0].Code == "" {
			t.Fatalf("sluttmål under IntroL: %v, want a refusal with a rule code", err)
		}
		// The message names the section once: «DOMAIN.md 1.4», never «DOMAIN.md DOMAIN.md».
		if msg := err.Error(); !strings.Contains(msg, re.Refusals[0].Code) || !strings.Contains(msg, re.Refusals[0].Section) || strings.Contains(msg, "DOMAIN.md DOMAIN.md") {
			t.Errorf("refusal message %q: want the code and section %q once", msg, re.Refusals[0].Section)
		}
		if _, last, _ := store.Read(ctx, pos[0].PersonKey); last != pos[0].Sequence {
			t.Errorf("a refused request stored something: last seq %d, want %d", last, pos[0].Sequence)
		}
	})

	t.Run("ErrConflict", func(t *testing.T) {
		svc, _ := newService(t)
		id, reg := person(6, false)
		pos, err := svc.Append(ctx, oslo, []*nirv1.Registration{reg})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{offer(id)}); err != nil {
			t.Fatal(err)
		}
		stale := offer(id)
		stale.ExpectedLastSequence = &pos[0].Sequence
		if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{stale}); !errors.Is(err, ingest.ErrConflict) {
			t.Errorf("stale expectation: %v, want ErrConflict", err)
		}
	})

}

// TestService_ConcurrentWriters: many writers append to one person at once, none with an
// expectation of its own (issue 10, finding 10: 115 of 400 appends with 8 writers failed
// with a conflict). Every append is stored, in one process and across two (two append paths
// on one store, each with its own locks and cache, so that their writes really collide on
// the stream's concurrency check); a caller's own expectation is still a conflict.
func TestService_ConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name      string
		writers   int
		processes int
	}{
		{"8", 8, 1},
		{"32", 32, 1},
		{"8/TwoProcesses", 8, 2},
		{"32/TwoProcesses", 32, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			svc, store := newService(t)
			paths := []*ingest.Service{svc}
			for len(paths) < c.processes {
				paths = append(paths, serviceOn(t, store))
			}
			id, reg := person(7, false)
			pos, err := svc.Append(ctx, oslo, []*nirv1.Registration{reg})
			if err != nil {
				t.Fatal(err)
			}
			perWriter := 256 / c.writers
			var (
				wg     sync.WaitGroup
				mu     sync.Mutex
				failed []error
			)
			for w := range c.writers {
				wg.Go(func() {
					for range perWriter {
						if _, err := paths[w%len(paths)].Append(ctx, oslo, []*nirv1.Registration{offer(id)}); err != nil {
							mu.Lock()
							failed = append(failed, err)
							mu.Unlock()
						}
					}
				})
			}
			wg.Wait()
			if len(failed) > 0 {
				t.Errorf("%d of %d appends failed, the first: %v", len(failed), c.writers*perWriter, failed[0])
			}
			events, last, err := store.Read(ctx, pos[0].PersonKey)
			if err != nil {
				t.Fatal(err)
			}
			if want := 1 + c.writers*perWriter; len(events) != want {
				t.Errorf("%d events stored, want %d", len(events), want)
			}
			// The caller's own expectation is checked, not retried.
			stale := offer(id)
			stale.ExpectedLastSequence = &pos[0].Sequence
			if _, err := paths[len(paths)-1].Append(ctx, oslo, []*nirv1.Registration{stale}); !errors.Is(err, ingest.ErrConflict) {
				t.Errorf("stale expectation: %v, want ErrConflict", err)
			}
			current := offer(id)
			current.ExpectedLastSequence = &last
			if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{current}); err != nil {
				t.Errorf("current expectation: %v", err)
			}
		})
	}
}

// TestService_HistoryCache runs two append paths on one store, as two nird processes would:
// each keeps its own cache of person histories, and a stale entry never loses, duplicates or
// misorders an event, nor reports a conflict the caller did not cause.
func TestService_HistoryCache(t *testing.T) {
	ctx := context.Background()
	a, store := newService(t)
	b := serviceOn(t, store)

	id, reg := person(10, false)
	first, err := a.Append(ctx, oslo, []*nirv1.Registration{reg}) // a caches the person
	if err != nil {
		t.Fatal(err)
	}
	fromB := offer(id)
	posB, err := b.Append(ctx, oslo, []*nirv1.Registration{fromB}) // a's cache is now stale
	if err != nil {
		t.Fatal(err)
	}
	// a appends on its stale history: the store refuses the check, a re-reads, and succeeds.
	posA, err := a.Append(ctx, oslo, []*nirv1.Registration{offer(id)})
	if err != nil {
		t.Fatalf("append on a stale cache: %v", err)
	}
	if posA[0].Sequence <= posB[0].Sequence {
		t.Errorf("a's event at seq %d, not after b's %d", posA[0].Sequence, posB[0].Sequence)
	}
	// b's event retried through a (after a's cache was refreshed or not): a duplicate.
	again, err := a.Append(ctx, oslo, []*nirv1.Registration{fromB})
	if err != nil || !again[0].Duplicate || again[0].Sequence != posB[0].Sequence {
		t.Errorf("retry of b's event through a = %v, %v; want duplicate at %d", again, err, posB[0].Sequence)
	}
	// b appends again; a caller of a who read the true last sequence is not refused
	// because of a's stale cache.
	posB2, err := b.Append(ctx, oslo, []*nirv1.Registration{offer(id)})
	if err != nil {
		t.Fatal(err)
	}
	withExpect := offer(id)
	withExpect.ExpectedLastSequence = &posB2[0].Sequence
	if _, err := a.Append(ctx, oslo, []*nirv1.Registration{withExpect}); err != nil {
		t.Errorf("caller with the true last sequence refused: %v", err)
	}
	events, _, err := store.Read(ctx, first[0].PersonKey)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, e := range events {
		if seen[e.Event.GetId()] {
			t.Errorf("event %s stored twice", e.Event.GetId())
		}
		seen[e.Event.GetId()] = true
		if i > 0 && e.Seq <= events[i-1].Seq {
			t.Errorf("history out of order at %d", i)
		}
	}
	if len(events) != 5 {
		t.Errorf("%d events stored, want 5", len(events))
	}
}

// TestService_RegisterExistingPerson: a new person's registration is checked by the append
// itself (no read first); a person that exists after all is read on the retry and refused,
// retried ids are duplicates, and another kommune learns nothing.
func TestService_RegisterExistingPerson(t *testing.T) {
	ctx := context.Background()
	svc, store := newService(t)
	_, reg := person(11, false)
	first, err := svc.Append(ctx, oslo, []*nirv1.Registration{reg})
	if err != nil {
		t.Fatal(err)
	}
	fresh := serviceOn(t, store) // empty cache

	// The same event again, through a path that has never seen the person: a duplicate.
	again, err := fresh.Append(ctx, oslo, []*nirv1.Registration{reg})
	if err != nil || !again[0].Duplicate || again[0].Sequence != first[0].Sequence {
		t.Fatalf("retried registration = %v, %v; want duplicate at %d", again, err, first[0].Sequence)
	}
	// A second registration of the person (new id): refused by the regelmotor.
	_, twice := person(11, false)
	_, err = fresh.Append(ctx, oslo, []*nirv1.Registration{twice})
	var re *ingest.RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("second registration of a person: %v, want a refusal", err)
	}
	// Another kommune registering the person as settled in itself learns nothing but that it
	// may not: the answer is the one for an unknown person.
	bergen := access.For(auth.Principal{Name: "bergen", Role: auth.RoleKommune, Kommune: "4601"})
	_, mine := person(11, false)
	mine.Event.Kommune = "4601"
	mine.Event.GetPersonRegistered().SettlementKommune = "4601"
	if _, err := serviceOn(t, store).Append(ctx, bergen, []*nirv1.Registration{mine}); !errors.Is(err, access.ErrNotFound) {
		t.Errorf("another kommune registering an existing person: %v, want access.ErrNotFound", err)
	}
	events, _, _ := store.Read(ctx, first[0].PersonKey)
	if len(events) != 1 {
		t.Errorf("%d events stored, want 1", len(events))
	}
}

// TestService_StaleCacheNeverRefuses: with two nird (two services on one stream), a
// registration valid only after another nird's append is not refused on the first nird's
// cached, older history: a refusal is made again on the stream's history before it stands.
func TestService_StaleCacheNeverRefuses(t *testing.T) {
	ctx := context.Background()
	a, store := newService(t)
	b := serviceOn(t, store)
	id, reg := person(11, false)
	if _, err := a.Append(ctx, oslo, []*nirv1.Registration{reg}); err != nil { // a caches the person
		t.Fatal(err)
	}
	ev := func(payload any) *nirv1.Registration {
		e := &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301"}
		switch p := payload.(type) {
		case *nirv1.ProgrammeVedtakRegistered:
			e.Payload = &nirv1.Event_ProgrammeVedtakRegistered{ProgrammeVedtakRegistered: p}
		case *nirv1.SluttmalRegistered:
			e.Payload = &nirv1.Event_SluttmalRegistered{SluttmalRegistered: p}
		}
		return &nirv1.Registration{Person: &nirv1.PersonRef{NationalId: id}, Event: e}
	}
	if _, err := b.Append(ctx, oslo, []*nirv1.Registration{ev(&nirv1.ProgrammeVedtakRegistered{
		Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, VedtakDate: d(2024, 3, 1), FromDate: d(2024, 3, 1)})}); err != nil {
		t.Fatal(err)
	}
	// A sluttmål needs the programme vedtak that only b has seen.
	if _, err := a.Append(ctx, oslo, []*nirv1.Registration{ev(&nirv1.SluttmalRegistered{Sluttmal: nirv1.Sluttmal_SLUTTMAL_ARBEID, Date: d(2024, 3, 2)})}); err != nil {
		t.Fatalf("a refused a registration valid on the stream's history: %v", err)
	}
	// A registration the stream's history refuses too is still refused.
	_, again := person(11, false)
	if _, err := a.Append(ctx, oslo, []*nirv1.Registration{again}); !errors.Is(err, ingest.ErrRefused) {
		t.Fatalf("registering the person again = %v, want ErrRefused", err)
	}
}

// unconfirmedStore is the real event store, its stream leader never confirmed: as through a
// NATS node cut off from the others that still answers as leader (internal/chaos's
// TestReplicas shows such a node).
type unconfirmedStore struct{ *eventstore.Store }

func (unconfirmedStore) ConfirmReads(context.Context, time.Time, *eventstore.Reads) error {
	return fmt.Errorf("%w: test", eventstore.ErrUnconfirmed)
}

// TestService_RefusalNeedsConfirmedLeader: a refusal judged on the stream's history is given
// only when the stream leader that answered the read is confirmed; otherwise the caller gets
// ErrUnconfirmed (Unavailable: retry) instead of a refusal of what may be valid. An append
// that is accepted does not ask: the stream's own sequence check is its confirmation.
func TestService_RefusalNeedsConfirmedLeader(t *testing.T) {
	ctx := context.Background()
	_, store := newService(t)
	rec := &recorder{}
	svc := serviceOn(t, unconfirmedStore{store}, func(c *ingest.Config) { c.Observer = rec })
	id, reg := person(12, true)
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{reg}); err != nil {
		t.Fatalf("a valid registration: %v", err)
	}
	// DOMAIN.md 1.4: no sluttmål under introduksjonsloven.
	sluttmal := &nirv1.Registration{Person: &nirv1.PersonRef{NationalId: id}, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301",
		Payload: &nirv1.Event_SluttmalRegistered{SluttmalRegistered: &nirv1.SluttmalRegistered{Sluttmal: nirv1.Sluttmal_SLUTTMAL_ARBEID, Date: d(2020, 1, 5)}}}}
	_, err := svc.Append(ctx, oslo, []*nirv1.Registration{sluttmal})
	if !errors.Is(err, ingest.ErrUnconfirmed) || errors.Is(err, ingest.ErrRefused) {
		t.Fatalf("a registration refused on an unconfirmed leader's history = %v, want ErrUnconfirmed and no refusal", err)
	}
	if rec.counts["unconfirmed internal kommune"] != 1 || rec.counts["stored internal kommune"] != 1 {
		t.Errorf("observer counts %v, want the stored registration and 1 unconfirmed", rec.counts)
	}
	for k := range rec.counts {
		if strings.HasPrefix(k, "refused") {
			t.Errorf("observer counted a refusal that was not given: %v", rec.counts)
		}
	}
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{offer(id)}); err != nil {
		t.Fatalf("a valid registration after it: %v", err)
	}
}

// shortStore is the real event store whose confirmation of a refusal's reads says, the first
// short times, that the confirmed stream leader counts more messages on a subject than the
// read saw (as for a read answered by a NATS node cut off from the others, from a store that
// ends early: eventstore.Store.ConfirmReads), and after that confirms as the store does. It
// counts the reads of the person and the confirmations asked.
type shortStore struct {
	*eventstore.Store
	short int
	mu    sync.Mutex
	reads int
	asked int
}

func (s *shortStore) Read(ctx context.Context, key string) ([]eventstore.Stored, uint64, error) {
	s.mu.Lock()
	s.reads++
	s.mu.Unlock()
	return s.Store.Read(ctx, key)
}

func (s *shortStore) ConfirmReads(ctx context.Context, since time.Time, r *eventstore.Reads) error {
	s.mu.Lock()
	s.asked++
	short := s.asked <= s.short
	s.mu.Unlock()
	if short {
		return fmt.Errorf("%w: 1 messages read on a subject, 2 on the stream leader", eventstore.ErrReadShort)
	}
	return s.Store.ConfirmReads(ctx, since, r)
}

// TestService_RefusalOnAShortRead: a refusal whose read the stream leader's count shows short
// is judged again on a new read, each time confirmed anew, and given once a read ties; when
// none does within the bound the caller gets ErrUnconfirmed (Unavailable: retry), counted as
// unconfirmed, never the refusal. DOMAIN.md 1.4: no sluttmål under introduksjonsloven.
func TestService_RefusalOnAShortRead(t *testing.T) {
	ctx := context.Background()
	_, store := newService(t)
	rec := &recorder{}
	short := &shortStore{Store: store, short: 1}
	svc := serviceOn(t, short, func(c *ingest.Config) { c.Observer = rec; c.HistoryCache = -1 })
	id, reg := person(13, true)
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{reg}); err != nil {
		t.Fatalf("a valid registration: %v", err)
	}
	sluttmal := func() *nirv1.Registration {
		return &nirv1.Registration{Person: &nirv1.PersonRef{NationalId: id}, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301",
			Payload: &nirv1.Event_SluttmalRegistered{SluttmalRegistered: &nirv1.SluttmalRegistered{Sluttmal: nirv1.Sluttmal_SLUTTMAL_ARBEID, Date: d(2020, 1, 5)}}}}
	}
	short.reads, short.asked = 0, 0
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{sluttmal()}); !errors.Is(err, ingest.ErrRefused) {
		t.Fatalf("a refusal whose first read was short, its second tied: %v, want ErrRefused", err)
	}
	// The first attempt's read, the one confirmed short, and the one that tied.
	if short.reads != 3 || short.asked != 2 {
		t.Errorf("%d reads, %d confirmations; want 3 reads (judged again after the short one) and 2 confirmations", short.reads, short.asked)
	}
	short.reads, short.asked, short.short = 0, 0, 100
	_, err := svc.Append(ctx, oslo, []*nirv1.Registration{sluttmal()})
	if !errors.Is(err, ingest.ErrUnconfirmed) || errors.Is(err, ingest.ErrRefused) {
		t.Fatalf("a refusal whose every read was short = %v, want ErrUnconfirmed and no refusal", err)
	}
	if short.asked < 2 || short.reads != short.asked+1 {
		t.Errorf("%d reads, %d confirmations; want a new read before each confirmation after the first", short.reads, short.asked)
	}
	if rec.counts["unconfirmed internal kommune"] != 1 || rec.counts["refused internal kommune NIR-R010"] != 1 {
		t.Errorf("observer counts %v, want 1 refusal given and 1 unconfirmed", rec.counts)
	}
}
