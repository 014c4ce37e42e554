package projections

// The two-pass rebuild: store every event as it comes from the stream, undecoded, then
// fold each person once, on all CPUs.

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// bulkStore stores records' events (in blocks by sequence) without folding them: the first
// pass of a rebuild or replay into a new file. Records at or below the last one stored are
// skipped. It returns the last sequence stored.
//
// The persons' sequence lists are kept in memory (a few bytes per event) and written by
// flushBulkSeqs once the pass is over: written per transaction, every transaction would
// rewrite nearly every page of the person bucket (a batch touches most persons), a cost
// that grows with the stream and kept every touched page in the heap until commit.
func (db *DB) bulkStore(recs []Record) (uint64, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.bolt == nil {
		return 0, ErrClosed
	}
	db.newQuarantined = 0
	last := db.bulkLast
	var adds []added
	var ids idBatch
	err := db.update(func(tx *bolt.Tx) error {
		evb := bucket(tx, bucketEvents)
		evb.setFillPercent(1.0)
		eb := eventBlockWriter{b: evb}
		for _, rec := range recs {
			if rec.Seq <= last {
				continue
			}
			last = rec.Seq
			if rec.Quarantine != "" {
				if err := db.quarantine(tx, rec.Seq, rec.Quarantine); err != nil {
					return err
				}
				continue
			}
			pk := rec.Event.GetPersonKey()
			if rec.Event == nil {
				pk = rec.PersonKey // undecoded: the fold checks the envelope against it
			}
			if pk == "" || strings.IndexByte(pk, 0) >= 0 {
				db.skipped++
				db.logger.Warn("event without a usable person key skipped", "stream_seq", rec.Seq)
				continue
			}
			data := rec.Raw
			if data == nil && rec.Event == nil {
				return fmt.Errorf("projections: record at seq %d has neither an event nor its encoding", rec.Seq)
			}
			if data == nil {
				var err error
				if data, err = marshalOpt.Marshal(rec.Event); err != nil {
					return fmt.Errorf("projections: encode event at seq %d: %w", rec.Seq, err)
				}
			}
			if err := eb.add(rec.Seq, data); err != nil {
				return err
			}
			adds = append(adds, added{pk, rec.Seq, data})
			ids.add(data, rec.Seq)
		}
		return eb.flush()
	})
	if err != nil {
		return db.bulkLast, err
	}
	// Committed: only now do the sequences count as stored.
	db.bulkLast = last
	db.quarantined.Add(uint64(db.newQuarantined))
	db.addBulkSeqs(adds)
	db.bulkIDs.add(ids)
	return last, nil
}

// addBulkSeqs adds stored events to their persons' sequence lists, and to the spill if there
// is one (db.mu held).
func (db *DB) addBulkSeqs(adds []added) {
	if db.bulkSeqs == nil {
		db.bulkSeqs = map[string]*seqList{}
	}
	if db.spill != nil {
		db.spill.send(adds)
	}
	for _, a := range adds {
		l := db.bulkSeqs[a.pk]
		if l == nil {
			l = &seqList{}
			db.bulkSeqs[a.pk] = l
		}
		l.add(a.seq)
	}
}

// seqList is a person's stored sequences, encoded as the person bucket stores them (uvarint
// differences), while bulkStore collects them.
type seqList struct {
	enc  []byte
	last uint64
}

func (l *seqList) add(seq uint64) {
	l.enc = binary.AppendUvarint(l.enc, seq-l.last)
	l.last = seq
}

// bulkSeqsPerTx is how many persons' sequence lists flushBulkSeqs writes per transaction.
const bulkSeqsPerTx = 50000

// flushBulkSeqs writes the sequence lists bulkStore collected into the empty person bucket,
// in key order, so that each page is written once, full.
func (db *DB) flushBulkSeqs() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.bolt == nil {
		return ErrClosed
	}
	keys := make([]string, 0, len(db.bulkSeqs))
	for pk := range db.bulkSeqs {
		keys = append(keys, pk)
	}
	slices.Sort(keys)
	for len(keys) > 0 {
		chunk := keys[:min(bulkSeqsPerTx, len(keys))]
		keys = keys[len(chunk):]
		if err := db.update(func(tx *bolt.Tx) error {
			peb := bucket(tx, bucketPEvents)
			peb.setFillPercent(1.0)
			for _, pk := range chunk {
				if err := peb.Put([]byte(pk), db.bulkSeqs[pk].enc); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return err
		}
		for _, pk := range chunk {
			delete(db.bulkSeqs, pk)
		}
	}
	db.bulkSeqs = nil
	return nil
}

// sortedPuts holds the entries a rebuild's fold makes in the buckets whose keys it does not
// reach in order, to be written in key order: the person lists and the report of terminated
// participants lead with the kommune (and year), the due dates with the date, while the fold
// goes through the persons in key order. Put chunk by chunk, each chunk's entries fell all
// over those buckets and every transaction rewrote most of their pages, more of them the
// larger the register: from 1.1 M to 3.3 M events the fold's file writes per event doubled
// (README, "The fold writes the unordered models sorted"). The same reasoning as for the
// persons' sequence lists (flushBulkSeqs) and the event-id index (idCollector).
type sortedPuts struct {
	puts  [len(sortedBuckets)][]keyValue // by index in sortedBuckets
	bytes int                            // held, about
}

type keyValue struct{ k, v []byte }

// sortedBuckets are the buckets sortedPuts holds entries of.
var sortedBuckets = [...][]byte{bucketList, bucketTerminated, bucketDue}

// sortedPutsMax bounds the bytes sortedPuts holds before it writes them (a variable for the
// tests). Beyond it the entries are written in sorted runs, each once: a run's pages are
// rewritten by the next ones, which still costs less than every chunk rewriting them.
var sortedPutsMax = 64 << 20

// sortedPutsPerTx bounds the entries written in one transaction (a variable for the tests).
var sortedPutsPerTx = 100000

// put holds an entry of bucket, and reports whether it did: false for a bucket that is not
// one of sortedBuckets. k and v must not change after.
func (s *sortedPuts) put(bucket, k, v []byte) bool {
	for i, b := range sortedBuckets {
		if bytes.Equal(b, bucket) {
			s.puts[i] = append(s.puts[i], keyValue{k, v})
			s.bytes += len(k) + len(v) + 64 // the slices' headers, and bbolt's node entry later
			return true
		}
	}
	return false
}

// full reports whether the entries held have reached sortedPutsMax bytes.
func (s *sortedPuts) full() bool { return s.bytes >= sortedPutsMax }

// write puts the entries held into their buckets, each bucket's in key order, and empties s.
// A bucket still empty is filled to the brim: nothing is inserted between its keys later in
// the rebuild except by a further run (sortedPutsMax).
func (s *sortedPuts) write(db *DB) error {
	for i, name := range sortedBuckets {
		puts := s.puts[i]
		slices.SortFunc(puts, func(a, b keyValue) int { return bytes.Compare(a.k, b.k) })
		empty := false // the bucket, when this run began: the run only appends to it
		for first := true; len(puts) > 0; first = false {
			n := min(len(puts), sortedPutsPerTx)
			if err := db.update(func(tx *bolt.Tx) error {
				b := bucket(tx, name)
				if first {
					k, _ := b.b.Cursor().First()
					empty = k == nil
				}
				if empty {
					b.setFillPercent(1.0)
				}
				for _, p := range puts[:n] {
					if err := b.Put(p.k, p.v); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				return fmt.Errorf("projections: person models: %w", err)
			}
			puts = puts[n:]
		}
		s.puts[i] = nil
	}
	s.bytes = 0
	return nil
}

// foldPersonsPerTx and foldEventsPerTx bound the persons, and their events, the second pass
// of a rebuild folds per transaction (a chunk). Each chunk reads its persons' events from all
// over the events bucket, looking each block up once (blockTable): fewer, larger chunks look
// fewer blocks up again. (Variables for the tests, which fold in small chunks.)
var (
	foldPersonsPerTx = 10000
	foldEventsPerTx  = 100000
)

// foldAll folds every stored person once with the regelmotor and writes every model, with the
// checkpoint at, in the last transaction: the second pass of a rebuild or replay into a new
// file (the models must be empty). The result equals applying the same events in stream order,
// since every model is derived from the person's final state alone and the statistics are
// integer sums. progress (may be nil) gets persons done and the total.
//
// The event-id index is written sorted, from the entries collected as the events were stored
// (idCollector), a transaction at a time whenever no folded chunk waits to be written: its
// keys (ids) follow no order of persons, so writing each chunk's ids would rewrite most of its
// pages every time, and writing it all before the first chunk held the fold up once it was
// foldAhead chunks ahead. The entries of events the fold quarantines are taken out at the end.
func (db *DB) foldAll(at uint64, progress func(done, total uint64)) error {
	if err := db.flushBulkSeqs(); err != nil {
		return err
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.bolt == nil {
		return ErrClosed
	}
	var total uint64
	if err := db.view(func(tx *bolt.Tx) error {
		total = uint64(bucket(tx, bucketPEvents).Stats().KeyN)
		return nil
	}); err != nil {
		return err
	}
	var done uint64
	ids := db.bulkIDs
	db.bulkIDs = idCollector{}
	if db.spill != nil {
		db.spill.finish()
		if spillHook != nil {
			spillHook(db.spill)
		}
		defer func() {
			db.spill.close()
			db.spill = nil
		}()
	}
	var unindex []idEntry // the entries of the events quarantined
	var later sortedPuts  // the models' entries written in key order (sortedPuts)
	db.newQuarantined = 0
	defer func() { db.quarantined.Add(uint64(db.newQuarantined)) }()
	// The next chunks are folded while this one is written: folding runs on every CPU but
	// writing on one, and one after the other left a CPU idle for half the pass.
	chunks, stop := db.foldChunks()
	defer stop()
	if progress != nil {
		progress(0, total) // the fold has begun: the index is part of it
	}
	// One writer: a chunk folded is written first, so that the fold is never held up, and the
	// index a transaction at a time while none is ready.
	for indexing := true; ; {
		var ch foldChunk
		var ok bool
		if indexing {
			select {
			case ch, ok = <-chunks:
			default:
				var err error
				if indexing, err = ids.writeStep(db); err != nil {
					return err
				}
				continue
			}
		} else {
			ch, ok = <-chunks
		}
		if !ok {
			break
		}
		if ch.err != nil {
			return ch.err
		}
		err := db.update(func(tx *bolt.Tx) error {
			sd := statDeltas{}
			empty := &derived{}
			for i := range ch.jobs {
				if len(ch.jobs[i].bad) > 0 {
					// As if catching up had never stored them (it does not).
					if err := db.dropStored(tx, ch.jobs[i].pk, ch.jobs[i].bad); err != nil {
						return err
					}
					unindex = append(unindex, ch.jobs[i].unindex...)
				}
				if err := db.quarantineFaults(tx, ch.jobs[i].faults); err != nil {
					return err
				}
				if unknown := ch.jobs[i].unknown; len(unknown) > 0 {
					// A failed rebuild throws its file away: counted in its transaction.
					if err := db.keepUnknownKinds(tx, unknown); err != nil {
						return err
					}
					db.noteUnknownKinds(unknown)
				}
				if err := writeDiff(tx, ch.jobs[i].pk, empty, ch.jobs[i].der, sd, &later); err != nil {
					return fmt.Errorf("projections: person models: %w", err)
				}
				done++
			}
			if err := sd.flush(tx); err != nil {
				return fmt.Errorf("projections: statistics: %w", err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if later.full() {
			if err := later.write(db); err != nil {
				return err
			}
		}
		if progress != nil && done < total { // the last chunk's is reported once all is written
			progress(done, total)
		}
	}
	if err := later.write(db); err != nil {
		return err
	}
	for more := true; more; {
		var err error
		if more, err = ids.writeStep(db); err != nil {
			return err
		}
	}
	// The event-id index holds the events folded, as catching up indexes them.
	if err := ids.unindex(db, unindex); err != nil {
		return err
	}
	if err := db.update(func(tx *bolt.Tx) error {
		for _, m := range Models {
			if err := writeMeta(tx, m, at); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	if progress != nil {
		progress(done, total)
	}
	return nil
}

// foldChunk is one chunk of persons folded by foldChunks, or the error that ended them.
type foldChunk struct {
	jobs []foldJob
	err  error
}

// foldAhead is how many chunks foldChunks folds ahead of the writer, so that the CPUs the
// writer does not use keep folding while it writes a chunk or a step of the event-id index.
const foldAhead = 2

// foldChunks folds the stored persons in chunks of up to foldPersonsPerTx persons (and
// foldEventsPerTx events) in person-key order, and sends them on the channel, which it closes
// after the last chunk or an error. With a spill (db.spill), each of its ranges of person
// keys is folded from its spill file, read whole, or from the file when the spill file is not
// usable (foldStoredRange); without one, the whole file is one range. stop ends the folding
// early and waits for it.
func (db *DB) foldChunks() (<-chan foldChunk, func()) {
	out := make(chan foldChunk, foldAhead)
	quit := make(chan struct{})
	ended := make(chan struct{})
	sp := db.spill
	go func() {
		defer close(ended)
		defer close(out)
		send := func(ch foldChunk) bool {
			select {
			case out <- ch:
				return ch.err == nil
			case <-quit:
				return false
			}
		}
		ranges := 1
		var ready <-chan spillRange
		var reuse func([]byte)
		if sp != nil {
			if sp.err != nil {
				db.logger.Warn("rebuild: the spill is not used: every range's events are read from the new file", "err", sp.err)
			}
			ranges = len(sp.files)
			var readerDone <-chan struct{}
			ready, reuse, readerDone = sp.readAhead(quit)
			defer func() { <-readerDone }()
		}
		for r := range ranges {
			var lo, hi string // the range's keys: from lo, below hi ("": no bound)
			if sp != nil {
				if r > 0 {
					lo = sp.bounds[r-1]
				}
				if r < len(sp.bounds) {
					hi = sp.bounds[r]
				}
				var got spillRange
				select {
				case got = <-ready:
				case <-quit:
					return
				}
				if got.err == nil {
					sp.spilled++
					ok := db.foldSpilled(got.persons, send)
					reuse(got.buf)
					if !ok {
						return
					}
					continue
				}
				reuse(got.buf)
				err := got.err
				sp.unusable++
				switch {
				case sp.err != nil: // every range's: said once, before the first
				case errors.Is(err, errSpillTooLarge):
					db.logger.Info("rebuild: a range of persons is folded from the new file", "err", err, "bytes", sp.size[r])
				default:
					db.logger.Warn("rebuild: a spill file is not usable: its persons' events are read from the new file", "err", err)
				}
			}
			if !db.foldStoredRange(lo, hi, send) {
				return
			}
		}
	}()
	var once sync.Once
	return out, func() {
		once.Do(func() { close(quit) })
		<-ended
	}
}

// foldSpilled folds a spill range's persons (in key order) in chunks and sends them. It
// reports whether to go on.
func (db *DB) foldSpilled(persons []spillPerson, send func(foldChunk) bool) bool {
	// Chunks of even size within the bounds, not full ones and a small rest: the CPUs wait
	// for a chunk's last fold before the next chunk begins.
	events := 0
	for _, p := range persons {
		events += len(p.seqs)
	}
	chunks := max(1, ceilDiv(events, foldEventsPerTx), ceilDiv(len(persons), foldPersonsPerTx))
	perEvents, perPersons := ceilDiv(events, chunks), ceilDiv(len(persons), chunks)
	for len(persons) > 0 {
		n, events := 0, 0
		for n < len(persons) && n < perPersons && events < perEvents {
			events += len(persons[n].seqs)
			n++
		}
		jobs := make([]foldJob, n)
		for i, p := range persons[:n] {
			jobs[i] = foldJob{pk: p.pk, seqs: p.seqs, raws: p.raws}
		}
		persons = persons[n:]
		err := foldJobs(jobs, db.open)
		if !send(foldChunk{jobs: jobs, err: err}) {
			return false
		}
	}
	return true
}

func ceilDiv(a, b int) int { return (a + b - 1) / max(b, 1) }

// foldStoredRange folds the stored persons with keys from lo and below hi ("": no bound),
// reading their events from the file, in chunks, and sends them. It reports whether to go
// on. Each chunk is read in a read
// transaction of its own, which ends once its folds are done, before the chunk is sent, so
// the writer's commit never waits for more than one chunk's folding when bbolt remaps the
// file. Chunks written meanwhile (derived models, a quarantined event dropped) touch only
// persons folded before, so a fold that reads the file as it was when its chunk began reads
// what it would read after.
func (db *DB) foldStoredRange(lo, hi string, send func(foldChunk) bool) bool {
	next := []byte(lo)
	for finished := false; !finished; {
		var jobs []foldJob
		err := db.view(func(tx *bolt.Tx) error {
			c := bucket(tx, bucketPEvents).Cursor()
			blocks := blocksOf(tx)
			k, _ := c.Seek(next)
			for n, events := 0, 0; n < foldPersonsPerTx && events < foldEventsPerTx && k != nil && (hi == "" || string(k) < hi); n++ {
				j := foldJob{pk: string(k)}
				var err error
				if j.seqs, j.raws, err = personRawView(tx, blocks, j.pk); err != nil {
					return err
				}
				jobs = append(jobs, j)
				events += len(j.seqs)
				k, _ = c.Next()
			}
			next = append(next[:0], k...)
			finished = k == nil || (hi != "" && string(k) >= hi)
			return foldJobs(jobs, db.open)
		})
		if len(jobs) == 0 && err == nil {
			return true // nothing (more) in the range
		}
		if !send(foldChunk{jobs: jobs, err: err}) {
			return false
		}
	}
	return true
}

// idCollector gathers the event-id index entries of a rebuild's stored events, compactly (24
// bytes an event for ULID ids), as the events are stored: a run for each batch, sorted. The
// fold writes them (writeStep merges the runs) between its chunks' writes, and then takes
// out the entries of the events it quarantined (unindex). Before they were taken from the
// stored encodings, they were written after the fold, which had to decode each event first,
// and alone on one CPU: 1.4 of 8.2 seconds of a rebuild from the live file of 1.1 M events.
type idCollector struct {
	runs  [][]ulidEntry
	other []idEntry
	// dups are, once writeStep has merged the runs (and let them go), the entries of every
	// ULID key given more than once, in order: what unindex needs of them.
	dups []ulidEntry

	// writeStep's place: the merge of the runs, the last entry written; and its buffer.
	step         []ulidEntry
	merge        *runMerge
	prev         ulidEntry
	started      bool
	otherWritten bool
}

// ulidEntry is an index entry whose key is a ULID's 16 bytes.
type ulidEntry struct {
	key [16]byte
	seq uint64
}

// compareULIDEntries orders entries by key, then sequence (as bytes.Compare on the keys
// would, in two integer comparisons).
func compareULIDEntries(a, b ulidEntry) int {
	if x := cmp.Compare(binary.BigEndian.Uint64(a.key[:8]), binary.BigEndian.Uint64(b.key[:8])); x != 0 {
		return x
	}
	if x := cmp.Compare(binary.BigEndian.Uint64(a.key[8:]), binary.BigEndian.Uint64(b.key[8:])); x != 0 {
		return x
	}
	return cmp.Compare(a.seq, b.seq)
}

// idBatch is the event-id index entries of a batch of stored events (bulkStore's, or a copy's
// from the live file), taken from the events' encodings (storedID).
type idBatch struct {
	ulids []ulidEntry
	other []idEntry
}

// add adds the entry of the event stored at seq with encoding data; none when it has no id.
func (b *idBatch) add(data []byte, seq uint64) {
	key := storedIDKey(data)
	switch {
	case key == nil:
		// the fold quarantines it (QuarantineNoID, or one that does not decode)
	case isULIDKey(key):
		b.ulids = append(b.ulids, ulidEntry{key: [16]byte(key), seq: seq})
	default:
		b.other = append(b.other, idEntry{key: key, seq: seq})
	}
}

// add takes a batch's entries, the ULID ones as a run of their own, sorted.
func (c *idCollector) add(b idBatch) {
	if len(b.ulids) > 0 {
		slices.SortFunc(b.ulids, compareULIDEntries)
		c.runs = append(c.runs, b.ulids)
	}
	c.other = append(c.other, b.other...)
}

// idsPerTx is how many event-id index entries idCollector.writeStep puts per transaction,
// in blocks of idsPerBlock: 250 Puts of about 2 KB, short enough that a chunk folded
// meanwhile waits little for the writer. (When each entry had a key of its own, 20 000 a
// transaction was also the fastest: bbolt holds a transaction's new entries of a page in one
// growing slice until commit. A variable for the tests, which write it in small steps.)
var idsPerTx = 20000

// writeStep puts the next idsPerTx entries into the index, in key order (every ULID key sorts
// before the others, which begin with 0xff), in full blocks, each page written once, and reports
// whether any are left. An id stored twice keeps its lowest sequence, as putIDs does. The
// fold calls it between its chunks' writes, so the index is written while the chunks after
// them are folded.
func (c *idCollector) writeStep(db *DB) (more bool, err error) {
	if c.merge == nil {
		c.merge = newRunMerge(c.runs)
		c.runs = nil // let each run go once merged: 24 bytes an event, 79 MB at 3.3 M events
	}
	m := c.merge
	if m.done() {
		if len(c.other) > 0 && !c.otherWritten {
			c.otherWritten = true
			if err := db.update(func(tx *bolt.Tx) error { return putIDs(tx, c.other) }); err != nil {
				return false, err
			}
		}
		return false, nil
	}
	// The step's entries, each key once: putULIDs cuts them into full blocks after the last
	// block written (the index holds nothing later: a new file), as catching up would.
	step := c.step[:0]
	for n := 0; n < idsPerTx && !m.done(); n++ {
		e := m.next()
		if c.started && e.key == c.prev.key {
			// In order: the lowest sequence of the key came first, and is written.
			if len(c.dups) == 0 || c.dups[len(c.dups)-1].key != e.key {
				c.dups = append(c.dups, c.prev)
			}
			c.dups = append(c.dups, e)
			continue
		}
		c.prev, c.started = e, true
		step = append(step, e)
	}
	c.step = step
	err = db.update(func(tx *bolt.Tx) error {
		b := bucket(tx, bucketIDs)
		b.setFillPercent(1.0)
		return putULIDs(b, step)
	})
	return err == nil, err
}

// unindex takes out of the index, once written, the entries of the events the fold
// quarantined (bad, keyed as idBatch keys them), as if they had never been indexed: an id
// another stored event also has keeps the lowest sequence of those the fold kept.
func (c *idCollector) unindex(db *DB, bad []idEntry) error {
	if len(bad) == 0 {
		return nil
	}
	dropped := make(map[uint64]bool, len(bad))
	for _, e := range bad {
		dropped[e.seq] = true
	}
	return db.update(func(tx *bolt.Tx) error {
		b := bucket(tx, bucketIDs)
		for _, e := range bad {
			if seq, ok := lookupID(b, e.key); !ok || seq != e.seq {
				continue // a lower sequence holds the id
			}
			var keep uint64
			for _, seq := range c.seqsOf(e.key) {
				if !dropped[seq] && (keep == 0 || seq < keep) {
					keep = seq
				}
			}
			if err := setID(b, e.key, keep, keep == 0); err != nil {
				return err
			}
		}
		return nil
	})
}

// seqsOf returns the sequences of the entries with key, once writeStep has written them all; nil for a ULID
// key given once (that entry is the one unindex takes out).
func (c *idCollector) seqsOf(key []byte) []uint64 {
	var seqs []uint64
	if isULIDKey(key) {
		k := ulidEntry{key: [16]byte(key)}
		i, _ := slices.BinarySearchFunc(c.dups, k, compareULIDEntries) // seq 0 sorts first
		for ; i < len(c.dups) && c.dups[i].key == k.key; i++ {
			seqs = append(seqs, c.dups[i].seq)
		}
	}
	for _, o := range c.other {
		if bytes.Equal(o.key, key) {
			seqs = append(seqs, o.seq)
		}
	}
	return seqs
}

// runMerge yields the entries of sorted runs in order (a binary heap of the runs by their
// first entry).
type runMerge struct {
	heap [][]ulidEntry
}

func newRunMerge(runs [][]ulidEntry) *runMerge {
	m := &runMerge{}
	for _, r := range runs {
		if len(r) > 0 {
			m.heap = append(m.heap, r)
		}
	}
	for i := len(m.heap)/2 - 1; i >= 0; i-- {
		m.down(i)
	}
	return m
}

func (m *runMerge) done() bool { return len(m.heap) == 0 }

// next returns the smallest entry left; the merge must not be done.
func (m *runMerge) next() ulidEntry {
	e := m.heap[0][0]
	if m.heap[0] = m.heap[0][1:]; len(m.heap[0]) == 0 {
		last := len(m.heap) - 1
		m.heap[0] = m.heap[last]
		m.heap = m.heap[:last]
	}
	if len(m.heap) > 0 {
		m.down(0)
	}
	return e
}

func (m *runMerge) down(i int) {
	for {
		l, small := 2*i+1, i
		if l < len(m.heap) && compareULIDEntries(m.heap[l][0], m.heap[small][0]) < 0 {
			small = l
		}
		if r := l + 1; r < len(m.heap) && compareULIDEntries(m.heap[r][0], m.heap[small][0]) < 0 {
			small = r
		}
		if small == i {
			return
		}
		m.heap[i], m.heap[small] = m.heap[small], m.heap[i]
		i = small
	}
}

// foldJob is one person of a foldAll chunk.
type foldJob struct {
	pk   string
	seqs []uint64
	raws [][]byte
	der  *derived
	// bad are the person's stored events that checkStored quarantined; unindex their
	// event-id index entries, as the store pass made them (storedIDKey).
	bad     []Quarantine
	unindex []idEntry
	// faults are the person's events whose fold panicked (rules.State.Faults): quarantined,
	// but kept stored, as catching up does.
	faults []rules.Fault
	// unknown are the sequences of the person's events this build cannot wholly read,
	// counted as catching up counts them (noteUnknownKinds).
	unknown []uint64
}

// foldJobs folds and derives the jobs' persons on GOMAXPROCS goroutines.
func foldJobs(jobs []foldJob, open func(*nirv1.Event) error) error {
	var next atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(jobs)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(jobs) || firstErr.Load() != nil {
					return
				}
				j := &jobs[i]
				les := make([]rules.LoggedEvent, 0, len(j.raws))
				for x, raw := range j.raws {
					// Stored by an undecoded first pass: checked as the event store checks
					// what it decodes, so a rebuild quarantines what catching up does.
					ev, reason := checkStored(raw, j.pk)
					if reason != "" {
						j.bad = append(j.bad, Quarantine{Seq: j.seqs[x], Reason: reason})
						if key := storedIDKey(raw); key != nil {
							j.unindex = append(j.unindex, idEntry{key: key, seq: j.seqs[x]})
						}
						continue
					}
					if open != nil {
						if err := open(ev); err != nil {
							err = fmt.Errorf("projections: open the sealed fields of event %s: %w", ev.GetId(), err)
							firstErr.CompareAndSwap(nil, &err)
							return
						}
					}
					if nirv1.HoldsUnknown(ev) {
						j.unknown = append(j.unknown, j.seqs[x])
					}
					les = append(les, rules.LoggedEvent{Seq: j.seqs[x], Event: ev})
				}
				st := rules.NewState(j.pk)
				st.ApplyAll(les)
				j.raws = nil
				j.faults = st.Faults
				j.der = derive(st)
			}
		})
	}
	wg.Wait()
	if err := firstErr.Load(); err != nil {
		return *err
	}
	return nil
}

// checkStored decodes an event a rebuild stored undecoded for person pk, with the event
// store's checks after the subject's, in its order: the data is an event, it has an id, its
// envelope names pk, it has a payload or a newer kind's. It returns the event, or the Quarantine reason.
func checkStored(raw []byte, pk string) (*nirv1.Event, string) {
	ev, err := nirv1.UnmarshalEvent(raw)
	if err != nil {
		return nil, QuarantineUndecodable
	}
	if ev.GetId() == "" {
		return nil, QuarantineNoID
	}
	if ev.GetPersonKey() != pk {
		return nil, QuarantineOtherPerson
	}
	if nirv1.EmptyEvent(ev) {
		return nil, QuarantineNoPayload
	}
	return ev, ""
}

// dropStored removes a person's quarantined events from the events and pevents buckets and
// records them in the quarantine bucket.
func (db *DB) dropStored(tx *bolt.Tx, pk string, bad []Quarantine) error {
	peb, evb := bucket(tx, bucketPEvents), bucket(tx, bucketEvents)
	drop := make(map[uint64]bool, len(bad))
	for _, q := range bad {
		drop[q.Seq] = true
		if err := db.quarantine(tx, q.Seq, q.Reason); err != nil {
			return err
		}
		var key [8]byte
		binary.BigEndian.PutUint64(key[:], q.Seq/eventsPerBlock)
		block := withoutInBlock(evb.getBlock(key[:]), q.Seq)
		var err error
		if len(block) == 0 {
			err = evb.Delete(key[:])
		} else {
			err = evb.putBlock(key[:], block)
		}
		if err != nil {
			return err
		}
	}
	var keep []uint64
	for _, s := range personSeqs(peb.Get([]byte(pk))) {
		if !drop[s] {
			keep = append(keep, s)
		}
	}
	if len(keep) == 0 {
		return peb.Delete([]byte(pk))
	}
	if err := peb.Delete([]byte(pk)); err != nil {
		return err
	}
	return addPersonSeqs(peb, pk, keep)
}

// withoutInBlock returns a copy of block without the entry of seq.
func withoutInBlock(b []byte, seq uint64) []byte {
	out := make([]byte, 0, len(b))
	for len(b) > 0 {
		s, _, rest, ok := nextEntry(b)
		if !ok {
			break
		}
		if s != seq {
			out = append(out, b[:len(b)-len(rest)]...)
		}
		b = rest
	}
	return out
}
