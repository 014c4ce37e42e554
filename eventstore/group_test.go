package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/introreg/nir/eventstore"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// call records one Append as its caller saw it.
type call struct {
	writer  int
	key     string
	expect  *uint64
	events  []*nirv1.Event
	pos     []eventstore.Position
	err     error
	stale   bool // the test made the check wrong on purpose
	ackedAt int  // order in which the writer saw it return
}

// TestStore_GroupCommit runs many concurrent writers on shared and own persons, some
// without a check and some with a deliberately stale one, and checks the outcome against
// the stream: every acked event stored exactly once at its returned position, every
// conflict caused by the caller's own stale check, and per-person order equal to ack order.
func TestStore_GroupCommit(t *testing.T) {
	tests := []struct {
		name string
		gc   eventstore.GroupCommit
	}{
		{"Defaults", eventstore.GroupCommit{}},
		{"AtomicOnly", eventstore.GroupCommit{PlainMax: -1, MaxInflight: 3, MaxWait: 2 * time.Millisecond}},
		{"SmallBatches", eventstore.GroupCommit{PlainMax: -1, MaxEvents: 5, MaxInflight: 2}},
		// Batches sent ahead while they form, with long waits: most messages reach the
		// server before their batch is complete, stale checks among them.
		{"Streamed", eventstore.GroupCommit{PlainMax: 1, MaxWait: 20 * time.Millisecond}},
		{"SendWhole", eventstore.GroupCommit{SendWhole: true, MaxWait: 5 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openStore(t, func(c *eventstore.Config) { c.GroupCommit = tt.gc })
			runGroupWorkload(t, s)
		})
	}
}

func runGroupWorkload(t *testing.T, s *eventstore.Store) {
	ctx := context.Background()
	const writers, perWriter = 12, 8
	shared := []string{personKey("shared-0"), personKey("shared-1")}
	var mu sync.Mutex
	var calls []*call
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			own := personKey(fmt.Sprintf("own-%d", w))
			var ownLast uint64
			for i := range perWriter {
				c := &call{writer: w}
				switch {
				case w%3 == 0: // contended persons, checked, re-read every time
					c.key = shared[i%2]
					_, last, err := s.Read(ctx, c.key)
					if err != nil {
						t.Error(err)
						return
					}
					c.expect = eventstore.Expect(last)
				case w%3 == 1 && i%4 == 3: // own person, a deliberately stale check
					c.key, c.stale = own, true
					if ownLast == 0 {
						c.expect = eventstore.Expect(12345678)
					} else {
						c.expect = eventstore.Expect(ownLast - 1)
					}
				case w%3 == 1: // own person, exact check
					c.key = own
					c.expect = eventstore.Expect(ownLast)
				default: // shared persons without a check
					c.key = shared[(w+i)%2]
				}
				c.events = events(c.key, 1+i%3)
				c.pos, c.err = s.Append(ctx, eventstore.PersonAppend{PersonKey: c.key, ExpectedLastSeq: c.expect, Events: c.events})
				if c.err == nil && c.key == own {
					ownLast = c.pos[len(c.pos)-1].Seq
				}
				mu.Lock()
				c.ackedAt = len(calls)
				calls = append(calls, c)
				mu.Unlock()
			}
		})
	}
	wg.Wait()

	// The stream as it is.
	seqOf := map[string]uint64{}
	personOf := map[uint64]string{}
	history := map[string][]uint64{}
	for st, err := range s.Replay(ctx, eventstore.ReplayOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		id := st.Event.GetId()
		if _, dup := seqOf[id]; dup {
			t.Fatalf("event %s stored twice", id)
		}
		seqOf[id] = st.Seq
		personOf[st.Seq] = st.Event.GetPersonKey()
		history[st.Event.GetPersonKey()] = append(history[st.Event.GetPersonKey()], st.Seq)
	}
	prevOnPerson := func(key string, seq uint64) uint64 {
		h := history[key]
		i, _ := slices.BinarySearch(h, seq)
		if i == 0 {
			return 0
		}
		return h[i-1]
	}

	acked, conflicts, stored := 0, 0, 0
	for _, c := range calls {
		switch {
		case c.err == nil:
			acked++
			if c.stale {
				t.Errorf("writer %d: stale check was accepted", c.writer)
			}
			for i, p := range c.pos {
				if p.Duplicate || seqOf[c.events[i].Id] != p.Seq || p.EventID != c.events[i].Id {
					t.Errorf("writer %d: position %+v, stream has seq %d", c.writer, p, seqOf[c.events[i].Id])
				}
				stored++
			}
			// The check held: nothing else was stored on the person in between, and the
			// call's events are contiguous on the person.
			if c.expect != nil {
				if prev := prevOnPerson(c.key, c.pos[0].Seq); prev != *c.expect {
					t.Errorf("writer %d: appended after seq %d but expected %d", c.writer, prev, *c.expect)
				}
			}
			for i := 1; i < len(c.pos); i++ {
				if prevOnPerson(c.key, c.pos[i].Seq) != c.pos[i-1].Seq {
					t.Errorf("writer %d: events of one call interleaved with others", c.writer)
				}
			}
		case errors.Is(c.err, eventstore.ErrConflict):
			conflicts++
			for _, e := range c.events {
				if _, ok := seqOf[e.Id]; ok {
					t.Errorf("writer %d: conflicted event %s was stored", c.writer, e.Id)
				}
			}
			// The conflict is the caller's: its check does not match the person's
			// history (some other event follows the expected seq, or it never existed).
			h := history[c.key]
			if !c.stale && slices.Index(h, *c.expect) == -1 && *c.expect != 0 {
				t.Errorf("writer %d: conflict on seq %d which is not in the person's history", c.writer, *c.expect)
			}
			if !c.stale && len(h) > 0 && h[len(h)-1] == *c.expect {
				t.Errorf("writer %d: conflict although nothing followed seq %d", c.writer, *c.expect)
			}
		default:
			t.Errorf("writer %d: %v", c.writer, c.err)
		}
		if c.err != nil && !errors.Is(c.err, eventstore.ErrConflict) {
			continue
		}
		if c.stale && !errors.Is(c.err, eventstore.ErrConflict) {
			t.Errorf("writer %d: stale check got %v, want ErrConflict", c.writer, c.err)
		}
	}
	if stored != len(seqOf) {
		t.Errorf("stream holds %d events, callers were acked for %d", len(seqOf), stored)
	}
	// Per person, the order in the stream is the order the calls were acked in, for calls
	// that could not overlap (same writer, or a check that saw the earlier call).
	lastByWriterPerson := map[string]uint64{}
	for _, c := range calls {
		if c.err != nil {
			continue
		}
		k := fmt.Sprintf("%d/%s", c.writer, c.key)
		if c.pos[0].Seq <= lastByWriterPerson[k] {
			t.Errorf("writer %d: call acked later is stored earlier", c.writer)
		}
		lastByWriterPerson[k] = c.pos[len(c.pos)-1].Seq
	}
	st := s.Stats()
	if st.Appends != uint64(len(calls)) || st.Conflicts != uint64(conflicts) || st.Events != uint64(stored) {
		t.Errorf("Stats = %+v; want %d appends, %d conflicts, %d events", st, len(calls), conflicts, stored)
	}
	var sizes uint64
	for _, n := range st.BatchSizes {
		sizes += n
	}
	if sizes != st.Batches {
		t.Errorf("batch size histogram counts %d batches, Batches = %d", sizes, st.Batches)
	}
	t.Logf("%d calls: %d acked, %d conflicts; %d events; stats %+v", len(calls), acked, conflicts, stored, st)
}

// TestStore_GroupCommit_ConflictGoesToItsCaller coalesces appends of which one carries a
// stale check, until a batch had to be sent again without it: only that caller fails.
func TestStore_GroupCommit_ConflictGoesToItsCaller(t *testing.T) {
	s, _ := openStore(t, func(c *eventstore.Config) { c.GroupCommit = eventstore.GroupCommit{PlainMax: -1} })
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for round := 0; s.Stats().Republishes == 0; round++ {
		if time.Now().After(deadline) {
			t.Fatalf("no batch with a stale member after %d rounds", round)
		}
		const n = 16
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			key := personKey(fmt.Sprintf("cgc-%d-%d", round, i))
			expect := uint64(0)
			if i == n/2 {
				expect = 7 // the person has no events: stale
			}
			wg.Go(func() {
				_, errs[i] = s.Append(ctx, eventstore.PersonAppend{PersonKey: key, ExpectedLastSeq: eventstore.Expect(expect), Events: events(key, 1)})
			})
		}
		wg.Wait()
		for i, err := range errs {
			if want := i == n/2; errors.Is(err, eventstore.ErrConflict) != want || (!want && err != nil) {
				t.Fatalf("round %d append %d: %v (stale: %v)", round, i, err, want)
			}
		}
	}
}

// TestStore_GroupCommit_DuplicateInBatch retries stored events while other appends are
// coalesced with them: the server refuses such a batch whole (10201); the retries get
// their original positions and the others are stored.
func TestStore_GroupCommit_DuplicateInBatch(t *testing.T) {
	s, _ := openStore(t, func(c *eventstore.Config) { c.GroupCommit = eventstore.GroupCommit{PlainMax: -1} })
	ctx := context.Background()
	const n = 16
	first := make([]eventstore.PersonAppend, n)
	orig := make([][]eventstore.Position, n)
	for i := range first {
		key := personKey(fmt.Sprintf("dup-%d", i))
		first[i] = eventstore.PersonAppend{PersonKey: key, ExpectedLastSeq: eventstore.Expect(0), Events: events(key, 2)}
		var err error
		if orig[i], err = s.Append(ctx, first[i]); err != nil {
			t.Fatal(err)
		}
	}
	before := mustLastSeq(t, s)
	var wg sync.WaitGroup
	errs := make([]error, 2*n)
	pos := make([][]eventstore.Position, 2*n)
	for i := range 2 * n {
		wg.Go(func() {
			if i%2 == 0 { // a retry, with and without the (now stale) check
				pa := first[i/2]
				if i%4 == 0 {
					pa.ExpectedLastSeq = nil
				}
				pos[i], errs[i] = s.Append(ctx, pa)
				return
			}
			key := personKey(fmt.Sprintf("fresh-%d", i))
			pos[i], errs[i] = s.Append(ctx, eventstore.PersonAppend{PersonKey: key, ExpectedLastSeq: eventstore.Expect(0), Events: events(key, 1)})
		})
	}
	wg.Wait()
	for i := range 2 * n {
		if errs[i] != nil {
			t.Fatalf("append %d: %v", i, errs[i])
		}
		if i%2 == 0 && (!slices.EqualFunc(pos[i], orig[i/2], func(a, b eventstore.Position) bool { return a.Seq == b.Seq && a.EventID == b.EventID }) || !pos[i][0].Duplicate) {
			t.Fatalf("retry %d: positions %+v, want originals %+v", i, pos[i], orig[i/2])
		}
	}
	if got := mustLastSeq(t, s); got != before+n {
		t.Fatalf("stream grew by %d, want %d new events", got-before, n)
	}
}

// TestStore_GroupCommit_ReusedIDGoesAlone: an event id that another person holds, or that
// two concurrent callers both use, is refused to its caller only (ErrIDInUse), and costs
// the others no refused batch: the caller goes alone. The server refuses an atomic batch
// holding such an id whole without saying which; the batch was retried until
// maxAppendAttempts, so one case system reusing ids made every batch it joined fail four
// times (adversarial: one client slowing every other).
func TestStore_GroupCommit_ReusedIDGoesAlone(t *testing.T) {
	s, _ := openStore(t, func(c *eventstore.Config) { c.GroupCommit = eventstore.GroupCommit{PlainMax: -1} })
	ctx := context.Background()
	const n, rounds = 16, 6
	for round := range rounds {
		before, refused := mustLastSeq(t, s), s.Stats().RefusedBatches
		// Even rounds: member 0 reuses the id of an event just stored for another person
		// (in the server's dedupe window). Odd rounds: members 0 and 1 use one new id.
		var reused string
		if round%2 == 0 {
			other := personKey(fmt.Sprintf("reuse-other-%d", round))
			ev := events(other, 1)
			if _, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: other, ExpectedLastSeq: eventstore.Expect(0), Events: ev}); err != nil {
				t.Fatal(err)
			}
			before++
			reused = ev[0].GetId()
		} else {
			reused = events(personKey("reuse-new"), 1)[0].GetId()
		}
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			key := personKey(fmt.Sprintf("reuse-%d-%d", round, i))
			ev := events(key, 1)
			if i == 0 || (i == 1 && round%2 == 1) {
				ev[0].Id = reused
			}
			wg.Go(func() {
				_, errs[i] = s.Append(ctx, eventstore.PersonAppend{PersonKey: key, ExpectedLastSeq: eventstore.Expect(0), Events: ev})
			})
		}
		wg.Wait()
		inUse := 0
		for i, err := range errs {
			switch {
			case errors.Is(err, eventstore.ErrIDInUse) && (i == 0 || (i == 1 && round%2 == 1)):
				inUse++
			case err != nil:
				t.Fatalf("round %d append %d: %v", round, i, err)
			}
		}
		if inUse != 1 {
			t.Fatalf("round %d: %d appends refused with ErrIDInUse, want 1", round, inUse)
		}
		if got := mustLastSeq(t, s) - before; got != n-1 {
			t.Fatalf("round %d: stream grew by %d, want %d", round, got, n-1)
		}
		// The committer knows the ids of its batches in flight and of those stored lately:
		// a member reusing one goes alone, and no batch is refused for it.
		if r := s.Stats().RefusedBatches - refused; r != 0 {
			t.Fatalf("round %d: %d batches refused for one reused id, want none", round, r)
		}
	}
}

// TestStore_GroupCommit_LoneCaller: an append on an idle store is sent at once as a plain
// publish, not held back to wait for company.
func TestStore_GroupCommit_LoneCaller(t *testing.T) {
	s, _ := openStore(t, func(c *eventstore.Config) { c.GroupCommit = eventstore.GroupCommit{MaxWait: time.Hour, MaxInflight: 4} })
	key := personKey("lone")
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, last := mustRead(t, s, key)
		if _, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: key, ExpectedLastSeq: eventstore.Expect(last), Events: events(key, 1)}); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		cancel()
	}
	if st := s.Stats(); st.PlainPublishes != 3 || st.Batches != 0 {
		t.Fatalf("Stats = %+v, want 3 plain publishes", st)
	}
}

// TestStore_GroupCommit_LoneCallerGivesUp: a lone caller's append is sent in its own
// goroutine, bounded by its own context (issue 17: no second context an append); a caller
// whose context has ended gets its context's error, and the same append sent again is stored
// once.
func TestStore_GroupCommit_LoneCallerGivesUp(t *testing.T) {
	s, _ := openStore(t, nil)
	key := personKey("gives up")
	evs := events(key, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: key, ExpectedLastSeq: eventstore.Expect(0), Events: evs}); !errors.Is(err, context.Canceled) {
		t.Fatalf("append with its context ended: %v; want context.Canceled", err)
	}
	if _, err := s.Append(context.Background(), eventstore.PersonAppend{PersonKey: key, ExpectedLastSeq: eventstore.Expect(0), Events: evs}); err != nil {
		t.Fatalf("the append again: %v", err)
	}
	if stored, _ := mustRead(t, s, key); len(stored) != 1 || stored[0].Event.GetId() != evs[0].GetId() {
		t.Fatalf("stored %v; want the event once", ids(stored))
	}
}

// TestStore_GroupCommit_LoneCallersLeaveNoBatches: a lone caller's batch of several events
// ran on the caller's own context (issue 17), and an atomic batch's publish sends its
// messages without looking at the context, then not the commit once the context has ended:
// every such append left a batch open on the server until the server's batch timeout (10 s),
// and the server keeps at most 50 open on a stream. Callers whose context ended (a hostile
// client can end its request at will) then had every other caller's batch refused. Found on
// 2026-12-07: 60 such calls, then an append of two events failed with the server's limit of
// open batches.
func TestStore_GroupCommit_LoneCallersLeaveNoBatches(t *testing.T) {
	s, _ := openStore(t, nil)
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	for i := range 60 {
		key := personKey(fmt.Sprintf("gives up %d", i))
		// Stored or context.Canceled: the caller stops waiting, a retry would find out.
		if _, err := s.Append(ended, eventstore.PersonAppend{PersonKey: key, ExpectedLastSeq: eventstore.Expect(0), Events: events(key, 2)}); err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("append %d with its context ended: %v", i, err)
		}
	}
	key := personKey("after them")
	evs := events(key, 2)
	if _, err := s.Append(context.Background(), eventstore.PersonAppend{PersonKey: key, ExpectedLastSeq: eventstore.Expect(0), Events: evs}); err != nil {
		t.Fatalf("an append of two events after callers gave up: %v", err)
	}
	if stored, _ := mustRead(t, s, key); len(stored) != 2 {
		t.Fatalf("stored %v; want both events", ids(stored))
	}
}

// TestStore_GroupCommit_LoneCallerGivesUpAfterSend: a lone caller's single event runs on the
// caller's context (issue 17), which here ends as the event reaches the server (another
// connection sees it and cancels), the ack maybe not yet read. Whatever the caller was told,
// the same append sent again, alone and then among other callers' batches, stores the event
// once, and nobody else's append in those batches is refused for it.
func TestStore_GroupCommit_LoneCallerGivesUpAfterSend(t *testing.T) {
	s, srv := openStore(t, nil)
	key := personKey("gives up after send")
	subject, err := eventstore.Subject(key)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub, err := nc.Subscribe(subject, func(*nats.Msg) { cancel() })
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	evs := events(key, 1)
	_, err = s.Append(ctx, eventstore.PersonAppend{PersonKey: key, ExpectedLastSeq: eventstore.Expect(0), Events: evs})
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("append whose context ends as it is sent: %v", err)
	}
	t.Logf("the caller was told: %v", err)
	eventually(t, 10*time.Second, "the event reached the subscriber", func() bool { return ctx.Err() != nil })
	// It was stored: the retries below are of an event the caller may not know is stored.
	eventually(t, 10*time.Second, "the event stored", func() bool { stored, _ := mustRead(t, s, key); return len(stored) == 1 })
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for round := range 2 {
		wg.Go(func() {
			if _, err := s.Append(context.Background(), eventstore.PersonAppend{PersonKey: key, ExpectedLastSeq: eventstore.Expect(0), Events: evs}); err != nil {
				errs <- fmt.Errorf("round %d: the append again: %w", round, err)
			}
		})
		for i := range 16 {
			wg.Go(func() {
				k := personKey(fmt.Sprintf("beside %d %d", round, i))
				if _, err := s.Append(context.Background(), eventstore.PersonAppend{PersonKey: k, ExpectedLastSeq: eventstore.Expect(0), Events: events(k, 1+i%3)}); err != nil {
					errs <- fmt.Errorf("round %d: another caller's append: %w", round, err)
				}
			})
		}
		wg.Wait()
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if stored, _ := mustRead(t, s, key); len(stored) != 1 || stored[0].Event.GetId() != evs[0].GetId() {
		t.Fatalf("stored %v; want the event once", ids(stored))
	}
}

// TestStore_CloseDuringAppends closes the store under load: every call returns, with
// success or ErrClosed, and what was acked is stored.
func TestStore_CloseDuringAppends(t *testing.T) {
	s, srv := openStore(t, nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var acked []string
	started := make(chan struct{})
	var once sync.Once
	for w := range 16 {
		wg.Go(func() {
			key := personKey(fmt.Sprintf("close-%d", w))
			for {
				evs := events(key, 1)
				_, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: key, Events: evs})
				once.Do(func() { close(started) })
				if err != nil {
					if !errors.Is(err, eventstore.ErrClosed) {
						t.Errorf("writer %d: %v", w, err)
					}
					return
				}
				mu.Lock()
				acked = append(acked, evs[0].Id)
				mu.Unlock()
			}
		})
	}
	<-started
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	s2, err := eventstore.Open(ctx, eventstore.Config{URL: srv.ClientURL()})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	stored := map[string]bool{}
	for st, err := range s2.Replay(ctx, eventstore.ReplayOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		stored[st.Event.GetId()] = true
	}
	for _, id := range acked {
		if !stored[id] {
			t.Fatalf("acked event %s is not stored", id)
		}
	}
}

// TestStore_GroupCommit_StreamedBatch: appends that join a batch while it forms are sent to
// the server at once; when the committer has waited long enough, one commit stores them
// all, each caller gets its own position, and a stale check among them fails only its
// caller.
func TestStore_GroupCommit_StreamedBatch(t *testing.T) {
	s, _ := openStore(t, func(c *eventstore.Config) {
		c.GroupCommit = eventstore.GroupCommit{PlainMax: 1, MaxWait: 50 * time.Millisecond}
	})
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for round := 0; s.Stats().Streamed == 0 || s.Stats().Republishes == 0; round++ {
		if time.Now().After(deadline) {
			t.Fatalf("after %d rounds: stats %+v, want streamed events and a batch sent again", round, s.Stats())
		}
		const n = 12
		errs := make([]error, n)
		pos := make([][]eventstore.Position, n)
		keys := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			keys[i] = personKey(fmt.Sprintf("stream-%d-%d", round, i))
			expect := uint64(0)
			if i == n-1 {
				expect = 3 // stale: the person has no events
			}
			wg.Go(func() {
				pos[i], errs[i] = s.Append(ctx, eventstore.PersonAppend{PersonKey: keys[i], ExpectedLastSeq: eventstore.Expect(expect), Events: events(keys[i], 2)})
			})
		}
		wg.Wait()
		for i := range n {
			if i == n-1 {
				if !errors.Is(errs[i], eventstore.ErrConflict) {
					t.Fatalf("round %d: stale append: %v, want ErrConflict", round, errs[i])
				}
				if evs, _ := mustRead(t, s, keys[i]); len(evs) != 0 {
					t.Fatalf("round %d: the refused append stored %d events", round, len(evs))
				}
				continue
			}
			if errs[i] != nil {
				t.Fatalf("round %d append %d: %v", round, i, errs[i])
			}
			evs, _ := mustRead(t, s, keys[i])
			if len(evs) != 2 || evs[0].Seq != pos[i][0].Seq || evs[1].Seq != pos[i][1].Seq {
				t.Fatalf("round %d append %d: stored %d events, positions %+v", round, i, len(evs), pos[i])
			}
		}
	}
}

// TestStore_GroupCommit_CallLargerThanABatch: an Append call of more events than
// GroupCommit.MaxEvents (at most MaxBatchEvents, which the embedded server takes in one
// atomic batch) is stored as a batch of its own while other appends are coalesced. Before,
// such a call queued behind a batch never fitted any, and waited until its context ended; it
// went only when it found the store idle: with --group-max-events below a request's events,
// a busy nird's large requests ran out of time, and since DefaultGroupMaxEvents is below
// MaxBatchEvents, so would the largest requests of every busy nird.
func TestStore_GroupCommit_CallLargerThanABatch(t *testing.T) {
	s, _ := openStore(t, func(c *eventstore.Config) {
		c.GroupCommit = eventstore.GroupCommit{PlainMax: -1, MaxEvents: 2, MaxWait: 20 * time.Millisecond}
	})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := personKey(fmt.Sprintf("busy-%d-%d", w, i))
				if _, err := s.Append(context.Background(), eventstore.PersonAppend{PersonKey: key, Events: events(key, 1)}); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		})
	}
	defer wg.Wait()
	defer close(stop)
	for round := range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		key := personKey(fmt.Sprintf("large-%d", round))
		_, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: key, Events: events(key, 10)})
		cancel()
		if err != nil {
			t.Fatalf("round %d: an append of 10 events beside batches of 2: %v", round, err)
		}
	}
}
