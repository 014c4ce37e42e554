package ingest_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/access"
	"github.com/introreg/nir/internal/feed"
	"github.com/introreg/nir/internal/ingest"
	"github.com/introreg/nir/internal/personkey"
	"github.com/introreg/nir/projections"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// idWorld is a store with a one-second dedupe window and read models following it, as
// nird wires them.
type idWorld struct {
	store *eventstore.Store
	proj  *projections.Projector
	keys  *personkey.Keyer
}

func newIDWorld(t *testing.T, run bool) *idWorld {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	store, err := eventstore.Open(ctx, eventstore.Config{Dir: filepath.Join(t.TempDir(), "js"), DuplicateWindow: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	events, err := feed.New(store)
	if err != nil {
		t.Fatal(err)
	}
	proj, err := projections.New(events, projections.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	if run {
		go func() { done <- proj.Run(ctx) }()
	} else {
		done <- nil
	}
	t.Cleanup(func() {
		cancel()
		<-done
		proj.Close()
		events.Close()
		store.Close()
	})
	keys, err := personkey.New([]byte("test secret for the ingest tests"))
	if err != nil {
		t.Fatal(err)
	}
	return &idWorld{store: store, proj: proj, keys: keys}
}

func (w *idWorld) service(ids ingest.IDIndex) *ingest.Service {
	return ingest.New(ingest.Config{Store: w.store, Keys: w.keys, IDs: ids, DedupeWindow: time.Second, Now: func() time.Time { return fixedNow }})
}

// forget waits until the server's dedupe window no longer knows the ids stored so far: a
// probe id is stored a second time once it has left the window.
func (w *idWorld) forget(t *testing.T) {
	t.Helper()
	js, err := jetstream.New(w.store.Conn())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id := ulid.Make().String()
	probe := func() *nats.Msg {
		return &nats.Msg{Subject: "nir.ev.probe", Header: nats.Header{nats.MsgIdHdr: []string{id}}, Data: []byte{}}
	}
	if _, err := js.PublishMsg(ctx, probe()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ack, err := js.PublishMsg(ctx, probe())
		if err == nil && !ack.Duplicate {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the dedupe window did not forget within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestService_EventIDAfterWindow reuses an event id for another person after the dedupe
// window has forgotten it (issue 10, finding 11: it was stored a second time): the event-id
// index finds it, for a lone event and inside a batch, and an identical re-send still gets
// its original position.
func TestService_EventIDAfterWindow(t *testing.T) {
	ctx := context.Background()
	w := newIDWorld(t, true)
	svc := w.service(w.proj)
	a, regA := person(21, false)
	b, regB := person(22, false)
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{regA, regB}); err != nil {
		t.Fatal(err)
	}
	stored := offer(a)
	first, err := svc.Append(ctx, oslo, []*nirv1.Registration{stored})
	if err != nil {
		t.Fatal(err)
	}
	w.forget(t)

	reuse := func() *nirv1.Registration {
		r := offer(b)
		r.Event.Id = stored.Event.Id
		return r
	}
	for name, regs := range map[string][]*nirv1.Registration{
		"Single": {reuse()},
		"Batch":  {offer(b), reuse()},
	} {
		t.Run(name, func(t *testing.T) {
			before, _ := w.store.LastSeq(ctx)
			_, err := svc.Append(ctx, oslo, regs)
			var ie *ingest.IDError
			if !errors.Is(err, ingest.ErrIDInUse) || !errors.As(err, &ie) || ie.Index != len(regs)-1 {
				t.Fatalf("reused id: %v, want ErrIDInUse naming registrations[%d]", err, len(regs)-1)
			}
			if after, _ := w.store.LastSeq(ctx); after != before {
				t.Errorf("the stream moved from %d to %d", before, after)
			}
		})
	}
	t.Run("IdenticalResend", func(t *testing.T) {
		again, err := svc.Append(ctx, oslo, []*nirv1.Registration{stored})
		if err != nil || !again[0].Duplicate || again[0].Sequence != first[0].Sequence {
			t.Fatalf("identical re-send: %v %v, want the original position %d", again, err, first[0].Sequence)
		}
	})
	t.Run("OtherContent", func(t *testing.T) {
		changed := offer(a)
		changed.Event.Id = stored.Event.Id
		changed.Event.GetOfferRegistered().Date = d(2024, 4, 4)
		_, err := svc.Append(ctx, oslo, []*nirv1.Registration{changed})
		var ie *ingest.IDError
		if !errors.Is(err, ingest.ErrIDReused) || !errors.As(err, &ie) || ie.Field != "registrations[0].event.id" {
			t.Fatalf("other content under a stored id: %v, want ErrIDReused naming registrations[0].event.id", err)
		}
	})
	// Without the index nothing remembers the id once the window has: why nird wires it.
	t.Run("WithoutIndex", func(t *testing.T) {
		if _, err := w.service(nil).Append(ctx, oslo, []*nirv1.Registration{reuse()}); err != nil {
			t.Fatalf("append without the index: %v", err)
		}
		events, _, _ := w.store.Read(ctx, w.keys.Key(b))
		if events[len(events)-1].Event.GetId() != stored.Event.Id {
			t.Fatal("expected the reused id to be stored for the other person without the index")
		}
	})
}

// TestService_EventIDIndexBehind: while the index has not read what was stored more than
// half a dedupe window ago, an old id cannot be checked (Unavailable once the request's time
// is up), and a freshly made one is appended at once: the window covers it.
func TestService_EventIDIndexBehind(t *testing.T) {
	ctx := context.Background()
	w := newIDWorld(t, false) // the read models never catch up
	svc := w.service(w.proj)
	a, reg := person(23, false)
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{reg}); err != nil {
		t.Fatalf("a fresh id while the index is behind: %v", err)
	}
	// Once the registration is older than half the window, the index must have read it.
	time.Sleep(700 * time.Millisecond)
	old := offer(a)
	old.Event.Id = ulid.MustNew(ulid.Timestamp(time.Now().Add(-time.Hour)), ulid.DefaultEntropy()).String()
	// The service waits for the index as long as its patience (ConflictTimeout), here short;
	// the request's own deadline is long, so that reading the person on a loaded machine
	// does not use it up first (a 300 ms deadline did, once, under a full test run).
	impatient := ingest.New(ingest.Config{Store: w.store, Keys: w.keys, IDs: w.proj, DedupeWindow: time.Second,
		ConflictTimeout: 300 * time.Millisecond, Now: func() time.Time { return fixedNow }})
	if _, err := impatient.Append(ctx, oslo, []*nirv1.Registration{old}); !errors.Is(err, ingest.ErrUnavailable) {
		t.Fatalf("an old id while the index is behind: %v, want ErrUnavailable", err)
	}
	if _, err := w.proj.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{old}); err != nil {
		t.Fatalf("the old id once the index caught up: %v", err)
	}
}

// TestService_EventIDInsideWindow reuses an id for another person while the stream's dedupe
// window remembers it, with no index to ask: the server's answer alone refuses it, naming the
// field when it names the id (a lone event), the request when it does not (a batch).
func TestService_EventIDInsideWindow(t *testing.T) {
	ctx := context.Background()
	svc, store := newService(t)
	a, regA := person(24, false)
	b, regB := person(25, false)
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{regA, regB}); err != nil {
		t.Fatal(err)
	}
	stored := offer(a)
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{stored}); err != nil {
		t.Fatal(err)
	}
	reuse := offer(b)
	reuse.Event.Id = stored.Event.Id
	for _, c := range []struct {
		name  string
		regs  []*nirv1.Registration
		field string
	}{
		{"Single", []*nirv1.Registration{reuse}, "registrations[0].event.id"},
		{"Batch", []*nirv1.Registration{offer(b), reuse}, "registrations"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before, _ := store.LastSeq(ctx)
			_, err := svc.Append(ctx, oslo, c.regs)
			var ie *ingest.IDError
			if !errors.Is(err, ingest.ErrIDInUse) || !errors.As(err, &ie) || ie.Field != c.field {
				t.Fatalf("reused id: %v, want ErrIDInUse naming %s", err, c.field)
			}
			if after, _ := store.LastSeq(ctx); after != before {
				t.Errorf("the stream moved from %d to %d", before, after)
			}
		})
	}
}

// TestService_FutureULIDRefused: allRecent trusts a ULID's time (an id whose time lies
// within the last half dedupe window is new unless the window knows it), and a case system
// chooses its ids' times. An id stored for person A stamped ahead of the clock became
// "recent" once the window had forgotten it, and while the event-id index lagged (a repair
// of the read models reports nothing known, at checkpoint 0) it was stored again for person
// B. Now an id more than a quarter window ahead is refused when it is first sent, naming
// the field; one a little ahead (a case system's clock off by less) is still taken.
func TestService_FutureULIDRefused(t *testing.T) {
	ctx := context.Background()
	w := newIDWorld(t, true)
	svc := w.service(w.proj)
	a, regA := person(31, false)
	b, regB := person(32, false)
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{regA, regB}); err != nil {
		t.Fatal(err)
	}
	ahead := time.Now().Add(3 * time.Second) // the window is 1 s
	id := ulid.MustNew(ulid.Timestamp(ahead), ulid.DefaultEntropy()).String()
	first := offer(a)
	first.Event.Id = id
	_, err := svc.Append(ctx, oslo, []*nirv1.Registration{first})
	var inv *ingest.InvalidError
	if !errors.As(err, &inv) || inv.Field != "registrations[0].event.id" || !strings.Contains(inv.Reason, "ahead of the register's clock") {
		t.Fatalf("an id stamped 3 s ahead with a 1 s window: err = %v, want an InvalidError naming registrations[0].event.id", err)
	}
	// Nothing was stored under it: once its time has come the id is anybody's.
	w.forget(t)
	time.Sleep(time.Until(ahead) + 100*time.Millisecond)
	lagging := w.service(repairingIndex{})
	reuse := offer(b)
	reuse.Event.Id = id
	if _, err := lagging.Append(ctx, oslo, []*nirv1.Registration{reuse}); err != nil {
		t.Fatalf("the id, refused before and now in the past, for another person: %v", err)
	}
	near := offer(a)
	near.Event.Id = ulid.MustNew(ulid.Timestamp(time.Now().Add(100*time.Millisecond)), ulid.DefaultEntropy()).String()
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{near}); err != nil {
		t.Fatalf("an id 100 ms ahead (within a quarter window): %v", err)
	}
}

// repairingIndex is the event-id index as Projector.EventPersons gives it while the live
// models are repaired (rebuilt from the stream, not served): nothing known, checkpoint 0.
type repairingIndex struct{}

func (repairingIndex) EventPersons([]string) (map[string]string, uint64, error) {
	return map[string]string{}, 0, nil
}

// Found on 2026-12-06 (review of the cluster paths): the stream keeps the dedupe window it
// was created with (by another nird, or by nirctl restore with the default), and nird only
// logs a difference, but ingest reasoned with its own configured window: an id whose ULID
// time lay within half of that window was taken as new unless the server knew it. With the
// stream's window shorter, an id stored for person A that the server had forgotten was
// stored again for person B while the event-id index lagged. Now the shorter of the two
// counts, and the append waits for the index (Unavailable) as it does with matching windows.
func TestService_StreamWindowShorterThanConfigured(t *testing.T) {
	ctx := context.Background()
	w := newIDWorld(t, true) // the stream's window: 1 s
	if got := w.store.DuplicateWindow(); got != time.Second {
		t.Fatalf("the store reads the stream's window as %v, want 1s", got)
	}
	svc := w.service(w.proj)
	a, regA := person(41, false)
	b, regB := person(42, false)
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{regA, regB}); err != nil {
		t.Fatal(err)
	}
	stored := offer(a)
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{stored}); err != nil {
		t.Fatal(err)
	}
	w.forget(t)
	// A nird configured with a 10 s window on that stream, its event-id index being repaired.
	wide := ingest.New(ingest.Config{Store: w.store, Keys: w.keys, IDs: repairingIndex{}, DedupeWindow: 10 * time.Second,
		ConflictTimeout: 300 * time.Millisecond, Now: func() time.Time { return fixedNow }})
	reuse := offer(b)
	reuse.Event.Id = stored.Event.Id
	_, err := wide.Append(ctx, oslo, []*nirv1.Registration{reuse})
	if err == nil {
		t.Fatal("an event id stored for person A was stored again for person B (nird's window 10 s, the stream's 1 s, the index lagging)")
	}
	if !errors.Is(err, ingest.ErrUnavailable) {
		t.Errorf("the append while the index lags: %v, want Unavailable (wait for the index)", err)
	}
}

// laggingReplica answers LastSeq as a replica catching up after a restart does (nats-server
// lets a follower serve direct gets once it has applied 90 % of its log): from behind, below
// anything this process has seen. LeaderLastSeq goes to the stream itself.
type laggingReplica struct {
	ingest.Store
	last uint64
}

func (s laggingReplica) LastSeq(context.Context) (uint64, error) { return s.last, nil }

// indexAt is an event-id index that has read the stream through checkpoint and holds none
// of the ids asked for.
type indexAt struct{ checkpoint uint64 }

func (i indexAt) EventPersons([]string) (map[string]string, uint64, error) {
	return map[string]string{}, i.checkpoint, nil
}

// Found on 2026-12-06 (review of the cluster paths): the append path's id check took "the
// stream's last sequence" from LastSeq, which a replica catching up may answer from far
// behind, and counted the event-id index complete once it had read that far: an id stored
// after the replica's end, forgotten by the dedupe window, was stored again for another
// person. Now the sample comes from the stream leader (LeaderLastSeq), and the append waits
// for the index.
func TestService_TipFromTheLeader(t *testing.T) {
	ctx := context.Background()
	w := newIDWorld(t, true) // the window: 1 s
	svc := w.service(w.proj)
	a, regA := person(51, false)
	b, regB := person(52, false)
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{regA, regB}); err != nil {
		t.Fatal(err)
	}
	behind, err := w.store.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stored := offer(a) // after the lagging replica's end
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{stored}); err != nil {
		t.Fatal(err)
	}
	w.forget(t)
	time.Sleep(600 * time.Millisecond) // the id older than half the window
	other := ingest.New(ingest.Config{Store: laggingReplica{Store: w.store, last: behind}, Keys: w.keys, IDs: indexAt{behind},
		DedupeWindow: time.Second, ConflictTimeout: 300 * time.Millisecond, Now: func() time.Time { return fixedNow }})
	reuse := offer(b)
	reuse.Event.Id = stored.Event.Id
	if _, err := other.Append(ctx, oslo, []*nirv1.Registration{reuse}); err == nil {
		t.Fatalf("an event id stored for person A (after seq %d) was stored again for person B: the index counted as complete at a lagging replica's last sequence", behind)
	} else if !errors.Is(err, ingest.ErrUnavailable) {
		t.Errorf("the append while the index lags the leader: %v, want Unavailable", err)
	}
}

// Found on 2026-12-06 (review of the write path): a computed termination's id is a ULID at
// midnight UTC of its date with entropy from values a kommune knows (rules.TerminationID),
// and between that date and the day it falls due a kommune could store any event under it:
// the regelmotor's append then failed on every pass and the programme was never terminated.
// Now a client's id at exactly midnight UTC is refused by name; nird's own append of the
// termination goes through.
func TestService_ComputedTerminationIDReserved(t *testing.T) {
	ctx := context.Background()
	w := newIDWorld(t, true)
	svc := w.service(w.proj)
	a, regA := person(61, false)
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{regA}); err != nil {
		t.Fatal(err)
	}
	squat := offer(a)
	squat.Event.Id = rules.TerminationID(strings.Repeat("ab", 32), "0301", rules.MustDate(2024, 1, 2), nirv1.TerminationRule_TERMINATION_RULE_FRIST_UTLOPT, rules.MustDate(2025, 7, 1))
	_, err := svc.Append(ctx, oslo, []*nirv1.Registration{squat})
	var inv *ingest.InvalidError
	if !errors.As(err, &inv) || inv.Field != "registrations[0].event.id" || !strings.Contains(inv.Reason, "midnight UTC") {
		t.Fatalf("a kommune's event under a computed termination's id: %v, want an InvalidError naming registrations[0].event.id", err)
	}
	// A termination dated before 1970 (NIR-R030 lets facts from 1950 through) too. Found on
	// 2026-12-07 (review): its id had time 0, which is not kept (nirctl import's derived
	// ids), so a kommune could store an event under it first.
	old := offer(a)
	old.Event.Id = rules.TerminationID(strings.Repeat("ab", 32), "0301", rules.MustDate(1955, 3, 1), nirv1.TerminationRule_TERMINATION_RULE_INAKTIV, rules.MustDate(1956, 3, 1))
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{old}); !errors.As(err, &inv) || inv.Field != "registrations[0].event.id" {
		t.Errorf("a kommune's event under the id of a termination dated 1956: %v, want an InvalidError naming registrations[0].event.id", err)
	}
	// A millisecond later is an ordinary id.
	u := ulid.MustParse(squat.Event.Id)
	if err := u.SetTime(u.Time() + 1); err != nil {
		t.Fatal(err)
	}
	squat.Event.Id = u.String()
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{squat}); err != nil {
		t.Errorf("an id one millisecond after midnight UTC: %v", err)
	}
	// An event stored under such an id before (a load of history, whose ids carry the
	// events' dates) is answered as the duplicate it is when a case system re-sends it.
	loaded := offer(a)
	loaded.Event.Id = ulid.MustNew(uint64(rules.MustDate(2024, 3, 1).Time().UnixMilli()), ulid.DefaultEntropy()).String()
	if _, err := svc.Append(ctx, access.System(&nirv1.Actor{Subject: "load", Role: nirv1.ActorRole_ACTOR_ROLE_SYSTEM}), []*nirv1.Registration{loaded}); err != nil {
		t.Fatal(err)
	}
	again, err := svc.Append(ctx, oslo, []*nirv1.Registration{loaded})
	if err != nil || !again[0].GetDuplicate() {
		t.Errorf("a case system re-sends a loaded event with a midnight id: %v, %v; want its duplicate", again, err)
	}
}
