package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/introreg/nir/eventstore"
)

// An event id is the event's idempotency key across the register: a retry with the same id
// and content returns the stored position, and the id may not name another event. Within
// one person the history read before every append tells (and the event store checks again
// when a race hides it). Across persons two things together tell, with any number of nird
// processes on one stream:
//
//   - the stream's dedupe window: an id stored in the last DedupeWindow is refused by the
//     server when it is sent again (JetStream's duplicate ack reveals the original's
//     sequence, whose subject names its person; an atomic batch is refused whole), and the
//     event store turns that into eventstore.ErrIDInUse;
//   - the read models' event-id index (Config.IDs): every event the index has read. Before an
//     append, the new ids are looked up there, and the lookup counts only when the index has
//     read every event stored more than half a dedupe window ago, which is what the window
//     no longer covers. The index is the projections' own catch-up of the stream, usually a
//     few milliseconds behind; when it lags more (a restart, a rebuild) an id is checked
//     once it has caught up, and a request waits for that as long as it may (Unavailable
//     after). An id whose ULID time lies within the last half window is new unless the
//     window knows it, so such appends go on while the index catches up.
//
// A subject per id in the stream (a claim message in every atomic batch) would be exact
// without an index, but doubles the messages of every append and turns each single-event
// publish into an atomic batch, several times slower on a file stream (README Performance).

// idCheck is one new event's id, its person and its registration's index in the request.
type idCheck struct {
	id    string
	key   string
	index int
}

// checkIDs refuses a new event whose id the event-id index knows for another person
// (ErrIDInUse, as an *IDError naming the field), and reports ErrConflict for one it knows
// for the same person (the history read was stale: the caller reads it again).
func (s *Service) checkIDs(ctx context.Context, checks []idCheck) error {
	if s.ids == nil || len(checks) == 0 {
		return nil
	}
	ids := make([]string, len(checks))
	for i, c := range checks {
		ids[i] = c.id
	}
	var giveUp time.Time
	for {
		persons, checkpoint, err := s.ids.EventPersons(ids)
		if err != nil {
			return fmt.Errorf("event-id index: %w", err)
		}
		for _, c := range checks {
			pk, ok := persons[c.id]
			switch {
			case !ok:
			case pk != c.key:
				return idInUse(c)
			default:
				// ErrNotNew, not a plain conflict: read again and answered as the duplicate it
				// is, also for a request with an expectation (TestService_ResendWithExpectationStaleCache).
				return fmt.Errorf("%w: event %s is stored for the person after the history read", eventstore.ErrNotNew, c.id)
			}
		}
		window := s.dedupeWindow()
		need, err := s.tips.bound(ctx, s.store, window)
		if err != nil {
			return err
		}
		if checkpoint >= need || allRecent(ids, window) {
			return nil
		}
		// The index has not read everything the dedupe window has forgotten: wait for it.
		now := time.Now()
		if giveUp.IsZero() {
			giveUp = now.Add(s.patience)
			if d, ok := ctx.Deadline(); ok && d.Before(giveUp) {
				giveUp = d
			}
			s.log.InfoContext(ctx, "waiting for the event-id index", "checkpoint", checkpoint, "need", need)
		}
		behind := fmt.Errorf("%w: at stream sequence %d, %d needed", ErrUnavailable, checkpoint, need)
		if now.After(giveUp) {
			return behind
		}
		select {
		case <-time.After(5 * time.Millisecond):
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return behind
			}
			return ctx.Err()
		}
	}
}

// dedupeWindow is the window the id checks reason with: nird's configured one, or the
// stream's own when that is shorter. The server forgets ids by the stream's window, which is
// the one it was created with (by another nird, or by a restore with the default): reasoning
// with a wider one took ids the server had forgotten for new while the event-id index lagged,
// and stored them again for another person (TestService_StreamWindowShorterThanConfigured).
func (s *Service) dedupeWindow() time.Duration {
	if w := s.store.DuplicateWindow(); w > 0 && w < s.window {
		return w
	}
	return s.window
}

// idReserved reports whether id is a ULID whose time is exactly midnight UTC: the
// regelmotor's computed terminations take such ids (rules.TerminationID, the termination's
// date), made from values a kommune knows. A client that stored an event under one first,
// between the termination's date and the day it falls due, made the regelmotor's append
// fail on every pass, and the programme was never terminated
// (TestService_ComputedTerminationIDReserved). A client's ULID made at random lands on that
// millisecond once in 86.4 million; it is refused by name, and a new id goes through. Only a
// new event is refused: a re-send of one stored before (a load of history, whose ids carry the
// events' dates) is its duplicate.
//
// Time 0 (1970-01-01) is not reserved: no computed termination takes such an id
// (rules.TerminationID gives a date before 1970-01-02, or none, that day's midnight), and
// `nirctl import` gives a line without an id one derived from the file with time 0
// (derivedEventID). Found on 2026-12-07 (a walk through the README): reserving it refused
// every such line of a kommune's import (TestImport_DerivedIDsAsKommune).
func idReserved(id string) bool {
	u, err := ulid.ParseStrict(id)
	return err == nil && u.Time() != 0 && u.Time()%uint64(24*time.Hour/time.Millisecond) == 0
}

func idInUse(c idCheck) error {
	return &IDError{Index: c.index, Field: fmt.Sprintf("registrations[%d].event.id", c.index),
		Reason: "is already stored for another person; every event needs an id of its own", Err: ErrIDInUse}
}

// idAhead reports whether id is a ULID whose time lies more than a quarter of the dedupe
// window ahead of now (this machine's clock, as allRecent's, not the business clock). Such ids are refused from clients: allRecent takes an id whose time
// lies within the last half window for one not stored before the window began, and an id
// stamped ahead of its time would pass for recent after the window forgot it, so that while
// the event-id index lags (a repair of the read models, a catch-up) it was stored again for
// another person (TestService_FutureULIDRefused). The regelmotor's computed terminations
// (ULID time: the termination's date) and nird's loads are nird's own and are not checked.
func idAhead(id string, now time.Time, window time.Duration) bool {
	u, err := ulid.ParseStrict(id)
	return err == nil && ulid.Time(u.Time()).After(now.Add(window/4))
}

// allRecent reports whether every id is a ULID whose time lies within the last half dedupe
// window (by this machine's clock, which is the stream servers' within NTP's error): such an
// id was not stored before the window began, unless a client stamped it ahead of its time.
// An id ahead of the clock is not recent: the system's ids are not bounded ahead (idAhead),
// and a computed termination dated today by Norway's calendar is stamped at midnight UTC, up
// to two hours ahead, so it may have been stored long before (TestService_FutureIDNotRecent).
// Once its time has come such an id passes for recent for half a window; no client can reuse
// one then, since a new event of a client's at midnight UTC is refused (idReserved).
func allRecent(ids []string, window time.Duration) bool {
	now := time.Now()
	for _, id := range ids {
		u, err := ulid.ParseStrict(id)
		if err != nil {
			return false
		}
		t := ulid.Time(u.Time())
		if t.Before(now.Add(-window/2)) || t.After(now) {
			return false
		}
	}
	return true
}

// idError turns the event store's refusal of an id into an *IDError naming the
// registration's field. When the server did not say which id of a batch it knew, the
// event-id index finds it once it has read the stream as far as the refusal.
func (s *Service) idError(ctx context.Context, ie *eventstore.IDError, checks []idCheck) error {
	for _, c := range checks {
		if c.id != ie.EventID {
			continue
		}
		if errors.Is(ie, ErrIDReused) {
			return &IDError{Index: c.index, Field: fmt.Sprintf("registrations[%d].event.id", c.index),
				Reason: "is already stored for this person with other content; a new event needs a new id", Err: ErrIDReused}
		}
		return idInUse(c)
	}
	if s.ids != nil && ie.EventID == "" {
		if last, err := s.store.LastSeq(ctx); err == nil {
			ids := make([]string, len(checks))
			for i, c := range checks {
				ids[i] = c.id
			}
			for giveUp := time.Now().Add(2 * time.Second); time.Now().Before(giveUp) && ctx.Err() == nil; time.Sleep(5 * time.Millisecond) {
				persons, checkpoint, err := s.ids.EventPersons(ids)
				if err != nil {
					break
				}
				for _, c := range checks {
					if pk, ok := persons[c.id]; ok && pk != c.key {
						return idInUse(c)
					}
				}
				if checkpoint >= last {
					break
				}
			}
		}
	}
	return &IDError{Index: -1, Field: "registrations", Reason: "an event id of the request is already stored for another person", Err: ie.Err}
}

// tipLog remembers the stream's last sequence at recent times, so that the append path knows
// how far the event-id index must have read: every event stored before a sample was taken
// has a sequence at or below the sample's.
type tipLog struct {
	// mu guards samples.
	mu      sync.Mutex
	samples []tipSample // oldest first
}

type tipSample struct {
	at  time.Time // taken after this instant
	seq uint64
}

// bound returns a stream sequence that every event stored more than half a dedupe window ago
// lies at or below: the oldest sample taken within the last half window. It samples the
// stream (one request) when the newest sample is older than an eighth of the window.
func (l *tipLog) bound(ctx context.Context, store Store, window time.Duration) (uint64, error) {
	now := time.Now()
	l.mu.Lock()
	keep := l.samples[:0]
	for _, sm := range l.samples {
		if !sm.at.Before(now.Add(-window / 2)) {
			keep = append(keep, sm)
		}
	}
	l.samples = keep
	if n := len(l.samples); n > 0 && now.Sub(l.samples[n-1].at) < window/8 {
		seq := l.samples[0].seq
		l.mu.Unlock()
		return seq, nil
	}
	l.mu.Unlock()
	// From the stream leader: a replica catching up may answer from far behind, and the
	// index would then count as complete without the events it lacks.
	seq, err := store.LeaderLastSeq(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream's last sequence: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.samples = append(l.samples, tipSample{at: now, seq: seq})
	return l.samples[0].seq, nil
}
