package projections

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"google.golang.org/protobuf/proto"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// SchemaVersion is the version of the read-model layout and derivation. A file written by
// another version is reset by Open and refolded from sequence 1. Bump it whenever what a
// model stores for the same events changes.
const SchemaVersion = 14 // 14: a checksum at the end of every value; 13: persons with training hours, for disclosure control (Product decisions 14)

// Model names, as they appear in Status and in the meta bucket.
const (
	ModelHistory    = "history"
	ModelPersons    = "persons"
	ModelDeadlines  = "deadlines"
	ModelStatistics = "statistics"
	ModelTerminated = "terminated"
)

// Models lists every read model kept in a DB file, in a fixed order.
var Models = []string{ModelHistory, ModelPersons, ModelDeadlines, ModelStatistics, ModelTerminated}

var (
	bucketMeta       = []byte("meta")       // model name → checkpoint(8) schema(4)
	bucketEvents     = []byte("events")     // block(8) → events of seqs block*64.. (see eventBlock)
	bucketPEvents    = []byte("pevents")    // person key → the person's seqs (uvarint deltas)
	bucketPersons    = []byte("persons")    // person key → bostedskommune
	bucketList       = []byte("list")       // kommune 0x00 person key → PersonRow
	bucketStats      = []byte("stats")      // year(2) kommune → counters
	bucketTerminated = []byte("terminated") // year(2) kommune 0x00 person key 0x00 n(2) → TerminatedRow
	bucketDue        = []byte("due")        // date(4) person key → nil (regelmotor worker)
	bucketQuarantine = []byte("quarantine") // seq(8) → reason: stream messages that are not usable events
	bucketIDs        = []byte("ids")        // event id (see idKey) → stream sequence (uvarint)
	allBuckets       = [][]byte{bucketMeta, bucketEvents, bucketPEvents, bucketPersons, bucketList, bucketStats, bucketTerminated, bucketDue, bucketQuarantine, bucketIDs}
)

// DefaultStateCache is the number of folded person states a DB keeps in memory between
// batches (DBOptions.StateCache).
const DefaultStateCache = 5000

// DBOptions configure Open. The zero value means defaults.
type DBOptions struct {
	// ReadOnly opens the file for queries only (snapshots).
	ReadOnly bool
	// NoSync skips fsync on commit; the owner calls Sync once at the end (rebuild, replay).
	NoSync bool
	// StateCache bounds the person states kept in memory; 0 means DefaultStateCache, a
	// negative value disables the cache.
	StateCache int
	// Logger receives resets and skipped events; nil discards.
	Logger *slog.Logger
	// VerifyValues checks every value's checksum before the file is opened, besides its
	// structure (checkFile), which is always checked.
	VerifyValues bool
}

// DB is one bbolt file holding the whole read-model set (every model in Models) with each
// model's checkpoint. Queries may run concurrently with Apply; Apply calls are serialised.
type DB struct {
	path   string
	bolt   *bolt.DB
	logger *slog.Logger

	// mu serialises Apply and guards cache and skipped.
	mu       sync.Mutex
	cache    map[string]*cached
	cacheMax int
	skipped  uint64

	// rowsMu guards kommuneGen and rowCache: decoded person lists per kommune, invalidated
	// by bumping the kommune's generation after a commit that changed its rows.
	rowsMu     sync.Mutex
	kommuneGen map[string]uint64
	rowCache   map[string]*kommuneRows
	cachedRows int

	// bulkLast is the last sequence stored by bulkStore (guarded by mu).
	bulkLast uint64

	// quarantined counts the quarantine bucket's entries as committed; newQuarantined
	// those of the transaction in progress (guarded by mu).
	quarantined    atomic.Uint64
	newQuarantined uint64

	// removeOnClose removes the file on Close (an unkept as-of replay).
	removeOnClose bool
}

// cached is a person's folded state with what was derived from it.
type cached struct {
	st  *rules.State
	der *derived
	// seqs are the person's event sequences added in the current transaction.
	seqs []uint64
}

// Open opens (creating if needed) the read-model file at path. A file written by another
// SchemaVersion is reset (every model emptied, checkpoints 0) unless ReadOnly, in which case
// Open fails with ErrSchema. A damaged file (checkFile, bbolt's own checks) fails with an
// error wrapping ErrCorrupt before bbolt uses any of its pages, never a crash.
func Open(path string, opt DBOptions) (*DB, error) {
	if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
		if _, err := checkFile(path, opt.VerifyValues); err != nil {
			return nil, err
		}
	}
	bopt := &bolt.Options{Timeout: 5 * time.Second, ReadOnly: opt.ReadOnly, NoFreelistSync: true,
		FreelistType: bolt.FreelistMapType, NoSync: opt.NoSync}
	var bdb *bolt.DB
	err := guard(func() error {
		var err error
		bdb, err = bolt.Open(path, 0o600, bopt)
		return err
	})
	if err != nil {
		if errors.Is(err, berrors.ErrInvalid) || errors.Is(err, berrors.ErrVersionMismatch) || errors.Is(err, berrors.ErrChecksum) {
			err = fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		return nil, fmt.Errorf("projections: open %s: %w", path, err)
	}
	logger := opt.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	db := &DB{path: path, bolt: bdb, logger: logger, cacheMax: opt.StateCache}
	if db.cacheMax == 0 {
		db.cacheMax = DefaultStateCache
	}
	if opt.ReadOnly {
		err = db.view(func(tx *bolt.Tx) error {
			for _, m := range Models {
				_, v, ok := readMeta(tx, m)
				if !ok || v != SchemaVersion {
					return fmt.Errorf("%w: %s model %s has version %d, want %d", ErrSchema, path, m, v, SchemaVersion)
				}
			}
			return nil
		})
	} else {
		err = db.update(db.initTx)
	}
	if err == nil {
		err = db.view(func(tx *bolt.Tx) error {
			db.quarantined.Store(uint64(bucket(tx, bucketQuarantine).Stats().KeyN))
			return nil
		})
	}
	if err != nil {
		bdb.Close()
		return nil, err
	}
	return db, nil
}

// initTx creates the buckets, and resets the models when any was written by another schema
// version, so that the runtime refolds them from sequence 1.
func (db *DB) initTx(tx *bolt.Tx) error {
	reset := false
	if tx.Bucket(bucketMeta) != nil {
		for _, m := range Models {
			_, v, ok := readMeta(tx, m)
			if ok && v != SchemaVersion {
				reset = true
			}
		}
	}
	if reset {
		db.logger.Warn("read-model schema changed, resetting models", "path", db.path, "schema", SchemaVersion)
		for _, b := range allBuckets {
			if tx.Bucket(b) != nil {
				if err := tx.DeleteBucket(b); err != nil {
					return err
				}
			}
		}
	}
	for _, b := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	for _, m := range Models {
		if _, _, ok := readMeta(tx, m); !ok {
			if err := writeMeta(tx, m, 0); err != nil {
				return err
			}
		}
	}
	return nil
}

// readMeta reads a model's checkpoint and schema version. A file of a schema before 14 has
// no checksums: its 12-byte entries are read as they are, so that Open resets it.
func readMeta(tx *bolt.Tx, model string) (ckpt uint64, version uint32, ok bool) {
	b := tx.Bucket(bucketMeta)
	if b == nil {
		return 0, 0, false
	}
	v := b.Get([]byte(model))
	switch len(v) {
	case 12: // unchecked, from before checksums: its version differs
	case 12 + crcSize:
		v = bkt{b: b, name: bucketMeta}.check([]byte(model), v)
	default:
		return 0, 0, false
	}
	return btou64(v[:8]), binary.BigEndian.Uint32(v[8:12]), true
}

func writeMeta(tx *bolt.Tx, model string, ckpt uint64) error {
	v := u64(ckpt)
	v = append(v, byte(SchemaVersion>>24), byte(SchemaVersion>>16), byte(SchemaVersion>>8), byte(SchemaVersion))
	return bucket(tx, bucketMeta).Put([]byte(model), v)
}

// asOfKey is the meta entry of an as-of replay's cut-off (Unix nanoseconds).
var asOfKey = []byte("asof")

// setAsOf records the recorded-time cut-off the file was replayed to, and syncs it.
func (db *DB) setAsOf(t time.Time) error {
	err := db.update(func(tx *bolt.Tx) error {
		return bucket(tx, bucketMeta).Put(asOfKey, u64(uint64(t.UnixNano())))
	})
	if err != nil {
		return fmt.Errorf("projections: record cut-off: %w", err)
	}
	return db.Sync()
}

// AsOf returns the recorded-time cut-off of an as-of replay (a snapshot); false for the live
// models and for snapshots kept before the cut-off was recorded.
func (db *DB) AsOf() (time.Time, bool) {
	var t time.Time
	_ = db.view(func(tx *bolt.Tx) error {
		if v := bucket(tx, bucketMeta).Get(asOfKey); len(v) == 8 {
			t = time.Unix(0, int64(btou64(v))).UTC()
		}
		return nil
	})
	return t, !t.IsZero()
}

// metaStream is the meta bucket's key of the stream identity the models were built from.
var metaStream = []byte("stream")

// StreamID returns the identity of the stream the models were built from ("" until
// recorded).
func (db *DB) StreamID() (string, error) {
	var id string
	err := db.view(func(tx *bolt.Tx) error {
		id = string(bucket(tx, bucketMeta).Get(metaStream))
		return nil
	})
	return id, err
}

// setStreamID records the identity of the stream the models are built from.
func (db *DB) setStreamID(id string) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.bolt == nil {
		return ErrClosed
	}
	return db.update(func(tx *bolt.Tx) error { return bucket(tx, bucketMeta).Put(metaStream, []byte(id)) })
}

// lastStored returns the last event stored (the one with the highest sequence) and its
// encoding as the stream delivered it, copied; found is false when none is.
func (db *DB) lastStored() (seq uint64, raw []byte, found bool, err error) {
	err = db.view(func(tx *bolt.Tx) error {
		_, block := bucket(tx, bucketEvents).b.Cursor().Last()
		for len(block) > 0 {
			s, n := binary.Uvarint(block)
			if n <= 0 {
				return fmt.Errorf("%w: events block", ErrCorrupt)
			}
			l, m := binary.Uvarint(block[n:])
			if m <= 0 || uint64(len(block)-n-m) < l {
				return fmt.Errorf("%w: events block", ErrCorrupt)
			}
			seq, raw, found = s, block[n+m:n+m+int(l)], true
			block = block[n+m+int(l):]
		}
		if found {
			raw = bytes.Clone(entryData(seq, raw))
		}
		return nil
	})
	return seq, raw, found, err
}

// Path returns the file's path.
func (db *DB) Path() string { return db.path }

// Close closes the file. It is safe to call on a nil DB and more than once.
func (db *DB) Close() error {
	if db == nil {
		return nil
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.bolt == nil {
		return nil
	}
	err := db.bolt.Close()
	db.bolt = nil
	db.cache = nil
	if db.removeOnClose {
		if rerr := os.Remove(db.path); rerr != nil && err == nil {
			err = rerr
		}
	}
	return err
}

// Sync flushes the file to stable storage (after applying with NoSync).
func (db *DB) Sync() error { return db.bolt.Sync() }

// Size returns the file size in bytes.
func (db *DB) Size() int64 {
	fi, err := os.Stat(db.path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// ModelStatus is one model's position in the stream.
type ModelStatus struct {
	// Name of the model (see Models).
	Name string `json:"name"`
	// Checkpoint is the last stream sequence applied to the model.
	Checkpoint uint64 `json:"checkpoint"`
	// Schema is the model's schema version.
	Schema uint32 `json:"schema"`
}

// Status returns each model's checkpoint and schema version.
func (db *DB) Status() ([]ModelStatus, error) {
	var out []ModelStatus
	err := db.view(func(tx *bolt.Tx) error {
		for _, m := range Models {
			c, v, _ := readMeta(tx, m)
			out = append(out, ModelStatus{Name: m, Checkpoint: c, Schema: v})
		}
		return nil
	})
	return out, err
}

// Checkpoint returns the last stream sequence applied to every model (the smallest of the
// models' checkpoints; they move together).
func (db *DB) Checkpoint() (uint64, error) {
	var c uint64
	err := db.view(func(tx *bolt.Tx) error {
		c = checkpointTx(tx)
		return nil
	})
	return c, err
}

func checkpointTx(tx *bolt.Tx) uint64 {
	var c uint64
	for i, m := range Models {
		v, _, _ := readMeta(tx, m)
		if i == 0 || v < c {
			c = v
		}
	}
	return c
}

// view runs fn in a read transaction, guarded: damage found inside (a checksum, a page) is
// an error wrapping ErrCorrupt, never a crash.
func (db *DB) view(fn func(tx *bolt.Tx) error) error {
	b := db.bolt
	if b == nil {
		return ErrClosed
	}
	return guard(func() error { return b.View(fn) })
}

// update runs fn in a write transaction, guarded as view is; bbolt rolls the transaction
// back when fn panics.
func (db *DB) update(fn func(tx *bolt.Tx) error) error {
	b := db.bolt
	if b == nil {
		return ErrClosed
	}
	return guard(func() error { return b.Update(fn) })
}

// Skipped returns how many events were skipped because they carry no person key.
func (db *DB) Skipped() uint64 {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.skipped
}

// Apply folds records into every model in one transaction, together with the new checkpoint.
// Records at or below the checkpoint are skipped, so applying the same records again changes
// nothing. It returns the checkpoint after the call.
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
	db.newQuarantined = 0
	err := db.update(func(tx *bolt.Tx) error {
		var err error
		ckpt, touched, order, err = db.applyTx(tx, recs, changed)
		return err
	})
	if err == nil {
		db.quarantined.Add(db.newQuarantined)
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

// quarantine records that the stream message at seq is not a usable event, and logs it by
// its sequence (never its content).
func (db *DB) quarantine(tx *bolt.Tx, seq uint64, reason string) error {
	b := bucket(tx, bucketQuarantine)
	if b.Get(u64(seq)) != nil {
		return nil
	}
	db.logger.Warn("quarantined stream message skipped by the read models: not a usable event", "stream_seq", seq, "reason", reason)
	db.newQuarantined++
	return b.Put(u64(seq), []byte(reason))
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

// personRaw returns a person's stored sequences and encoded events, copied out of tx.
func personRaw(tx *bolt.Tx, pk string) ([]uint64, [][]byte, error) {
	seqs := personSeqs(bucket(tx, bucketPEvents).Get([]byte(pk)))
	raws := make([][]byte, 0, len(seqs))
	err := personStored(tx, seqs, func(_ uint64, v []byte) error {
		raws = append(raws, append([]byte(nil), v...))
		return nil
	})
	return seqs, raws, err
}

// personStored calls fn with each stored event at seqs (a person's, in stream order): its
// sequence and its encoding, valid only during the call (it points into tx's pages).
func personStored(tx *bolt.Tx, seqs []uint64, fn func(seq uint64, v []byte) error) error {
	evb := bucket(tx, bucketEvents)
	var key [8]byte
	var block []byte
	blockNo := ^uint64(0)
	for _, seq := range seqs {
		if seq/eventsPerBlock != blockNo {
			blockNo = seq / eventsPerBlock
			binary.BigEndian.PutUint64(key[:], blockNo)
			block = evb.getBlock(key[:])
		}
		v := findInBlock(block, seq)
		if v == nil {
			return fmt.Errorf("%w: event at seq %d of a person is missing", ErrCorrupt, seq)
		}
		if err := fn(seq, entryData(seq, v)); err != nil {
			return err
		}
	}
	return nil
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

func (db *DB) applyTx(tx *bolt.Tx, recs []Record, changed map[string][]rowChange) (uint64, map[string]*cached, []string, error) {
	ckpt := checkpointTx(tx)
	start := ckpt
	evb := bucket(tx, bucketEvents)
	// Sequences only grow, so pages can be filled completely.
	evb.setFillPercent(1.0)
	touched := make(map[string]*cached)
	var order []string
	var ids []idEntry
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
		c.st.Apply(rec.Seq, rec.Event)
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
		nd := derive(c.st)
		old := c.der.row
		if old != nil && (nd.row == nil || nd.row.Kommune != old.Kommune) {
			changed[old.Kommune] = append(changed[old.Kommune], rowChange{pk: pk})
		}
		if nd.row != nil && (old == nil || old.Kommune != nd.row.Kommune || !bytes.Equal(c.der.rowEnc, nd.rowEnc)) {
			changed[nd.row.Kommune] = append(changed[nd.row.Kommune], rowChange{pk: pk, row: nd.row})
		}
		if err := writeDiff(tx, pk, c.der, nd, sd); err != nil {
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
	var out []uint64
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
	st, err := foldStored(tx, pk)
	if err != nil {
		return nil, err
	}
	return &cached{st: st, der: derive(st)}, nil
}

// foldStored folds a person's stored events with the regelmotor.
func foldStored(tx *bolt.Tx, pk string) (*rules.State, error) {
	st := rules.NewState(pk)
	err := personEvents(tx, pk, func(seq uint64, ev *nirv1.Event) error {
		st.Apply(seq, ev)
		return nil
	})
	return st, err
}

// personEvents calls fn for each stored event of a person in stream order.
func personEvents(tx *bolt.Tx, pk string, fn func(seq uint64, ev *nirv1.Event) error) error {
	return personStored(tx, personSeqs(bucket(tx, bucketPEvents).Get([]byte(pk))), func(seq uint64, v []byte) error {
		ev := new(nirv1.Event)
		if err := proto.Unmarshal(v, ev); err != nil {
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

// findInBlock returns the entry of seq in a block (the encoded event and its checksum: see
// entryData), nil if absent.
func findInBlock(b []byte, seq uint64) []byte {
	for len(b) > 0 {
		s, n := binary.Uvarint(b)
		if n <= 0 {
			return nil
		}
		b = b[n:]
		l, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < l {
			return nil
		}
		b = b[n:]
		if s == seq {
			return b[:l]
		}
		b = b[l:]
	}
	return nil
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

// State folds one person's stored events with the regelmotor (the same state the models were
// derived from). It returns ErrNotFound when the person has no events.
func (db *DB) State(pk string) (*rules.State, error) {
	var st *rules.State
	err := db.view(func(tx *bolt.Tx) error {
		if !hasPerson(tx, pk) {
			return ErrNotFound
		}
		var err error
		st, err = foldStored(tx, pk)
		return err
	})
	return st, err
}

// Dump writes every bucket's keys and values in order, as hex lines. Two files with the same
// dump hold the same models; tests compare dumps of incremental and clean builds. The stream
// identity the file records (DB.StreamID) is left out: it says where the models come from,
// not what they hold.
func (db *DB) Dump(w io.Writer) error {
	return db.view(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			b := tx.Bucket(name)
			if b == nil {
				continue
			}
			if _, err := fmt.Fprintf(w, "bucket %s\n", name); err != nil {
				return err
			}
			err := b.ForEach(func(k, v []byte) error {
				if bytes.Equal(name, bucketMeta) && (bytes.Equal(k, asOfKey) || bytes.Equal(k, metaStream)) {
					return nil // when a snapshot was replayed to, and which stream the models come from, are not part of its models
				}
				_, err := fmt.Fprintf(w, "%x %x\n", k, v)
				return err
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}
