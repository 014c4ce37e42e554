package projections

import (
	"context"
	"iter"
	"sort"
	"sync"
	"time"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// Record is one event at its position in the event stream.
type Record struct {
	// Seq is the stream sequence (1 is the first event of the stream).
	Seq uint64
	// Event is the decoded event.
	Event *nirv1.Event
	// Raw is the event's protobuf encoding when the feed has it (optional); it is stored as
	// is in the audit history instead of encoding Event again.
	Raw []byte
	// PersonKey is the event's person; set (with Raw) when Event is nil.
	PersonKey string
	// Quarantine, when set, says the message at Seq is not a usable event (one of the
	// Quarantine reasons); Event and Raw are nil. Every model skips it and records its
	// sequence and reason (DB.Quarantined).
	Quarantine string
}

// Reasons a stream message is quarantined: the feed's, in Record.Quarantine (the event
// store's words, passed through), and the fold's, which checks events delivered undecoded
// the same way and in the same order, so that a rebuild quarantines what catching up does.
const (
	QuarantineBadSubject  = "subject is not a person key"
	QuarantineUndecodable = "not a protobuf event"
	QuarantineNoID        = "event has no id"
	QuarantineBadKey      = "envelope person key is not a safe subject token"
	QuarantineOtherPerson = "envelope names another person than its subject"
	QuarantineNoPayload   = "event has no payload"
	QuarantineMissing     = "missing from the stream"
	// QuarantineFoldFault is the fold's alone (the event store never gives it): the rules
	// panicked folding the event, a bug in them (rules.State.Faults). The event stays stored
	// and in its person's history, and every fold leaves it out of the person's state.
	QuarantineFoldFault = rules.FaultReason
)

// ReplayOptions bounds a replay of the stream.
type ReplayOptions struct {
	// From is the first sequence to deliver; 0 means 1.
	From uint64
	// To is the last sequence to deliver; 0 means the stream's last sequence when the replay
	// starts.
	To uint64
	// RecordedUntil, when not zero, leaves out every event recorded after it (the as-of
	// cut-off). The feed applies it; projections never read recorded time to filter.
	RecordedUntil time.Time
	// Undecoded says the consumer needs only Seq, PersonKey and Raw (a rebuild's first pass
	// stores events and decodes them when it folds): the feed may leave Event nil. Never
	// set with RecordedUntil.
	Undecoded bool
}

// Feed is the part of the event stream the projections read. *eventstore.Store satisfies it
// through the small adapter in internal/feed; tests use a SliceFeed.
//
// Replay yields records in increasing sequence order, never a sequence twice, and stops at
// the first error (yielding it). It must be safe to call Replay and LastSeq from several
// goroutines.
type Feed interface {
	// Replay yields the stream's records within opt.
	Replay(ctx context.Context, opt ReplayOptions) iter.Seq2[Record, error]
	// LastSeq returns the sequence of the stream's last event (0 when empty).
	LastSeq(ctx context.Context) (uint64, error)
}

// Waiter is implemented by feeds that can block until the stream grows. The runtime uses it
// when live, and falls back to polling LastSeq every Options.PollInterval otherwise.
type Waiter interface {
	// Wait returns when the stream's last sequence is above after, or when ctx is done
	// (returning ctx.Err()).
	Wait(ctx context.Context, after uint64) error
}

// SliceFeed is a Feed over records held in memory, for tests and for offline replays of an
// exported stream. Records must be in increasing sequence order. The zero value is an empty
// stream; Add appends.
type SliceFeed struct {
	mu      sync.Mutex // guards records and grown
	records []Record
	grown   chan struct{}
}

// NewSliceFeed returns a feed over records (kept, not copied).
func NewSliceFeed(records []Record) *SliceFeed {
	return &SliceFeed{records: records}
}

// Add appends records to the feed and wakes waiters. Their sequences must follow the last one.
func (f *SliceFeed) Add(records ...Record) {
	f.mu.Lock()
	f.records = append(f.records, records...)
	if f.grown != nil {
		close(f.grown)
		f.grown = nil
	}
	f.mu.Unlock()
}

// LastSeq returns the last record's sequence.
func (f *SliceFeed) LastSeq(ctx context.Context) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.records) == 0 {
		return 0, nil
	}
	return f.records[len(f.records)-1].Seq, nil
}

// Wait blocks until a record above after exists or ctx is done.
func (f *SliceFeed) Wait(ctx context.Context, after uint64) error {
	for {
		f.mu.Lock()
		if n := len(f.records); n > 0 && f.records[n-1].Seq > after {
			f.mu.Unlock()
			return nil
		}
		if f.grown == nil {
			f.grown = make(chan struct{})
		}
		ch := f.grown
		f.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Replay yields the records within opt. The RecordedUntil cut-off compares the envelope's
// recorded_at, as the event store does.
func (f *SliceFeed) Replay(ctx context.Context, opt ReplayOptions) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		f.mu.Lock()
		recs := f.records
		f.mu.Unlock()
		from := max(opt.From, 1)
		to := opt.To
		if to == 0 && len(recs) > 0 {
			to = recs[len(recs)-1].Seq
		}
		i := sort.Search(len(recs), func(i int) bool { return recs[i].Seq >= from })
		for ; i < len(recs) && recs[i].Seq <= to; i++ {
			if err := ctx.Err(); err != nil {
				yield(Record{}, err)
				return
			}
			r := recs[i]
			if !opt.RecordedUntil.IsZero() && r.Quarantine == "" && r.Event.GetRecordedAt().AsTime().After(opt.RecordedUntil) {
				continue
			}
			if opt.Undecoded && r.Event != nil && r.Quarantine == "" {
				// As a stream feed does: the encoding and the person, no decoded event.
				raw := r.Raw
				if raw == nil {
					var err error
					if raw, err = marshalOpt.Marshal(r.Event); err != nil {
						yield(Record{}, err)
						return
					}
				}
				r = Record{Seq: r.Seq, Raw: raw, PersonKey: r.Event.GetPersonKey()}
			}
			if !yield(r, nil) {
				return
			}
		}
	}
}

var (
	_ Feed   = (*SliceFeed)(nil)
	_ Waiter = (*SliceFeed)(nil)
)
