package eventstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// Group commit defaults, measured with `nirbench ingest --clients C` (C = 4, 16, 64)
// on the 2-core development machine, where an atomic batch on a file stream costs about
// 3.5 ms on the server whatever its size (the server stages every batch in a file store
// of its own), one more message about 0.05 ms, and batches in flight at once do not
// overlap that cost.
const (
	// DefaultGroupMaxEvents bounds one coalesced batch: the server's default atomic batch
	// limit, with which the defaults below were measured. One Append call of more events
	// (at most MaxBatchEvents) is a batch of its own.
	DefaultGroupMaxEvents = 1000
	// DefaultGroupMaxBytes bounds the payload of one coalesced batch.
	DefaultGroupMaxBytes = 8 << 20
	// DefaultGroupMaxWait is how long a batch may wait for more appends: while another
	// batch is in flight, or right after one ended, for its callers' next appends. A lone
	// caller on an idle store never waits. Since the forming batch is staged on the
	// server meanwhile, waiting is cheap: 5 ms gave 6.9-7.9k events/s at 64 clients
	// against 5.2-6.7k with 1 ms, and was better at 4 and 16 clients too.
	DefaultGroupMaxWait = 5 * time.Millisecond
	// DefaultGroupMaxInflight is how many coalesced batches may be in flight at once. With
	// one, the next batch collects while the current one is stored: the classic scheme.
	DefaultGroupMaxInflight = 1
	// DefaultGroupPlainMax: a group of at most this many single-event appends is sent as
	// concurrent plain publishes instead of one atomic batch.
	DefaultGroupPlainMax = 8
)

// GroupCommit tunes how concurrent Append calls are coalesced into atomic batches. The
// zero value means the defaults.
type GroupCommit struct {
	// MaxEvents bounds the events of one batch; 0 = DefaultGroupMaxEvents (at most
	// MaxBatchEvents).
	MaxEvents int
	// MaxBytes bounds the encoded events of one batch; 0 = DefaultGroupMaxBytes.
	MaxBytes int
	// MaxWait is how long a batch waits for more appends while another batch is in
	// flight, or right after one ended until as many appends as it held are queued again;
	// 0 = DefaultGroupMaxWait, negative = never wait.
	MaxWait time.Duration
	// MaxInflight is how many batches may be in flight at once; 0 = DefaultGroupMaxInflight.
	MaxInflight int
	// PlainMax: groups of at most this many single-event appends are sent as plain
	// publishes; 0 = DefaultGroupPlainMax, negative = always use atomic batches.
	PlainMax int
	// SendWhole sends a batch's messages only once it is complete, instead of while it
	// forms (while the committer waits for more appends, or for the batch in flight). For
	// comparison: on a file stream the server's staging of a batch then adds to each
	// commit instead of overlapping the wait.
	SendWhole bool
}

func (g GroupCommit) withDefaults() GroupCommit {
	if g.MaxEvents <= 0 || g.MaxEvents > MaxBatchEvents {
		g.MaxEvents = DefaultGroupMaxEvents
	}
	if g.MaxBytes <= 0 {
		g.MaxBytes = DefaultGroupMaxBytes
	}
	if g.MaxWait == 0 {
		g.MaxWait = DefaultGroupMaxWait
	}
	if g.MaxInflight <= 0 {
		g.MaxInflight = DefaultGroupMaxInflight
	}
	if g.PlainMax == 0 {
		g.PlainMax = DefaultGroupPlainMax
	}
	return g
}

// member is one waiting Append call.
type member struct {
	reqs      []*personReq
	positions []Position
	events    int // events still to store
	bytes     int
	ctx       context.Context
	done      chan struct{} // buffered 1; written once by the committer, after err
	err       error         // the member's outcome, read once done is
	// alone: an event id of the member is one another member of a batch carries, or one a
	// batch stored lately. In a batch it would have the server refuse the whole batch (the
	// dedupe window knows the id), without saying for which member: it goes alone, once
	// the batch holding the id has ended.
	alone bool
}

// ids calls f with each of the member's event ids.
func (m *member) ids(f func(id string)) {
	for _, r := range m.reqs {
		for _, e := range r.events {
			if e.id != "" {
				f(e.id)
			}
		}
	}
}

func (m *member) complete(err error) {
	m.err = err
	m.done <- struct{}{}
}

// recentIDs remembers the event ids of the last recentIDsMax events the committer's batches
// stored: the server's dedupe window knows them, while the read models' event-id index,
// which the append path checks before the store, may not have them yet.
type recentIDs struct {
	set  map[string]struct{}
	ring []string
	next int
}

// recentIDsMax bounds recentIDs: more than the events stored while the read models lag
// behind the store by a few seconds at full speed.
const recentIDsMax = 1 << 16

func (r *recentIDs) add(id string) {
	if _, ok := r.set[id]; ok {
		return
	}
	if r.set == nil {
		r.set, r.ring = map[string]struct{}{}, make([]string, recentIDsMax)
	}
	if old := r.ring[r.next]; old != "" {
		delete(r.set, old)
	}
	r.ring[r.next] = id
	r.set[id] = struct{}{}
	r.next = (r.next + 1) % len(r.ring)
}

func (r *recentIDs) has(id string) bool {
	_, ok := r.set[id]
	return ok
}

// openBatch is an atomic batch whose messages are sent to the server while it is still
// being formed: while the committer waits for more appends, the server already stages the
// ones it has, so the commit at the end only has to store them. Its members, events and
// bytes are guarded by committer.mu; the publisher and the messages belong to the loop
// goroutine until the batch is handed to flush.
type openBatch struct {
	members       []*member
	events, bytes int

	pub    jetstreamext.BatchPublisher
	msgs   []*nats.Msg
	owners []msgOwner
	held   *nats.Msg // the last message: not sent until it becomes the commit
	err    error     // a send failed: the batch is sent again whole at commit
}

// send adds the members' messages to the batch on the server. The last message is held
// back, to be sent as the commit.
func (b *openBatch) send(s *Store, members []*member) {
	for _, m := range members {
		msgs, owners := buildMsgs(m.reqs)
		b.msgs = append(b.msgs, msgs...)
		b.owners = append(b.owners, owners...)
		for _, msg := range msgs {
			if b.err == nil && b.held != nil {
				if b.pub == nil {
					b.pub, b.err = jetstreamext.NewBatchPublisher(s.js, jetstreamext.BatchFlowControl{AckFirst: false, AckTimeout: s.cfg.RequestTimeout})
				}
				if b.err == nil {
					b.err = b.pub.AddMsg(b.held)
				}
				if b.err == nil {
					s.stats.streamed.Add(1)
				}
			}
			b.held = msg
		}
	}
}

// commit sends the held message as the batch's commit and returns the server's ack.
func (b *openBatch) commit(ctx context.Context, s *Store) (*jetstreamext.BatchAck, error) {
	if b.err != nil {
		return nil, b.err
	}
	return b.pub.CommitMsg(ctx, b.held)
}

// committer coalesces concurrent Append calls. The loop goroutine forms batches, and sends
// the messages of a batch it waits to fill; each batch is committed by its own goroutine.
// Both are owned by the Store (wg) and end before Close returns.
type committer struct {
	s   *Store
	cfg GroupCommit
	wg  sync.WaitGroup

	// mu guards queue, busy, inflight, stopping, open's members and the last* fields. It
	// is never held while publishing or reading, nor together with Store.notifyMu;
	// completing a member under it only sends on the member's buffered channel.
	mu          sync.Mutex
	queue       []*member
	busy        map[string]bool // person keys in the open batch or in flight
	busyIDs     map[string]bool // event ids in the open batch or in flight
	recent      recentIDs       // event ids of the batches that ended lately
	inflight    int
	stopping    bool
	open        *openBatch // being formed, its messages sent as they come; nil = none
	lastSize    int        // events of the last batch that ended
	lastMembers int        // Append calls in the last batch that ended
	lastEnd     time.Time  // when it ended

	wake chan struct{} // buffered 1: queue grew or a flush ended
	quit chan struct{}
}

func newCommitter(s *Store, cfg GroupCommit) *committer {
	c := &committer{s: s, cfg: cfg.withDefaults(), busy: map[string]bool{}, busyIDs: map[string]bool{}, wake: make(chan struct{}, 1), quit: make(chan struct{})}
	c.wg.Add(1)
	go c.loop()
	return c
}

func (c *committer) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// submit queues m, or fails with ErrClosed once the committer stops. A lone caller (no
// other call queued, forming or being stored, and none expected back from a recent batch)
// is stored right here in its own goroutine: handing it to the loop and a flush goroutine
// would only add their wake-ups to its latency.
func (c *committer) submit(m *member) error {
	c.mu.Lock()
	if c.stopping {
		c.mu.Unlock()
		return ErrClosed
	}
	if len(c.queue) == 0 && c.inflight == 0 && c.open == nil && !c.expectingLocked() {
		c.markBusyLocked(m)
		c.inflight++
		c.wg.Add(1)
		c.mu.Unlock()
		c.flush([]*member{m}, nil, m.ctx)
		return nil
	}
	c.queue = append(c.queue, m)
	c.mu.Unlock()
	c.signal()
	return nil
}

// expectingLocked reports whether the callers of the last batch are expected back: it had
// several of them and ended less than MaxWait ago. Must hold mu.
func (c *committer) expectingLocked() bool {
	return c.lastMembers > 1 && c.cfg.MaxWait > 0 && time.Since(c.lastEnd) < c.cfg.MaxWait
}

// stop fails the queued members with ErrClosed, commits an open batch (its members' calls
// are waiting for it) and waits for the batches in flight.
func (c *committer) stop() {
	c.mu.Lock()
	c.stopping = true
	q := c.queue
	c.queue = nil
	c.mu.Unlock()
	for _, m := range q {
		m.complete(ErrClosed)
	}
	close(c.quit)
	c.wg.Wait()
}

// markBusyLocked marks the persons and event ids of m busy. Must hold mu.
func (c *committer) markBusyLocked(m *member) {
	for _, r := range m.reqs {
		c.busy[r.key] = true
	}
	m.ids(func(id string) { c.busyIDs[id] = true })
}

// step is what the loop does next, decided by take under mu and carried out outside it.
type step struct {
	send     []*member  // members to add to target's messages on the server
	target   *openBatch // the batch they join
	commit   []*member  // a batch to commit now (nil = none)
	open     *openBatch // commit's streamed batch, if it was formed open
	waitMore bool       // wait up to MaxWait for more appends before committing
	alone    []*member  // members to store alone now (member.alone)
}

func (c *committer) loop() {
	defer c.wg.Done()
	var timer *time.Timer
	var deadline time.Time // end of the granted MaxWait; zero = none granted
	for {
		select {
		case <-c.quit:
			if timer != nil {
				timer.Stop()
			}
			c.mu.Lock()
			open := c.open
			c.open = nil
			if open != nil {
				c.inflight++
			}
			c.mu.Unlock()
			if open != nil {
				c.wg.Add(1)
				c.flush(open.members, open, nil)
			}
			return
		case <-c.wake:
		}
		for {
			waited := !deadline.IsZero() && !time.Now().Before(deadline)
			st := c.take(waited)
			for _, m := range st.alone {
				c.wg.Add(1)
				go c.flushAlone(m)
			}
			if len(st.send) > 0 {
				st.target.send(c.s, st.send)
			}
			if st.waitMore {
				// Give concurrent callers MaxWait to join, then commit whatever is there.
				if deadline.IsZero() {
					deadline = time.Now().Add(c.cfg.MaxWait)
					timer = time.AfterFunc(c.cfg.MaxWait, c.signal)
				}
				break
			}
			if st.commit == nil {
				break
			}
			if timer != nil {
				timer.Stop()
				timer, deadline = nil, time.Time{}
			}
			c.wg.Add(1)
			go c.flush(st.commit, st.open, nil)
		}
	}
}

// take decides the loop's next step: which queued members join the open batch (their
// messages are sent at once, so the server stages them while more callers join), and
// whether a batch is committed now. waited says the granted MaxWait is over.
func (c *committer) take(waited bool) step {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopping || (len(c.queue) == 0 && c.open == nil) {
		return step{}
	}
	canCommit := c.inflight < c.cfg.MaxInflight
	queued := 0
	for _, m := range c.queue {
		queued += m.events
	}
	if c.open != nil {
		queued += c.open.events
	}
	// How many events are worth waiting for: while a batch is in flight, a full batch;
	// right after one, as many as it held, since its callers are about to come back with
	// their next appends (without this, batches alternate between those who queued during
	// the flight and those just acknowledged, each paying the batch's fixed cost). A lone
	// caller (last batch of one Append call, however many events it held, or an idle store)
	// never waits.
	target := 0
	if c.inflight > 0 {
		target = c.cfg.MaxEvents
	} else if c.expectingLocked() {
		target = min(c.lastSize, c.cfg.MaxEvents)
	}
	wait := !waited && c.cfg.MaxWait > 0 && queued < target
	// While the batch cannot be committed yet, send its messages already, so that the
	// server stages them meanwhile; but only when a batch of more than PlainMax events is
	// expected (the last one's size or what is queued): below that, plain publishes are
	// cheaper than staging a batch.
	stream := c.open != nil || (!c.cfg.SendWhole && (wait || !canCommit) && max(queued, c.lastSize) > c.cfg.PlainMax)
	if !canCommit && !stream {
		return step{}
	}
	var st step
	if stream {
		if c.open == nil {
			c.open = &openBatch{}
		}
		st.target = c.open
		st.send, st.alone = c.fill(&c.open.members, &c.open.events, &c.open.bytes)
		if len(c.open.members) == 0 {
			// Every queued call waits for a person in flight: nothing to form yet.
			c.open = nil
			return step{alone: st.alone}
		}
		full := c.open.events >= c.cfg.MaxEvents
		if canCommit && (!wait || full) {
			st.commit, st.open = c.open.members, c.open
			c.open = nil
			c.inflight++
			return st
		}
		st.waitMore = canCommit
		return st
	}
	if wait {
		st.waitMore = true
		return st
	}
	var events, bytes int
	st.commit, st.alone = c.fill(&st.commit, &events, &bytes)
	if len(st.commit) > 0 {
		c.inflight++
	} else {
		st.commit = nil
	}
	return st
}

// fill moves the queued members that fit (by events and bytes) and whose persons are free
// into *members, marking their persons and event ids busy, and returns the ones it moved.
// A member whose person is busy waits for the batch holding the person, so its check sees
// that batch's outcome; this keeps each person's order. A member with an event id that a
// batch holds or stored lately goes alone (member.alone), after the batch holding the id:
// the ones free to go now are returned as alone. Must hold mu.
func (c *committer) fill(members *[]*member, events, bytes *int) (moved, alone []*member) {
	taken := map[string]bool{}    // persons of members passed over, and of those moved
	takenIDs := map[string]bool{} // their event ids
	rest := c.queue[:0]
	for _, m := range c.queue {
		idBusy, idRecent := false, false
		m.ids(func(id string) {
			idBusy = idBusy || c.busyIDs[id] || takenIDs[id]
			idRecent = idRecent || c.recent.has(id)
		})
		m.alone = m.alone || idBusy || idRecent
		// A call larger than a batch (MaxEvents, MaxBytes) is one of its own: it went only
		// on an idle store before, and waited behind every batch until its context ended.
		fits := m.alone || *events == 0 || (*events+m.events <= c.cfg.MaxEvents && *bytes+m.bytes <= c.cfg.MaxBytes)
		free := !idBusy
		for _, r := range m.reqs {
			if c.busy[r.key] || taken[r.key] {
				free = false
				break
			}
		}
		if !fits || !free {
			for _, r := range m.reqs {
				taken[r.key] = true
			}
			m.ids(func(id string) { takenIDs[id] = true })
			rest = append(rest, m)
			continue
		}
		if m.ctx.Err() != nil {
			m.complete(m.ctx.Err()) // buffered: never blocks under mu
			continue
		}
		for _, r := range m.reqs {
			taken[r.key] = true
		}
		m.ids(func(id string) { takenIDs[id] = true })
		c.markBusyLocked(m)
		if m.alone {
			alone = append(alone, m)
			continue
		}
		*members = append(*members, m)
		moved = append(moved, m)
		*events += m.events
		*bytes += m.bytes
	}
	clear(c.queue[len(rest):])
	c.queue = rest
	return moved, alone
}

// releaseLocked frees the persons and event ids of the members of a batch that ended, and
// remembers the ids as stored lately. Must hold mu.
func (c *committer) releaseLocked(batch []*member) {
	for _, m := range batch {
		for _, r := range m.reqs {
			delete(c.busy, r.key)
		}
		m.ids(func(id string) {
			delete(c.busyIDs, id)
			c.recent.add(id)
		})
	}
}

// flush commits one batch and completes its members, then frees their persons.
//
// A batch is bounded by the request timeout, not by its callers' contexts: one caller giving
// up must not end the others' append. A lone caller's batch flushed in its own goroutine
// (submit; lone is its context) is bounded by that context when it ends no later than the
// timeout would: nobody else is in the batch, and the caller would stop waiting then for a
// batch the loop flushed (appendGroup), the event stored or not, for a retry to find out. One context and timer
// less an append (issue 17). Only for a single event, a plain publish the server gets whole
// or not at all: an atomic batch's publish sends its messages without looking at the
// context, and not the commit once it has ended, which would leave the batch open on the
// server (at most 50 on a stream) until its batch timeout, refusing everybody's batches.
func (c *committer) flush(batch []*member, open *openBatch, lone context.Context) {
	defer c.wg.Done()
	var ctx context.Context
	var cancel context.CancelFunc
	if d, ok := deadlineOf(lone); ok && len(batch) == 1 && batch[0].events == 1 && time.Until(d) <= c.s.cfg.RequestTimeout {
		ctx, cancel = lone, func() {}
	} else {
		ctx, cancel = context.WithTimeout(context.Background(), c.s.cfg.RequestTimeout)
	}
	defer cancel()
	c.s.commitGroup(ctx, batch, c.cfg.PlainMax, open)
	events := 0
	for _, m := range batch {
		events += m.events
	}
	c.mu.Lock()
	c.inflight--
	c.lastSize, c.lastMembers, c.lastEnd = events, len(batch), time.Now()
	c.releaseLocked(batch)
	wake := c.pendingLocked()
	c.mu.Unlock()
	if wake {
		c.signal()
	}
}

// deadlineOf is ctx.Deadline, false for a nil ctx.
func deadlineOf(ctx context.Context) (time.Time, bool) {
	if ctx == nil {
		return time.Time{}, false
	}
	return ctx.Deadline()
}

// pendingLocked reports whether the loop has anything to do: calls queued, or a batch being
// formed. A batch that ends with neither (a lone caller's, most of the time) does not wake it:
// the wake-up costs both goroutines a few microseconds for nothing. Must hold mu.
func (c *committer) pendingLocked() bool { return len(c.queue) > 0 || c.open != nil }

// flushAlone stores a member alone (member.alone), outside the batches: it counts neither
// as a batch in flight nor as the last batch, whose callers the committer waits for.
func (c *committer) flushAlone(m *member) {
	defer c.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), c.s.cfg.RequestTimeout)
	defer cancel()
	c.s.eachAlone(ctx, []*member{m})
	c.mu.Lock()
	c.releaseLocked([]*member{m})
	wake := c.pendingLocked()
	c.mu.Unlock()
	if wake {
		c.signal()
	}
}

// commitGroup stores the members of one batch, each getting its own result: a member
// whose check fails gets ErrConflict (or its idempotent positions) and the others are
// sent again without it. open, if not nil, holds the batch's messages already sent to the
// server; its commit is the first attempt.
func (s *Store) commitGroup(ctx context.Context, batch []*member, plainMax int, open *openBatch) {
	if open == nil && len(batch) <= plainMax && allSingle(batch) {
		// A small group of lone events: concurrent plain publishes beat the fixed cost of
		// an atomic batch, and each member's outcome is its own.
		s.eachAlone(ctx, batch)
		return
	}
	for attempt := 1; len(batch) > 0; attempt++ {
		if (len(batch) == 1 && open == nil) || attempt > maxAppendAttempts {
			// One member (or a batch that keeps failing): its own path re-reads and
			// retries until it succeeds, is a duplicate, or is a real conflict.
			s.eachAlone(ctx, batch)
			return
		}
		var (
			msgs   []*nats.Msg
			owners []msgOwner
			ack    *jetstreamext.BatchAck
			err    error
		)
		if open != nil && open.pub == nil {
			// Nothing was sent yet (one message, held back): send the batch as a whole,
			// or as a plain publish if that is what it is.
			open = nil
			if len(batch) <= plainMax && allSingle(batch) {
				s.commitGroup(ctx, batch, plainMax, nil)
				return
			}
		}
		if open != nil {
			msgs, owners = open.msgs, open.owners
			ack, err = open.commit(ctx, s)
			if err != nil && open.err != nil {
				// A message never reached the server: nothing is stored, send it all again.
				open = nil
				continue
			}
			open = nil
		} else {
			var reqs []*personReq
			for _, m := range batch {
				reqs = append(reqs, m.reqs...)
			}
			msgs, owners = buildMsgs(reqs)
			ack, err = jetstreamext.PublishMsgBatch(ctx, s.js, msgs, jetstreamext.BatchFlowControl{AckFirst: false})
		}
		if err == nil {
			err = s.assignBatch(ack, msgs, owners, batch)
		}
		if err == nil {
			return
		}
		kind := classify(err)
		if kind != errKindConflict && kind != errKindDuplicateID {
			err = s.wrap(mapPublishError(err))
			for _, m := range batch {
				m.complete(err)
			}
			return
		}
		s.stats.refused.Add(1)
		// Find the members the server refused: a stale check (one request for the last
		// sequence of every person) or, for a duplicate id, an event already stored.
		// They are resolved by re-reading their persons; the rest go again.
		suspects, err := s.staleMembers(ctx, batch)
		if err != nil {
			for _, m := range batch {
				m.complete(s.wrap(fmt.Errorf("eventstore: append: %w", err)))
			}
			return
		}
		if len(suspects) == 0 || kind == errKindDuplicateID {
			for i := range batch {
				suspects[i] = true
			}
		}
		rest := batch[:0:0]
		for i, m := range batch {
			if suspects[i] {
				if done, err := s.resolve(ctx, m); done {
					m.complete(err)
					continue
				}
			}
			rest = append(rest, m)
		}
		if kind == errKindDuplicateID && len(rest) == len(batch) {
			// No member's id is in its own person's history: an id is in the dedupe window
			// for another person, or two members carry it. The server does not say which,
			// so the batch would be refused again: each member goes alone, and only that
			// one is refused (ErrIDInUse). Retrying the batch made every caller in it pay
			// maxAppendAttempts refusals for one caller's reused id.
			s.eachAlone(ctx, rest)
			return
		}
		batch = rest
		s.stats.republish.Add(1)
	}
}

// eachAlone stores each member on its own path (a plain publish for one event, an atomic
// batch of its own for more), concurrently: their persons differ, and each gets its own
// outcome.
func (s *Store) eachAlone(ctx context.Context, batch []*member) {
	if len(batch) == 1 {
		batch[0].complete(s.appendReqs(ctx, batch[0].reqs, batch[0].positions))
		return
	}
	var wg sync.WaitGroup
	for _, m := range batch {
		wg.Go(func() { m.complete(s.appendReqs(ctx, m.reqs, m.positions)) })
	}
	wg.Wait()
}

// resolve re-reads the persons of a member the server refused. It reports done with
// ErrConflict when another writer got in between, done with nil when all its events are
// already stored (positions filled, Duplicate), and not done when the member can go again
// (its checks moved past its own earlier writes, or nothing was wrong with it).
func (s *Store) resolve(ctx context.Context, m *member) (bool, error) {
	all := true
	for _, r := range m.reqs {
		if r.allStored() {
			continue
		}
		if _, err := s.markStored(ctx, r, m.positions); err != nil {
			return true, err
		}
		all = all && r.allStored()
	}
	return all, nil
}

func allSingle(batch []*member) bool {
	for _, m := range batch {
		if m.events != 1 {
			return false
		}
	}
	return true
}

// assignBatch fills the members' positions from a batch ack and completes them.
func (s *Store) assignBatch(ack *jetstreamext.BatchAck, msgs []*nats.Msg, owners []msgOwner, batch []*member) error {
	first, err := firstOfBatch(ack, len(msgs))
	if err != nil {
		return err
	}
	byReq := map[*personReq]*member{}
	for _, m := range batch {
		for _, r := range m.reqs {
			byReq[r] = m
		}
	}
	for i, o := range owners {
		m := byReq[o.req]
		p := &m.positions[o.req.first+o.idx]
		p.Seq = first + uint64(i)
		o.req.events[o.idx].stored = true
	}
	s.stats.batch(len(msgs))
	for _, m := range batch {
		m.complete(nil)
	}
	return nil
}

// staleMembers asks the server for the last sequence of every person in the batch (one
// request) and marks the members with a check that no longer holds.
func (s *Store) staleMembers(ctx context.Context, batch []*member) (map[int]bool, error) {
	var subjects []string
	for _, m := range batch {
		for _, r := range m.reqs {
			subjects = append(subjects, r.subject)
		}
	}
	last, err := untilAnswered(ctx, s, func() (map[string]uint64, error) { return s.lastOf(ctx, subjects) })
	if err != nil {
		return nil, err
	}
	stale := map[int]bool{}
	for i, m := range batch {
		for _, r := range m.reqs {
			if r.expect != nil && *r.expect != last[r.subject] {
				stale[i] = true
			}
		}
	}
	return stale, nil
}

// lastOf returns the last sequence of each subject that has messages, in one request.
func (s *Store) lastOf(ctx context.Context, subjects []string) (map[string]uint64, error) {
	t := s.tries()
	defer t.end()
	for {
		tctx := t.next(ctx)
		last := make(map[string]uint64, len(subjects))
		msgs, err := jetstreamext.GetLastMsgsFor(tctx, s.js, StreamName, subjects)
		if err != nil {
			return nil, err
		}
		for m, err := range msgs {
			if errors.Is(err, jetstreamext.ErrNoMessages) {
				break
			}
			if err != nil && t.lost(ctx, tctx) {
				break
			}
			if err != nil {
				return nil, err
			}
			t.answered()
			last[m.Subject] = m.Sequence
		}
		if !t.lost(ctx, tctx) {
			return last, nil
		}
	}
}
