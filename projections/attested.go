package projections

// A rebuild from the live file: the events the live read-model file holds, checked against
// the stream's last signed checkpoint they cover, are copied into the new file, and only the
// stream after that checkpoint is read. The folds are then made from the stored events as in
// a rebuild from the stream, so both give the same file.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/encoding/protowire"
)

// Attester is implemented by feeds that can vouch for a copy of the stream's messages: the
// stream's checkpoints digest every message, and a checkpoint signed by the register's key
// shows what the stream held through its sequence.
type Attester interface {
	// Attest returns the last trusted checkpoint at or below seq as an Attestation, nil
	// when there is none.
	Attest(ctx context.Context, atMost uint64) (Attestation, error)
	// CutOff returns the sequence bound the feed's Replay resolves a recorded-time cut-off
	// to (ReplayOptions.RecordedUntil): no later message is delivered. settled is the
	// instant from which the bound no longer moves (the cut-off plus the clock skew the feed
	// allows for between an event's recorded_at and the stream receiving it): resolved
	// before it, an event recorded by the cut-off may still reach the stream after the bound.
	CutOff(ctx context.Context, recordedUntil time.Time) (bound uint64, settled time.Time, err error)
}

// Attestation checks a copy of the stream's messages 1..Seq() against a checkpoint's digest.
// Every message is given once, in sequence order, by Add or by Fetch.
type Attestation interface {
	// Seq is the last sequence the checkpoint covers.
	Seq() uint64
	// Add adds the copy's event at seq: its person (the subject's key) and its encoding as
	// stored on the stream.
	Add(seq uint64, personKey string, data []byte) error
	// Fetch reads the message at seq from the stream (one the copy lacks), adds it, and
	// returns it as a replay with ReplayOptions.Undecoded delivers it.
	Fetch(ctx context.Context, seq uint64) (Record, error)
	// Check returns nil when the messages added are exactly those the checkpoint covers.
	Check() error
}

// ErrNotAttested is returned when a copy of the stream's events does not match the stream's
// checkpoint: the rebuild reads the stream instead.
var ErrNotAttested = errors.New("projections: the read-model file's events do not match the stream's checkpoint")

// attestedFetchMax bounds the messages a rebuild from the live file reads one by one from
// the stream (those the file does not keep: quarantined ones, or a file with gaps); a file
// that lacks more is not used, and the stream is read whole.
const attestedFetchMax = 10000

// copyAttested stores into db (a new, empty file) the events src holds through the last
// checkpoint at or below src's own checkpoint and to that att attests, once every one of them is
// checked against it. With cut (an as-of replay) it stores only what a replay with that
// RecordedUntil delivers. It returns the last sequence the checkpoint covers and the last
// sequence stored: 0, 0 when there is no checkpoint to check against (nothing is stored).
// Any error leaves db unusable: the caller starts a new file and reads the stream from its
// start.
//
// One goroutine walks src's events in sequence order and gives each to the attestation
// (which hashes it); another writes them into db meanwhile. A block of src whose events
// are all kept is written whole, as it is stored: the block a rebuild would write holds the
// same entries, in the same order, with the same checksums.
func copyAttested(ctx context.Context, att Attester, src, db *DB, to uint64, cut time.Time, report func(done, total uint64)) (through, stored uint64, err error) {
	srcLast, err := src.Checkpoint()
	if err != nil || srcLast == 0 {
		return 0, 0, err
	}
	if to > 0 {
		srcLast = min(srcLast, to)
	}
	if !cut.IsZero() {
		bound, _, err := att.CutOff(ctx, cut)
		if err != nil {
			return 0, 0, err
		}
		srcLast = min(srcLast, bound)
	}
	a, err := att.Attest(ctx, srcLast)
	if err != nil || a == nil {
		return 0, 0, err
	}
	through = a.Seq()
	if through == 0 || through > srcLast {
		return 0, 0, fmt.Errorf("%w: the checkpoint covers seq %d, the file %d", ErrNotAttested, through, srcLast)
	}
	// Whose event each sequence is: the person bucket lists every person's sequences, and
	// no list changes through the checkpoint (the live file only adds later sequences).
	owner := make([]uint32, through+1)
	var persons []string
	err = src.view(func(tx *bolt.Tx) error {
		return bucket(tx, bucketPEvents).ForEach(func(k, v []byte) error {
			persons = append(persons, string(k))
			for _, seq := range personSeqs(v) {
				if seq > through {
					break
				}
				if owner[seq] != 0 {
					return fmt.Errorf("%w: seq %d is listed for two persons", ErrNotAttested, seq)
				}
				owner[seq] = uint32(len(persons))
			}
			return nil
		})
	})
	if err != nil {
		return 0, 0, err
	}
	// The writer stores what the walk sends, in order, while the walk goes on.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan copyBatch, 2)
	written := make(chan error, 1)
	go func() {
		var err error
		for b := range work {
			if err == nil {
				if err = db.storeCopied(b); err != nil {
					cancel()
				} else {
					report(b.last, through)
				}
			}
		}
		written <- err
	}()
	w := &copyWalk{ctx: ctx, a: a, through: through, cut: cut, owner: owner, persons: persons, work: work}
	err = w.walk(src)
	if err == nil {
		err = a.Check()
	}
	if err == nil {
		err = w.send()
	}
	close(work)
	if err = errors.Join(err, <-written); err != nil {
		return 0, 0, err
	}
	return through, w.stored, nil
}

// copyBatch is what copyAttested's walk sends its writer: events to store one by one
// (recs, with the messages read from the stream) and whole blocks, in sequence order
// (recs first), through last.
type copyBatch struct {
	recs   []Record
	blocks []copiedBlock
	adds   []added // the blocks' events
	ids    idBatch // and their event-id index entries
	last   uint64
}

// copiedBlock is a block of the events bucket as src stores it.
type copiedBlock struct {
	key  []byte
	data []byte
}

// added is an event stored for a person, and its encoding.
type added struct {
	pk  string
	seq uint64
	raw []byte
}

// copyBatchEvents is about how many events a copyBatch carries.
const copyBatchEvents = rebuildBatch

// storeCopied writes a batch of copyAttested's walk: the records as bulkStore stores them,
// then the blocks as they are.
func (db *DB) storeCopied(b copyBatch) error {
	if len(b.recs) > 0 {
		if _, err := db.bulkStore(b.recs); err != nil {
			return err
		}
	}
	if len(b.blocks) == 0 {
		return nil
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.bolt == nil {
		return ErrClosed
	}
	err := db.update(func(tx *bolt.Tx) error {
		evb := bucket(tx, bucketEvents)
		evb.setFillPercent(1.0)
		for _, bl := range b.blocks {
			if err := evb.putBlock(bl.key, bl.data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	db.bulkLast = max(db.bulkLast, b.last)
	db.addBulkSeqs(b.adds)
	db.bulkIDs.add(b.ids)
	return nil
}

// copyWalk is copyAttested's walk over src's events.
type copyWalk struct {
	ctx     context.Context
	a       Attestation
	through uint64
	cut     time.Time // an as-of replay's RecordedUntil; zero for a rebuild
	owner   []uint32
	persons []string
	work    chan<- copyBatch

	next    uint64 // the first sequence not yet given to the attestation
	stored  uint64 // the last sequence queued to be stored
	fetched int
	batch   copyBatch
	events  int      // in batch
	kept    []Record // block's, reused from block to block
}

// send hands the batch to the writer.
func (w *copyWalk) send() error {
	if w.events == 0 {
		return nil
	}
	select {
	case w.work <- w.batch:
	case <-w.ctx.Done():
		return w.ctx.Err()
	}
	w.batch, w.events = copyBatch{}, 0
	return nil
}

// growBatch makes room in a new batch's slices for a whole batch of events, which they
// would otherwise reach by doubling (about 250 MB allocated for 1.1 M events).
func (w *copyWalk) growBatch() {
	if w.batch.adds == nil {
		w.batch.adds = make([]added, 0, copyBatchEvents+eventsPerBlock)
		w.batch.ids.ulids = make([]ulidEntry, 0, copyBatchEvents+eventsPerBlock)
	}
}

// addRec queues a record to be stored one by one. A batch holds its records before its
// blocks, so a record after a block starts a new batch.
func (w *copyWalk) addRec(rec Record) error {
	if len(w.batch.blocks) > 0 || w.events >= copyBatchEvents {
		if err := w.send(); err != nil {
			return err
		}
	}
	w.batch.recs = append(w.batch.recs, rec)
	w.batch.last, w.stored = rec.Seq, rec.Seq
	w.events++
	return nil
}

// fetch reads the messages next..to, which src does not hold, from the stream.
func (w *copyWalk) fetch(to uint64) ([]Record, error) {
	var out []Record
	for ; w.next <= to; w.next++ {
		if w.fetched++; w.fetched > attestedFetchMax {
			return nil, fmt.Errorf("%w: the file lacks more than %d of the messages through seq %d", ErrNotAttested, attestedFetchMax, w.through)
		}
		rec, err := w.a.Fetch(w.ctx, w.next)
		if err != nil {
			return nil, err
		}
		if !w.cut.IsZero() && rec.Quarantine == "" {
			// As an as-of replay decides: a message that is not a usable event is kept
			// (and quarantined), an event recorded after the cut-off left out.
			if ev, reason := checkStored(rec.Raw, rec.PersonKey); reason == "" && ev.GetRecordedAt().AsTime().After(w.cut) {
				continue
			}
		}
		out = append(out, rec)
	}
	return out, nil
}

// copyViewBlocks is how many blocks the walk reads in one read transaction of the live
// file: a long one would hold up the live writer when it must grow the file's mapping
// (bbolt remaps only once no read transaction is open), and queries behind it.
const copyViewBlocks = 16

// walk gives every message through w.through to the attestation and queues it for the
// writer. It reads src in short read transactions and copies each block out of src's
// pages, so that what it queues stays valid after them.
func (w *copyWalk) walk(src *DB) error {
	w.next = 1
	var after []byte // the last block walked
	// The walk reads every page of src's events through its mapping: drop them from the
	// resident set as it goes (as a rebuild does with its own file), or the rebuild's RSS
	// grows by the live file's size (1.9 GiB peak at 3.3 M events before this).
	defer dropMapped(src.bolt, 0)
	defer dropMappedMeanwhile(src.bolt, 0)()
	for w.next <= w.through {
		n := 0
		err := src.view(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketEvents).Cursor()
			var k, v []byte
			if after == nil {
				k, v = c.First()
			} else if k, v = c.Seek(after); k != nil && bytes.Equal(k, after) {
				k, v = c.Next()
			}
			for ; k != nil && n < copyViewBlocks && w.next <= w.through; k, v = c.Next() {
				if err := w.ctx.Err(); err != nil {
					return err
				}
				if len(k) != 8 {
					return fmt.Errorf("%w: a key of the events bucket is not a block number", ErrCorrupt)
				}
				if binary.BigEndian.Uint64(k)*eventsPerBlock > w.through {
					// Past the checkpoint (an as-of replay's may lie far back): the rest
					// comes from the stream.
					break
				}
				after = bytes.Clone(k)
				if err := w.block(after, bytes.Clone(v)); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil {
			return err
		}
		if n == 0 {
			break // no more blocks through the checkpoint
		}
	}
	return w.fetchAndQueue(w.through)
}

// fetchAndQueue reads the messages from w.next to to, which the file lacks, from the stream
// and queues them to be stored one by one.
func (w *copyWalk) fetchAndQueue(to uint64) error {
	got, err := w.fetch(to)
	if err != nil {
		return err
	}
	for _, r := range got {
		if err := w.addRec(r); err != nil {
			return err
		}
	}
	return nil
}

// block walks one block of the events bucket (k its key, block its value, both owned). A
// block whose entries are all kept, with no message the file lacks among them, is queued
// whole, as stored; any other is queued event by event.
func (w *copyWalk) block(k, block []byte) error {
	blockStart := binary.BigEndian.Uint64(k) * eventsPerBlock
	// Messages the file lacks before the block's range belong to earlier blocks: stored
	// first, one by one (the block they fall in is continued).
	if blockStart > 0 {
		if err := w.fetchAndQueue(min(blockStart-1, w.through)); err != nil {
			return err
		}
	}
	kept := w.kept[:0] // the block's events to store, with the messages fetched among them
	defer func() { w.kept = kept[:0] }()
	whole := true // every entry kept, nothing fetched among them
	entries := 0  // in kept that the block holds
	for rest := block; len(rest) > 0; {
		seq, e, r, ok := nextEntry(rest)
		if !ok {
			return fmt.Errorf("%w: a block of the events bucket does not decode", ErrCorrupt)
		}
		rest = r
		if seq > w.through {
			whole = false
			break
		}
		if seq < w.next || seq/eventsPerBlock != blockStart/eventsPerBlock {
			return fmt.Errorf("%w: seq %d is stored out of order", ErrNotAttested, seq)
		}
		got, err := w.fetch(seq - 1)
		if err != nil {
			return err
		}
		if len(got) > 0 {
			whole = false
			kept = append(kept, got...)
		}
		data := entryData(seq, e) // its checksum is checked
		o := w.owner[seq]
		if o == 0 {
			return fmt.Errorf("%w: the event at seq %d belongs to no person", ErrNotAttested, seq)
		}
		if err := w.a.Add(seq, w.persons[o-1], data); err != nil {
			return err
		}
		w.next = seq + 1
		if !w.cut.IsZero() && recordedAfter(data, w.cut) {
			whole = false // left out of an as-of replay
			continue
		}
		kept = append(kept, Record{Seq: seq, Raw: data, PersonKey: w.persons[o-1]})
		entries++
	}
	if whole && entries > 0 {
		if w.events >= copyBatchEvents {
			if err := w.send(); err != nil {
				return err
			}
		}
		w.growBatch()
		w.batch.blocks = append(w.batch.blocks, copiedBlock{key: k, data: block})
		for _, r := range kept {
			w.batch.adds = append(w.batch.adds, added{r.PersonKey, r.Seq, r.Raw})
			w.batch.ids.add(r.Raw, r.Seq)
		}
		w.batch.last = kept[len(kept)-1].Seq
		w.stored = w.batch.last
		w.events += len(kept)
		return nil
	}
	for _, r := range kept {
		if err := w.addRec(r); err != nil {
			return err
		}
	}
	return nil
}

// recordedAfter reports whether the event encoded in data (one the live file stores, so one
// that decodes) was recorded after cut, reading only its recorded_at (field 5, a Timestamp)
// as proto.Unmarshal would: a field given more than once is merged, the later values of its
// own fields winning.
func recordedAfter(data []byte, cut time.Time) bool {
	var secs, nanos int64
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return false
		}
		data = data[n:]
		if num != recordedAtField || typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, data); n < 0 {
				return false
			}
			data = data[n:]
			continue
		}
		ts, n := protowire.ConsumeBytes(data)
		if n < 0 {
			return false
		}
		data = data[n:]
		for len(ts) > 0 {
			tn, tt, m := protowire.ConsumeTag(ts)
			if m < 0 {
				return false
			}
			ts = ts[m:]
			if tt == protowire.VarintType && (tn == 1 || tn == 2) {
				v, m := protowire.ConsumeVarint(ts)
				if m < 0 {
					return false
				}
				ts = ts[m:]
				if tn == 1 {
					secs = int64(v)
				} else {
					nanos = int64(int32(v))
				}
				continue
			}
			if m = protowire.ConsumeFieldValue(tn, tt, ts); m < 0 {
				return false
			}
			ts = ts[m:]
		}
	}
	return time.Unix(secs, nanos).After(cut)
}

// recordedAtField is nirv1.Event's recorded_at.
const recordedAtField = 5
