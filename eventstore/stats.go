package eventstore

import "sync/atomic"

// Stats are the store's counters since Open, for metrics. All are monotonic.
type Stats struct {
	// Appends is the number of Append calls that returned.
	Appends uint64
	// Events is the number of events newly stored (duplicates not counted).
	Events uint64
	// Duplicates is the number of events found already stored (idempotent retries).
	Duplicates uint64
	// Conflicts is the number of Append calls that returned ErrConflict.
	Conflicts uint64
	// Batches is the number of atomic batches committed.
	Batches uint64
	// BatchEvents is the number of events committed in those batches (mean size =
	// BatchEvents / Batches).
	BatchEvents uint64
	// BatchSizes counts committed batches by events: bucket i holds sizes in
	// (2^(i-1), 2^i], bucket 0 size 1, the last bucket everything larger.
	BatchSizes [BatchSizeBuckets]uint64
	// PlainPublishes is the number of single-message publishes.
	PlainPublishes uint64
	// Republishes is the number of batches sent again without a conflicting member.
	Republishes uint64
	// RefusedBatches is the number of coalesced batches the server refused whole: for a
	// member's stale check, or for an event id it already holds.
	RefusedBatches uint64
	// Streamed is the number of events sent to the server while their batch was still
	// forming (staged there while the committer waited for more appends).
	Streamed uint64
	// Quarantined is the number of messages Read left out of a person's history because
	// they are not usable events (each time it read them).
	Quarantined uint64
	// LeaderFills is the number of sequences a Replay took from the stream leader because
	// the replicas answering it skipped them or lagged (consistent.go).
	LeaderFills uint64
	// Missing is the number of sequences a Replay delivered as missing: the stream leader
	// lost them from its store (ReasonMissing). Anything but 0 is damage to look into.
	Missing uint64
}

// BatchSizeBuckets is the number of Stats.BatchSizes buckets (1, 2, 4, ..., 1024).
const BatchSizeBuckets = 11

type stats struct {
	appends, events, duplicates, conflicts atomic.Uint64
	batches, batchEvents, plain, republish atomic.Uint64
	refused                                atomic.Uint64
	streamed, quarantined                  atomic.Uint64
	leaderFills, missing                   atomic.Uint64
	sizes                                  [BatchSizeBuckets]atomic.Uint64
}

func (st *stats) batch(n int) {
	st.batches.Add(1)
	st.batchEvents.Add(uint64(n))
	i := 0
	for size := 1; size < n && i < BatchSizeBuckets-1; size <<= 1 {
		i++
	}
	st.sizes[i].Add(1)
}

// Stats returns a snapshot of the store's counters.
func (s *Store) Stats() Stats {
	st := Stats{
		Appends:        s.stats.appends.Load(),
		Events:         s.stats.events.Load(),
		Duplicates:     s.stats.duplicates.Load(),
		Conflicts:      s.stats.conflicts.Load(),
		Batches:        s.stats.batches.Load(),
		BatchEvents:    s.stats.batchEvents.Load(),
		PlainPublishes: s.stats.plain.Load(),
		Republishes:    s.stats.republish.Load(),
		RefusedBatches: s.stats.refused.Load(),
		Streamed:       s.stats.streamed.Load(),
		Quarantined:    s.stats.quarantined.Load(),
		LeaderFills:    s.stats.leaderFills.Load(),
		Missing:        s.stats.missing.Load(),
	}
	for i := range st.BatchSizes {
		st.BatchSizes[i] = s.stats.sizes[i].Load()
	}
	return st
}
