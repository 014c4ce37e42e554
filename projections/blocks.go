package projections

// The stored-event block format: each person's events, as stored on the stream, in blocks
// of eventsPerBlock under the history model.

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// personRawView returns a person's stored sequences and encoded events. The encodings point
// into tx's pages: valid until tx writes (a write may remap the file) or ends.
// With blocks (blockTable, may be nil), the events' blocks are taken from it.
func personRawView(tx *bolt.Tx, blocks *blockTable, pk string) ([]uint64, [][]byte, error) {
	seqs := personSeqs(bucket(tx, bucketPEvents).Get([]byte(pk)))
	raws := make([][]byte, 0, len(seqs))
	err := personStored(tx, blocks, seqs, func(_ uint64, v []byte) error {
		raws = append(raws, v)
		return nil
	})
	return seqs, raws, err
}

// personStored calls fn with each stored event at seqs (a person's, in stream order): its
// sequence and its encoding, valid only during the call (it points into tx's pages). With
// blocks (may be nil), the blocks are taken from it instead of looked up in the bucket.
func personStored(tx *bolt.Tx, blocks *blockTable, seqs []uint64, fn func(seq uint64, v []byte) error) error {
	evb := bucket(tx, bucketEvents)
	var key [8]byte
	var block, rest []byte // rest: the block after the last entry found in it
	blockNo := ^uint64(0)
	for _, seq := range seqs {
		if seq/eventsPerBlock != blockNo {
			blockNo = seq / eventsPerBlock
			if blocks != nil {
				block = blocks.get(blockNo)
			} else {
				binary.BigEndian.PutUint64(key[:], blockNo)
				block = evb.getBlock(key[:])
			}
			rest = block
		}
		// A block's entries and a person's sequences both ascend, so the next entry is
		// looked for after the last one found, not from the block's start again.
		v, after := findInBlock(rest, seq)
		if v == nil {
			v, after = findInBlock(block, seq)
		}
		rest = after
		if v == nil {
			return fmt.Errorf("%w: event at seq %d of a person is missing", ErrCorrupt, seq)
		}
		if err := fn(seq, entryData(seq, v)); err != nil {
			return err
		}
	}
	return nil
}

// blockTable keeps the blocks of the events bucket a read transaction has looked up, by
// number: a fold that reads many persons' events looks each block up once, not once for
// every event (a search from the bucket's root, 0.9 of 13 CPU-seconds of a rebuild). A
// block is looked up when first asked for: walking the whole bucket for every chunk of a
// fold touched every block's pages (and, with the kernel's fault-around, most of the file)
// at 3.3 M events.
type blockTable struct {
	evb    bkt
	blocks [][]byte // nil: not looked up; empty: absent
}

// blocksOf returns an empty table of the events bucket's blocks as tx sees them; nil when
// the bucket's last key is not a block number, or lies more than blockTableMax blocks on (a
// damaged key): the caller then looks blocks up one by one.
func blocksOf(tx *bolt.Tx) *blockTable {
	evb := bucket(tx, bucketEvents)
	k, _ := evb.b.Cursor().Last()
	if len(k) != 8 || binary.BigEndian.Uint64(k) >= blockTableMax {
		return nil
	}
	return &blockTable{evb: evb, blocks: make([][]byte, binary.BigEndian.Uint64(k)+1)}
}

// blockTableMax bounds the blocks a blockTable holds (a stream of up to 64 * 2^24 events).
const blockTableMax = 1 << 24

// get returns block no, nil if there is none.
func (t *blockTable) get(no uint64) []byte {
	if no >= uint64(len(t.blocks)) {
		return nil
	}
	if t.blocks[no] == nil {
		var key [8]byte
		binary.BigEndian.PutUint64(key[:], no)
		b := t.evb.getBlock(key[:])
		if b == nil {
			b = []byte{}
		}
		t.blocks[no] = b
	}
	return t.blocks[no]
}

// foldStored folds a person's stored events with the regelmotor, opened (DBOptions.Open).
func (db *DB) foldStored(tx *bolt.Tx, pk string) (*rules.State, error) {
	var les []rules.LoggedEvent
	err := personEvents(tx, pk, func(seq uint64, ev *nirv1.Event) error {
		if err := db.openEvent(ev); err != nil {
			return err
		}
		les = append(les, rules.LoggedEvent{Seq: seq, Event: ev})
		return nil
	})
	st := rules.NewState(pk)
	st.ApplyAll(les)
	return st, err
}

// openEvent opens the sealed fields of ev in place (DBOptions.Open).
func (db *DB) openEvent(ev *nirv1.Event) error {
	if db.open == nil {
		return nil
	}
	if err := db.open(ev); err != nil {
		return fmt.Errorf("projections: open the sealed fields of event %s: %w", ev.GetId(), err)
	}
	return nil
}

// personEvents calls fn for each stored event of a person in stream order.
func personEvents(tx *bolt.Tx, pk string, fn func(seq uint64, ev *nirv1.Event) error) error {
	return personStored(tx, nil, personSeqs(bucket(tx, bucketPEvents).Get([]byte(pk))), func(seq uint64, v []byte) error {
		ev, err := nirv1.UnmarshalEvent(v)
		if err != nil {
			return fmt.Errorf("%w: event of person at seq %d: %v", ErrCorrupt, seq, err)
		}
		return fn(seq, ev)
	})
}

// eventsPerBlock is how many consecutive sequences share one value of the events bucket.
// Packing events cuts the number of bbolt puts per event from one to a 64th, which was the
// largest cost of a rebuild.
const eventsPerBlock = 64

// A block is a series of entries: uvarint(seq), uvarint(len), the encoded event followed by
// its checksum (appendEntry; len counts both).

// nextEntry splits the first entry off a block: its sequence, the entry (the encoded event
// and its checksum: see entryData) and the rest of the block; ok is false at the block's end
// or where the block does not decode.
func nextEntry(b []byte) (seq uint64, entry, rest []byte, ok bool) {
	seq, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, nil, false
	}
	b = b[n:]
	l, n := binary.Uvarint(b)
	if n <= 0 || uint64(len(b)-n) < l {
		return 0, nil, nil, false
	}
	return seq, b[n : n+int(l)], b[n+int(l):], true
}

// findInBlock returns the entry of seq in a block (the encoded event and its checksum: see
// entryData), nil if absent, and the block after it.
func findInBlock(b []byte, seq uint64) (entry, rest []byte) {
	for len(b) > 0 {
		s, e, r, ok := nextEntry(b)
		if !ok {
			return nil, nil
		}
		if s == seq {
			return e, r
		}
		b = r
	}
	return nil, nil
}

// eventBlockWriter appends events, in increasing sequence order, to the blocks of the events
// bucket, writing each block once per transaction.
type eventBlockWriter struct {
	b     bkt
	block uint64
	buf   []byte
	open  bool
}

func (w *eventBlockWriter) add(seq uint64, data []byte) error {
	if blk := seq / eventsPerBlock; !w.open || blk != w.block {
		if err := w.flush(); err != nil {
			return err
		}
		w.block, w.open = blk, true
		var key [8]byte
		binary.BigEndian.PutUint64(key[:], blk)
		// A block begun by an earlier transaction is continued.
		w.buf = append(w.buf[:0], w.b.getBlock(key[:])...)
	}
	w.buf = appendEntry(w.buf, seq, data)
	return nil
}

func (w *eventBlockWriter) flush() error {
	if !w.open {
		return nil
	}
	w.open = false
	var key [8]byte
	binary.BigEndian.PutUint64(key[:], w.block)
	// bbolt keeps a reference to the value until commit: hand it its own copy.
	return w.b.putBlock(key[:], append([]byte(nil), w.buf...))
}

// hasPerson reports whether the person has stored events.
func hasPerson(tx *bolt.Tx, pk string) bool {
	return bucket(tx, bucketPEvents).Get([]byte(pk)) != nil
}
