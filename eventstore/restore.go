package eventstore

import (
	"context"
	"fmt"
	"strings"
)

// RestoreTarget checks, before a restore writes anything, that the register holds nothing
// a restore would write: no message in the event stream, the checkpoint stream or the
// data-key bucket's stream (each may be missing). A restore that found a checkpoint or a
// data key there only after storing every event would fail half-way, leaving the events
// stored and a second attempt refused as not empty. The error (ErrNotEmpty) names what each
// holds.
func (s *Store) RestoreTarget(ctx context.Context) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	last, err := s.LastSeq(ctx)
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
