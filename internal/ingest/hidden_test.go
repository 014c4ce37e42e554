package ingest_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/access"
	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/ingest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// readCounter is the real event store, counting the histories read from it.
type readCounter struct {
	*eventstore.Store
	reads atomic.Int64
}

func (r *readCounter) Read(ctx context.Context, key string) ([]eventstore.Stored, uint64, error) {
	r.reads.Add(1)
	return r.Store.Read(ctx, key)
}

// TestService_HiddenBeforeRead: with the read models' access records (Config.Access), a
// kommune's request for a person out of its reach is not found without reading the person's
// history, so that it takes the time of a person nobody registered; and only while the
// records hold the stream's last event of the person. Behind it (a move just recorded, the
// models not caught up), the person is read and folded and the decision is the fold's: the
// kommune the person moved to reaches the person at once.
func TestService_HiddenBeforeRead(t *testing.T) {
	ctx := context.Background()
	w := newIDWorld(t, false)
	store := &readCounter{Store: w.store}
	svc := ingest.New(ingest.Config{Store: store, Keys: w.keys, Access: w.proj, HistoryCache: -1, Now: func() time.Time { return fixedNow }})
	bergen := access.For(auth.Principal{Name: "bergen-fagsystem", Role: auth.RoleKommune, Kommune: "4601"})
	trondheim := access.For(auth.Principal{Name: "trondheim-fagsystem", Role: auth.RoleKommune, Kommune: "5001"})
	catchUp := func() {
		t.Helper()
		if _, err := w.proj.CatchUp(ctx); err != nil {
			t.Fatal(err)
		}
	}
	id, reg := person(40, false)
	ref := &nirv1.PersonRef{NationalId: id}
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{reg, offer(id)}); err != nil {
		t.Fatal(err)
	}
	bergenOffer := func() *nirv1.Registration {
		return &nirv1.Registration{Person: ref, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "4601",
			Payload: &nirv1.Event_OfferRegistered{OfferRegistered: &nirv1.OfferRegistered{Programme: nirv1.Programme_PROGRAMME_INTRO, Date: d(2024, 6, 3)}}}}
	}
	// history reads scope's history of the person: the error, and whether it read the stream.
	history := func(scope access.Scope) (int, error, bool) {
		t.Helper()
		before := store.reads.Load()
		_, events, err := svc.History(ctx, scope, ref)
		return len(events), err, store.reads.Load() != before
	}
	appendAs := func(scope access.Scope, r *nirv1.Registration) (error, bool) {
		t.Helper()
		before := store.reads.Load()
		_, err := svc.Append(ctx, scope, []*nirv1.Registration{r})
		return err, store.reads.Load() != before
	}

	// The models hold nothing yet: the person is read, and the fold decides.
	if n, err, read := history(bergen); err != nil || n != 2 || !read {
		t.Errorf("bergen's history before the models caught up: %d events, %v, read %v; want the events read (the caller's fold hides them)", n, err, read)
	}
	if err, read := appendAs(bergen, bergenOffer()); !errors.Is(err, access.ErrNotFound) || !read {
		t.Errorf("bergen's append before the models caught up: %v, read %v; want access.ErrNotFound on the fold", err, read)
	}

	catchUp()
	if _, err, read := history(bergen); !errors.Is(err, access.ErrNotFound) || read {
		t.Errorf("bergen's history: %v, read %v; want access.ErrNotFound without a read", err, read)
	}
	if err, read := appendAs(bergen, bergenOffer()); !errors.Is(err, access.ErrNotFound) || read {
		t.Errorf("bergen's append: %v, read %v; want access.ErrNotFound without a read", err, read)
	}
	if n, err, _ := history(oslo); err != nil || n != 2 {
		t.Errorf("oslo's history of its person: %d events, %v", n, err)
	}

	// Oslo records the move to Bergen; the models have not folded it: Bergen reaches the
	// person at once, on the stream's history.
	move := &nirv1.Registration{Person: ref, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301",
		Payload: &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: "4601", Date: d(2024, 6, 2)}}}}
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{move}); err != nil {
		t.Fatal(err)
	}
	if err, read := appendAs(bergen, bergenOffer()); err != nil || !read {
		t.Errorf("bergen's append after the move, the models behind: %v, read %v; want it stored, decided on the stream's history", err, read)
	}
	if n, err, read := history(bergen); err != nil || n != 4 || !read {
		t.Errorf("bergen's history after the move: %d events, %v, read %v; want 4", n, err, read)
	}
	if _, err, read := history(trondheim); err != nil || !read {
		t.Errorf("trondheim's history with the models behind: %v, read %v; want a read (the caller's fold hides it)", err, read)
	}

	catchUp()
	if _, err, read := history(trondheim); !errors.Is(err, access.ErrNotFound) || read {
		t.Errorf("trondheim's history: %v, read %v; want access.ErrNotFound without a read", err, read)
	}
	for _, scope := range []access.Scope{oslo, bergen} { // former and current
		if n, err, read := history(scope); err != nil || n != 4 || !read {
			t.Errorf("%s's history after the move: %d events, %v, read %v; want 4", scope, n, err, read)
		}
	}
	// The system principal is never decided on the records.
	system := access.System(&nirv1.Actor{Subject: "test", Role: nirv1.ActorRole_ACTOR_ROLE_SYSTEM})
	if n, err, read := history(system); err != nil || n != 4 || !read {
		t.Errorf("the system principal's history: %d events, %v, read %v", n, err, read)
	}
}

// TestService_TwoIdsOfHiddenPerson: Bergen names two national ids in one request: a D-nummer
// and the fødselsnummer later added to Oslo's person. With the access records behind (or no
// index) the append path followed the claim before it decided access, and answered
// InvalidArgument "names, by another id, the person registrations[1] names": Bergen learned
// that both ids are in the register and are one person (helper-40's review, 2026-12-06).
// Whether the scope reaches the person now comes first: NotFound, index behind or fresh.
func TestService_TwoIdsOfHiddenPerson(t *testing.T) {
	ctx := context.Background()
	w := newIDWorld(t, false)
	svc := ingest.New(ingest.Config{Store: w.store, Keys: w.keys, Access: w.proj, HistoryCache: -1, Now: func() time.Time { return fixedNow }})
	bergen := access.For(auth.Principal{Name: "bergen-fagsystem", Role: auth.RoleKommune, Kommune: "4601"})
	dnr, fnr, reg := dnrPerson(7)
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{addID(dnr, fnr, fnrType)}); err != nil {
		t.Fatal(err)
	}
	ev := func(id string) *nirv1.Registration {
		return &nirv1.Registration{Person: &nirv1.PersonRef{NationalId: id}, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "4601",
			Payload: &nirv1.Event_OfferRegistered{OfferRegistered: &nirv1.OfferRegistered{Programme: nirv1.Programme_PROGRAMME_INTRO, Date: d(2024, 6, 3)}}}}
	}
	probe := func(when string) {
		_, err := svc.Append(ctx, bergen, []*nirv1.Registration{ev(fnr), ev(dnr)})
		var ie *ingest.InvalidError
		if errors.As(err, &ie) {
			t.Errorf("%s: Bergen's request naming two ids of Oslo's person: InvalidError %q: tells Bergen both exist and are one person", when, ie.Reason)
		} else if !errors.Is(err, access.ErrNotFound) && !errors.Is(err, ingest.ErrNotFound) {
			t.Errorf("%s: %v", when, err)
		}
	}
	probe("index behind (models not caught up)")
	if _, err := w.proj.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	probe("index fresh")
}

// TestService_HiddenStreamBehindRecords: the access records are used only when the stream
// answering the freshness check holds what they folded. Here the records were folded from a
// stream that holds a person's registration and an offer, and the service reads a stream
// that holds the registration alone: as a replica that lags behind the read models. The
// person is then read from the stream and the fold decides. Likewise for a subject the
// records do not know but the stream holds a message on (one the models quarantined).
func TestService_HiddenStreamBehindRecords(t *testing.T) {
	ctx := context.Background()
	w := newIDWorld(t, false)
	full := ingest.New(ingest.Config{Store: w.store, Keys: w.keys, HistoryCache: -1, Now: func() time.Time { return fixedNow }})
	id, reg := person(42, false)
	if _, err := full.Append(ctx, oslo, []*nirv1.Registration{reg, offer(id)}); err != nil {
		t.Fatal(err)
	}
	// A message on another id's subject that is no event: the models quarantine it and keep
	// no record of the subject.
	junk, _ := person(43, false)
	subject, err := eventstore.Subject(w.keys.Key(junk))
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(w.store.Conn())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, subject, []byte("no event")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.proj.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}

	behind, err := eventstore.Open(ctx, eventstore.Config{Dir: filepath.Join(t.TempDir(), "js")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { behind.Close() })
	if _, err := serviceOn(t, behind).Append(ctx, oslo, []*nirv1.Registration{reg}); err != nil {
		t.Fatal(err)
	}
	bergen := access.For(auth.Principal{Name: "bergen-fagsystem", Role: auth.RoleKommune, Kommune: "4601"})
	for _, c := range []struct {
		name   string
		store  *eventstore.Store
		id     string
		events int // oslo's history
	}{
		{"the person on a stream behind the records", behind, id, 1},
		{"the person on the records' stream", w.store, id, 2},
		{"a subject the records do not know", w.store, junk, 0},
	} {
		store := &readCounter{Store: c.store}
		svc := ingest.New(ingest.Config{Store: store, Keys: w.keys, Access: w.proj, HistoryCache: -1, Now: func() time.Time { return fixedNow }})
		// On the records, access.ErrNotFound; on the stream, the history for the caller's
		// fold to hide (TestService_HiddenBeforeRead), or nothing at all.
		_, _, err := svc.History(ctx, bergen, &nirv1.PersonRef{NationalId: c.id})
		fresh := c.store == w.store && c.events > 0
		if fresh && !errors.Is(err, access.ErrNotFound) || !fresh && err != nil && !errors.Is(err, ingest.ErrNotFound) {
			t.Errorf("bergen's history of %s: %v", c.name, err)
		}
		if fresh != (store.reads.Load() == 0) {
			t.Errorf("bergen's history of %s: %d reads; want the records' decision only when the stream holds what they folded", c.name, store.reads.Load())
		}
		if _, evs, err := svc.History(ctx, oslo, &nirv1.PersonRef{NationalId: c.id}); c.events > 0 && (err != nil || len(evs) != c.events) {
			t.Errorf("oslo's history of %s: %d events, %v; want %d", c.name, len(evs), err, c.events)
		}
	}
}
