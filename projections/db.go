package projections

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/ratelog"
	"github.com/introreg/nir/rules"
)

// SchemaVersion is the version of the read-model layout and derivation. A file written by
// another version is reset by Open and refolded from sequence 1. Bump it whenever what a
// model stores for the same events changes.
const SchemaVersion = 22 // 22: statistics count the persons given norsk and samfunnskunnskap hours apart, each hours counter's contributors for disclosure control (Product decisions 14); 21: the person list row holds the hours per year, so the hours filters judge the data year's hours (README "Person list: deadlines, data year, whose programme"); statistics count a person once per kommune of the year's structure (a reform), a training tildeling ends for counting with the move away from its kommune, an open 6A tildeling at the 6A deadline (RETT_6A) or after 6 months (UTVIDET_6A); 20: a person registered before settlement (in mottak) is reached by the kommune that registered it (access records, rules.Residences); 19: the person list row holds the programme start deadline, the data years the person's programmes and training ran in and the kommune's terminations (the year filter), and shows the current kommune's programme; 18: statistics: hours per kommune that gave them (a move mid-month), each training tildeling ended by its own stans, training starts of the opplæring target group only; rule-engine corrections (README "Rule engine corrections": a computed termination whose trigger no longer holds ends nothing, a deletion holds on every re-fold, inactivity on Norwegian dates, leave after a deadline); 17: the persons bucket holds every subject's access record (PersonAccess); 16: the norsk deadline not computable on open-ended leave, IntroL labour immigrants 55–67 before 2017 outside the training target group (DOMAIN.md 3.2, 1.4); 15: the event-id index in blocks; 14: a checksum at the end of every value; 13: persons with training hours, for disclosure control (Product decisions 14)

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
	bucketPersons    = []byte("persons")    // person key → PersonAccess (bostedskommune, who reaches the person, last sequence)
	bucketList       = []byte("list")       // kommune 0x00 person key → PersonRow
	bucketStats      = []byte("stats")      // year(2) kommune → counters
	bucketTerminated = []byte("terminated") // year(2) kommune 0x00 person key 0x00 n(2) → TerminatedRow
	bucketDue        = []byte("due")        // date(4) person key → nil (regelmotor worker)
	bucketQuarantine = []byte("quarantine") // seq(8) → reason: stream messages that are not usable events
	bucketIDs        = []byte("ids")        // a block's first ULID → the block's entries; 0xff id → stream sequence (see ids.go)
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
	// Open, when set, opens the sealed identifying fields of an event in place before it is
	// folded (sealing.Events.Open; DOMAIN.md Product decisions 15). Events are stored in the
	// file as they came, sealed; only the derived person rows hold what the fold shows.
	Open func(ev *nirv1.Event) error
	// MapSize is the size of the file's memory mapping to begin with (bbolt's
	// InitialMmapSize; 0: bbolt's default). bbolt remaps the file each time it outgrows the
	// mapping (doubling it up to 1 GiB), and every remap copies each node of the open write
	// transaction out of the old mapping: a new file that will grow to a known size is
	// spared that by a mapping of that size. Address space only; no memory or disk is taken.
	MapSize int
}

// DB is one bbolt file holding the whole read-model set (every model in Models) with each
// model's checkpoint. Queries may run concurrently with Apply; Apply calls are serialised.
type DB struct {
	path   string
	bolt   *bolt.DB
	logger *slog.Logger
	open   func(ev *nirv1.Event) error

	// mu serialises Apply and guards cache and skipped.
	mu       sync.Mutex
	cache    map[string]*cached
	cacheMax int
	skipped  uint64

	// rowsMu guards kommuneGen, rowCache and changing: decoded person lists per kommune,
	// invalidated by bumping the kommune's generation after a commit that changed its rows.
	// changing holds the kommuner whose rows a commit changes, from before it until the
	// cache follows it (updateRowCache): their cached lists are neither read nor stored then.
	rowsMu     sync.Mutex
	kommuneGen map[string]uint64
	rowCache   map[string]*kommuneRows
	changing   map[string]bool
	cachedRows int

	// bulkLast is the last sequence stored by bulkStore (guarded by mu); bulkSeqs the
	// sequence lists of the persons it stored, kept in memory until flushBulkSeqs writes
	// them once, in key order (see bulkStore).
	bulkLast uint64
	bulkSeqs map[string]*seqList
	// bulkIDs are the event-id index entries of the events bulkStore and storeCopied stored,
	// for foldAll to write (guarded by mu).
	bulkIDs idCollector
	// spill, when set, gets every event bulkStore and storeCopied store, for foldAll to read
	// by ranges of persons (guarded by mu).
	spill *spill
	// published keeps the published tables' suppressions (PublishedStatisticsContext).
	published publishedCache

	// readCkpt caches checkpointTx for the committed state a read transaction sees (bbolt's
	// transaction id): the append path asks for the checkpoint on every append
	// (EventPersons), and most appends between two commits see the same state.
	readCkpt atomic.Pointer[txCheckpoint]

	// quarantined counts the quarantine bucket's entries as committed; newQuarantined
	// those the transaction in progress adds, less those it removes (guarded by mu).
	quarantined    atomic.Uint64
	newQuarantined int64
	// quarantinesAdded counts the quarantine's entries Apply has added since the file was
	// opened, none taken off for those it removed again; addedQuarantines those the
	// transaction in progress adds (guarded by mu).
	quarantinesAdded atomic.Uint64
	addedQuarantines uint64

	// unknownKinds counts the events a rebuild or Apply met whose kind this build does not
	// know, or with fields it does not know (a newer nird wrote them), kept in the file's
	// meta bucket (unknownKindsKey), and unknownKindLog bounds its lines; newUnknownKinds are
	// the sequences of those the Apply in progress met, counted once it commits (guarded by
	// mu). firstUnknown is FirstUnknownKind, kept in the file too.
	unknownKinds    atomic.Uint64
	unknownKindLog  ratelog.Minute
	newUnknownKinds []uint64
	firstUnknown    atomic.Uint64

	// removeOnClose removes the file on Close (an unkept as-of replay).
	removeOnClose bool
}

// dropMappedEvery bounds how often a rebuild drops the file's mapped pages: each drop walks
// the page tables of the whole mapping.
const dropMappedEvery = 250 * time.Millisecond

// dropMappedAbove is the size above which a rebuild's new file has its mapped pages dropped
// as it is built: a smaller file's pages add no more than this to the resident set, and the
// fold reads most of them again in every chunk, so each drop cost page faults for nothing.
// Measured at 1.1 M events (a 327 MiB file): 0.7-1.3 CPU-seconds more with the drops, 8.51-
// 10.47 against 9.82-11.51. The finished file's pages are dropped once (build), and the live
// file's as a rebuild copies from it (copyWalk), whatever their size, so that no more than
// one file's worth stays resident beside the heap.
const dropMappedAbove = 384 << 20

// dropMappedMeanwhile drops the mapped pages of b's file (dropMapped, if larger than above)
// every dropMappedEvery until stop is called; stop waits for a drop under way, and may be
// called again.
func dropMappedMeanwhile(b *bolt.DB, above int64) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(dropMappedEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				dropMapped(b, above)
			case <-quit:
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(quit) })
		<-done
	}
}

// cached is a person's folded state with what was derived from it.
type cached struct {
	st  *rules.State
	der *derived
	// seqs are the person's event sequences added in the current transaction.
	seqs []uint64
	// fresh are the person's events of the current transaction, folded together at its
	// end (rules.State.ApplyAll: one re-fold for all their retractions).
	fresh []rules.LoggedEvent
}

// Open opens (creating if needed) the read-model file at path. A file written by another
// SchemaVersion is reset (every model emptied, checkpoints 0) unless ReadOnly, in which case
// Open fails with ErrSchema. A damaged file (checkFile, bbolt's own checks) fails with an
// error wrapping ErrCorrupt before bbolt uses any of its pages, never a crash.
func Open(path string, opt DBOptions) (*DB, error) {
	var fc FileCheck
	if fi, err := os.Stat(path); err == nil {
		switch {
		case !fi.Mode().IsRegular():
			// A directory, a FIFO (opening one waits for a writer, for ever) or a device
			// where the file belongs is no read-model file.
			return nil, fmt.Errorf("projections: open %s: %w: not a regular file (%v)", path, ErrCorrupt, fi.Mode().Type())
		case fi.Size() == 0 && opt.ReadOnly:
			// bbolt would write the first pages of a new file, and fail on a read-only one
			// with an error that names no damage; a file to read is never empty.
			return nil, fmt.Errorf("projections: open %s: %w: the file is empty", path, ErrCorrupt)
		case fi.Size() > 0:
			if fc, err = checkFile(path, opt.VerifyValues); err != nil {
				return nil, err
			}
		}
	}
	bopt := &bolt.Options{Timeout: 5 * time.Second, ReadOnly: opt.ReadOnly, NoFreelistSync: true,
		FreelistType: bolt.FreelistMapType, NoSync: opt.NoSync, InitialMmapSize: opt.MapSize}
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
	if fc.MetaDamaged {
		logger.Warn("one of the read-model file's two meta pages is damaged: bbolt opened the other, which may hold an earlier transaction's models (they are caught up from the stream); the next commit writes the damaged page again", "path", path)
	}
	db := &DB{path: path, bolt: bdb, logger: logger, cacheMax: opt.StateCache, open: opt.Open,
		unknownKindLog: ratelog.Minute{Msg: unknownKindMsg}}
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
			if v := bucket(tx, bucketMeta).Get(unknownKindsKey); len(v) == 8 {
				db.unknownKinds.Store(btou64(v))
			}
			if v := bucket(tx, bucketMeta).Get(firstUnknownKey); len(v) == 8 {
				db.firstUnknown.Store(btou64(v))
			}
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
	return readMetaIn(tx.Bucket(bucketMeta), model)
}

// readMetaIn is readMeta on the meta bucket already opened (nil: none). Opening it is not
// free in a read transaction: bbolt copies a small (inline) bucket on every open, and the
// append path asks for the checkpoint on every append (Projector.EventPersons).
func readMetaIn(b *bolt.Bucket, model string) (ckpt uint64, version uint32, ok bool) {
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

// asOfKey is the meta entry of an as-of replay's cut-off (Unix nanoseconds), and
// asOfProvisionalKey the instant its bound settled, when the replay was made before it.
var (
	// unknownKindsKey keeps how many events of a kind this build does not know the file's
	// models left out (DB.UnknownKinds), so that an older nird restarted on its file still
	// says its models miss them.
	unknownKindsKey    = []byte("unknown-kinds")
	asOfKey            = []byte("asof")
	asOfProvisionalKey = []byte("asof-provisional-until")
)

// setAsOf records the recorded-time cut-off the file was replayed to and, when not zero, the
// instant before which it was provisional (Provisional), and syncs the file when it is kept (a
// snapshot); a replay's file removed on close needs no fsync.
func (db *DB) setAsOf(t, provisionalUntil time.Time, keep bool) error {
	err := db.update(func(tx *bolt.Tx) error {
		if !provisionalUntil.IsZero() {
			if err := bucket(tx, bucketMeta).Put(asOfProvisionalKey, u64(uint64(provisionalUntil.UnixNano()))); err != nil {
				return err
			}
		}
		return bucket(tx, bucketMeta).Put(asOfKey, u64(uint64(t.UnixNano())))
	})
	if err != nil {
		return fmt.Errorf("projections: record cut-off: %w", err)
	}
	if !keep {
		return nil
	}
	return db.Sync()
}

// AsOf returns the recorded-time cut-off of an as-of replay (a snapshot); false for the live
// models and for snapshots kept before the cut-off was recorded.
func (db *DB) AsOf() (time.Time, bool) { return db.metaTime(asOfKey) }

// metaTime reads an instant the meta bucket keeps under key (Unix nanoseconds); false when
// there is none.
func (db *DB) metaTime(key []byte) (time.Time, bool) {
	var t time.Time
	_ = db.view(func(tx *bolt.Tx) error {
		if v := bucket(tx, bucketMeta).Get(key); len(v) == 8 {
			t = time.Unix(0, int64(btou64(v))).UTC()
		}
		return nil
	})
	return t, !t.IsZero()
}

// Provisional reports whether an as-of replay was made before its cut-off had settled, and
// until when: an event recorded by the cut-off may have reached the stream after the replay
// read it (the clock skew the feed allows for, Attester.CutOff). A replay made after that
// instant holds the final figures. False for the live models, for a replay made after its
// cut-off settled, and for snapshots kept before nird recorded this.
func (db *DB) Provisional() (time.Time, bool) { return db.metaTime(asOfProvisionalKey) }

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
	if db.spill != nil {
		db.spill.close()
		db.spill = nil
	}
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

// txCheckpoint is checkpointTx's answer for the committed state with transaction id txid.
type txCheckpoint struct {
	txid int
	ckpt uint64
}

// readCheckpoint is checkpointTx in a read transaction, cached per committed state.
func (db *DB) readCheckpoint(tx *bolt.Tx) uint64 {
	if c := db.readCkpt.Load(); c != nil && c.txid == tx.ID() {
		return c.ckpt
	}
	c := &txCheckpoint{txid: tx.ID(), ckpt: checkpointTx(tx)}
	db.readCkpt.Store(c)
	return c.ckpt
}

func checkpointTx(tx *bolt.Tx) uint64 {
	var c uint64
	meta := tx.Bucket(bucketMeta)
	for i, m := range Models {
		v, _, _ := readMetaIn(meta, m)
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
