package projections

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/oklog/ulid/v2"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// The event-id index: every stored event's id → the stream sequence it is stored at. The
// append path asks it whether an event id is already stored for another person once the
// stream's dedupe window no longer remembers the id (see EventPersons).
//
// A key is the 16 bytes of the id's ULID (ids are ULIDs: ids of the same millisecond sort
// together, so the keys of a batch land on few pages), or 0xff and the id for anything that
// does not parse as one (a ULID's first byte is below 0x80 until the year 10889). The value
// is the sequence as a uvarint.

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
	var buf [binary.MaxVarintLen64]byte
	var prev []byte
	for _, e := range entries {
		if prev != nil && compareBytes(prev, e.key) == 0 {
			continue // sorted: the lowest sequence of the key came first
		}
		prev = e.key
		if v := b.Get(e.key); v != nil {
			if seq, n := binary.Uvarint(v); n > 0 && seq <= e.seq {
				continue
			}
		}
		if err := b.Put(e.key, append([]byte(nil), buf[:binary.PutUvarint(buf[:], e.seq)]...)); err != nil {
			return err
		}
	}
	return nil
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
			v := b.Get(idKey(id))
			if v == nil {
				continue
			}
			seq, n := binary.Uvarint(v)
			if n <= 0 {
				return fmt.Errorf("%w: event-id index entry of %s", ErrCorrupt, id)
			}
			var key [8]byte
			binary.BigEndian.PutUint64(key[:], seq/eventsPerBlock)
			data, _ := findInBlock(events.getBlock(key[:]), seq)
			if data != nil {
				data = entryData(seq, data)
			}
			ev := &nirv1.Event{}
			if data == nil || proto.Unmarshal(data, ev) != nil || ev.GetId() != id {
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
