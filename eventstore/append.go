package eventstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// PersonAppend is one person's part of an Append.
type PersonAppend struct {
	// PersonKey is the person's key: a safe subject token ([A-Za-z0-9_-]).
	PersonKey string
	// ExpectedLastSeq is the person's last stream sequence the caller folded (Read's
	// lastSeq; 0 = the person has no events yet). nil means no concurrency check: the
	// events are appended whatever the person's history is (their ids are still checked
	// against it, so a retry never stores a second copy). Use Expect to set it.
	ExpectedLastSeq *uint64
	// Events are the person's new events in order, envelope complete (id, person_key equal
	// to PersonKey, recorded_at, payload).
	Events []*nirv1.Event
	// NoDuplicates is set by a caller that answers retries itself, from the person's history
	// (ingest, which judges who may write to the person on it): an event of the person found
	// stored, a retry of the caller's own included, is then ErrNotNew instead of a Duplicate
	// position, and nothing of the call is stored. The caller's history was behind the stream
	// (a cache, a replica, a person taken for new without a read); it reads the person again
	// and judges the retry before anything of the call is stored.
	NoDuplicates bool
}

// Expect returns a pointer to seq, for PersonAppend.ExpectedLastSeq.
func Expect(seq uint64) *uint64 { return &seq }

// Position is where an appended event is stored.
type Position struct {
	EventID   string
	PersonKey string
	// Seq is the event's stream sequence.
	Seq uint64
	// Duplicate is true when the event was already stored (by an earlier attempt) and Seq
	// is its original position; nothing new was written for it.
	Duplicate bool
}

// maxAppendAttempts bounds the re-read-and-retry loop of one Append.
const maxAppendAttempts = 4

// personReq is one validated, encoded PersonAppend.
type personReq struct {
	key     string
	subject string
	expect  *uint64 // nil = no check; updated when a re-read finds our own earlier write
	// expected holds the caller's expectation, which expect points to at first: one
	// allocation less an append.
	expected uint64
	noDups   bool // PersonAppend.NoDuplicates: an event found stored is ErrNotNew
	events   []encodedEvent
	first    int    // index of the person's first event in the positions slice
	tip      []byte // chain hash of the last event (with an expectation; nil without)
}

type encodedEvent struct {
	id     string
	ev     *nirv1.Event // the caller's event, compared with a stored one of the same id
	data   []byte
	stored bool // already in the person's history (Duplicate)
}

// Append stores the events of one or more persons as one atomic batch: all are stored, or
// nothing is. For each person with an ExpectedLastSeq the batch is refused with ErrConflict
// if the person's last sequence differs, and then nothing of the batch is stored.
//
// Append is idempotent by event id, inside and after the dedupe window: an event whose id
// is already in its person's history with the same content (SameEvent) is not written
// again, and its Position has the original Seq and Duplicate set. When every event of a
// retried call is already stored, Append returns the original positions and no error, even
// though the person's last sequence has moved on because of the first attempt. An id
// stored with other content is ErrIDReused; an id the dedupe window knows for another
// person is ErrIDInUse (after the window only the caller can tell: ingest asks the read
// models' event-id index).
//
// Append sets each event's PrevHash (the tamper-evident chain, chain.go) when its person has
// an ExpectedLastSeq, and clears it otherwise.
//
// The returned positions follow the order of the events in batch. Errors: ErrInvalid,
// ErrTooLarge, ErrConflict, ErrIDInUse, ErrIDReused (*IDError), ErrClosed, or a wrapped
// transport error (in which case the batch may or may not have been stored; retry with the
// same ids to find out).
func (s *Store) Append(ctx context.Context, batch ...PersonAppend) ([]Position, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	links, err := s.links(ctx, batch)
	if err != nil {
		return nil, s.wrap(err)
	}
	reqs, positions, err := s.prepare(batch, links)
	if err != nil {
		return nil, err
	}
	err = s.appendGroup(ctx, reqs, positions)
	s.stats.appends.Add(1)
	if errors.Is(err, ErrConflict) {
		s.stats.conflicts.Add(1)
	}
	if err != nil {
		return nil, s.wrap(err)
	}
	stored := false
	var top uint64
	for _, p := range positions {
		if p.Duplicate {
			s.stats.duplicates.Add(1)
		} else {
			s.stats.events.Add(1)
			stored = true
		}
		top = max(top, p.Seq)
	}
	// LastSeq is never behind what this store stored itself: a lagging replica's answer
	// below it is checked with the leader (notBehind).
	s.raiseSeen(top)
	for _, r := range reqs {
		// The person's new last message: the next append to the person links to it.
		if last := len(r.events) - 1; r.expect != nil && !positions[r.first+last].Duplicate {
			s.hashes.put(positions[r.first+last].Seq, r.tip)
		}
	}
	if stored {
		s.notifyLocal()
	}
	return positions, nil
}

// appendGroup hands a prepared call to the group committer and waits for its result.
func (s *Store) appendGroup(ctx context.Context, reqs []*personReq, positions []Position) error {
	// Without a check, nothing stops a second copy after the dedupe window but the
	// person's history, so look first.
	m := &member{reqs: reqs, positions: positions, ctx: ctx, done: make(chan struct{}, 1)}
	for _, r := range reqs {
		if r.expect == nil {
			if _, err := s.markStored(ctx, r, positions); err != nil {
				return err
			}
		}
		for _, e := range r.events {
			if !e.stored {
				m.events++
				m.bytes += len(e.data)
			}
		}
	}
	if m.events == 0 {
		return nil
	}
	if err := s.gc.submit(m); err != nil {
		return err
	}
	select {
	case <-m.done:
		return m.err
	case <-ctx.Done():
		// The batch may still be stored; a retry with the same ids finds out.
		return fmt.Errorf("eventstore: append: %w", ctx.Err())
	}
}

// prepare validates and encodes a request, linking each event of a person with an
// expectation into the chain (links: the hash of the person's last message, chain.go); the
// events of a person without one carry no link. Nothing is sent.
func (s *Store) prepare(batch []PersonAppend, links [][]byte) ([]*personReq, []Position, error) {
	if len(batch) == 0 {
		return nil, nil, fmt.Errorf("%w: append: no persons", ErrInvalid)
	}
	total := 0
	for _, pa := range batch {
		total += len(pa.Events)
	}
	if total > MaxBatchEvents {
		return nil, nil, fmt.Errorf("%w: append: %d events, at most %d per call", ErrTooLarge, total, MaxBatchEvents)
	}
	// The requests, their events and the positions in one allocation for a single event
	// (most appends), four for more.
	var (
		reqs      []*personReq
		positions []Position
		persons   []personReq
		encoded   []encodedEvent
	)
	if len(batch) == 1 && total == 1 {
		one := new(struct {
			reqs      [1]*personReq
			persons   [1]personReq
			encoded   [1]encodedEvent
			positions [1]Position
		})
		reqs, persons, encoded, positions = one.reqs[:0], one.persons[:], one.encoded[:], one.positions[:0]
	} else {
		reqs, persons, encoded, positions = make([]*personReq, 0, len(batch)), make([]personReq, len(batch)), make([]encodedEvent, total), make([]Position, 0, total)
	}
	// Duplicates are looked for only where there can be any (most appends are one event).
	var seenKey, seenID map[string]bool
	if len(batch) > 1 {
		seenKey = make(map[string]bool, len(batch))
	}
	if total > 1 {
		seenID = make(map[string]bool, total)
	}
	for i, pa := range batch {
		subject, err := Subject(pa.PersonKey)
		if err != nil {
			return nil, nil, fmt.Errorf("append: person %d: %w", i, err)
		}
		if seenKey[pa.PersonKey] {
			return nil, nil, fmt.Errorf("%w: append: person %d appears twice in one call", ErrInvalid, i)
		}
		if seenKey != nil {
			seenKey[pa.PersonKey] = true
		}
		if len(pa.Events) == 0 {
			return nil, nil, fmt.Errorf("%w: append: person %d has no events", ErrInvalid, i)
		}
		// The person's events in its own part of encoded: appending to them never reaches the
		// next person's.
		first := len(positions)
		r := &persons[i]
		*r = personReq{key: pa.PersonKey, subject: subject, first: first, noDups: pa.NoDuplicates,
			events: encoded[first : first : first+len(pa.Events)]}
		if pa.ExpectedLastSeq != nil {
			r.expected = *pa.ExpectedLastSeq
			r.expect = &r.expected
		}
		var prev []byte
		if links != nil {
			prev = links[i]
		}
		for _, ev := range pa.Events {
			if pa.ExpectedLastSeq != nil {
				ev.PrevHash = prev
			} else {
				ev.PrevHash = nil
			}
			data, err := Encode(ev)
			if err != nil {
				return nil, nil, fmt.Errorf("append: person %d: %w", i, err)
			}
			if ev.GetPersonKey() != pa.PersonKey {
				return nil, nil, fmt.Errorf("%w: append: event %s: person key differs from its PersonAppend", ErrInvalid, ev.GetId())
			}
			if seenID[ev.GetId()] {
				return nil, nil, fmt.Errorf("%w: append: event id %s appears twice in one call", ErrInvalid, ev.GetId())
			}
			if seenID != nil {
				seenID[ev.GetId()] = true
			}
			// Headers (id, batch, check) take well under 512 bytes.
			if int64(len(data))+512 > s.maxPayload {
				return nil, nil, fmt.Errorf("%w: append: event %s is %d bytes, the server accepts %d", ErrTooLarge, ev.GetId(), len(data), s.maxPayload)
			}
			if pa.ExpectedLastSeq != nil {
				prev = HashOf(data)
				r.tip = prev
			}
			r.events = append(r.events, encodedEvent{id: ev.GetId(), ev: ev, data: data})
			positions = append(positions, Position{EventID: ev.GetId(), PersonKey: pa.PersonKey})
		}
		reqs = append(reqs, r)
	}
	return reqs, positions, nil
}

// appendReqs publishes the requests and fills positions. It re-reads the persons and
// retries after a conflict or a duplicate-id refusal, to tell a retry of our own earlier
// write (idempotent success) from somebody else's write (ErrConflict).
//
// The persons without a check must have been looked up already (appendGroup does).
func (s *Store) appendReqs(ctx context.Context, reqs []*personReq, positions []Position) error {
	for attempt := 1; ; attempt++ {
		msgs, owners := buildMsgs(reqs)
		if len(msgs) == 0 {
			return nil
		}
		seqs, dups, err := s.publish(ctx, msgs, owners)
		if err == nil && dups {
			for _, o := range owners {
				if o.req.noDups {
					// The dedupe window knew the message: the person has it already.
					return ErrNotNew
				}
			}
		}
		if err == nil {
			for i, o := range owners {
				p := &positions[o.req.first+o.idx]
				p.Seq, p.Duplicate = seqs[i], dups
				o.req.events[o.idx].stored = true
			}
			if len(msgs) == 1 {
				s.stats.plain.Add(1)
			} else {
				s.stats.batch(len(msgs))
			}
			return nil
		}
		var idErr *IDError
		if errors.As(err, &idErr) {
			return err
		}
		kind := classify(err)
		if kind != errKindConflict && kind != errKindDuplicateID {
			return mapPublishError(err)
		}
		if attempt == maxAppendAttempts {
			return fmt.Errorf("%w: append: still refused after %d attempts: %v", ErrConflict, attempt, err)
		}
		progress := false
		for _, r := range reqs {
			if r.allStored() {
				continue
			}
			found, err := s.markStored(ctx, r, positions)
			if err != nil {
				return err
			}
			progress = progress || found
		}
		if kind == errKindDuplicateID && !progress {
			// The id is in the dedupe window but not in the person's history: it was
			// used for another person. The server does not say which id it was.
			return &IDError{Err: ErrIDInUse}
		}
	}
}

// markStored reads r's person, marks the events whose ids are already there as stored
// (Duplicate, original seq), and resolves r's check against the history: events after the
// expected sequence that are not r's own mean ErrConflict; if they are all r's own (an
// earlier attempt of this very call), the check moves to the person's last sequence.
// It reports whether it found any of r's events stored.
func (s *Store) markStored(ctx context.Context, r *personReq, positions []Position) (bool, error) {
	var last uint64
	found, foreign := false, false
	ids := make(map[string]int, len(r.events)) // made here, not per append: re-reads are rare
	for i, e := range r.events {
		ids[e.id] = i
	}
	err := s.scan(ctx, r.subject, 1, func(m *jetstream.RawStreamMsg) (bool, error) {
		last = m.Sequence
		// The event's own id, not the message's Nats-Msg-Id header: a message stored
		// behind nird's back with a forged header must not pass for a stored event.
		id := m.Header.Get(nats.MsgIdHdr)
		if ev, err := decodeOn(m.Sequence, m.Subject, m.Data); err != nil || ev.GetId() != id {
			id = ""
		}
		if i, ok := ids[id]; ok && id != "" {
			if !r.events[i].stored {
				if err := r.events[i].same(m.Sequence, m.Data); err != nil {
					return false, err
				}
				r.events[i].stored = true
				positions[r.first+i].Seq = m.Sequence
				positions[r.first+i].Duplicate = true
				found = true
			}
		} else if r.expect != nil && m.Sequence > *r.expect {
			foreign = true
		}
		return true, nil
	})
	var idErr *IDError
	if errors.As(err, &idErr) {
		return false, err
	}
	if err != nil {
		return false, fmt.Errorf("eventstore: append: re-read person: %w", err)
	}
	if r.noDups && found {
		return found, ErrNotNew
	}
	if r.expect == nil || r.allStored() {
		return found, nil
	}
	if foreign || *r.expect > last {
		return found, ErrConflict
	}
	r.expect = Expect(last)
	return found, nil
}

// same returns nil if the event stored at seq with data is e's (a retry), and an *IDError
// (ErrIDReused) if it holds other content under e's id.
func (e encodedEvent) same(seq uint64, data []byte) error {
	stored, err := Decode(seq, data)
	if err != nil {
		return err
	}
	if !SameEvent(stored, e.ev) {
		return &IDError{EventID: e.id, Err: ErrIDReused}
	}
	return nil
}

func (r *personReq) allStored() bool {
	for _, e := range r.events {
		if !e.stored {
			return false
		}
	}
	return true
}

type msgOwner struct {
	req *personReq
	idx int
}

// buildMsgs makes the messages for the events not yet stored. The first message of each
// person carries the person's check (Nats-Expected-Last-Subject-Sequence); the server
// refuses a check on a later message of the same subject in one batch. Every message
// carries Nats-Msg-Id = event id.
func buildMsgs(reqs []*personReq) ([]*nats.Msg, []msgOwner) {
	n := 0
	for _, r := range reqs {
		n += len(r.events)
	}
	// The messages, their slices and their headers' values are made at once: one allocation
	// for a single event (most appends), four for more, instead of four an event. The
	// values are full slices (cap = len), so that an Add to a header never writes into
	// another message's value.
	var (
		msgs   []*nats.Msg
		owners []msgOwner
		bodies []nats.Msg
		values []string
	)
	if n == 1 {
		one := new(struct {
			msgs   [1]*nats.Msg
			owners [1]msgOwner
			bodies [1]nats.Msg
			values [2]string
		})
		msgs, owners, bodies, values = one.msgs[:0], one.owners[:0], one.bodies[:], one.values[:]
	} else {
		msgs, owners, bodies, values = make([]*nats.Msg, 0, n), make([]msgOwner, 0, n), make([]nats.Msg, n), make([]string, 2*n)
	}
	v := 0
	value := func(s string) []string {
		values[v] = s
		v++
		return values[v-1 : v : v]
	}
	for _, r := range reqs {
		firstOfPerson := true
		for i, e := range r.events {
			if e.stored {
				continue
			}
			// The header's keys as nats.Header.Set would write them (NATS keeps them as
			// given), without its map growing.
			h := nats.Header{nats.MsgIdHdr: value(e.id)}
			if firstOfPerson && r.expect != nil {
				h[jetstream.ExpectedLastSubjSeqHeader] = value(strconv.FormatUint(*r.expect, 10))
			}
			firstOfPerson = false
			m := &bodies[len(msgs)]
			m.Subject, m.Header, m.Data = r.subject, h, e.data
			msgs = append(msgs, m)
			owners = append(owners, msgOwner{req: r, idx: i})
		}
	}
	return msgs, owners
}

// publish sends msgs: one message as a plain synchronous publish (one round trip, and the
// server answers a retried id inside the dedupe window with its original sequence), more
// as one atomic batch. It returns the stream sequence of each message. owners, when given,
// are the events of msgs: a duplicate is checked to be the same event.
func (s *Store) publish(ctx context.Context, msgs []*nats.Msg, owners []msgOwner) ([]uint64, bool, error) {
	if len(msgs) == 1 {
		seq, dup, err := s.publishOne(ctx, msgs[0])
		if err != nil {
			return nil, false, err
		}
		if dup {
			// The dedupe window knows the id, but maybe from another person's subject, or
			// under other content.
			id := msgs[0].Header.Get(nats.MsgIdHdr)
			subj, data, err := s.msgAt(ctx, seq)
			if err != nil {
				return nil, false, err
			}
			if subj != msgs[0].Subject {
				return nil, false, &IDError{EventID: id, Err: ErrIDInUse}
			}
			if len(owners) == 1 {
				if err := owners[0].req.events[owners[0].idx].same(seq, data); err != nil {
					return nil, false, err
				}
			}
		}
		return []uint64{seq}, dup, nil
	}
	ack, err := jetstreamext.PublishMsgBatch(ctx, s.js, msgs, jetstreamext.BatchFlowControl{AckFirst: false})
	if err != nil {
		return nil, false, err
	}
	first, err := firstOfBatch(ack, len(msgs))
	if err != nil {
		return nil, false, err
	}
	seqs := make([]uint64, len(msgs))
	for i := range seqs {
		seqs[i] = first + uint64(i)
	}
	return seqs, false, nil
}

// firstOfBatch returns the sequence of the first of n messages an atomic batch's ack covers.
// An atomic batch is stored contiguously (the commit holds the stream's isolation), so the
// ack's last sequence gives them all; an ack for another number of messages is an error.
func firstOfBatch(ack *jetstreamext.BatchAck, n int) (uint64, error) {
	if ack.BatchSize != uint64(n) || ack.Sequence < uint64(n) {
		return 0, fmt.Errorf("eventstore: append: batch ack for %d of %d messages at seq %d", ack.BatchSize, n, ack.Sequence)
	}
	return ack.Sequence - uint64(n) + 1, nil
}

// msgAt returns the subject and data of the message stored at seq.
func (s *Store) msgAt(ctx context.Context, seq uint64) (string, []byte, error) {
	msg := nats.NewMsg("$JS.API.DIRECT.GET." + StreamName)
	msg.Data = []byte(`{"seq":` + strconv.FormatUint(seq, 10) + `}`)
	resp, err := s.direct(ctx, msg)
	if err != nil {
		return "", nil, fmt.Errorf("eventstore: get seq %d: %w", seq, err)
	}
	subj := resp.Header.Get(jetstream.SubjectHeader)
	if subj == "" {
		return "", nil, fmt.Errorf("eventstore: get seq %d: no message (status %q)", seq, resp.Header.Get("Status"))
	}
	return subj, resp.Data, nil
}

type errKind int

const (
	errKindOther errKind = iota
	errKindConflict
	errKindDuplicateID
	errKindTooLarge
	errKindNoRoom // the server's refusal for want of storage (see ErrNoRoom)
)

func classify(err error) errKind {
	if errors.Is(err, nats.ErrMaxPayload) {
		return errKindTooLarge
	}
	var ae *jetstream.APIError
	if !errors.As(err, &ae) {
		return errKindOther
	}
	switch ae.ErrorCode {
	case jetstream.JSErrCodeStreamWrongLastSequence, jetstream.JSErrCodeStreamWrongLastSequenceConstant:
		return errKindConflict
	case jetstreamext.JSErrCodeBatchPublishDuplicateMsgID:
		return errKindDuplicateID
	case jetstream.JSErrCodeStreamMessageExceedsMaximum, jetstreamext.JSErrCodeBatchPublishExceedsLimit:
		return errKindTooLarge
	case jsErrInsufficientResources, jsErrStorageResourcesExceeded, jsErrAccountResourcesExceeded:
		return errKindNoRoom
	}
	return errKindOther
}

// mapPublishError translates a publish error; callers never see NATS error types for the
// cases they branch on.
func mapPublishError(err error) error {
	switch classify(err) {
	case errKindConflict:
		return ErrConflict
	case errKindTooLarge:
		if ae := (*jetstream.APIError)(nil); errors.As(err, &ae) && ae.ErrorCode == jetstreamext.JSErrCodeBatchPublishExceedsLimit {
			// Only an external server configured below MaxBatchEvents gets here: the
			// operator's to fix, as every large request is refused until then.
			return fmt.Errorf("%w: %v: the NATS server's atomic batch limit is below %d, the most events nird sends in one atomic batch; set jetstream { limits { batch { max_msgs: %d } } } on every server (deploy/nats)",
				ErrTooLarge, err, MaxBatchEvents, MaxBatchEvents)
		}
		return fmt.Errorf("%w: %v", ErrTooLarge, err)
	case errKindNoRoom:
		return fmt.Errorf("%w: %v", ErrNoRoom, err)
	}
	return fmt.Errorf("eventstore: append: %w", err)
}
