package eventstore

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// RawMessage is a message as the stream holds it, for a byte-faithful copy of the stream
// (a backup): its sequence, the stream's receive time, subject, headers and data. Nothing in
// it is decoded or checked: a quarantined message is copied like any other, so that a
// restored stream has every message at the sequence it had.
type RawMessage struct {
	Seq     uint64
	Time    time.Time
	Subject string
	Header  nats.Header
	Data    []byte
}

// ErrNotEmpty is returned by Import when the stream already holds messages it would not
// continue.
var ErrNotEmpty = errors.New("eventstore: the stream is not empty")

// Export calls fn with every message of the stream from sequence from (0 = 1) through
// through (0 = the stream's last sequence when Export starts), in order, and returns the last
// sequence it delivered. Appends that arrive meanwhile are not included, so the copy is the
// stream exactly as it stood at one sequence: a consistent backup while nird runs. The
// stream has no holes (deletes and purges are denied, no limits), so a sequence that is
// missing is an error, never skipped.
func (s *Store) Export(ctx context.Context, from, through uint64, fn func(RawMessage) error) (uint64, error) {
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	from = max(from, 1)
	if through == 0 {
		last, err := s.LastSeq(ctx)
		if err != nil {
			return 0, err
		}
		through = last
	}
	if from > through {
		return from - 1, nil
	}
	next := from
	var stop error // the export's own reason to stop, returned as it is
	err := s.ordered(ctx, from, func(m orderedMsg) (bool, error) {
		seq := m.md.Sequence.Stream
		if seq != next {
			why := "the store cannot read it back (damaged on disk?): restore the stream from a backup"
			if s.replicated {
				why = "a replica may lag: run it again; if it stays missing, the stream leader's store lost it"
			}
			stop = fmt.Errorf("eventstore: export: sequence %d missing (the next message read is %d); %s", next, seq, why)
			return false, nil
		}
		if err := fn(RawMessage{Seq: seq, Time: m.md.Timestamp, Subject: m.msg.Subject(), Header: m.msg.Headers(), Data: m.msg.Data()}); err != nil {
			stop = err
			return false, nil
		}
		next++
		return next <= through, nil
	}, func() (bool, error) {
		// Nothing has come for a while: a sequence the stream leader holds but cannot read
		// back (its last message damaged on disk) is never delivered; one it lacks while it
		// holds later ones is lost from its store. Otherwise the consumer lags: wait on.
		if next > through {
			return false, nil
		}
		_, missing, err := s.fromLeader(ctx, next)
		if err == nil && missing {
			stop = fmt.Errorf("eventstore: export: sequence %d missing (the stream leader cannot read it back)", next)
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		return next - 1, s.wrap(fmt.Errorf("eventstore: export at sequence %d: %w", next, err))
	}
	if stop != nil {
		return next - 1, stop
	}
	return through, nil
}

// importBatch is how many messages Import stores in one atomic batch.
const importBatch = 100

// Import appends msgs, which must be consecutive sequences, so that each is stored at its
// own sequence: the stream must end just before the first (be empty for a whole backup, or
// end where the previous increment ended), and each batch carries the expected last
// sequence, so nothing can land between them or twice. Headers the server interprets at
// publish time (expectations, batch markers) are dropped; the rest, and subject and data,
// are stored as they were. The stream's receive times are the import's; Import marks the
// imported range backdated (MarkBackdated), so that as-of replays cut it by the recorded
// times in the events, as they would have cut the original. Into an empty stream the mark
// is set to exactly the imported range, replacing any the stream was created with. It returns the last sequence
// stored; on an error, everything through it is stored and nothing after it, except the
// batch whose acknowledgement the error is about (timed out, or unreadable): the server may
// have committed that batch whole, and the stream then ends past the sequence returned.
func (s *Store) Import(ctx context.Context, msgs iter.Seq2[RawMessage, error]) (uint64, error) {
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	last, err := s.LastSeq(ctx)
	if err != nil {
		return 0, err
	}
	stored := last
	var batch []*nats.Msg
	var first uint64 // the sequence of batch[0]
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		// No batch is begun once the caller has stopped (an operator's Ctrl-C): the batch
		// below does not look at the caller's context, and nothing else here did, so the
		// whole copy was imported anyway (TestStore_Import_StopsWhenTheCallerStops).
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("eventstore: import at sequence %d: %w", first, err)
		}
		batch[0].Header.Set(jetstream.ExpectedLastSeqHeader, strconv.FormatUint(first-1, 10))
		// An atomic batch's publish sends its messages without looking at the context, and
		// not the commit once it has ended: on the caller's context, an import whose context
		// ended left the batch open on the server (at most 50 on a stream) until its batch
		// timeout, and every batch was refused meanwhile (TestStore_Import_CallersLeaveNoBatches).
		// A batch is bounded by the request timeout alone, as the group committer's are.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.RequestTimeout)
		ack, err := jetstreamext.PublishMsgBatch(pctx, s.js, batch, jetstreamext.BatchFlowControl{AckFirst: false})
		cancel()
		if err != nil {
			return s.wrap(fmt.Errorf("eventstore: import at sequence %d: %w", first, err))
		}
		if at, err := firstOfBatch(ack, len(batch)); err != nil || at != first {
			return fmt.Errorf("eventstore: import: the batch from sequence %d was stored at %d: %v", first, at, err)
		}
		stored = first + uint64(len(batch)) - 1
		batch = batch[:0]
		return nil
	}
	for m, err := range msgs {
		if err != nil {
			if ferr := flush(); ferr != nil {
				return stored, errors.Join(err, ferr)
			}
			return stored, err
		}
		want := stored + uint64(len(batch)) + 1
		if m.Seq != want {
			if stored == last && len(batch) == 0 {
				return stored, fmt.Errorf("%w: it ends at sequence %d, and the copy starts at %d", ErrNotEmpty, last, m.Seq)
			}
			return stored, fmt.Errorf("eventstore: import: sequence %d follows %d", m.Seq, want-1)
		}
		if len(batch) == 0 {
			first = m.Seq
		}
		h := nats.Header{}
		for k, vs := range m.Header {
			if publishOnlyHeader(k) {
				continue
			}
			h[k] = vs
		}
		batch = append(batch, &nats.Msg{Subject: m.Subject, Header: h, Data: m.Data})
		if len(batch) == importBatch {
			if err := flush(); err != nil {
				return stored, err
			}
		}
	}
	if err := flush(); err != nil {
		return stored, err
	}
	switch {
	case last == 0:
		// Into an empty stream the mark is exactly what was imported: it describes the
		// stream's messages, and a mark the empty stream was created with (a copied or
		// forged configuration) describes none, but would stay (MarkBackdated only rises)
		// and refuse every later --until restore among sequences never backdated.
		if err := s.setMeta(ctx, MetaBackdatedThrough, markValue(stored)); err != nil {
			return stored, err
		}
	case stored > last:
		if err := s.MarkBackdated(ctx, stored); err != nil {
			return stored, err
		}
	}
	return stored, nil
}

// markValue is the metadata value of a backdated mark through seq ("" for none: removed).
func markValue(seq uint64) string {
	if seq == 0 {
		return ""
	}
	return strconv.FormatUint(seq, 10)
}

// publishOnlyHeader reports whether the server acts on header k when a message is published
// (an expectation, a batch marker, a TTL or a rollup), so that copying it onto a restored
// message would change how it is stored.
func publishOnlyHeader(k string) bool {
	switch k {
	case jetstream.ExpectedStreamHeader, jetstream.ExpectedLastSeqHeader, jetstream.ExpectedLastSubjSeqHeader,
		jetstream.ExpectedLastMsgIDHeader, "Nats-Expected-Last-Subject-Sequence-Subject",
		"Nats-Batch-Id", "Nats-Batch-Sequence", "Nats-Batch-Commit", "Nats-TTL", "Nats-Rollup":
		return true
	}
	return false
}
