package projections

// The two-pass rebuild: store every event as it comes from the stream, undecoded, then
// fold each person once, on all CPUs.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// bulkStore stores records' events (history and the person's sequence list) without folding
// them: the first pass of a rebuild or replay into a new file. Records at or below the last one
// stored are skipped. It returns the last sequence stored.
func (db *DB) bulkStore(recs []Record) (uint64, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.bolt == nil {
		return 0, ErrClosed
	}
	db.newQuarantined = 0
	err := db.update(func(tx *bolt.Tx) error {
		evb := bucket(tx, bucketEvents)
		evb.setFillPercent(1.0)
		eb := eventBlockWriter{b: evb}
		seqs := map[string][]uint64{}
		var order []string
		for _, rec := range recs {
			if rec.Seq <= db.bulkLast {
				continue
			}
			db.bulkLast = rec.Seq
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
			if pk == "" || bytes.IndexByte([]byte(pk), 0) >= 0 {
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
			if _, ok := seqs[pk]; !ok {
				order = append(order, pk)
			}
			seqs[pk] = append(seqs[pk], rec.Seq)
		}
		if err := eb.flush(); err != nil {
			return err
		}
		peb := bucket(tx, bucketPEvents)
		for _, pk := range order {
			if err := addPersonSeqs(peb, pk, seqs[pk]); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		db.quarantined.Add(db.newQuarantined)
	}
	return db.bulkLast, err
}

// foldPersonsPerTx is how many persons the second pass of a rebuild folds per transaction.
const foldPersonsPerTx = 2000

// foldAll folds every stored person once with the regelmotor and writes every model, with the
// checkpoint at, in the last transaction: the second pass of a rebuild or replay into a new
// file (the models must be empty). The result equals applying the same events in stream order,
// since every model is derived from the person's final state alone and the statistics are
// integer sums. progress (may be nil) gets persons done and the total.
func (db *DB) foldAll(at uint64, progress func(done, total uint64)) error {
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
	var next []byte
	var done uint64
	db.newQuarantined = 0
	defer func() { db.quarantined.Add(db.newQuarantined) }()
	for {
		finished := false
		err := db.update(func(tx *bolt.Tx) error {
			c := bucket(tx, bucketPEvents).Cursor()
			k, _ := c.First()
			if next != nil {
				k, _ = c.Seek(next)
			}
			// Read the chunk's events (copied: a write transaction may remap the file), fold
			// and derive the persons on every CPU, then write them in person-key order.
			var jobs []foldJob
			for n := 0; n < foldPersonsPerTx && k != nil; n++ {
				j := foldJob{pk: string(k)}
				var err error
				if j.seqs, j.raws, err = personRaw(tx, j.pk); err != nil {
					return err
				}
				jobs = append(jobs, j)
				k, _ = c.Next()
			}
			next = append(next[:0], k...)
			if err := foldJobs(jobs); err != nil {
				return err
			}
			sd := statDeltas{}
			empty := &derived{}
			var ids []idEntry
			for i := range jobs {
				ids = append(ids, jobs[i].ids...)
			}
			// The event-id index holds the events folded, as catching up indexes them.
			if err := putIDs(tx, ids); err != nil {
				return err
			}
			for i := range jobs {
				if len(jobs[i].bad) > 0 {
					// As if catching up had never stored them (it does not).
					if err := db.dropStored(tx, jobs[i].pk, jobs[i].bad); err != nil {
						return err
					}
				}
				if err := writeDiff(tx, jobs[i].pk, empty, jobs[i].der, sd); err != nil {
					return fmt.Errorf("projections: person models: %w", err)
				}
				done++
			}
			if err := sd.flush(tx); err != nil {
				return fmt.Errorf("projections: statistics: %w", err)
			}
			if k == nil {
				finished = true
				for _, m := range Models {
					if err := writeMeta(tx, m, at); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if progress != nil {
			progress(done, total)
		}
		if finished {
			return nil
		}
	}
}

// foldJob is one person of a foldAll chunk.
type foldJob struct {
	pk   string
	seqs []uint64
	raws [][]byte
	der  *derived
	// bad are the person's stored events that checkStored quarantined.
	bad []Quarantine
	// ids are the event-id index entries of the events folded.
	ids []idEntry
}

// foldJobs folds and derives the jobs' persons on GOMAXPROCS goroutines.
func foldJobs(jobs []foldJob) error {
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
				st := rules.NewState(j.pk)
				for x, raw := range j.raws {
					// Stored by an undecoded first pass: checked as the event store checks
					// what it decodes, so a rebuild quarantines what catching up does.
					ev, reason := checkStored(raw, j.pk)
					if reason != "" {
						j.bad = append(j.bad, Quarantine{Seq: j.seqs[x], Reason: reason})
						continue
					}
					st.Apply(j.seqs[x], ev)
					j.ids = append(j.ids, idEntry{key: idKey(ev.GetId()), seq: j.seqs[x]})
				}
				j.raws = nil
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
// envelope names pk. It returns the event, or the Quarantine reason.
func checkStored(raw []byte, pk string) (*nirv1.Event, string) {
	ev := new(nirv1.Event)
	if err := proto.Unmarshal(raw, ev); err != nil {
		return nil, QuarantineUndecodable
	}
	if ev.GetId() == "" {
		return nil, QuarantineNoID
	}
	if ev.GetPersonKey() != pk {
		return nil, QuarantineOtherPerson
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
		s, n := binary.Uvarint(b)
		if n <= 0 {
			break
		}
		l, m := binary.Uvarint(b[n:])
		if m <= 0 || uint64(len(b)-n-m) < l {
			break
		}
		end := n + m + int(l)
		if s != seq {
			out = append(out, b[:end]...)
		}
		b = b[end:]
	}
	return out
}
