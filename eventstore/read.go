package eventstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// getBatchSize is how many messages one direct-get request asks for. The server also
// stops a response at its max-pending bytes; scan then asks again from where it stopped.
const getBatchSize = 1000

// Stored is an event as stored in the stream.
type Stored struct {
	// Seq is the event's stream sequence: its position in the one global order.
	Seq uint64
	// Time is the stream's receive time of the message (server clock).
	Time time.Time
	// Event is the decoded event.
	Event *nirv1.Event
	// Raw is the event's encoding as stored, set by Replay (nil from Read): a consumer
	// that keeps events (the read models' audit history) stores it as is instead of
	// encoding Event again. It must not be modified.
	Raw []byte
	// PersonKey is the person the event is stored for (its subject's key), set by Replay.
	PersonKey string
	// Quarantine is set, by Replay, when the message at Seq is not a usable event (it does
	// not decode, or its envelope does not belong to its subject): Event and Raw are nil
	// then, and the consumer skips it. Nothing nird writes is ever quarantined; such a
	// message was stored behind nird's back or damaged.
	Quarantine *DecodeError
}

// Read returns all events of one person in stream order, and the sequence of the last
// message on the person's subject (0 if none): the value to pass as
// PersonAppend.ExpectedLastSeq after folding them. It uses direct gets by subject; no
// consumer is created.
//
// A message on the subject that is not a usable event (see Stored.Quarantine) is left out
// of events, as every read model leaves it out, and logged once by its sequence; it still
// counts for lastSeq, which is what the server checks an append against. So a poisoned
// subject never stops appends to the person.
//
// Every event that carries a link of the chain (prev_hash) must link to the message before
// it on the subject: one that does not means a message of the person is missing from what
// the store gave back, and Read fails with ErrHistoryBroken, logged as an error by sequence.
//
// With replicas > 1 a direct get may be answered by a follower that lags a little behind;
// an append based on such a read fails with ErrConflict and is simply retried.
func (s *Store) Read(ctx context.Context, personKey string) (events []Stored, lastSeq uint64, err error) {
	if err := s.checkOpen(); err != nil {
		return nil, 0, err
	}
	subject, err := Subject(personKey)
	if err != nil {
		return nil, 0, err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	var prev []byte   // the chain hash of the subject's message before m
	var walked uint64 // messages of the subject, quarantined ones too (for ConfirmReads)
	err = s.scan(ctx, subject, 1, func(m *jetstream.RawStreamMsg) (bool, error) {
		before := lastSeq
		lastSeq = m.Sequence
		walked++
		ev, err := decodeOn(m.Sequence, m.Subject, m.Data)
		var de *DecodeError
		if errors.As(err, &de) {
			s.quarantined(de)
			prev = HashOf(m.Data)
			return true, nil
		}
		if err != nil {
			return false, err
		}
		if link := ev.GetPrevHash(); len(link) > 0 && !bytes.Equal(link, prev) {
			s.log.Error("a person's history on the stream has a hole: an event links to a message the store did not give back (a damaged record, or a replica that skipped it); appends to the person are refused", "stream_seq", m.Sequence, "previous_seq", before)
			return false, fmt.Errorf("%w: the event at stream sequence %d links to a message before it that cannot be read (the previous one read is at %d)", ErrHistoryBroken, m.Sequence, before)
		}
		prev = HashOf(m.Data)
		events = append(events, Stored{Seq: m.Sequence, Time: m.Time, Event: ev})
		return true, nil
	})
	if err != nil {
		return nil, 0, s.wrap(fmt.Errorf("eventstore: read person: %w", err))
	}
	saw(ctx, subject, walked)
	return events, lastSeq, nil
}

// After is what the stream holds on some persons' subjects around a sequence (Store.After).
type After struct {
	// Newer: a subject holds a message after the sequence asked about. Held and Last are not
	// set then.
	Newer bool
	// Held: a subject holds a message (every one at or before the sequence asked about).
	Held bool
	// Last is, when Held, the last stream sequence of the server that answered (a replica
	// that lags answers an earlier one than the stream leader would).
	Last uint64
}

// After tells whether any of the persons' subjects holds a message after sequence seq, in
// one request (a direct get of the subjects' last messages from seq+1 on), for a freshness
// check of state folded up to seq. When none does, nothing but a status comes back: the
// server finds the subjects' last sequences in its per-subject index and skips the messages
// before seq+1 without loading them, so the answer takes the same time whether the subjects
// hold messages or not, and whatever the size of their last messages. LastSeqs, which this
// replaced, fetched the last messages whole: for another kommune's person whose last message
// was a merge of 3 000 events the check took 0.5 ms longer than for an unknown subject
// (TestService_HiddenTiming_LastMessageSize). A direct get may be answered by a replica
// that lags (After.Last tells how far it is), and one that lacks a subject's newest messages
// says nothing newer: so on a replicated stream the stream leader is asked as well whether a
// subject holds a message after seq (leaderNewer), as Read asks it where a history ends. A
// check answered by a lagging follower alone took a person registered moments before through
// another node for one nobody registered, and the ingest service refused the person's next
// event as "person not found" (TestChaos; TestReplicas/ReadOnCutOffFollower). Through a node
// cut off from the leader After fails.
//
// A server that does not skip the messages before seq+1 (older than the one nird embeds)
// sends them: that reads as Newer, so a caller falls back to reading the history.
func (s *Store) After(ctx context.Context, personKeys []string, seq uint64) (After, error) {
	if err := s.checkOpen(); err != nil {
		return After{}, err
	}
	req := struct {
		MultiLast []string `json:"multi_last"`
		Seq       uint64   `json:"seq"`
		Batch     int      `json:"batch"`
	}{Seq: seq + 1, Batch: 1}
	for _, k := range personKeys {
		subj, err := Subject(k)
		if err != nil {
			return After{}, err
		}
		req.MultiLast = append(req.MultiLast, subj)
	}
	data, err := json.Marshal(req)
	if err != nil {
		return After{}, err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	msg := nats.NewMsg("$JS.API.DIRECT.GET." + StreamName)
	msg.Data = data
	resp, err := s.direct(ctx, msg)
	if err != nil {
		return After{}, s.wrap(fmt.Errorf("eventstore: messages of persons after a sequence: %w", err))
	}
	// The first reply is all that is read: a message (a subject holds one after seq), or the
	// status that ends the answer. Further replies (the status after a message) are dropped.
	var a After
	switch status, desc := resp.Header.Get("Status"), resp.Header.Get("Description"); {
	case status == "" && resp.Header.Get(jetstream.SequenceHeader) != "":
		return After{Newer: true}, nil
	case status == "404" && desc == "No Results":
	case status == "204":
		last, err := strconv.ParseUint(resp.Header.Get(upToHeader), 10, 64)
		if err != nil {
			return After{}, fmt.Errorf("eventstore: messages of persons after a sequence: end of batch without %s", upToHeader)
		}
		a = After{Held: true, Last: last}
	default:
		// 404 "Message Not Found": a message after seq that the store cannot load.
		return After{}, fmt.Errorf("eventstore: messages of persons after a sequence: the server answered %s %s", status, desc)
	}
	if s.replicated {
		newer, err := s.leaderNewer(ctx, req.MultiLast, req.Seq)
		if err != nil {
			return After{}, s.wrap(fmt.Errorf("eventstore: messages of persons after a sequence: %w", err))
		}
		if newer {
			return After{Newer: true}, nil
		}
	}
	if !a.Held {
		for _, subj := range req.MultiLast {
			saw(ctx, subj, 0) // the answer: no message on any of them (for ConfirmReads)
		}
	}
	return a, nil
}

// leaderNewer asks the stream leader (STREAM.MSG.GET, which only the leader answers) whether
// any of subjects holds a message at sequence from or later, one request per subject, sent
// at once: the answer takes one round trip however many subjects a lookup walks (asked one
// after the other, a person named by an id a claim leads on from took two or three round
// trips to an unknown id's one, a difference in time another kommune could measure). When
// none does the leader answers "no message" alone, whatever the subjects hold before from.
func (s *Store) leaderNewer(ctx context.Context, subjects []string, from uint64) (bool, error) {
	newer := make([]bool, len(subjects))
	errs := make([]error, len(subjects))
	var wg sync.WaitGroup
	for i, subj := range subjects {
		wg.Go(func() {
			_, err := s.leaderGet(ctx, StreamName, struct {
				Seq  uint64 `json:"seq"`
				Next string `json:"next_by_subj"`
			}{from, subj})
			switch {
			case errors.Is(err, ErrNoMessage):
			case err != nil:
				errs[i] = err
			default:
				newer[i] = true
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return false, err
	}
	return slices.Contains(newer, true), nil
}

// upToHeader is the header of a multi-last direct get's end of batch with the sequence the
// answer covers: the answering server's last sequence, when the request sets no bound.
const upToHeader = "Nats-UpTo-Sequence"

// quarantineLogMax bounds the sequences whose quarantine Read remembers having logged.
const quarantineLogMax = 10000

// quarantined counts a message Read skipped and logs it, once per sequence (a person's
// poisoned subject is read before every append to the person).
func (s *Store) quarantined(de *DecodeError) {
	s.stats.quarantined.Add(1)
	s.quarantineMu.Lock()
	defer s.quarantineMu.Unlock()
	if s.quarantineLogged[de.Seq] {
		return
	}
	if s.quarantineLogged == nil || len(s.quarantineLogged) >= quarantineLogMax {
		s.quarantineLogged = map[uint64]bool{}
	}
	s.quarantineLogged[de.Seq] = true
	s.log.Warn("quarantined message skipped in a person's history: not a usable event", "stream_seq", de.Seq, "reason", de.Reason)
}

// LastSeq returns the stream's last sequence (0 when the stream is empty). It is read
// with a direct get of the last message, which the server isolates from a batch being
// committed, so a Replay bounded by it never ends inside an atomic batch.
//
// When no last message comes back, the stream's state decides (lastFromState): a stream
// whose last message its store cannot read back (a record damaged on disk, answered as no
// message) still ends at that message's sequence, and is not taken for an empty one.
func (s *Store) LastSeq(ctx context.Context) (uint64, error) {
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	seq, found, err := s.directLast(ctx)
	if err == nil && !found {
		seq, err = s.lastFromState(ctx, s.directLast)
	}
	if err != nil {
		return 0, s.wrap(fmt.Errorf("eventstore: last sequence: %w", err))
	}
	return s.notBehind(ctx, seq)
}

// LeaderLastSeq is LastSeq answered by the stream's leader on a replicated stream, which
// has every acknowledged event: a replica may answer LastSeq from behind (nats-server lets
// a follower catching up after a restart serve direct gets once it has applied 90 % of its
// log), and this process's own view corrects only answers below what it has seen. Every
// event acknowledged before the call lies at or below the answer. On one server it is
// LastSeq.
func (s *Store) LeaderLastSeq(ctx context.Context) (uint64, error) {
	if !s.replicated {
		return s.LastSeq(ctx)
	}
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	seq, err := s.leaderLast(ctx, "")
	if err != nil {
		return 0, s.wrap(err)
	}
	return s.notBehind(ctx, seq)
}

// DuplicateWindow returns the stream's dedupe window as last read: by Open, CheckStream and
// RepairStream. The stream keeps the window it was created with, which may differ from
// Config.DuplicateWindow (another nird, or a restore, created it; Open only reports the
// difference), and the server forgets ids by the stream's window.
func (s *Store) DuplicateWindow() time.Duration { return time.Duration(s.window.Load()) }

// directLast asks for the last message by each of lastSubjects in turn with a direct get;
// found is false when every one answers no message.
func (s *Store) directLast(ctx context.Context) (seq uint64, found bool, err error) {
	for _, subject := range lastSubjects {
		msg := nats.NewMsg("$JS.API.DIRECT.GET." + StreamName)
		msg.Data = []byte(`{"last_by_subj":"` + subject + `"}`)
		resp, err := s.direct(ctx, msg)
		if err != nil {
			return 0, false, err
		}
		if resp.Header.Get("Status") == "404" {
			continue
		}
		seq, err := strconv.ParseUint(resp.Header.Get(jetstream.SequenceHeader), 10, 64)
		if err != nil {
			return 0, false, fmt.Errorf("bad direct get response (status %q)", resp.Header.Get("Status"))
		}
		return seq, true, nil
	}
	return 0, false, nil
}

// lastFromState returns the stream's last sequence when its last message did not come back
// (neither of lastSubjects found one): 0 when the stream's state holds no message. A state
// that holds messages comes either from a first atomic batch being committed (stream info,
// unlike a get, is not isolated from it) or from a last message the store counts but cannot
// read back: the server checks a record's checksum when it reads it from disk and answers a
// damaged one as no message, while its state (LastSeq, Msgs, NumPending) still counts it.
// So ask is asked once more after a pause; if it still finds nothing, the last message is
// there but unreadable, and the state's last sequence is returned (logged once per sequence).
// Before, LastSeq said 0 then: nird took the stream for one rolled back and served read
// models rebuilt from nothing (TestDamage_LastEventDataFlipped).
func (s *Store) lastFromState(ctx context.Context, ask func(context.Context) (uint64, bool, error)) (uint64, error) {
	st, _, err := s.leaderState(ctx)
	if err != nil || st.LastSeq == 0 || st.Msgs == 0 {
		return 0, err
	}
	if err := pause(ctx, behindPause); err != nil {
		return 0, err
	}
	seq, found, err := ask(ctx)
	if err != nil || found {
		return seq, err
	}
	if s.unreadableLast.Swap(st.LastSeq) != st.LastSeq {
		s.log.Warn("the stream's last message cannot be read back (damaged on disk?); the stream's state gives its sequence", "stream_seq", st.LastSeq)
	}
	return st.LastSeq, nil
}

// lastSubjects are the filters LastSeq asks for the last message by, in turn. ">" is the
// stream's last sequence, which the server looks up without a search; its message is gone
// only when it was deleted, and then the last message on the stream's subjects is found
// by searching the last blocks' subjects (a file store walks every subject of a block:
// about 0.2 ms of the server's time, under the store's lock, at 4 000 persons in the last
// block, against none; BenchmarkLastSeq).
var lastSubjects = []string{">", streamSubjects}

// ReplayOptions bound a replay.
type ReplayOptions struct {
	// From is the first stream sequence to deliver; 0 = 1.
	From uint64
	// To is the last stream sequence to deliver; 0 = the stream's last sequence when the
	// replay starts (events appended later are not delivered).
	To uint64
	// RecordedUntil, when not zero, is an as-of cut-off: only events whose envelope
	// recorded_at is at or before it are delivered.
	RecordedUntil time.Time
	// ClockSkew is how long after an event's recorded_at the stream may have received it
	// (the append's own delay, retries across an election, nird's clock behind the
	// stream's); it widens the sequence bound the cut-off is resolved to. An event received
	// later than that after its recorded_at is left out even if recorded before the cut-off.
	ClockSkew time.Duration
	// Undecoded delivers Stored without Event: only Seq, Time, PersonKey (from the
	// subject) and Raw, for a consumer that stores events and decodes them later (a
	// rebuild's first pass), sparing a decode of every event. The event's envelope is not
	// checked against its subject then; the consumer must do it when it decodes. Not with
	// RecordedUntil (the cut-off needs the decoded recorded_at).
	Undecoded bool
}

// Undecoded is the message at seq as Replay delivers it with ReplayOptions.Undecoded: the
// person key from its subject and its data, or quarantined for a subject that names none.
func Undecoded(seq uint64, t time.Time, subject string, data []byte) Stored {
	key, err := subjectKey(seq, subject)
	if err != nil {
		return Stored{Seq: seq, Time: t, Quarantine: err.(*DecodeError)}
	}
	return Stored{Seq: seq, Time: t, Raw: data, PersonKey: key}
}

// Replay delivers the stream's events in sequence order, from opt.From up to a bound fixed
// when it starts. Short ranges (catching up a live projection) are read with batched
// direct gets, long ones (a rebuild) stream through an ephemeral ordered consumer. The
// iteration stops after the first error, which is yielded with a zero Stored. A message
// that is not a usable event does not stop it: it is delivered with Stored.Quarantine set
// (in Undecoded mode only a bad subject is found; the consumer checks the rest when it
// decodes). Stopping the range loop stops the replay.
//
// With RecordedUntil set, the cut-off is resolved once into a stream sequence bound: the
// last message the stream received by RecordedUntil+ClockSkew. Between From and that bound,
// events whose recorded_at is after RecordedUntil are skipped. The result is exactly the
// events recorded up to the cut-off, provided the stream received each event no more than
// ClockSkew after its recorded_at (stream time <= recorded_at + skew). nird stamps
// recorded_at before it appends, so the stream receives an event after its recorded_at
// (by the append's delay, and by how far nird's clock is behind the stream's); a nird clock
// ahead of the stream's needs no skew (such events are received earlier, and their
// recorded_at is compared).
func (s *Store) Replay(ctx context.Context, opt ReplayOptions) iter.Seq2[Stored, error] {
	return func(yield func(Stored, error) bool) {
		if err := s.checkOpen(); err != nil {
			yield(Stored{}, err)
			return
		}
		from, to, err := s.replayBounds(ctx, opt)
		if err != nil {
			yield(Stored{}, s.wrap(err))
			return
		}
		if from > to {
			return
		}
		var cut *time.Time
		if !opt.RecordedUntil.IsZero() {
			cut = &opt.RecordedUntil
		}
		if opt.Undecoded && cut != nil {
			yield(Stored{}, fmt.Errorf("%w: replay: Undecoded cannot apply RecordedUntil", ErrInvalid))
			return
		}
		deliver := func(seq uint64, t time.Time, subject string, data []byte) (more, stopped bool, err error) {
			var st Stored
			if opt.Undecoded {
				st = Undecoded(seq, t, subject, data)
			} else {
				ev, err := decodeOn(seq, subject, data)
				var de *DecodeError
				switch {
				case errors.As(err, &de):
					// Delivered as quarantined, also past a cut-off (it has no readable
					// recorded_at): every consumer skips it the same way.
					st = Stored{Seq: seq, Time: t, Quarantine: de}
				case err != nil:
					return false, false, err
				case cut != nil && ev.GetRecordedAt().AsTime().After(*cut):
					return seq < to, false, nil
				default:
					st = Stored{Seq: seq, Time: t, Event: ev, Raw: data, PersonKey: ev.GetPersonKey()}
				}
			}
			if !yield(st, nil) {
				return false, true, nil
			}
			return seq < to, false, nil
		}
		// fromGap delivers the message at a sequence the replicas' answers skipped, taken
		// from the stream leader (Store.gap); false when the leader cannot say yet.
		fromGap := func(seq uint64) (ok, more, stopped bool, err error) {
			m, missing, err := s.gap(ctx, seq)
			switch {
			case err != nil || (m == nil && !missing):
				return false, false, false, err
			case m != nil:
				more, stopped, err = deliver(m.Sequence, m.Time, m.Subject, m.Data)
				return true, more, stopped, err
			}
			if !yield(Stored{Seq: seq, Quarantine: &DecodeError{Seq: seq, Reason: ReasonMissing}}, nil) {
				return true, false, true, nil
			}
			return true, seq < to, false, nil
		}
		var stopped bool
		if to-from+1 <= replayDirectMax {
			// to exists (it was the last sequence), so a walk that ends before it ended on a
			// replica that lags, and one that skips a sequence read a replica that has not
			// made it visible yet: walk again from the first sequence not delivered (see
			// consistent.go); when a few walks in a row do not bring it, take it from the
			// stream leader.
			stuck := 0 // consecutive walks that did not deliver next
			for next := from; next <= to && err == nil && !stopped; {
				before := next
				more := true
				err = s.scan(ctx, "", next, func(m *jetstream.RawStreamMsg) (bool, error) {
					if m.Sequence > to {
						return false, nil
					}
					if m.Sequence > next {
						// The stream never has holes (no deletes, purges or limits): a
						// replica has not made next visible yet, or a store lost it.
						return false, nil
					}
					next = m.Sequence + 1
					var err error
					more, stopped, err = deliver(m.Sequence, m.Time, m.Subject, m.Data)
					return more, err
				})
				if err != nil || stopped || !more || next > to {
					break
				}
				if next > before {
					stuck = 0
				} else if stuck++; stuck >= gapRetries {
					var ok bool
					if ok, more, stopped, err = fromGap(next); ok {
						stuck, next = 0, next+1
						if !more {
							break
						}
						continue
					}
				}
				if err == nil && !stopped {
					err = pause(ctx, behindPause)
				}
			}
		} else {
			stopped, err = s.replayConsumer(ctx, from, to, deliver, fromGap)
		}
		if err != nil && !stopped {
			yield(Stored{}, s.wrap(fmt.Errorf("eventstore: replay: %w", err)))
		}
	}
}

// replayDirectMax is the longest range Replay reads with direct gets; longer ranges use an
// ordered consumer, which streams several times faster (BenchmarkReplay) but costs a
// consumer creation.
const replayDirectMax = 2000

// replayConsumer streams [from, to] through an ephemeral ordered consumer. The consumer
// notices a gap in its own sequence, not in the stream's: a sequence its replica skipped is
// taken from the stream leader (fromGap), as the direct walk does. So is the next sequence
// when nothing has come for a while (the ordered read's idle tick): the server never delivers
// a message its store cannot read back, so a range whose last sequences are such messages
// (a stream whose last message is damaged on disk) has them delivered as missing and ends at
// to, where it waited forever before. A message the consumer delivers after the leader gave
// it is not delivered again.
func (s *Store) replayConsumer(ctx context.Context, from, to uint64,
	deliver func(seq uint64, t time.Time, subject string, data []byte) (more, stopped bool, err error),
	fromGap func(seq uint64) (ok, more, stopped bool, err error)) (bool, error) {
	var stopped bool
	next := max(from, 1)
	err := s.ordered(ctx, from, func(m orderedMsg) (bool, error) {
		seq := m.md.Sequence.Stream
		if seq < next {
			return true, nil // taken from the leader on an idle tick
		}
		for ; next < seq && next <= to; next++ {
			for {
				ok, more, stop, err := fromGap(next)
				if err != nil || stop || (ok && !more) {
					stopped = stop
					return false, err
				}
				if ok {
					break
				}
				if err := pause(ctx, behindPause); err != nil {
					return false, err
				}
			}
		}
		if seq > to {
			return false, nil
		}
		next = seq + 1
		more, stop, err := deliver(seq, m.md.Timestamp, m.msg.Subject(), m.msg.Data())
		stopped = stop
		return more, err
	}, func() (bool, error) {
		if next > to {
			return false, nil
		}
		// One sequence per idle tick: when the consumer only lags, it takes over again.
		ok, more, stop, err := fromGap(next)
		if err != nil || stop || (ok && !more) {
			stopped = stop
			return false, err
		}
		if ok {
			next++
		}
		return true, nil
	})
	return stopped, err
}

// replayBounds resolves From, To and the RecordedUntil cut-off to a sequence range.
func (s *Store) replayBounds(ctx context.Context, opt ReplayOptions) (from, to uint64, err error) {
	from = max(opt.From, 1)
	last, err := s.LastSeq(ctx)
	if err != nil {
		return 0, 0, err
	}
	to = last
	switch {
	case opt.To != 0 && opt.To < to:
		to = opt.To
	case opt.To > to && s.replicated:
		// The caller saw a later sequence than the replica that answered now: ask the
		// leader, which has every acknowledged event (consistent.go).
		l, err := s.leaderLast(ctx, "")
		if err != nil {
			return 0, 0, err
		}
		to = min(opt.To, max(to, l))
	}
	if !opt.RecordedUntil.IsZero() {
		bound, err := s.cutOffBound(ctx, opt.RecordedUntil, opt.ClockSkew)
		if err != nil {
			return 0, 0, err
		}
		to = min(to, bound)
	}
	return from, to, nil
}

// CutOffBound returns the sequence bound Replay resolves a recorded-time cut-off to
// (ReplayOptions.RecordedUntil and ClockSkew): no event after it was recorded by the cut-off.
// It may lie beyond the stream's last sequence.
func (s *Store) CutOffBound(ctx context.Context, recordedUntil time.Time, clockSkew time.Duration) (uint64, error) {
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	b, err := s.cutOffBound(ctx, recordedUntil, clockSkew)
	return b, s.wrap(err)
}

func (s *Store) cutOffBound(ctx context.Context, recordedUntil time.Time, clockSkew time.Duration) (uint64, error) {
	var bound uint64
	var err error
	if at := recordedUntil.Add(max(clockSkew, 0)); at.Before(latestStartTime) {
		bound, err = s.seqBefore(ctx, at)
	} else {
		// Later than any message can have been received: the stream's end. A direct get's
		// start time goes as JSON (years up to 9999) and the server counts it in int64
		// nanoseconds (up to 2262): asked with a later one it answered from the first
		// message, and the replay held nothing (TestStore_Replay/RecordedUntil/Year9999).
		bound, err = s.LastSeq(ctx)
	}
	if err != nil {
		return 0, err
	}
	// Events appended with a recorded time earlier than their append (MarkBackdated)
	// were received after any cut-off they fall before: never cut below them.
	backdated, err := s.backdatedThrough(ctx)
	if err != nil {
		return 0, err
	}
	return max(bound, backdated), nil
}

// latestStartTime is the latest receive time a cut-off is resolved by (cutOffBound): the
// server counts a start time in int64 nanoseconds since 1970.
var latestStartTime = time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)

// MetaBackdatedThrough is the stream metadata entry MarkBackdated keeps.
const MetaBackdatedThrough = "nir_backdated_through_seq"

// MarkBackdated records in the stream's metadata that the events up to sequence seq may
// carry recorded times earlier than the stream received them (a trusted in-process load of
// history: nird's --demo population, a migration). Replay's recorded-time cut-off is
// resolved through the stream's receive times, which would cut such events off; it never
// cuts below this sequence. The mark only grows.
func (s *Store) MarkBackdated(ctx context.Context, seq uint64) error {
	return s.updateMeta(ctx, MetaBackdatedThrough, func(cur string) (string, bool) {
		n, _ := strconv.ParseUint(cur, 10, 64)
		return strconv.FormatUint(seq, 10), n < seq
	})
}

// backdatedThrough returns the sequence MarkBackdated recorded, 0 if none.
func (s *Store) backdatedThrough(ctx context.Context) (uint64, error) {
	v, err := s.streamMeta(ctx, MetaBackdatedThrough)
	if err != nil || v == "" {
		return 0, err
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("eventstore: stream metadata %s=%q is not a sequence", MetaBackdatedThrough, v)
	}
	return n, nil
}

// seqBefore returns the last stream sequence whose receive time is at or before t (the
// first message received after t, minus one), or the stream's last sequence if none was
// received after t.
func (s *Store) seqBefore(ctx context.Context, t time.Time) (uint64, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	tr := s.tries()
	defer tr.end()
	for {
		tctx := tr.next(ctx)
		msgs, err := jetstreamext.GetBatch(tctx, s.js, StreamName, 1, jetstreamext.GetBatchStartTime(t.Add(time.Nanosecond)))
		if err != nil {
			return 0, fmt.Errorf("eventstore: resolve cut-off: %w", err)
		}
		for m, err := range msgs {
			if errors.Is(err, jetstreamext.ErrNoMessages) {
				break
			}
			if err != nil && tr.lost(ctx, tctx) {
				break
			}
			if err != nil {
				return 0, fmt.Errorf("eventstore: resolve cut-off: %w", err)
			}
			return m.Sequence - 1, nil
		}
		if tr.lost(ctx, tctx) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("eventstore: resolve cut-off: %w", err)
		}
		return s.LastSeq(ctx)
	}
}

// scan walks the messages of subject ("" = all) from sequence from on, in order, with
// batched direct gets, calling fn for each until fn returns false or an error. It checks
// that each response is complete: the helper ends an iteration silently on a timeout, so a
// response that stops while the server still reports pending messages is followed up, and
// an empty response that is not "no messages" is an error.
func (s *Store) scan(ctx context.Context, subject string, from uint64, fn func(*jetstream.RawStreamMsg) (bool, error)) error {
	seq := from
	var waited time.Duration // so far, for a replica to answer direct gets
	t := s.tries()
	defer t.end()
	for {
		opts := []jetstreamext.GetBatchOpt{jetstreamext.GetBatchSeq(seq)}
		if subject != "" {
			opts = append(opts, jetstreamext.GetBatchSubject(subject))
		}
		tctx := t.next(ctx)
		msgs, err := jetstreamext.GetBatch(tctx, s.js, StreamName, getBatchSize, opts...)
		if s.unanswered(err, &waited) {
			if err := pause(ctx, retryPause); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return consumerError(err)
		}
		got := 0
		pending := uint64(0)
		end := false
		retry := false
		for m, err := range msgs {
			if errors.Is(err, jetstreamext.ErrNoMessages) {
				end = true
				break
			}
			if got == 0 && s.unanswered(err, &waited) {
				retry = true
				break
			}
			if err != nil && t.lost(ctx, tctx) {
				break
			}
			if err != nil {
				return err
			}
			t.answered()
			got++
			seq = m.Sequence + 1
			if pending, err = strconv.ParseUint(m.Header.Get("Nats-Num-Pending"), 10, 64); err != nil {
				return fmt.Errorf("direct get: bad Nats-Num-Pending header at seq %d", m.Sequence)
			}
			more, err := fn(m)
			if err != nil || !more {
				return err
			}
		}
		if retry {
			if err := pause(ctx, retryPause); err != nil {
				return err
			}
			continue
		}
		if t.lost(ctx, tctx) {
			continue // sent again from the first sequence not delivered
		}
		if got == 0 && !end {
			if err := ctx.Err(); err != nil {
				return err
			}
			return errors.New("direct get: no response (timeout)")
		}
		if end || pending == 0 {
			// A follower answers direct gets too, and may lag: its end is the end only if
			// the leader has nothing past it.
			behind, err := s.behindLeader(ctx, subject, seq)
			if err != nil || !behind {
				return err
			}
		}
	}
}

// retryPause is the wait before a request that found the cluster not ready (no replica
// answering, a stream not placed yet) is sent again.
const retryPause = 50 * time.Millisecond

// unanswered reports whether err says that no server answers direct gets on a replicated
// stream, and the wait so far (counted in *waited) leaves room for another attempt within
// the request timeout. On a cluster that happens for a moment while the stream's leader
// changes or its replicas catch up: a replica answers direct gets only once it is current.
// Under load the moment lasted long enough for appends to fail their re-read of a person
// (TestReplicas in a CI run); a read waits it out instead. On one server the stream itself
// answers, and no responders means it is gone: that error is returned at once.
func (s *Store) unanswered(err error, waited *time.Duration) bool {
	if err == nil || !s.replicated || !errors.Is(err, nats.ErrNoResponders) || *waited >= s.cfg.RequestTimeout {
		return false
	}
	*waited += retryPause
	return true
}

// direct sends the direct get request msg, waiting out a moment with no replica answering,
// and sending it again when it is lost (tries).
func (s *Store) direct(ctx context.Context, msg *nats.Msg) (*nats.Msg, error) {
	m, err := untilAnswered(ctx, s, func() (*nats.Msg, error) {
		t := s.tries()
		defer t.end()
		for {
			tctx := t.next(ctx)
			m, err := s.nc.RequestMsgWithContext(tctx, msg)
			if err == nil || !t.lost(ctx, tctx) {
				return m, err
			}
		}
	})
	return m, consumerError(err)
}

// A direct get goes to one of the stream's replicas, which the server picks at random for
// a request from a client, among them a node cut off from the cluster until the route to it
// is found dead (minutes, with the server's default pings): a request sent there is never
// answered. So on a replicated stream a direct get not answered within a try's wait is sent
// again, to a replica picked anew, each wait twice the last (a loaded replica is slow, not
// lost), until the caller's deadline. Before, every third read through a node whose stream
// leader was cut off waited out its whole deadline, and TestReplicas/CutOffLeaderUnconfirmed
// failed in CI after six appends in a row (5 s each) did so in their re-read of the person.
const (
	firstTryWait = 100 * time.Millisecond
	maxTryWait   = 2 * time.Second
)

// errNoAnswerYet is the cause with which a try's context is cancelled when no answer began
// within its wait.
var errNoAnswerYet = errors.New("eventstore: direct get: no answer within the try's wait")

// tries paces the direct gets of one read (see firstTryWait). Its zero value, for a stream on
// one server, leaves each request the caller's whole deadline.
type tries struct {
	replicated bool
	wait       time.Duration
	timer      *time.Timer
	cancel     context.CancelCauseFunc
}

func (s *Store) tries() tries { return tries{replicated: s.replicated} }

// next releases the previous request's context and returns the context for the next
// request: on a replicated stream it is cancelled with errNoAnswerYet unless answered is
// called within the try's wait.
func (t *tries) next(ctx context.Context) context.Context {
	t.end()
	if !t.replicated {
		return ctx
	}
	t.wait = min(max(2*t.wait, firstTryWait), maxTryWait)
	tctx, cancel := context.WithCancelCause(ctx)
	t.cancel = cancel
	t.timer = time.AfterFunc(t.wait, func() { cancel(errNoAnswerYet) })
	return tctx
}

// answered keeps the request's context as long as the caller's: its answer began. The next
// request starts with the first wait again.
func (t *tries) answered() {
	if t.timer != nil {
		t.timer.Stop()
	}
	t.wait = 0
}

// lost reports whether the request with context tctx was given up for want of an answer
// while the caller's ctx still runs: it is to be sent again.
func (t *tries) lost(ctx, tctx context.Context) bool {
	return ctx.Err() == nil && errors.Is(context.Cause(tctx), errNoAnswerYet)
}

// end releases the last request's context.
func (t *tries) end() {
	if t.cancel != nil {
		t.timer.Stop()
		t.cancel(nil)
		t.cancel = nil
	}
}

// untilAnswered calls ask, and again after a pause as long as no replica answers it
// (unanswered).
func untilAnswered[T any](ctx context.Context, s *Store, ask func() (T, error)) (T, error) {
	var waited time.Duration
	for {
		v, err := ask()
		if !s.unanswered(err, &waited) {
			return v, err
		}
		if err := pause(ctx, retryPause); err != nil {
			return v, err
		}
	}
}

// wrap turns errors caused by a concurrent Close into ErrClosed.
func (s *Store) wrap(err error) error {
	if err != nil && s.closed.Load() && !errors.Is(err, ErrClosed) {
		return fmt.Errorf("%w: %v", ErrClosed, err)
	}
	return err
}
