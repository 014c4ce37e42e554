package eventstore

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Notify calls fn whenever events may have been stored, so that live readers (projection
// workers) can wake up instead of polling. fn runs on a delivery goroutine and must not
// block. It carries no data and may coalesce or, under load, drop signals: readers still
// check LastSeq now and then. The returned stop function ends the notifications; it is
// idempotent.
//
// A signal is sent only after the events are stored (a plain subscription to the stream's
// subjects would fire on a published message before it is stored, or on a message of an
// atomic batch that is then refused, and a reader woken that early finds nothing new):
// Appends of this Store signal as soon as they are acknowledged, and appends by any other
// writer arrive through an ephemeral ordered consumer that delivers only the headers of
// newly stored messages.
func (s *Store) Notify(fn func()) (stop func() error, err error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	ctx, cancel := s.withTimeout(context.Background())
	defer cancel()
	cons, err := s.js.OrderedConsumer(ctx, StreamName, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverNewPolicy,
		HeadersOnly:   true,
	})
	if err != nil {
		return nil, s.wrap(fmt.Errorf("eventstore: notify: %w", err))
	}
	cc, err := cons.Consume(func(jetstream.Msg) { fn() })
	if err != nil {
		return nil, s.wrap(fmt.Errorf("eventstore: notify: %w", err))
	}
	s.notifyMu.Lock()
	s.notifyID++
	id := s.notifyID
	if s.notify == nil {
		s.notify = map[uint64]func(){}
	}
	s.notify[id] = fn
	s.notifyMu.Unlock()
	return func() error {
		s.notifyMu.Lock()
		delete(s.notify, id)
		s.notifyMu.Unlock()
		cc.Stop()
		return nil
	}, nil
}

// notifyLocal signals this Store's Notify callbacks after an append was acknowledged.
func (s *Store) notifyLocal() {
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	for _, fn := range s.notify {
		fn()
	}
}
