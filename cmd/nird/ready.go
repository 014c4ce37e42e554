package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
)

// Readiness bounds, in events the read models are behind the stream.
const (
	// readyLag: nird first becomes ready when the models are this close to the stream's
	// end (after a start-up catch-up or a --demo load), so a page or query answered right
	// after /readyz says yes shows the register as it is, not as it was.
	readyLag = 100
	// staleLag: once ready, nird stays ready under load (a burst of appends puts the
	// models briefly behind) unless they fall this far behind, when they are stuck.
	staleLag = 50000
)

// readiness is /readyz: connected to NATS, and the read models served and caught up.
type readiness struct {
	connected  func() bool
	lastSeq    func(ctx context.Context) (uint64, error)
	checkpoint func() uint64
	// unserved reports that the live models are rebuilt from the stream and not served
	// (a foreign or damaged file): the old checkpoint stays meanwhile, so the lag alone said
	// ready while every read was refused as Unavailable.
	unserved func() bool
	caughtUp atomic.Bool
}

func (r *readiness) check(ctx context.Context) error {
	if !r.connected() {
		return errors.New("not connected to NATS")
	}
	if r.unserved() {
		return errors.New("read models rebuilt from the stream, not served until done")
	}
	last, err := r.lastSeq(ctx)
	if err != nil {
		return fmt.Errorf("stream: %w", err)
	}
	ckpt := r.checkpoint()
	lag := uint64(0)
	if last > ckpt {
		lag = last - ckpt
	}
	if !r.caughtUp.Load() {
		if lag > readyLag {
			return fmt.Errorf("read models catching up: %d events behind the stream", lag)
		}
		r.caughtUp.Store(true)
	}
	if lag > staleLag {
		return fmt.Errorf("read models %d events behind the stream", lag)
	}
	return nil
}
