package projections

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"runtime/debug"

	bolt "go.etcd.io/bbolt"
)

// Every value in a read-model file ends in a CRC-32C of its key and value (crcSize bytes),
// written by bkt.Put and checked by every read through bkt, so that bytes flipped on disk
// are never served: a read that finds a mismatch panics with a *corruptError, which the
// transaction guard (DB.view, DB.update) turns into an error wrapping ErrCorrupt, and the
// runtime then rebuilds the file from the stream. bbolt checksums its meta pages only.
// Hardware CRC-32C costs about a tenth of a nanosecond per byte (see the README).

// crcSize is the size of the checksum at the end of each value.
const crcSize = 4

var crcTable = crc32.MakeTable(crc32.Castagnoli)

func kvSum(k, v []byte) uint32 {
	return crc32.Update(crc32.Update(0, crcTable, k), crcTable, v)
}

// sealed returns v followed by the checksum of k and v, in a new slice (bbolt keeps a
// reference to a value until the transaction commits).
func sealed(k, v []byte) []byte {
	out := make([]byte, len(v), len(v)+crcSize)
	copy(out, v)
	return binary.BigEndian.AppendUint32(out, kvSum(k, v))
}

// unseal checks a stored value's checksum and returns the value without it; ok is false
// when it does not match.
func unseal(k, stored []byte) (v []byte, ok bool) {
	if len(stored) < crcSize {
		return nil, false
	}
	n := len(stored) - crcSize
	return stored[:n:n], binary.BigEndian.Uint32(stored[n:]) == kvSum(k, stored[:n])
}

// corruptError is what a failed check panics with inside a transaction; the guard turns it
// into an error. It names the bucket and the key (a sequence, a person key, a kommune: never
// a national id).
type corruptError struct {
	bucket string
	key    []byte
}

func (e *corruptError) Error() string {
	return fmt.Sprintf("%s: bucket %s key %x: stored value does not match its checksum", ErrCorrupt.Error(), e.bucket, e.key)
}

func (e *corruptError) Unwrap() error { return ErrCorrupt }

// bkt is a bucket of a read-model file: values carry their checksum (see above). Its
// methods are bbolt's, with the checksum added on Put and checked and removed on every read.
type bkt struct {
	b    *bolt.Bucket
	name []byte
}

// bucket returns the named bucket of tx; a missing one is damage (Open creates them all).
// It is a small value, so that the many short uses cost no allocation.
func bucket(tx *bolt.Tx, name []byte) bkt {
	b := tx.Bucket(name)
	if b == nil {
		panic(&corruptError{bucket: "(root)", key: name})
	}
	return bkt{b: b, name: name}
}

func (b bkt) check(k, stored []byte) []byte {
	if stored == nil {
		return nil
	}
	v, ok := unseal(k, stored)
	if !ok {
		panic(&corruptError{bucket: string(b.name), key: append([]byte(nil), k...)})
	}
	return v
}

// Get returns the value of k, nil if there is none.
func (b bkt) Get(k []byte) []byte { return b.check(k, b.b.Get(k)) }

// Put stores v under k with its checksum.
func (b bkt) Put(k, v []byte) error { return b.b.Put(k, sealed(k, v)) }

// Delete removes k.
func (b bkt) Delete(k []byte) error { return b.b.Delete(k) }

// Stats returns bbolt's statistics of the bucket.
func (b bkt) Stats() bolt.BucketStats { return b.b.Stats() }

// setFillPercent sets how full bbolt fills split pages (1.0 for keys appended in order).
func (b bkt) setFillPercent(f float64) { b.b.FillPercent = f }

// ForEach calls fn for each key and checked value in order.
func (b bkt) ForEach(fn func(k, v []byte) error) error {
	return b.b.ForEach(func(k, v []byte) error { return fn(k, b.check(k, v)) })
}

// Cursor returns a cursor whose values are checked.
func (b bkt) Cursor() cursor { return cursor{c: b.b.Cursor(), b: b} }

// cursor is a bbolt cursor over a bkt.
type cursor struct {
	c *bolt.Cursor
	b bkt
}

func (c cursor) kv(k, v []byte) ([]byte, []byte) { return k, c.b.check(k, v) }

func (c cursor) First() ([]byte, []byte)           { return c.kv(c.c.First()) }
func (c cursor) Last() ([]byte, []byte)            { return c.kv(c.c.Last()) }
func (c cursor) Next() ([]byte, []byte)            { return c.kv(c.c.Next()) }
func (c cursor) Prev() ([]byte, []byte)            { return c.kv(c.c.Prev()) }
func (c cursor) Seek(seek []byte) ([]byte, []byte) { return c.kv(c.c.Seek(seek)) }

// The events bucket is the exception: its values are blocks of events (see eventsPerBlock)
// appended to over many transactions, and reading one event must not checksum the whole
// block, so each entry of a block carries its own checksum (of its sequence and data)
// instead, and the block as a whole none.

// getBlock returns a block of the events bucket as stored.
func (b bkt) getBlock(k []byte) []byte { return b.b.Get(k) }

// putBlock stores a block of the events bucket (its entries are sealed already).
func (b bkt) putBlock(k, v []byte) error { return b.b.Put(k, v) }

// appendEntry appends to a block the entry of the event at seq: uvarint(seq),
// uvarint(len(data)+crcSize), data, the checksum of seq and data.
func appendEntry(block []byte, seq uint64, data []byte) []byte {
	block = binary.AppendUvarint(block, seq)
	block = binary.AppendUvarint(block, uint64(len(data)+crcSize))
	block = append(block, data...)
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return binary.BigEndian.AppendUint32(block, kvSum(k[:], data))
}

// entryData checks the checksum of the entry at seq (as findInBlock returns it) and returns
// the event's encoding; a mismatch panics with a *corruptError, as bkt's reads do.
func entryData(seq uint64, entry []byte) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	data, ok := unseal(k[:], entry)
	if !ok {
		panic(&corruptError{bucket: string(bucketEvents), key: k[:]})
	}
	return data
}

// guard runs fn, turning a panic inside it (a failed checksum, bbolt's own assertions on a
// damaged page, a fault on a mapped page the file no longer backs) into an error wrapping
// ErrCorrupt. Memory faults become panics only in the calling goroutine, for the call.
func guard(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if ce, ok := r.(*corruptError); ok {
			err = ce
			return
		}
		if fault, ok := r.(interface{ Addr() uintptr }); ok {
			err = fmt.Errorf("%w: memory fault reading the file (at %#x): it is shorter than its pages say", ErrCorrupt, fault.Addr())
			return
		}
		// bbolt asserting on a damaged page, or a bug here: the stack tells which.
		err = fmt.Errorf("%w: panic in a read-model transaction: %v\n%s", ErrCorrupt, r, debug.Stack())
	}()
	return fn()
}
