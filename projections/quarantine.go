package projections

// Quarantine: messages on the stream that are not usable events, kept out of every model.

import (
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/introreg/nir/rules"
)

// quarantine records that the stream message at seq is not a usable event, and logs it by
// its sequence (never its content).
func (db *DB) quarantine(tx *bolt.Tx, seq uint64, reason string) error {
	b := bucket(tx, bucketQuarantine)
	if b.Get(u64(seq)) != nil {
		return nil
	}
	db.logger.Warn("quarantined stream message skipped by the read models: not a usable event", "stream_seq", seq, "reason", reason)
	db.newQuarantined++
	db.addedQuarantines++
	return b.Put(u64(seq), []byte(reason))
}

// quarantineFaults quarantines the events whose fold panicked (rules.State.Faults) as
// QuarantineFoldFault. They stay stored: every fold of the person meets them, and leaves them
// out, again.
func (db *DB) quarantineFaults(tx *bolt.Tx, faults []rules.Fault) error {
	for _, f := range faults {
		n := db.newQuarantined
		if err := db.quarantine(tx, f.Seq, QuarantineFoldFault); err != nil {
			return err
		}
		if db.newQuarantined > n {
			// The panic's type, or a runtime error's own text: never the value's content.
			db.logger.Error("the rules panicked folding an event, a bug in nird: the event is left out of its person's state", "stream_seq", f.Seq, "panic", f.Panic)
		}
	}
	return nil
}

// foldFresh folds the person's events of the transaction into its state, and makes the
// quarantine hold the state's faults: a retraction's re-fold finds them anew
// (rules.State.Faults), so an event faulted before may count now, and its entry goes, as a
// rebuild would never have made it.
func (db *DB) foldFresh(tx *bolt.Tx, c *cached) error {
	before := c.st.Faults
	c.st.ApplyAll(c.fresh)
	c.fresh = nil
	if err := db.quarantineFaults(tx, c.st.Faults); err != nil {
		return err
	}
	b := bucket(tx, bucketQuarantine)
	for _, f := range before {
		if c.st.Faulted(f.EventID) || string(b.Get(u64(f.Seq))) != QuarantineFoldFault {
			continue
		}
		db.logger.Info("a quarantined event is folded again: the rules no longer panic on it where it now stands", "stream_seq", f.Seq)
		db.newQuarantined--
		if err := b.Delete(u64(f.Seq)); err != nil {
			return err
		}
	}
	return nil
}

// Quarantine is a stream message the read models skipped because it is not a usable event.
type Quarantine struct {
	// Seq is its stream sequence (nats stream get NIR_EVENTS <seq> shows it).
	Seq uint64 `json:"seq"`
	// Reason is one of the Quarantine reasons.
	Reason string `json:"reason"`
}

// QuarantinedCount returns how many stream messages the models have quarantined.
func (db *DB) QuarantinedCount() uint64 { return db.quarantined.Load() }

// keepUnknownKinds writes in tx what noteUnknownKinds counts of seqs (the events in a
// transaction that this build cannot wholly read, nirv1.HoldsUnknown): the file's count of
// them and the first one's sequence (FirstUnknownKind). Counted in memory alone, an older
// nird restarted on its file said none, its alert went quiet and its regelmotor ran again,
// while its models still missed them.
func (db *DB) keepUnknownKinds(tx *bolt.Tx, seqs []uint64) error {
	meta := bucket(tx, bucketMeta)
	if err := meta.Put(unknownKindsKey, u64(db.unknownKinds.Load()+uint64(len(seqs)))); err != nil {
		return err
	}
	if first, lower := db.lowerFirst(seqs); lower {
		return meta.Put(firstUnknownKey, u64(first))
	}
	return nil
}

// lowerFirst returns the first of seqs, and whether it comes before FirstUnknownKind (or
// there is none yet): the first such sequence once seqs are counted.
func (db *DB) lowerFirst(seqs []uint64) (uint64, bool) {
	first, had := slices.Min(seqs), db.firstUnknown.Load()
	return first, had == 0 || first < had
}

// noteUnknownKinds counts, and logs at most once a minute, the events at seqs that this
// build cannot wholly read, once keepUnknownKinds' transaction commits, and marks the first
// (FirstUnknownKind). nird's append path stores no such event, so a newer nird wrote it (a
// rolling upgrade: TestNird_RollingUpgrade): the fold leaves it, or its new fields, out of
// its person's state, as what it cannot judge, so this nird's read models miss it until it
// is upgraded, and its regelmotor stops (RegelmotorPass). It is kept in the person's history
// and is no quarantine: the upgraded nird folds it.
func (db *DB) noteUnknownKinds(seqs []uint64) {
	for _, seq := range seqs {
		db.unknownKinds.Add(1)
		db.unknownKindLog.Note(db.logger, "stream_seq", seq)
	}
	if len(seqs) == 0 {
		return
	}
	if first, lower := db.lowerFirst(seqs); lower {
		db.firstUnknown.Store(first)
	}
}

// firstUnknownKey is the meta entry of FirstUnknownKind.
var firstUnknownKey = []byte("first-unknown-kind")

const unknownKindMsg = "an event of a kind or with fields this nird does not know (a newer nird wrote it): left out of its person's state, so this nird's read models miss it and its regelmotor stops; upgrade this nird"

// FirstUnknownKind returns the stream sequence of the first event this build cannot wholly
// read that the file's models have folded (noteUnknownKinds), kept in the file; 0 when none.
func (db *DB) FirstUnknownKind() uint64 { return db.firstUnknown.Load() }

// UnknownKinds returns how many events this build cannot wholly read the file's rebuild
// and Apply have met, kept in the file.
func (db *DB) UnknownKinds() uint64 { return db.unknownKinds.Load() }

// QuarantinesAdded returns how many quarantine entries Apply has added since the file was
// opened, those removed again (an event folded again after a retraction) included: a
// quarantine and its release between two looks leave QuarantinedCount as it was.
func (db *DB) QuarantinesAdded() uint64 { return db.quarantinesAdded.Load() }

// Quarantined returns the first limit quarantined messages in stream order (all when limit
// is 0 or less).
func (db *DB) Quarantined(limit int) ([]Quarantine, error) {
	var out []Quarantine
	err := db.view(func(tx *bolt.Tx) error {
		c := bucket(tx, bucketQuarantine).Cursor()
		for k, v := c.First(); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Next() {
			out = append(out, Quarantine{Seq: btou64(k), Reason: string(v)})
		}
		return nil
	})
	return out, err
}

// quarantinedAt reports whether the message at seq was quarantined.
func (db *DB) quarantinedAt(seq uint64) (ok bool, err error) {
	err = db.view(func(tx *bolt.Tx) error {
		ok = bucket(tx, bucketQuarantine).Get(u64(seq)) != nil
		return nil
	})
	return ok, err
}
