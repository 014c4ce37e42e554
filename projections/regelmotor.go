package projections

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// Appender appends the regelmotor's computed terminations through the registration path
// (supplied by cmd, e.g. nird's append with the system principal). Events carry deterministic
// ids (rules.TerminationID), so appending one that is already stored must be a no-op: that is
// what makes the worker safe across restarts and with several instances running.
type Appender interface {
	// AppendComputed appends the events. It may be called concurrently by several workers with
	// the same events.
	AppendComputed(ctx context.Context, events []*nirv1.Event) error
}

// RegelmotorOptions configure RunRegelmotor.
type RegelmotorOptions struct {
	// Interval between passes (default one minute).
	Interval time.Duration
	// Clock returns the current time (default time.Now); "today" is its date in Location.
	Clock func() time.Time
	// Location decides the calendar date (default rules.Norway).
	Location *time.Location
}

// DueTerminations returns the computed terminations due on now for every person whose due date
// (rules.NextDue, kept in the live models) is on or before now, as ready-to-append events.
func (db *DB) DueTerminations(now rules.Date) ([]*nirv1.Event, error) {
	var pks []string
	err := db.view(func(tx *bolt.Tx) error {
		c := bucket(tx, bucketDue).Cursor()
		limit := uint32(dateKey(now))
		seen := map[string]bool{}
		for k, _ := c.First(); len(k) > 4 && binary.BigEndian.Uint32(k[:4]) <= limit; k, _ = c.Next() {
			pk := string(k[4:])
			if !seen[pk] {
				seen[pk] = true
				pks = append(pks, pk)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []*nirv1.Event
	for _, pk := range pks {
		st, err := db.State(pk)
		if err != nil {
			return nil, fmt.Errorf("projections: regelmotor: fold person: %w", err)
		}
		out = append(out, rules.DueTerminations(st, now)...)
	}
	return out, nil
}

// RunRegelmotor is the regelmotor worker (DOMAIN.md Product decisions 5): every Interval it
// appends, through app, the computed terminations that have become due in the live models.
// It returns nil when ctx is done. A failed append is logged and retried on the next pass.
// Once the live models have folded an event this build cannot wholly read, it returns an
// error wrapping ErrUnknownKinds, having appended nothing more: the regelmotor is for a
// newer nird (cmd/nird gives its lease up).
func (p *Projector) RunRegelmotor(ctx context.Context, app Appender, opt RegelmotorOptions) error {
	if opt.Interval <= 0 {
		opt.Interval = time.Minute
	}
	if opt.Clock == nil {
		opt.Clock = time.Now
	}
	if opt.Location == nil {
		opt.Location = rules.Norway
	}
	logger := p.logger.With("worker", "regelmotor")
	for {
		today := rules.DateFromTime(opt.Clock().In(opt.Location))
		n, err := p.RegelmotorPass(ctx, app, today)
		if ctx.Err() == nil {
			p.countPass(n, err)
		}
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, ErrUnknownKinds):
			return err
		case err != nil:
			logger.Error("regelmotor pass failed", "err", err)
		case n > 0:
			logger.Info("computed terminations appended", "count", n, "date", today.String())
		}
		t := time.NewTimer(opt.Interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// countPass records a finished pass of the worker in the Stats: operators see that the
// regelmotor runs and succeeds (nird's nir_regelmotor_* metrics), not only that a nird holds
// its lease.
func (p *Projector) countPass(n int, err error) {
	p.stats.passes.Add(1)
	if err != nil {
		p.stats.failedPasses.Add(1)
	}
	p.stats.terminations.Add(uint64(n))
	p.stats.lastPassNanos.Store(uint64(time.Now().UnixNano()))
}

// RegelmotorPass runs one pass of the regelmotor worker for the date now and returns how many
// computed terminations it handed to app. It hands none, and fails with ErrUnknownKinds, once
// the live models have folded an event this build cannot wholly read (Stats.FirstUnknownKind):
// their persons were folded without it, or without its new fields, and may owe a termination
// a newer build would not compute.
func (p *Projector) RegelmotorPass(ctx context.Context, app Appender, now rules.Date) (int, error) {
	var evs []*nirv1.Event
	err := p.Use("", func(db *DB) error {
		if seq := db.FirstUnknownKind(); seq != 0 {
			return fmt.Errorf("%w (the first at stream sequence %d)", ErrUnknownKinds, seq)
		}
		var err error
		evs, err = db.DueTerminations(now)
		return err
	})
	if errors.Is(err, ErrUnavailable) {
		return 0, nil // the models are being rebuilt; the next pass sees them
	}
	if err != nil || len(evs) == 0 {
		return 0, err
	}
	if err := app.AppendComputed(ctx, evs); err != nil {
		return 0, fmt.Errorf("projections: regelmotor append: %w", err)
	}
	return len(evs), nil
}
