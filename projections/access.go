package projections

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/introreg/nir/rules"
)

// PersonAccess is what the read models keep of one subject (a person, an id's claim, a
// person merged into another) for the access decisions made before its history is read: the
// persons bucket's value, derived from the subject's folded state like every model. A
// kommune's answer for another kommune's person is NotFound, the answer for a person nobody
// registered, and it must not take longer either: reading and folding the history first
// told the two apart by time (README "Kommune boundaries"). The value is small and of the
// same few fields for every person, so looking it up takes the time of a miss.
type PersonAccess struct {
	// LastSeq is the stream sequence of the subject's last event the models folded
	// (rules.State.LastSeq). A stream with a message on the subject after the models'
	// checkpoint holds what the models have not folded yet, and a server whose last
	// sequence is below LastSeq lacks what they folded: then the record is stale for a
	// decision on that stream's history (ingest's freshness check).
	LastSeq uint64
	// Successor is the person a lookup of the subject leads to (rules.State.Successor).
	Successor string
	// Erased is rules.State.Erased.
	Erased bool
	// Kommune is the bostedskommune of the person's row in the person list, "" when it has
	// none (not registered, merged into another).
	Kommune string
	// Reach is who reaches the person (rules.ReachOf).
	Reach rules.Reach
}

// encodeAccess is the persons bucket's value for the subject folded in st; nil for a state
// that folded no event.
func encodeAccess(st *rules.State, row *PersonRow) []byte {
	if st.LastSeq == 0 {
		return nil
	}
	a := PersonAccess{LastSeq: st.LastSeq, Successor: st.Successor(), Erased: st.Erased, Reach: rules.ReachOf(st)}
	if row != nil {
		a.Kommune = row.Kommune
	}
	return a.encode()
}

// encode: uvarint last sequence, flags (1: erased), then successor, kommune, and the current
// and former kommuner, each string with a uvarint length and each list with a uvarint count.
func (a *PersonAccess) encode() []byte {
	b := binary.AppendUvarint(nil, a.LastSeq)
	var flags byte
	if a.Erased {
		flags |= 1
	}
	b = append(b, flags)
	str := func(s string) { b = binary.AppendUvarint(b, uint64(len(s))); b = append(b, s...) }
	str(a.Successor)
	str(a.Kommune)
	for _, l := range [][]string{a.Reach.Current, a.Reach.Former} {
		b = binary.AppendUvarint(b, uint64(len(l)))
		for _, s := range l {
			str(s)
		}
	}
	return b
}

func (a *PersonAccess) decode(b []byte) error {
	bad := fmt.Errorf("%w: a person's access record does not decode", ErrCorrupt)
	num := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	str := func() (string, bool) {
		n, ok := num()
		if !ok || n > uint64(len(b)) {
			return "", false
		}
		s := string(b[:n])
		b = b[n:]
		return s, true
	}
	var ok bool
	if a.LastSeq, ok = num(); !ok || len(b) == 0 {
		return bad
	}
	a.Erased, b = b[0]&1 != 0, b[1:]
	if a.Successor, ok = str(); !ok {
		return bad
	}
	if a.Kommune, ok = str(); !ok {
		return bad
	}
	for _, l := range []*[]string{&a.Reach.Current, &a.Reach.Former} {
		n, ok := num()
		if !ok || n > uint64(len(b)) {
			return bad
		}
		*l = nil
		for range n {
			s, ok := str()
			if !ok {
				return bad
			}
			*l = append(*l, s)
		}
	}
	if len(b) != 0 {
		return bad
	}
	return nil
}

// personAccess reads the access record of subject pk in tx; false when the models hold none.
func personAccess(tx *bolt.Tx, pk string) (PersonAccess, bool, error) {
	v := bucket(tx, bucketPersons).Get([]byte(pk))
	if v == nil {
		return PersonAccess{}, false, nil
	}
	var a PersonAccess
	if err := a.decode(v); err != nil {
		return PersonAccess{}, false, err
	}
	return a, true, nil
}

// SubjectAccess is the access record of one subject a lookup walks (AccessChain).
type SubjectAccess struct {
	// Key is the subject's person key.
	Key string
	// Found is false when the models hold no record of the subject (no event of it, or
	// not folded yet); the record is then the zero value.
	Found bool
	PersonAccess
	// Checkpoint is the stream sequence the models had applied in the read transaction the
	// record was read in (DB.Checkpoint): the record folded every event of the subject up to
	// it, so a stream without messages on the subject after it holds what the record folded.
	// Not stored with the record.
	Checkpoint uint64
}

// AccessChain returns the access records of the subjects a lookup of pk walks, from one read
// transaction: pk's own, then its successor's, and so on, at most hops+1 of them. The chain
// ends at a subject without a successor or one the models do not hold (Found false).
func (db *DB) AccessChain(pk string, hops int) ([]SubjectAccess, error) {
	var out []SubjectAccess
	err := db.view(func(tx *bolt.Tx) (err error) {
		out, err = accessChain(tx, pk, hops, db.readCheckpoint(tx))
		return err
	})
	return out, err
}

// AccessChainRow is AccessChain and the person-list row of the subject the chain ends at (nil:
// none), from one read transaction: a decision on the records and the row it hands out are
// of one state of the person. Read in two, a move applied between them handed a former
// kommune the new kommune's row (review, 2026-12-06).
func (db *DB) AccessChainRow(pk string, hops int) ([]SubjectAccess, *PersonRow, error) {
	var (
		out []SubjectAccess
		row *PersonRow
	)
	err := db.view(func(tx *bolt.Tx) (err error) {
		if out, err = accessChain(tx, pk, hops, db.readCheckpoint(tx)); err != nil {
			return err
		}
		if end := out[len(out)-1]; end.Found && end.Successor == "" {
			row, err = listRow(tx, end.Key, end.PersonAccess)
		}
		return err
	})
	return out, row, err
}

func accessChain(tx *bolt.Tx, pk string, hops int, ckpt uint64) ([]SubjectAccess, error) {
	var out []SubjectAccess
	for range hops + 1 {
		a, ok, err := personAccess(tx, pk)
		if err != nil {
			return nil, err
		}
		out = append(out, SubjectAccess{Key: pk, Found: ok, PersonAccess: a, Checkpoint: ckpt})
		if !ok || a.Successor == "" {
			break
		}
		pk = a.Successor
	}
	return out, nil
}

// listRow reads the person-list row of person pk with the access record a in tx; nil when it
// has none.
func listRow(tx *bolt.Tx, pk string, a PersonAccess) (*PersonRow, error) {
	if a.Kommune == "" {
		return nil, nil
	}
	v := bucket(tx, bucketList).Get(listKey(a.Kommune, pk))
	if v == nil {
		return nil, nil
	}
	row := new(PersonRow)
	return row, row.decode(v)
}

// AccessChain is DB.AccessChain on the live read models; ErrUnavailable (matching) while
// they are not served.
func (p *Projector) AccessChain(pk string, hops int) (chain []SubjectAccess, err error) {
	err = p.Use("", func(db *DB) error {
		chain, err = db.AccessChain(pk, hops)
		return err
	})
	return chain, err
}
