package projections

// Applying events as they come: the live path, one transaction per batch of records.

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// Skipped returns how many events were skipped because they carry no person key.
func (db *DB) Skipped() uint64 {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.skipped
}

// Apply folds records into every model in one transaction, together with the new checkpoint.
// Records at or below the checkpoint are skipped, so applying the same records again changes
// nothing. It returns the checkpoint after the call.
//
// The cached person lists of the kommuner a commit changes are set aside before the commit
// and follow it after (rowsChanging, updateRowCache). Found on 2026-12-07 (a CI run of
// TestDamage_KeyBlockCutErase): between the commit and the cache's update a reader that saw
// the new checkpoint was served the list cached before it, an erased person with its
// national id, so ListPersons with min_sequence could answer rows older than the sequence
// (TestApply_ListBetweenCommitAndCache).
func (db *DB) Apply(recs []Record) (uint64, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.bolt == nil {
		return 0, ErrClosed
	}
	var ckpt uint64
	var touched map[string]*cached
	var order []string
	changed := map[string][]rowChange{}
	db.newQuarantined, db.addedQuarantines, db.newUnknownKinds = 0, 0, db.newUnknownKinds[:0]
	err := db.update(func(tx *bolt.Tx) error {
		var err error
		ckpt, touched, order, err = db.applyTx(tx, recs, changed)
		if err == nil && len(db.newUnknownKinds) > 0 {
			err = db.keepUnknownKinds(tx, db.newUnknownKinds)
		}
		if err == nil {
			// Before the commit: from it on, a reader must not be served a list cached
			// before it (updateRowCache follows only after it).
			db.rowsChanging(changed)
		}
		return err
	})
	if err == nil {
		db.quarantined.Add(uint64(db.newQuarantined))
		db.quarantinesAdded.Add(db.addedQuarantines)
		db.noteUnknownKinds(db.newUnknownKinds)
	}
	if afterApplyCommit != nil {
		afterApplyCommit()
	}
	if len(changed) > 0 {
		db.updateRowCache(changed, err == nil)
	}
	if err != nil {
		// States in the cache were advanced past what was committed.
		db.cache = nil
		return 0, err
	}
	if db.cacheMax > 0 {
		if db.cache == nil || len(db.cache)+len(touched) > db.cacheMax {
			db.cache = make(map[string]*cached, min(db.cacheMax, 4*len(touched)+16))
		}
		// At most cacheMax states stay: a large batch touches more persons than that, and
		// keeping them all would hold two batches' worth of states at the next one.
		for _, k := range order {
			if len(db.cache) >= db.cacheMax {
				break
			}
			db.cache[k] = touched[k]
		}
	}
	return ckpt, nil
}

// Advance moves every model's checkpoint to seq when it is below, for a range the feed had no
// events in. It returns the checkpoint after the call.
func (db *DB) Advance(seq uint64) (uint64, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.bolt == nil {
		return 0, ErrClosed
	}
	var ckpt uint64
	err := db.update(func(tx *bolt.Tx) error {
		ckpt = checkpointTx(tx)
		if seq <= ckpt {
			return nil
		}
		ckpt = seq
		for _, m := range Models {
			if err := writeMeta(tx, m, seq); err != nil {
				return err
			}
		}
		return nil
	})
	return ckpt, err
}

var marshalOpt = proto.MarshalOptions{Deterministic: true}

// afterApplyCommit, when set (a test), runs in Apply after the commit and before the cached
// person lists follow it.
var afterApplyCommit func()

func (db *DB) applyTx(tx *bolt.Tx, recs []Record, changed map[string][]rowChange) (uint64, map[string]*cached, []string, error) {
	ckpt := checkpointTx(tx)
	start := ckpt
	evb := bucket(tx, bucketEvents)
	// Sequences only grow, so pages can be filled completely.
	evb.setFillPercent(1.0)
	touched := make(map[string]*cached)
	var order []string
	var ids []idEntry
	var erased map[string]bool // persons an erasure of recs applies to
	eb := eventBlockWriter{b: evb}
	for _, rec := range recs {
		if rec.Seq <= ckpt {
			continue
		}
		ckpt = rec.Seq
		if rec.Quarantine != "" {
			if err := db.quarantine(tx, rec.Seq, rec.Quarantine); err != nil {
				return 0, nil, nil, err
			}
			continue
		}
		pk := rec.Event.GetPersonKey()
		if pk == "" || bytes.IndexByte([]byte(pk), 0) >= 0 {
			db.skipped++
			db.logger.Warn("event without a usable person key skipped", "stream_seq", rec.Seq)
			continue
		}
		c := touched[pk]
		if c == nil {
			var err error
			if c, err = db.load(tx, pk); err != nil {
				return 0, nil, nil, err
			}
			touched[pk] = c
			order = append(order, pk)
		}
		data := rec.Raw
		if data == nil {
			var err error
			if data, err = marshalOpt.Marshal(rec.Event); err != nil {
				return 0, nil, nil, fmt.Errorf("projections: encode event at seq %d: %w", rec.Seq, err)
			}
		}
		if err := eb.add(rec.Seq, data); err != nil {
			return 0, nil, nil, err
		}
		c.seqs = append(c.seqs, rec.Seq)
		// Stored as it came (sealed); folded opened.
		if err := db.openEvent(rec.Event); err != nil {
			return 0, nil, nil, err
		}
		if rec.Event.GetPersonErased() != nil {
			if erased == nil {
				erased = map[string]bool{}
			}
			erased[pk] = true
		}
		if nirv1.HoldsUnknown(rec.Event) {
			db.newUnknownKinds = append(db.newUnknownKinds, rec.Seq) // counted once committed
		}
		c.fresh = append(c.fresh, rules.LoggedEvent{Seq: rec.Seq, Event: rec.Event})
		if id := rec.Event.GetId(); id != "" {
			ids = append(ids, idEntry{key: idKey(id), seq: rec.Seq})
		}
	}
	if err := eb.flush(); err != nil {
		return 0, nil, nil, err
	}
	if err := putIDs(tx, ids); err != nil {
		return 0, nil, nil, err
	}
	if ckpt == start {
		return ckpt, nil, nil, nil
	}
	peb := bucket(tx, bucketPEvents)
	sd := statDeltas{}
	for _, pk := range order {
		c := touched[pk]
		if err := addPersonSeqs(peb, pk, c.seqs); err != nil {
			return 0, nil, nil, err
		}
		c.seqs = nil
		if err := db.foldFresh(tx, c); err != nil {
			return 0, nil, nil, err
		}
		nd := derive(c.st)
		was := c.der
		if erased[pk] {
			// An erasure's row is written whatever the fold before it derived: the file
			// may hold a row folded while a data key still opened (the national id and
			// birth date), which a fold now, that cannot open the key (damaged on disk),
			// derives as unreadable: the same bytes as the erased row.
			w := *was
			w.rowEnc = nil
			was = &w
		}
		old := was.row
		if old != nil && (nd.row == nil || nd.row.Kommune != old.Kommune) {
			changed[old.Kommune] = append(changed[old.Kommune], rowChange{pk: pk})
		}
		if nd.row != nil && (old == nil || old.Kommune != nd.row.Kommune || !bytes.Equal(was.rowEnc, nd.rowEnc)) {
			changed[nd.row.Kommune] = append(changed[nd.row.Kommune], rowChange{pk: pk, row: nd.row})
		}
		if err := writeDiff(tx, pk, was, nd, sd, nil); err != nil {
			return 0, nil, nil, fmt.Errorf("projections: person models at seq %d: %w", ckpt, err)
		}
		c.der = nd
	}
	if err := sd.flush(tx); err != nil {
		return 0, nil, nil, fmt.Errorf("projections: statistics at seq %d: %w", ckpt, err)
	}
	for _, m := range Models {
		if err := writeMeta(tx, m, ckpt); err != nil {
			return 0, nil, nil, err
		}
	}
	return ckpt, touched, order, nil
}

// addPersonSeqs appends sequences to a person's event list: uvarint deltas from the previous
// sequence, so the list stays small and in order.
func addPersonSeqs(b bkt, pk string, seqs []uint64) error {
	old := b.Get([]byte(pk))
	last := lastSeq(old)
	v := make([]byte, len(old), len(old)+len(seqs)*2)
	copy(v, old)
	for _, s := range seqs {
		v = binary.AppendUvarint(v, s-last)
		last = s
	}
	return b.Put([]byte(pk), v)
}

// lastSeq returns the last sequence of an encoded list.
func lastSeq(v []byte) uint64 {
	var s uint64
	for len(v) > 0 {
		d, n := binary.Uvarint(v)
		if n <= 0 {
			break
		}
		s += d
		v = v[n:]
	}
	return s
}

// personSeqs decodes a person's event list.
func personSeqs(v []byte) []uint64 {
	// As many as the varints' last bytes: one allocation, not one for every doubling.
	n := 0
	for _, b := range v {
		if b < 0x80 {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	out := make([]uint64, 0, n)
	var s uint64
	for len(v) > 0 {
		d, n := binary.Uvarint(v)
		if n <= 0 {
			break
		}
		s += d
		out = append(out, s)
		v = v[n:]
	}
	return out
}

// load returns a person's folded state: from the cache, or folded from the stored events.
func (db *DB) load(tx *bolt.Tx, pk string) (*cached, error) {
	if c, ok := db.cache[pk]; ok {
		delete(db.cache, pk) // re-inserted after commit; gone if the commit fails
		return c, nil
	}
	st, err := db.foldStored(tx, pk)
	if err != nil {
		return nil, err
	}
	// Recorded when they were first folded; again in case that was by a reader (State).
	if err := db.quarantineFaults(tx, st.Faults); err != nil {
		return nil, err
	}
	return &cached{st: st, der: derive(st)}, nil
}

// State folds one person's stored events with the regelmotor (the same state the models were
// derived from). It returns ErrNotFound when the person has no events.
func (db *DB) State(pk string) (*rules.State, error) {
	var st *rules.State
	err := db.view(func(tx *bolt.Tx) error {
		if !hasPerson(tx, pk) {
			return ErrNotFound
		}
		var err error
		st, err = db.foldStored(tx, pk)
		return err
	})
	return st, err
}
