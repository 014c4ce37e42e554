package ingest

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	nirv1 "github.com/introreg/nir/proto/nir/v1"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/demo"
	"github.com/introreg/nir/rules"
)

// TestService_FoldFromCache: the state the append path checks against, built from the
// cached fold of a prefix of the history, is the fold of the whole history, whatever the
// cache holds: a shorter history, a history read again with more events, or a history whose
// events differ from the cached prefix's (another writer's, after a conflict). A fold of the
// history the cached state was put back for hands out that state itself: nothing is copied.
func TestService_FoldFromCache(t *testing.T) {
	s := &Service{cache: newHistoryCache(10, 1000)}
	p := 0
	for evs := range demo.Generate(5, 12, rules.Today(time.Now())) {
		p++
		key := fmt.Sprintf("person-%d", p) // a subject: its messages' sequences are its own
		var history []eventstore.Stored
		for i, ev := range evs {
			history = append(history, eventstore.Stored{Seq: uint64(p*10000 + 10*(i+1)), Event: ev})
		}
		check := func(h []eventstore.Stored, reused bool) {
			t.Helper()
			s.cache.put(key, h, h[len(h)-1].Seq, 0)
			l := s.fold(key, h, 0)
			got := l.st
			if want := FoldHistory(key, h); !reflect.DeepEqual(got, want) {
				t.Fatalf("person %s, %d events: the state from the cache differs from the fold", key, len(h))
			}
			// A request of several events changes a copy.
			extra := proto.Clone(evs[len(evs)-1]).(*nirv1.Event)
			extra.Id = "extra"
			got.Copy().Apply(got.LastSeq+1, extra)
			l.release()
			again := s.fold(key, h, 0)
			if reused && again.st != got {
				t.Fatalf("person %s, %d events: the state put back was not handed out again", key, len(h))
			}
			again.release()
		}
		for k := 1; k <= len(history); k++ {
			check(history[:k], true)
			check(history[:k], true) // the whole history folded already: the cached state itself
		}
		check(history[:len(history)/2+1], false) // shorter than the cached fold: folded again
		// The same length, but another event at the prefix's end (as another writer's would
		// be): the cached fold does not match it.
		other := append([]eventstore.Stored(nil), history...)
		other[len(other)-1].Seq++
		s.cache.drop(key)
		check(history, true)
		check(other, false)
	}
}

// TestService_FoldConcurrent: folds of one person at once (an append beside History reads,
// which hold no person lock) each get the whole history's fold, while the cached state is
// taken out, advanced, read and put back. Run with -race: a state advanced by one fold while
// another reads it is a race.
func TestService_FoldConcurrent(t *testing.T) {
	s := &Service{cache: newHistoryCache(10, 1000)}
	var evs []*nirv1.Event
	for e := range demo.Generate(1, 30, rules.Today(time.Now())) {
		evs = e
	}
	const key = "person"
	var history []eventstore.Stored
	for i, ev := range evs {
		history = append(history, eventstore.Stored{Seq: uint64(10 * (i + 1)), Event: ev})
	}
	wants := make([]*rules.State, len(history)+1)
	for k := 1; k <= len(history); k++ {
		wants[k] = FoldHistory(key, history[:k])
	}
	s.cache.put(key, history[:1], history[0].Seq, 0)
	errs := make(chan error, 4)
	for g := range 4 {
		go func() {
			for k := 1; k <= len(history); k++ {
				h := history[:max(1, k-g)] // the goroutines lag each other: shorter and longer
				l := s.fold(key, h, 0)
				if !reflect.DeepEqual(l.st, wants[len(h)]) {
					errs <- fmt.Errorf("goroutine %d, %d events: the state differs from the fold", g, len(h))
					return
				}
				l.release()
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestService_FoldNewEvent: the state that folded a request's new event before it was stored
// (lease.applyNew) is kept once the event is stored, at the sequence the stream gave it, and
// is then the fold of the history with the event, handed out by the next fold itself; a
// state that folded an event not stored is never handed out.
func TestService_FoldNewEvent(t *testing.T) {
	s := &Service{cache: newHistoryCache(10, 1000)}
	p := 0
	for evs := range demo.Generate(7, 12, rules.Today(time.Now())) {
		p++
		key := fmt.Sprintf("person-%d", p)
		var history []eventstore.Stored
		for i, ev := range evs {
			history = append(history, eventstore.Stored{Seq: uint64(p*10000 + 10*(i+1)), Event: ev})
		}
		s.cache.put(key, history[:1], history[0].Seq, 0)
		s.fold(key, history[:1], 0).release()
		for k := 1; k < len(history); k++ {
			// Not stored: the state is dropped, and the next fold folds the history whole.
			l := s.fold(key, history[:k], 0)
			if _, faulted := l.applyNew(history[k].Event); faulted {
				t.Fatalf("person %s, event %d: a fault with no fault hook", key, k)
			}
			l.release()
			if again := s.fold(key, history[:k], 0); again.st == l.st || !reflect.DeepEqual(again.st, FoldHistory(key, history[:k])) {
				t.Fatalf("person %s, %d events: a state holding an event not stored was handed out", key, k)
			} else {
				again.release()
			}
			// Stored: the state is the fold with the event at its sequence.
			l = s.fold(key, history[:k], 0)
			l.applyNew(history[k].Event)
			s.cache.extend(key, history[:k], history[k:k+1], history[k].Seq, 0)
			l.storedAt([]eventstore.Position{{EventID: history[k].Event.GetId(), PersonKey: key, Seq: history[k].Seq}})
			l.release()
			next := s.fold(key, history[:k+1], 0)
			if next.st != l.st {
				t.Fatalf("person %s, %d events: the state that folded the stored event was not handed out", key, k+1)
			}
			if want := FoldHistory(key, history[:k+1]); !reflect.DeepEqual(next.st, want) {
				t.Fatalf("person %s, %d events: the state that folded the new event differs from the fold", key, k+1)
			}
			next.release()
		}
	}
}
