package eventstore

import "github.com/nats-io/nats.go"

// Notify calls fn (on a NATS delivery goroutine; it must not block) whenever an event may
// have been appended to the stream by any writer, so that live readers can wake up instead
// of polling. It carries no data and may coalesce or, under load, drop signals: readers
// still check LastSeq. The returned stop function ends the notifications.
func (s *Store) Notify(fn func()) (stop func() error, err error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	sub, err := s.nc.Subscribe(streamSubjects, func(*nats.Msg) { fn() })
	if err != nil {
		return nil, err
	}
	// Only the fact of a message matters; a slow reader drops the rest.
	_ = sub.SetPendingLimits(1024, 64<<20)
	return sub.Unsubscribe, nil
}
