package projections

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/oklog/ulid/v2"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/encoding/protowire"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// The event-id index: every stored event's id → the stream sequence it is stored at. The
// append path asks it whether an event id is already stored for another person once the
// stream's dedupe window no longer remembers the id (see EventPersons).
//
// Ids are ULIDs, and their entries are kept in blocks (idBlock): a block's key is the 16
// bytes of its first id's ULID, its value up to idsPerBlock entries, sorted, each the
// ULID's 16 bytes and the sequence (8 bytes, big-endian), and the checksum of the whole.
// An entry is in the block with the greatest key at most its id. A key of its own per
// entry cost a rebuild of 1.1 M events about a second of bbolt's Puts on one CPU and 40
// bytes an entry; a block is one Put of idsPerBlock entries, 24 bytes each. Where blocks
// split depends on the order ids came in, so Dump writes the entries, not the blocks.
//
// An id that does not parse as a ULID has a key of its own, 0xff and the id (a ULID's
// first byte is below 0x80 until the year 10889, so every such key sorts after every
// block), and the sequence as a uvarint.

// storedID returns the id of the event encoded in data as proto.Unmarshal reads it: field 1
// (id) of the bytes wire type, the last one given winning (one of another wire type is an
// unknown field to it). nil when there is none, or when the encoding's top level does not
// parse: such an event does not decode, and the fold quarantines it.
func storedID(data []byte) []byte {
	var id []byte
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return nil
		}
		data = data[n:]
		if num == 1 && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(data)
			if m < 0 {
				return nil
			}
			id, data = v, data[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, data)
		if m < 0 {
			return nil
		}
		data = data[m:]
	}
	return id
}

// storedIDKey is the index key of the event encoded in data (storedID), nil when it has no
// id.
func storedIDKey(data []byte) []byte {
	if id := storedID(data); len(id) > 0 {
		return idKey(string(id))
	}
	return nil
}

// isULIDKey reports whether an index key is a ULID's 16 bytes (idKey), not 0xff and an id.
func isULIDKey(key []byte) bool { return len(key) == 16 && key[0] != 0xff }

// idKey is the index key of an event id.
func idKey(id string) []byte {
	if u, err := ulid.ParseStrict(id); err == nil {
		return u[:]
	}
	return append([]byte{0xff}, id...)
}

// idEntry is one event id to index.
type idEntry struct {
	key []byte
	seq uint64
}

// putIDs writes index entries, in key order so that the bucket's pages are written in one
// pass. An id stored twice (under another person, before the append path refused that)
// keeps its lowest sequence, whichever order the entries come in (catching up writes them
// in stream order, a rebuild person by person).
func putIDs(tx *bolt.Tx, entries []idEntry) error {
	if len(entries) == 0 {
		return nil
	}
	slices.SortFunc(entries, func(a, b idEntry) int {
		if c := compareBytes(a.key, b.key); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	b := bucket(tx, bucketIDs)
	var ulids []ulidEntry
	var buf [binary.MaxVarintLen64]byte
	var prev []byte
	for _, e := range entries {
		if prev != nil && compareBytes(prev, e.key) == 0 {
			continue // sorted: the lowest sequence of the key came first
		}
		prev = e.key
		if isULIDKey(e.key) {
			ulids = append(ulids, ulidEntry{key: [16]byte(e.key), seq: e.seq})
			continue
		}
		if v := b.Get(e.key); v != nil {
			if seq, n := binary.Uvarint(v); n > 0 && seq <= e.seq {
				continue
			}
		}
		if err := b.Put(e.key, append([]byte(nil), buf[:binary.PutUvarint(buf[:], e.seq)]...)); err != nil {
			return err
		}
	}
	return putULIDs(b, ulids)
}

// idEntrySize is the size of an entry of a block of the event-id index: a ULID's 16 bytes
// and the sequence, big-endian.
const idEntrySize = 24

// idsPerBlock is the most entries a block of the event-id index holds: two blocks of 80
// (1 924 bytes with the checksum) and bbolt's headers fit in a 4 KiB page, and a look-up
// checksums one block, about 0.2 µs. (A variable for the tests, which split blocks of a few
// entries.)
var idsPerBlock = 80

// idBlock is the entries of a block of the event-id index, without its checksum.
type idBlock []byte

func (b idBlock) len() int         { return len(b) / idEntrySize }
func (b idBlock) key(i int) []byte { return b[i*idEntrySize : i*idEntrySize+16] }
func (b idBlock) seq(i int) uint64 { return binary.BigEndian.Uint64(b[i*idEntrySize+16:]) }
func (b idBlock) entry(i int) ulidEntry {
	return ulidEntry{key: [16]byte(b.key(i)), seq: b.seq(i)}
}

// search returns where key is in b, or would be, and whether it is there.
func (b idBlock) search(key []byte) (int, bool) {
	i := sort.Search(b.len(), func(i int) bool { return compareBytes(b.key(i), key) >= 0 })
	return i, i < b.len() && compareBytes(b.key(i), key) == 0
}

func appendIDEntry(b idBlock, e ulidEntry) idBlock {
	return binary.BigEndian.AppendUint64(append(b, e.key[:]...), e.seq)
}

// idBlockAt returns the block of the event-id index that holds ULID key if it is indexed
// (the one with the greatest key at most key), with its key; nil when every block's key is
// greater. next is the key of the block after it (the first block when there is none), nil
// when there is none. A block that is not a list of entries beginning with its key is
// damage, reported as a checksum mismatch is.
func idBlockAt(b bkt, key []byte) (bk []byte, blk idBlock, next []byte) {
	c := b.b.Cursor()
	k, v := c.Seek(key)
	if k != nil && compareBytes(k, key) == 0 {
		next, _ = c.Next()
	} else {
		next = k
		if k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
	}
	if next != nil && !isULIDKey(next) {
		next = nil // the keys of ids that are not ULIDs, after every block
	}
	if k == nil || !isULIDKey(k) {
		return nil, nil, next
	}
	v = b.check(k, v)
	if len(v) == 0 || len(v)%idEntrySize != 0 || compareBytes(v[:16], k) != 0 {
		panic(&corruptError{bucket: string(b.name), key: append([]byte(nil), k...)})
	}
	return k, idBlock(v), next
}

// lookupID returns the sequence the index holds for an id's key (idKey).
func lookupID(b bkt, key []byte) (seq uint64, ok bool) {
	if !isULIDKey(key) {
		v := b.Get(key)
		if v == nil {
			return 0, false
		}
		seq, n := binary.Uvarint(v)
		if n <= 0 {
			panic(&corruptError{bucket: string(b.name), key: append([]byte(nil), key...)})
		}
		return seq, true
	}
	_, blk, _ := idBlockAt(b, key)
	i, found := blk.search(key)
	if !found {
		return 0, false
	}
	return blk.seq(i), true
}

// putULIDs adds entries, sorted and of distinct keys, to the index's blocks; an id indexed
// already keeps the lower of its two sequences. Each block written is one Put: the entries
// before the first block make blocks of their own, and a block grown past idsPerBlock is
// split.
func putULIDs(b bkt, es []ulidEntry) error {
	for len(es) > 0 {
		_, blk, next := idBlockAt(b, es[0].key[:])
		n := len(es)
		if next != nil {
			n = sort.Search(len(es), func(i int) bool { return compareBytes(es[i].key[:], next) >= 0 })
		}
		merged, changed := mergeIDs(blk, es[:n])
		es = es[n:]
		if !changed {
			continue
		}
		if err := putIDBlocks(b, merged, next == nil); err != nil {
			return err
		}
	}
	return nil
}

// mergeIDs returns the entries of blk and es (sorted, distinct keys) in key order, a key in
// both with the lower sequence, in a new slice; changed is false when that is blk.
func mergeIDs(blk idBlock, es []ulidEntry) (merged idBlock, changed bool) {
	merged = make(idBlock, 0, len(blk)+len(es)*idEntrySize)
	i, j := 0, 0
	for i < blk.len() || j < len(es) {
		switch {
		case j == len(es):
			merged = append(merged, blk[i*idEntrySize:]...)
			i = blk.len()
		case i == blk.len():
			merged = appendIDEntry(merged, es[j])
			changed = true
			j++
		default:
			switch c := compareBytes(blk.key(i), es[j].key[:]); {
			case c < 0:
				merged = append(merged, blk[i*idEntrySize:(i+1)*idEntrySize]...)
				i++
			case c > 0:
				merged = appendIDEntry(merged, es[j])
				changed = true
				j++
			default:
				e := blk.entry(i)
				if es[j].seq < e.seq {
					e.seq, changed = es[j].seq, true
				}
				merged = appendIDEntry(merged, e)
				i++
				j++
			}
		}
	}
	return merged, changed
}

// putIDBlocks stores entries (sorted, of one block's range) as blocks of at most
// idsPerBlock entries, each under its first key. The last block of the index is cut into
// full blocks and what is left, since new ids are later ids; any other in equal parts, so
// that ids inserted between them later find room.
func putIDBlocks(b bkt, entries idBlock, last bool) error {
	n := entries.len()
	parts := (n + idsPerBlock - 1) / idsPerBlock
	for from, p := 0, 0; from < n; p++ {
		size := idsPerBlock
		if !last {
			size = (n - from + (parts - p) - 1) / (parts - p)
		}
		to := min(from+size, n)
		blk := entries[from*idEntrySize : to*idEntrySize]
		if err := b.Put(blk.key(0), blk); err != nil {
			return err
		}
		from = to
	}
	return nil
}

// setID sets the sequence of an indexed id's key (idKey), or takes it out of the index when
// del; nothing when it is not indexed.
func setID(b bkt, key []byte, seq uint64, del bool) error {
	if !isULIDKey(key) {
		if del {
			return b.Delete(key)
		}
		return b.Put(key, binary.AppendUvarint(nil, seq))
	}
	bk, blk, _ := idBlockAt(b, key)
	i, found := blk.search(key)
	if !found {
		return nil
	}
	bk = slices.Clone(bk)
	nb := slices.Clone(blk)
	if !del {
		binary.BigEndian.PutUint64(nb[i*idEntrySize+16:], seq)
		return b.Put(bk, nb)
	}
	nb = slices.Delete(nb, i*idEntrySize, (i+1)*idEntrySize)
	if i == 0 || len(nb) == 0 {
		if err := b.Delete(bk); err != nil {
			return err
		}
	}
	if len(nb) == 0 {
		return nil
	}
	return b.Put(nb.key(0), nb)
}

func compareBytes(a, b []byte) int {
	return slices.Compare(a, b)
}

// EventPersons returns, for each of ids that the read models have seen, the key of the
// person it is stored for; and the checkpoint: every event up to that stream sequence is
// known, so an id not found was not stored up to it.
func (db *DB) EventPersons(ids []string) (map[string]string, uint64, error) {
	out := map[string]string{}
	var ckpt uint64
	err := db.view(func(tx *bolt.Tx) error {
		ckpt = db.readCheckpoint(tx)
		b, events := bucket(tx, bucketIDs), bucket(tx, bucketEvents)
		for _, id := range ids {
			seq, ok := lookupID(b, idKey(id))
			if !ok {
				continue
			}
			var key [8]byte
			binary.BigEndian.PutUint64(key[:], seq/eventsPerBlock)
			data, _ := findInBlock(events.getBlock(key[:]), seq)
			if data != nil {
				data = entryData(seq, data)
			}
			var ev *nirv1.Event
			if data != nil {
				ev, _ = nirv1.UnmarshalEvent(data)
			}
			if ev == nil || ev.GetId() != id {
				return fmt.Errorf("%w: event-id index points %s at seq %d, which does not hold it", ErrCorrupt, id, seq)
			}
			out[id] = ev.GetPersonKey()
		}
		return nil
	})
	return out, ckpt, err
}

// EventPersons is DB.EventPersons on the live read models. While they are being rebuilt
// because they do not belong to the stream or are damaged (Repairing), the index is treated
// as one that has read nothing yet: no ids, checkpoint 0.
func (p *Projector) EventPersons(ids []string) (persons map[string]string, checkpoint uint64, err error) {
	err = p.Use("", func(db *DB) error {
		persons, checkpoint, err = db.EventPersons(ids)
		return err
	})
	if errors.Is(err, ErrUnavailable) {
		return map[string]string{}, 0, nil
	}
	return persons, checkpoint, err
}
