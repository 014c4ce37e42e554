package eventstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// RestoreTarget checks, before a restore writes anything, that the register holds nothing
// a restore would write (nor a restore's that did not finish: ErrRestoreUnfinished): no message in the event stream, the checkpoint stream or the
// data-key bucket's stream (each may be missing). A restore that found a checkpoint or a
// data key there only after storing every event would fail half-way, leaving the events
// stored and a second attempt refused as not empty. The error (ErrNotEmpty) names what each
// holds.
func (s *Store) RestoreTarget(ctx context.Context) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	// What a restore stored before it was stopped is not a register: said as such (the
	// register's own connection may not delete streams; nirctl restore --data starts over
	// by removing the store directory).
	if err := s.UnfinishedRestore(ctx); err != nil {
		return err
	}
	// The leader's: a replica that lags may answer an occupied stream as empty.
	last, err := s.LeaderLastSeq(ctx)
	if err != nil {
		return err
	}
	var held []string
	if last != 0 {
		held = append(held, fmt.Sprintf("%s holds %d messages", StreamName, last))
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	for _, name := range []string{CheckpointStreamName, keyStream} {
		st, err := s.js.Stream(ctx, name)
		if errStreamNotFound(err) {
			continue
		}
		if err != nil {
			return s.wrap(fmt.Errorf("eventstore: stream %s: %w", name, err))
		}
		if n := st.CachedInfo().State.LastSeq; n > 0 {
			held = append(held, fmt.Sprintf("%s holds %d messages", name, n))
		}
	}
	if len(held) > 0 {
		return fmt.Errorf("%w: %s; restore only into an empty data directory or cluster", ErrNotEmpty, strings.Join(held, ", "))
	}
	return nil
}

// MetaRestoreUnfinished is the event stream's metadata entry BeginRestore sets before a
// restore writes anything and FinishRestore removes as its last step: while it is there,
// the register holds part of a backup (some events, or the events without their data keys
// or checkpoints), and nird refuses to start on it (UnfinishedRestore).
const MetaRestoreUnfinished = "nir_restore_unfinished"

// ErrRestoreUnfinished is the error of a register that a restore began and did not finish.
var ErrRestoreUnfinished = errors.New("eventstore: a restore into this register did not finish")

// BeginRestore marks the event stream as being restored into (MetaRestoreUnfinished, with
// the time), before the restore's first write.
func (s *Store) BeginRestore(ctx context.Context) error {
	return s.setMeta(ctx, MetaRestoreUnfinished, time.Now().UTC().Format(time.RFC3339))
}

// FinishRestore removes BeginRestore's mark: the restore's last step.
func (s *Store) FinishRestore(ctx context.Context) error {
	return s.setMeta(ctx, MetaRestoreUnfinished, "")
}

// UnfinishedRestore returns ErrRestoreUnfinished, saying what to do, when a restore into the
// register began and did not finish (killed, or failed half-way): it lacks events, data
// keys or checkpoints of the backup, and a register started on it would read persons' ids
// as lost, or serve fewer events than acknowledged.
func (s *Store) UnfinishedRestore(ctx context.Context) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	began, err := s.restoreMark(ctx)
	if err != nil || began == "" {
		return err
	}
	return fmt.Errorf("%w (begun %s; the stream %s has the metadata %s): it holds part of a backup only. Run nirctl restore --data again into its data directory (it starts over), or in a cluster delete the streams %s, %s and %s (nats stream rm, as a user that may) and restore again",
		ErrRestoreUnfinished, began, StreamName, MetaRestoreUnfinished, StreamName, CheckpointStreamName, keyStream)
}

func (s *Store) restoreMark(ctx context.Context) (string, error) {
	v, err := s.streamMeta(ctx, MetaRestoreUnfinished)
	return v, s.wrap(err)
}

// setMeta sets (v == "": removes) the event stream's metadata entry k.
func (s *Store) setMeta(ctx context.Context, k, v string) error {
	return s.updateMeta(ctx, k, func(cur string) (string, bool) { return v, cur != v })
}
