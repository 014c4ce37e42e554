package eventstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// orderedBatch is how many messages the ordered read hands from the subscription's goroutine
// to the reader at a time.
const orderedBatch = 256

// orderedIdle is how long the ordered read waits for a batch before it looks at what the
// subscription's goroutine holds. That goroutine hands fewer messages than a batch over only
// with the stream's last message (NumPending 0), and the server's NumPending goes on counting a
// message its store cannot read back (a record whose checksum fails, a damaged disk): after
// one it never reaches 0, and a read waited forever for the stream's last messages (a
// rebuild from the stream hung at its end; nirctl verify and backup hung).
const orderedIdle = 250 * time.Millisecond

// orderedMsg is one message of an ordered read with its metadata.
type orderedMsg struct {
	msg jetstream.Msg
	md  *jetstream.MsgMetadata
}

// ordered reads the stream from sequence from on through an ephemeral ordered consumer and
// calls fn with each message in stream order, on the caller's goroutine, until fn returns
// false or an error, or ctx ends. The consumer runs the stream past any bound: fn decides
// where to stop.
//
// The messages are taken on the subscription's own goroutine (Consume) and handed over in
// batches: the per-message iterator (Messages) cost 10–18 % more CPU for the same read, a
// channel hand-off and a select per message (`nirbench rebuild --persons 40000`, 2026-12-04).
// The ordered consumer recovers by itself from what it can (missed heartbeats, a consumer
// lost with its server, a gap); what it cannot recover from ends the read with an error.
//
// When no batch has come for orderedIdle, the read takes the messages the subscription's
// goroutine holds, fewer than a batch; when it holds none either, the read calls idle (if not
// nil), on the caller's goroutine too, and ends when idle returns false or an error. The
// server never delivers a message its store cannot read back, and a read bounded beyond the
// last one it can (a stream whose last message is damaged on disk) would otherwise wait for it
// forever: idle is where the caller finds out (replayConsumer, Export).
func (s *Store) ordered(ctx context.Context, from uint64, fn func(orderedMsg) (bool, error), idle func() (bool, error)) error {
	cctx, cancel := s.withTimeout(ctx)
	cons, err := s.js.OrderedConsumer(cctx, StreamName, jetstream.OrderedConsumerConfig{
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       max(from, 1),
		InactiveThreshold: 30 * time.Second,
	})
	cancel()
	if err != nil {
		return consumerError(err)
	}
	var (
		batches = make(chan []orderedMsg, 4)
		failed  = make(chan error, 1)
		done    = make(chan struct{})

		// mu guards batch and last. The handler runs on one goroutine at a time, except
		// around a reset of the consumer, when the last message of the consumer it
		// replaces may still be in hand.
		mu    sync.Mutex
		batch = make([]orderedMsg, 0, orderedBatch)
		last  uint64 // the last sequence taken
	)
	fail := func(err error) {
		select {
		case failed <- err:
		default:
		}
	}
	handle := func(msg jetstream.Msg) {
		md, err := msg.Metadata()
		if err != nil {
			fail(err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if md.Sequence.Stream <= last {
			return // delivered again after a reset
		}
		last = md.Sequence.Stream
		batch = append(batch, orderedMsg{msg: msg, md: md})
		if len(batch) < orderedBatch && md.NumPending > 0 {
			return
		}
		// A full batch, or the last message the stream holds now: hand it over.
		select {
		case batches <- batch:
		case <-done:
		}
		batch = make([]orderedMsg, 0, orderedBatch)
	}
	cc, err := cons.Consume(handle, jetstream.PullMaxMessages(replayDirectMax),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if terminal(err) {
				fail(err)
			}
		}))
	if err != nil {
		return consumerError(err)
	}
	defer func() {
		close(done)
		cc.Stop()
	}()
	// take returns the messages the handler holds, none while it is at work (it may hold mu
	// while it waits to hand a batch over) or while a batch waits (its messages come first);
	// empty is true when it holds none, is not at work and no batch waits.
	take := func() (b []orderedMsg, empty bool) {
		if !mu.TryLock() {
			return nil, false
		}
		defer mu.Unlock()
		if len(batches) > 0 || len(batch) == 0 {
			return nil, len(batches) == 0
		}
		b = batch
		batch = make([]orderedMsg, 0, orderedBatch)
		return b, false
	}
	run := func(b []orderedMsg) (more bool, err error) {
		for _, m := range b {
			if more, err = fn(m); err != nil || !more {
				return false, err
			}
		}
		return true, nil
	}
	tick := time.NewTicker(orderedIdle)
	defer tick.Stop()
	brought := false // a batch since the last tick
	for {
		select {
		case b := <-batches:
			brought = true
			if more, err := run(b); !more {
				return err
			}
		case <-tick.C:
			if brought {
				brought = false
				continue
			}
			b, empty := take()
			if len(b) > 0 {
				if more, err := run(b); !more {
					return err
				}
			} else if empty && idle != nil {
				if more, err := idle(); err != nil || !more {
					return err
				}
			}
		case err := <-failed:
			return err
		case <-cc.Closed():
			return fmt.Errorf("ordered consumer stopped: %w", nats.ErrConnectionClosed)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// terminal reports whether an error an ordered consumer reports ends the read: the stream or
// the connection is gone, or the server refused the consumer's requests. The rest (missed
// heartbeats, a consumer deleted with its server, a leader change, no responders for a
// moment) the consumer recovers from by itself.
func terminal(err error) bool {
	return errors.Is(err, jetstream.ErrStreamNotFound) ||
		errors.Is(err, jetstream.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionClosed) ||
		errors.Is(err, jetstream.ErrBadRequest) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, nats.ErrPermissionViolation) ||
		errors.Is(err, nats.ErrAuthorization)
}
