package eventstore

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/introreg/nir/sealing"
)

// KeyBucket is the JetStream key-value bucket of the persons' data keys (DOMAIN.md Product
// decisions 15): one entry per person key, holding the person's data key wrapped with the
// master key (package sealing). Destroying an entry erases the person: what was sealed with
// the key cannot be read any more, in the stream or in any copy of it.
const KeyBucket = "NIR_KEYS"

// keyStream is KeyBucket's stream, named as the client library names a bucket's.
const keyStream = "KV_" + KeyBucket

// keySubjectPrefix is the subject prefix of KeyBucket's entries: keySubjectPrefix+personKey.
const keySubjectPrefix = "$KV." + KeyBucket + "."

// kvOperation is the header by which a key-value message says it is a delete or purge
// marker (the client library's, which does not export it).
const (
	kvOperation = "KV-Operation"
	kvPurge     = "PURGE"
)

// keyAttempts bounds the rounds Ensure and Destroy make while other nird change the same
// entry under them; each round that loses a race sees the other's write.
const keyAttempts = 5

var (
	// ErrNoKey is returned for a person without a data key: never made, or destroyed. It
	// wraps sealing.ErrNoKey, so that a lenient sealing.Events reads the person's sealed
	// fields as unreadable rather than failing; only ErrKeyDestroyed reads them as erased.
	ErrNoKey = fmt.Errorf("eventstore: %w", sealing.ErrNoKey)
	// ErrKeyDestroyed is returned when the person's data key was destroyed (an erasure). It
	// wraps ErrNoKey. The person never gets another key: Ensure refuses.
	ErrKeyDestroyed = fmt.Errorf("%w: %w", ErrNoKey, sealing.ErrKeyDestroyed)
	// ErrMasterKey is returned when the master key does not open a data key in KeyBucket. At
	// OpenKeyStore it means nird was given another master key than the register's, and must
	// not start: it would read every person as erased.
	ErrMasterKey = errors.New("eventstore: the master key does not open the data keys in " + KeyBucket)
	// ErrKeyLost is returned by Key, on a register whose bucket has one replica, for an entry
	// that is neither stored nor destroyed: a key a stored event names is stored before the
	// event and a destroyed one leaves its purge marker, so its entry was lost on disk (a
	// block of the bucket's store cut short, which the NATS server drops at start with a
	// warning of its own). It wraps sealing.ErrKeyUnreadable, as a damaged entry does: the
	// read models read what it sealed as unreadable (with an error in the log), an append
	// for the person is refused with DataLoss. Before, it was ErrNoKey: read as an erasure
	// without a word, and an append answered "retry shortly" for ever. On a replicated
	// bucket the answer stays ErrNoKey: a leader cut off by a partition answers "none" for
	// a key made on the other side until it steps down.
	ErrKeyLost = fmt.Errorf("eventstore: %w: a data key a stored event names is missing from %s (lost on disk)", sealing.ErrKeyUnreadable, KeyBucket)
)

// KeyStore holds the persons' data keys in KeyBucket. Every wrapped key (about 60 bytes) is
// held in memory, loaded before OpenKeyStore returns and kept current by a watch of the
// bucket, so that reading a sealed field costs no request. A key is unwrapped on each use (a
// few microseconds) instead of being kept unwrapped: a cipher costs about a kilobyte, a
// gigabyte for a million persons, and an unwrapped key in memory is one more copy to leak.
// It is safe for concurrent use. Nothing it logs or returns holds key bytes, wrapped or not;
// errors may name person keys (keyed hashes).
type KeyStore struct {
	s      *Store
	kv     jetstream.KeyValue
	stream jetstream.Stream
	master *sealing.Key

	stopWatch context.CancelFunc
	watchDone chan struct{}
	closeOnce sync.Once
	closed    chan struct{}
	// seen counts the watch's entries, for awaitLoad to tell a long load from a stalled one.
	seen atomic.Uint64
	// unreadable holds the ids of the entries that did not open, each said once in the log.
	unreadable sync.Map
	// failed holds, on a bucket of one replica, the error Key answered for an entry it found
	// damaged or lost (both sealing.ErrKeyUnreadable), so that later lookups answer at once
	// instead of waiting on the server again (a rebuild asks once per event). An entry
	// written again reaches keys through the watch, which lookup reads first.
	failed sync.Map

	// mu guards keys and live.
	mu sync.RWMutex
	// keys holds each person's newest entry seen: a wrapped key, or a tombstone for a
	// destroyed one (few; they spare a request for every read of an erased person).
	keys map[string]keySlot
	// live counts the entries of keys that hold a wrapped key.
	live int
	// unwatched is set when the watch ended before Close: keys is then empty and stays so.
	unwatched bool
	// destroyed and blinded are the functions OnDestroyed was given, called with k.mu held.
	destroyed []func(id string)
	blinded   []func()

	// poolMu guards pool and filling; pool holds keys made ahead for Take.
	poolMu  sync.Mutex
	pool    []pooled
	filling bool
}

// pooled is a data key made ahead and stored, not given to any event yet.
type pooled struct {
	id  string
	key *sealing.Key
}

// Pool sizes of Take: a batch of keys made at once, and the stock below which the next
// batch is made in the background.
const (
	poolBatch = 256
	poolLow   = 64
)

// keySlot is a person's entry in KeyBucket as last seen.
type keySlot struct {
	// wrapped is the wrapped data key; nil when gone.
	wrapped []byte
	// rev is the entry's stream sequence: an older one never replaces a newer one, so a
	// watch that lags cannot bring back a key this process saw destroyed.
	rev uint64
	// gone is set for a delete or purge marker: the key was destroyed.
	gone bool
	// purged is set for a purge marker (Destroy's), as opposed to a plain delete marker.
	purged bool
}

// keyStreamConfig is the definition of KeyBucket's stream: what the client library's
// CreateKeyValue makes for a bucket of history 1 without limits, except that single messages
// may be deleted (DenyDelete false), because Destroy overwrites a key's message on disk with
// SecureDeleteMsg, which a denying stream refuses. Purges stay allowed: a purge marker
// (a rollup) is the tombstone of a destroyed key.
func keyStreamConfig(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              keyStream,
		Description:       "nird: the persons' data keys, each wrapped with the master key; destroying one erases the person",
		Subjects:          []string{keySubjectPrefix + ">"},
		Retention:         jetstream.LimitsPolicy,
		MaxMsgsPerSubject: 1,
		MaxMsgs:           -1,
		MaxBytes:          -1,
		MaxAge:            0,
		MaxMsgSize:        -1,
		MaxConsumers:      -1,
		Storage:           jetstream.FileStorage,
		Replicas:          replicas,
		Duplicates:        2 * time.Minute,
		AllowRollup:       true,
		AllowDirect:       true,
		// Keys are made ahead, many in one atomic batch (Take).
		AllowAtomicPublish: true,
		DenyDelete:         false,
		DenyPurge:          false,
		Discard:            jetstream.DiscardNew,
	}
}

// OpenKeyStore opens KeyBucket, making its stream when it is missing (keyStreamConfig), and
// loads every wrapped key before it returns. An existing bucket whose stream refuses what
// Destroy needs is changed where the server allows it; the server never clears deny_delete
// or deny_purge, so a bucket made by `nats kv add` or the client library's CreateKeyValue
// (which deny deletes) is refused with an error naming the setting: a destroyed key would
// stay on disk. When the bucket holds keys, the oldest is unwrapped with master:
// ErrMasterKey if it does not open, for nird must refuse to start with another master key
// rather than read every person as erased. ctx bounds the opening only (each request also
// by the store's request timeout, the load by its progress); Close stops the watch.
func (s *Store) OpenKeyStore(ctx context.Context, master *sealing.Key) (*KeyStore, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	if master == nil {
		return nil, fmt.Errorf("%w: OpenKeyStore without a master key", ErrInvalid)
	}
	// Each request is bounded; the load as a whole by ctx and by its progress (a million
	// keys may take longer than one request's timeout).
	rctx, cancel := s.withTimeout(ctx)
	defer cancel()
	stream, err := s.keyStream(rctx)
	if err != nil {
		return nil, err
	}
	kv, err := s.keyValue(rctx)
	if err != nil {
		return nil, fmt.Errorf("eventstore: key bucket %s: %w", KeyBucket, err)
	}
	k := &KeyStore{
		s: s, kv: kv, stream: stream, master: master,
		watchDone: make(chan struct{}), closed: make(chan struct{}),
		keys: map[string]keySlot{},
	}
	// The watch lives until Close, not ctx; but if ctx ends while it starts, so does it.
	wctx, stop := context.WithCancel(context.Background())
	k.stopWatch = stop
	unbind := context.AfterFunc(ctx, stop)
	defer unbind()
	w, err := kv.WatchAll(wctx)
	if err != nil {
		stop()
		close(k.watchDone)
		return nil, fmt.Errorf("eventstore: watch key bucket %s: %w", KeyBucket, err)
	}
	loaded := make(chan struct{})
	go k.watch(w, loaded)
	if err := k.awaitLoad(ctx, loaded); err != nil {
		_ = k.Close()
		return nil, fmt.Errorf("eventstore: load key bucket %s: %w", KeyBucket, err)
	}
	if !unbind() {
		// ctx ended just as the keys were loaded, and stopped the watch.
		_ = k.Close()
		return nil, fmt.Errorf("eventstore: load key bucket %s: %w", KeyBucket, context.Cause(ctx))
	}
	// A fresh timeout: the load may have spent rctx's waiting out a stall on a damaged entry.
	cctx, ccancel := s.withTimeout(ctx)
	defer ccancel()
	if err := k.checkMaster(cctx, !s.cfg.ReadOnly); err != nil {
		_ = k.Close()
		return nil, err
	}
	s.log.Info("data keys loaded", "bucket", KeyBucket, "keys", k.Len())
	return k, nil
}

// keyValue binds to KeyBucket, whose stream keyStream has found or made. On a fresh cluster
// the stream another nird has just made can be found and then, for a moment, be missing to
// the bucket's own look-up (a nird stopped at start-up with "bucket not found" in a chaos
// run): that is waited out, as createdStream waits out the stream's.
func (s *Store) keyValue(ctx context.Context) (jetstream.KeyValue, error) {
	for {
		kv, err := s.js.KeyValue(ctx, KeyBucket)
		if !errors.Is(err, jetstream.ErrBucketNotFound) {
			return kv, err
		}
		if err := pause(ctx, retryPause); err != nil {
			return nil, fmt.Errorf("%w (its stream exists, the bucket was never found)", err)
		}
	}
}

// keyStream returns KeyBucket's stream, made if missing and changed if it denies what
// erasure needs.
func (s *Store) keyStream(ctx context.Context) (jetstream.Stream, error) {
	want := keyStreamConfig(s.cfg.Replicas)
	stream, err := s.js.Stream(ctx, keyStream)
	if errStreamNotFound(err) && s.cfg.ReadOnly {
		return nil, ErrNoKeyBucket
	}
	if errStreamNotFound(err) {
		// Made here rather than with CreateKeyValue, which denies message deletes.
		stream, err = s.js.CreateStream(ctx, want)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			// Another nird made it meanwhile.
			stream, err = s.createdStream(ctx, keyStream)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("eventstore: key bucket %s: %w", KeyBucket, err)
	}
	have := stream.CachedInfo().Config
	if have.Replicas != want.Replicas {
		s.log.Warn("the key bucket's replicas differ from the configured ones; keeping the bucket's",
			"bucket", KeyBucket, "bucket_replicas", have.Replicas, "configured", want.Replicas)
	}
	var wrong []string
	if have.DenyDelete {
		wrong = append(wrong, "deny_delete")
	}
	if have.DenyPurge {
		wrong = append(wrong, "deny_purge")
	}
	if !have.AllowRollup {
		wrong = append(wrong, "allow_rollup")
	}
	if !have.AllowAtomicPublish {
		wrong = append(wrong, "allow_atomic")
	}
	if len(wrong) == 0 {
		return stream, nil
	}
	// Destroy needs all three: a message delete (SecureDeleteMsg) and a purge marker (a
	// rollup, which a stream denying purges refuses).
	fixed := have
	fixed.DenyDelete, fixed.DenyPurge, fixed.AllowRollup, fixed.AllowAtomicPublish = false, false, true, true
	stream, err = s.js.UpdateStream(ctx, fixed)
	if err != nil {
		return nil, fmt.Errorf("eventstore: key bucket %s has %s set wrong (a destroyed data key would stay on disk, or the person could get a new one), and the server refuses to change it: %w; "+
			"move its keys to a bucket made by nird (stream %s with deny_delete false)", KeyBucket, strings.Join(wrong, ", "), err, keyStream)
	}
	s.log.Warn("changed the key bucket so that destroyed data keys can be erased", "bucket", KeyBucket, "settings", strings.Join(wrong, ", "))
	return stream, nil
}

// watch applies the bucket's entries as they come, and closes loaded at the watch's marker
// of the initial values. It returns when the watch stops.
func (k *KeyStore) watch(w jetstream.KeyWatcher, loaded chan struct{}) {
	defer close(k.watchDone)
	defer func() { _ = w.Stop() }()
	for e := range w.Updates() {
		k.seen.Add(1)
		if e == nil {
			if loaded != nil {
				close(loaded)
				loaded = nil
			}
			continue
		}
		if e.Operation() == jetstream.KeyValuePut {
			k.apply(e.Key(), keySlot{wrapped: bytes.Clone(e.Value()), rev: e.Revision()})
		} else {
			k.apply(e.Key(), keySlot{rev: e.Revision(), gone: true, purged: e.Operation() == jetstream.KeyValuePurge})
		}
	}
	select {
	case <-k.closed:
	default:
		if k.s.closed.Load() {
			return
		}
		// The memory would go stale (a key another nird destroys would still open here):
		// drop it, and look every key up on the server from now on.
		k.mu.Lock()
		k.unwatched = true
		k.keys, k.live = map[string]keySlot{}, 0
		for _, f := range k.blinded {
			f()
		}
		k.mu.Unlock()
		k.s.log.Error("the key bucket's watch ended; every data key is now fetched on use, and what kept opened fields (the append path's history cache) keeps none", "bucket", KeyBucket)
	}
}

// awaitLoad waits for the watch's marker of the initial values, for as long as ctx allows
// and entries keep coming: a request timeout without one is a stalled watch.
func (k *KeyStore) awaitLoad(ctx context.Context, loaded chan struct{}) error {
	stall := time.NewTicker(k.s.cfg.RequestTimeout)
	defer stall.Stop()
	last := k.seen.Load()
	for {
		select {
		case <-loaded:
			return nil
		case <-k.watchDone:
			if err := ctx.Err(); err != nil {
				return err
			}
			return errors.New("the watch ended")
		case <-ctx.Done():
			return ctx.Err()
		case <-stall.C:
			n := k.seen.Load()
			if n == last {
				return k.stalled(ctx, n)
			}
			last = n
		}
	}
}

// stalled decides a load during which no entry came for a request timeout, n entries in.
// The watch's marker of the initial values comes with the entry after which the server
// counts none pending, and the server goes on counting an entry its store cannot read back
// (a record whose checksum fails, a damaged disk) while it never delivers it: after one
// damaged entry anywhere in the bucket the marker never came, and nird did not start. When
// the bucket's stream still answers, the load ends here, with the entries that came, and
// the error log says how many the stream counts besides: a key missing from memory is
// fetched on use (lookup), which tells a damaged entry from an absent one.
func (k *KeyStore) stalled(ctx context.Context, n uint64) error {
	rctx, cancel := k.s.withTimeout(ctx)
	defer cancel()
	info, err := k.stream.Info(rctx)
	if err != nil {
		return fmt.Errorf("no entry came for %s (%d loaded), and the bucket's stream does not answer: %w", k.s.cfg.RequestTimeout, n, err)
	}
	k.s.log.Error("the key bucket's watch brought fewer entries than its stream counts and then none for a request timeout: the others may be damaged on disk (the server counts them but cannot read them back); they are fetched on use, and what a damaged one sealed reads as unreadable until it is restored from a backup",
		"bucket", KeyBucket, "loaded", n, "stream_msgs", info.State.Msgs)
	return nil
}

// apply records slot as the person's entry unless a newer one is known. A key it records
// destroyed that was not known destroyed is told to OnDestroyed's functions before anyone
// can read it gone here.
func (k *KeyStore) apply(personKey string, slot keySlot) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.unwatched {
		return
	}
	old, ok := k.keys[personKey]
	// At the same revision a key erased (Destroy, before its marker) beats the key.
	if ok && (old.rev > slot.rev || old.rev == slot.rev && (old.gone || !slot.gone)) {
		return
	}
	if ok && !old.gone {
		k.live--
	}
	if !slot.gone {
		k.live++
	}
	k.keys[personKey] = slot
	if slot.gone && (!ok || !old.gone) {
		for _, f := range k.destroyed {
			f(personKey)
		}
	}
}

// OnDestroyed has destroyed called with the id of every data key destroyed from now on: by
// this process (Destroy) or by another, as the watch of the bucket brings its purge marker.
// It is called before a lookup here can find the key gone, so that whatever holds what the
// key opened (the append path's history cache) can let go of it first. blind is called once
// the key store can tell no more (its watch ended; the keys are then fetched on use), at once
// if that has happened already: whatever holds opened fields must let go of all of them and
// keep none from then on (review, 2026-12-07: a nird whose watch had ended kept an erased
// person's cached ids for good). Both must be quick and must not call the key store. There
// is no way to unsubscribe: one ingest service per key store subscribes.
func (k *KeyStore) OnDestroyed(destroyed func(id string), blind func()) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.destroyed = append(k.destroyed, destroyed)
	k.blinded = append(k.blinded, blind)
	if k.unwatched {
		blind()
	}
}

// masterCheck is the bucket's entry that tells which master key wraps its keys: 32 zero bytes
// wrapped with it, stored by the first nird to open the bucket. Every nird that opens the
// bucket must open it, also while the bucket holds no person's key yet: two nird started with
// different master keys would otherwise each seal persons the other cannot read.
const masterCheck = "_master"

// masterWitnesses is how many of the bucket's oldest data keys checkMaster opens.
const masterWitnesses = 3

// checkMaster decides whether the master key is the one that wraps the bucket's keys, and
// stores the bucket's master check when it is missing and create is set.
//
// The bucket's oldest data keys decide where there are any: the wrapping authenticates, so
// a key that opens proves the master key, and none opening means another master key (or
// every one of them damaged; the error says both). The check decides for a bucket without
// data keys. Before, the check and the oldest key both had to open, so one damaged entry
// stopped nird from starting: the check damaged on disk (the key load's wait for it spent
// the request timeout the check then needed, and the start failed on a timeout; the check
// now has a timeout of its own), or a check a nird
// with another master key had stored when the check was missing, before the oldest key
// refused it. Now a check that does not open while data keys do is logged as an error, and
// a check is stored only once the data keys have vouched for the master key.
func (k *KeyStore) checkMaster(ctx context.Context, create bool) error {
	type witness struct {
		name string
		slot keySlot
	}
	var oldest []witness
	k.mu.RLock()
	check, checkOK := k.keys[masterCheck]
	for pk, s := range k.keys {
		if pk == masterCheck || s.gone {
			continue
		}
		oldest = append(oldest, witness{pk, s})
		slices.SortFunc(oldest, func(a, b witness) int { return cmp.Compare(a.slot.rev, b.slot.rev) })
		if len(oldest) > masterWitnesses {
			oldest = oldest[:masterWitnesses]
		}
	}
	k.mu.RUnlock()
	opened := 0
	var shut []string
	for _, w := range oldest {
		if _, err := k.master.Unwrap(w.name, w.slot.wrapped); err == nil {
			opened++
		} else {
			shut = append(shut, w.name)
		}
	}
	if len(oldest) > 0 && opened == 0 {
		return fmt.Errorf("%w: none of the bucket's %d oldest data keys opens (%s): the master key is not the one that sealed the persons' data, or those entries are damaged (nirctl verify tells)",
			ErrMasterKey, len(oldest), strings.Join(shut, ", "))
	}
	for _, pk := range shut {
		// Logged and remembered as damaged, as on any use.
		k.mu.RLock()
		slot := k.keys[pk]
		k.mu.RUnlock()
		_, _ = k.unwrap(pk, slot)
	}

	present := checkOK && !check.gone
	if !present {
		// Empty, or stored and damaged on disk: the server counts the record but cannot
		// give it back, and a write expecting the entry empty waits on it.
		slot, ok, err := k.absent(ctx, masterCheck)
		switch {
		case errors.Is(err, sealing.ErrKeyUnreadable):
			if opened == 0 {
				return fmt.Errorf("%w: the bucket's master check is damaged on disk and no data key can vouch for the master key: restore %s from a backup", ErrMasterKey, KeyBucket)
			}
			k.s.log.Error("the key bucket's master check is damaged on disk; the bucket's oldest data keys open with the master key, so it is the right one", "bucket", KeyBucket)
			return nil
		case err != nil:
			return err
		case ok:
			check, present = slot, !slot.gone
		}
	}
	if !present && create {
		mine := k.master.Wrap(masterCheck, make([]byte, sealing.KeySize))
		rev, err := k.kv.Update(ctx, masterCheck, mine, 0)
		switch {
		case err == nil:
			check, present = keySlot{wrapped: mine, rev: rev}, true
			k.apply(masterCheck, check)
		case errors.Is(err, jetstream.ErrKeyRevisionMismatch) || wrongLastSeq(err):
			// Another nird stored its check first: it must open with this master key too.
			var ok bool
			if check, ok, err = k.fetch(ctx, masterCheck); err != nil {
				return err
			}
			present = ok && !check.gone
		default:
			return k.s.wrap(fmt.Errorf("eventstore: key bucket %s: store the master key's check: %w", KeyBucket, err))
		}
	}
	if !present {
		return nil
	}
	if _, err := k.master.Unwrap(masterCheck, check.wrapped); err != nil {
		if opened == 0 {
			return fmt.Errorf("%w: the bucket's master key check does not open", ErrMasterKey)
		}
		k.s.log.Error("the key bucket's master check does not open, though its oldest data keys do: the check is damaged, or was stored by a nird started with another master key; the data keys decide",
			"bucket", KeyBucket, "revision", check.rev)
	}
	return nil
}

// Close stops the watch. It is idempotent; Key, Ensure and Destroy return ErrClosed after it.
func (k *KeyStore) Close() error {
	k.closeOnce.Do(func() {
		close(k.closed)
		k.returnPool()
		k.stopWatch()
		<-k.watchDone
	})
	return nil
}

// returnPool deletes the keys made ahead and never taken. They seal nothing, and every nird
// that stopped left up to poolBatch of them in the bucket (a chaos run with about 15
// restarts ended with 4 864 keys for 2 744 persons), all carried by every backup. A crash,
// or a refill still on its way, leaves its keys: they seal nothing either.
func (k *KeyStore) returnPool() {
	k.poolMu.Lock()
	pool := k.pool
	k.pool = nil
	k.poolMu.Unlock()
	k.deleteUnused(pool)
}

// deleteUnused deletes keys that were never handed out, overwriting their bytes as Destroy
// does; a failure is logged, and the keys stay, sealing nothing.
func (k *KeyStore) deleteUnused(pool []pooled) {
	if len(pool) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), k.s.cfg.RequestTimeout)
	defer cancel()
	for i, p := range pool {
		k.mu.RLock()
		slot, ok := k.keys[p.id]
		k.mu.RUnlock()
		if !ok || slot.gone {
			continue
		}
		if err := k.stream.SecureDeleteMsg(ctx, slot.rev); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			k.s.log.Warn("data keys made ahead and never used were not all deleted; they seal nothing", "bucket", KeyBucket, "left", len(pool)-i, "err", err)
			return
		}
	}
}

// Len returns how many persons' wrapped keys are held in memory.
func (k *KeyStore) Len() int {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if s, ok := k.keys[masterCheck]; ok && !s.gone {
		return k.live - 1
	}
	return k.live
}

// check refuses a call after Close and a person key that is not one.
func (k *KeyStore) check(personKey string) error {
	select {
	case <-k.closed:
		return ErrClosed
	default:
	}
	if err := k.s.checkOpen(); err != nil {
		return err
	}
	if err := validKey(personKey); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return nil
}

// Key returns the person's data key, unwrapped from the copy in memory. A person the watch
// has not brought (another nird made the key a moment ago) is looked up on the stream
// leader, and what it has is kept. Errors: ErrNoKey when the person has none,
// ErrKeyDestroyed when it was destroyed, ErrMasterKey (wrapped, naming the person) when the
// stored key does not open with the master key, ErrInvalid for a malformed person key, and
// the server's errors.
func (k *KeyStore) Key(ctx context.Context, personKey string) (*sealing.Key, error) {
	return k.lookup(ctx, personKey, true)
}

// lookup is Key; patient asks the leader again before it answers ErrNoKey (Key: an entry an
// event names exists), impatient does not (Ensure: a new person has none).
func (k *KeyStore) lookup(ctx context.Context, personKey string, patient bool) (*sealing.Key, error) {
	if err := k.check(personKey); err != nil {
		return nil, err
	}
	k.mu.RLock()
	slot, ok := k.keys[personKey]
	k.mu.RUnlock()
	if !ok {
		if err, bad := k.failed.Load(personKey); bad && patient {
			return nil, err.(error)
		}
		// An entry an event names is stored before the event: "none" from the leader is
		// asked again a little later, for a leader cut off by a partition answers until it
		// steps down.
		waits := []time.Duration{0}
		if patient {
			waits = append(waits, 250*time.Millisecond, time.Second)
		}
		for i, wait := range waits {
			if i > 0 {
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-time.After(wait):
				}
			}
			var err error
			if slot, ok, err = k.fetch(ctx, personKey); err != nil {
				return nil, err
			}
			if ok {
				break
			}
		}
		final := patient && !k.s.replicated // a single replica's answer does not change
		if !ok {
			var err error
			if slot, ok, err = k.absent(ctx, personKey); err != nil {
				if final && errors.Is(err, sealing.ErrKeyUnreadable) {
					k.failed.Store(personKey, err)
				}
				return nil, err
			}
		}
		if !ok && final {
			if _, said := k.unreadable.LoadOrStore(personKey, true); !said {
				k.s.log.Error("a data key a stored event names is neither in the key bucket nor destroyed: its entry was lost on disk (see the NATS server's warnings at start); the read models read what it sealed as unreadable until the bucket is restored (from a backup) and the models rebuilt",
					"bucket", KeyBucket, "key_id", personKey)
			}
			err := fmt.Errorf("%w: key %s", ErrKeyLost, personKey)
			k.failed.Store(personKey, err)
			return nil, err
		}
		if !ok {
			return nil, ErrNoKey
		}
		k.apply(personKey, slot)
	}
	return k.unwrap(personKey, slot)
}

// absent looks again at an entry the stream leader answered as empty, for the stream may
// still count a message on its subject: the entry is then stored and damaged (the server
// answers a record whose checksum fails as no message and goes on counting it), and absent
// logs it once and returns an error wrapping sealing.ErrKeyUnreadable, as for a stored key
// that does not open. Before, it was ErrNoKey, which the read models read as an erasure
// («slettet») without a word in the log, and the append path as a key not found yet, to
// retry forever. An entry written in between (another nird's key or purge marker) is
// returned (ok) rather than taken for a damaged one (Store.lastOrDamaged); ok false is an
// empty entry.
func (k *KeyStore) absent(ctx context.Context, personKey string) (keySlot, bool, error) {
	m, damaged, err := k.s.lastOrDamaged(ctx, k.stream, keySubjectPrefix+personKey)
	switch {
	case err != nil:
		return keySlot{}, false, fmt.Errorf("eventstore: data key %s: %w", personKey, err)
	case m != nil:
		slot, err := slotOf(personKey, m)
		return slot, err == nil, err
	case !damaged:
		return keySlot{}, false, nil
	}
	if _, said := k.unreadable.LoadOrStore(personKey, true); !said {
		k.s.log.Error("a data key in the key bucket is counted by its stream but cannot be read back: the entry is damaged on disk; the read models read what it sealed as unreadable until it is restored (from a backup) and the models rebuilt",
			"bucket", KeyBucket, "key_id", personKey)
	}
	return keySlot{}, false, fmt.Errorf("eventstore: %w: the data key %s is stored but cannot be read back (damaged on disk)", sealing.ErrKeyUnreadable, personKey)
}

// unwrap opens the person's slot.
func (k *KeyStore) unwrap(personKey string, slot keySlot) (*sealing.Key, error) {
	if slot.gone {
		return nil, ErrKeyDestroyed
	}
	key, err := k.master.Unwrap(personKey, slot.wrapped)
	if err != nil {
		// The master key opened the bucket's check at start: this entry is damaged.
		if _, said := k.unreadable.LoadOrStore(personKey, true); !said {
			k.s.log.Error("a data key in the key bucket does not open with the master key: the entry is damaged; the read models read what it sealed as unreadable until it is restored (from a backup) and the models rebuilt",
				"bucket", KeyBucket, "key_id", personKey, "revision", slot.rev)
		}
		return nil, fmt.Errorf("%w: %w: the data key %s does not open: %w", ErrMasterKey, sealing.ErrKeyUnreadable, personKey, err)
	}
	return key, nil
}

// Ensure returns the person's data key, making one when the person has none. A new key is
// stored only into an empty entry (expected revision 0; not the client library's Create,
// which writes over a delete or purge marker), so two nird making a key for the same person
// at once both use the one stored first, and an erased person never gets a key again:
// ErrKeyDestroyed. Other errors as Key's.
func (k *KeyStore) Ensure(ctx context.Context, personKey string) (*sealing.Key, error) {
	for range keyAttempts {
		key, err := k.lookup(ctx, personKey, false)
		if !errors.Is(err, ErrNoKey) || errors.Is(err, ErrKeyDestroyed) {
			return key, err
		}
		key, raw, err := sealing.NewDataKey()
		if err != nil {
			return nil, err
		}
		wrapped := k.master.Wrap(personKey, raw)
		clear(raw)
		uctx, cancel := k.s.withTimeout(ctx)
		rev, err := k.kv.Update(uctx, personKey, wrapped, 0)
		cancel()
		if err == nil {
			k.apply(personKey, keySlot{wrapped: wrapped, rev: rev})
			return key, nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return nil, k.s.wrap(fmt.Errorf("eventstore: store the data key of person %s: %w", personKey, err))
		}
		// The entry is not empty: another nird's key, or a destroyed key's marker.
		slot, ok, err := k.fetch(ctx, personKey)
		if err != nil {
			return nil, err
		}
		if ok {
			k.apply(personKey, slot)
			return k.unwrap(personKey, slot)
		}
		// Emptied in between (a Destroy between its overwrite and its marker): look again.
	}
	return nil, fmt.Errorf("eventstore: store the data key of person %s: the entry kept changing under %d attempts", personKey, keyAttempts)
}

// Take returns a new data key, stored in the bucket before it is returned, and its id (the
// entry's name, a random 128-bit id), for an event about to be sealed (DOMAIN.md Product
// decisions 15). Keys are made ahead, poolBatch in one atomic batch, so the append path
// waits for no write of its own: a key costs what one message of a batch costs. A key taken
// and then not used (the append failed) stays in the bucket, sealing nothing.
func (k *KeyStore) Take(ctx context.Context) (string, *sealing.Key, error) {
	select {
	case <-k.closed:
		return "", nil, ErrClosed
	default:
	}
	k.poolMu.Lock()
	select {
	case <-k.closed:
		// Closed while waiting for the pool: Close has returned what was in it.
		k.poolMu.Unlock()
		return "", nil, ErrClosed
	default:
	}
	if len(k.pool) == 0 {
		// None ahead: make a batch now, holding the pool so others wait for it.
		batch, err := k.makeKeys(ctx, poolBatch)
		if err != nil {
			k.poolMu.Unlock()
			return "", nil, err
		}
		k.pool = batch
	}
	p := k.pool[len(k.pool)-1]
	k.pool = k.pool[:len(k.pool)-1]
	refill := len(k.pool) < poolLow && !k.filling
	if refill {
		k.filling = true
	}
	k.poolMu.Unlock()
	if refill {
		go k.refill()
	}
	return p.id, p.key, nil
}

// refill makes the next batch of keys in the background.
func (k *KeyStore) refill() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-k.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	batch, err := k.makeKeys(ctx, poolBatch)
	k.poolMu.Lock()
	k.filling = false
	closed := false
	select {
	case <-k.closed:
		closed = true
	default:
		if err == nil {
			k.pool = append(batch, k.pool...)
		}
	}
	k.poolMu.Unlock()
	if closed && err == nil {
		k.deleteUnused(batch) // made while Close returned the pool
		return
	}
	if err != nil && ctx.Err() == nil {
		k.s.log.Warn("making data keys ahead failed; the next Take makes them", "bucket", KeyBucket, "err", err)
	}
}

// makeKeys makes n data keys and stores them in one atomic batch, each into an empty entry of
// a fresh random id.
func (k *KeyStore) makeKeys(ctx context.Context, n int) ([]pooled, error) {
	out := make([]pooled, 0, n)
	msgs := make([]*nats.Msg, 0, n)
	for range n {
		var idb [16]byte
		if _, err := rand.Read(idb[:]); err != nil {
			return nil, fmt.Errorf("eventstore: data key id: %w", err)
		}
		id := "k" + hex.EncodeToString(idb[:])
		key, raw, err := sealing.NewDataKey()
		if err != nil {
			return nil, err
		}
		m := nats.NewMsg(keySubjectPrefix + id)
		m.Data = k.master.Wrap(id, raw)
		clear(raw)
		m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
		msgs = append(msgs, m)
		out = append(out, pooled{id: id, key: key})
	}
	// An atomic batch's publish sends its messages without looking at the context, and then
	// not the commit once it has ended, leaving the batch open on the server (at most 50 on
	// a stream) until its batch timeout: a caller whose context ended (Take, a request's)
	// sends nothing, and the batch runs on a context of its own, bounded by the request
	// timeout, not by the caller's (TestKeyStore_TakeGiversUpLeaveNoBatches).
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("eventstore: make %d data keys: %w", n, err)
	}
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), k.s.cfg.RequestTimeout)
	defer cancel()
	ack, err := jetstreamext.PublishMsgBatch(bctx, k.s.js, msgs, jetstreamext.BatchFlowControl{AckFirst: false})
	if err != nil {
		if classify(err) == errKindNoRoom {
			err = fmt.Errorf("%w: %v", ErrNoRoom, err)
		}
		return nil, k.s.wrap(fmt.Errorf("eventstore: make %d data keys: %w", n, err))
	}
	first, err := firstOfBatch(ack, n)
	if err != nil {
		return nil, err
	}
	for i, p := range out {
		k.apply(p.id, keySlot{wrapped: msgs[i].Data, rev: first + uint64(i)})
	}
	return out, nil
}

// Destroy destroys the person's data key for good. The key's message is deleted with
// SecureDeleteMsg, which overwrites its bytes in the stream's files (a plain delete or purge
// only unlinks them from the index, and they stay on disk until the block is compacted),
// and then a purge marker takes the entry, expected on the entry as left, so that a key
// another nird made in between is destroyed too rather than dropped unerased. The marker
// stays as the tombstone that makes Ensure refuse the person. Destroy is idempotent: a
// person whose key is destroyed already, or who never had one, is left with a purge marker
// and nil is returned. If it fails midway, call it again.
func (k *KeyStore) Destroy(ctx context.Context, personKey string) error {
	if err := k.check(personKey); err != nil {
		return err
	}
	for range keyAttempts {
		slot, ok, err := k.fetch(ctx, personKey)
		if err != nil {
			return err
		}
		var expect uint64 // the entry's last sequence once the key is erased
		switch {
		case ok && slot.purged:
			k.apply(personKey, slot)
			return nil
		case ok && slot.gone:
			// A plain delete marker (not nird's): make it a purge marker.
			expect = slot.rev
		case ok:
			dctx, cancel := k.s.withTimeout(ctx)
			err := k.stream.SecureDeleteMsg(dctx, slot.rev)
			cancel()
			if err != nil {
				// Perhaps another Destroy erased it first: look again.
				if again, ok2, ferr := k.fetch(ctx, personKey); ferr == nil && (!ok2 || again.rev != slot.rev) {
					continue
				}
				return k.s.wrap(fmt.Errorf("eventstore: erase the data key of person %s: %w", personKey, err))
			}
			// Gone from this process at once; other nird drop it when the marker comes.
			k.apply(personKey, keySlot{rev: slot.rev, gone: true})
		}
		rev, err := k.purge(ctx, personKey, expect)
		if err == nil {
			k.apply(personKey, keySlot{rev: rev, gone: true, purged: true})
			return nil
		}
		if !wrongLastSeq(err) {
			return k.s.wrap(fmt.Errorf("eventstore: mark the data key of person %s destroyed: %w", personKey, err))
		}
		if !ok {
			// Empty to a get, yet the stream has a message on the subject: another nird
			// wrote meanwhile, or the entry is damaged on disk (absent tells them apart).
			if _, _, aerr := k.absent(ctx, personKey); errors.Is(aerr, sealing.ErrKeyUnreadable) {
				return fmt.Errorf("%w: the data key of person %s is damaged on disk and cannot be overwritten: what it sealed is unreadable here; the erasure stands in the stream, and a restore destroys the key in every backup it takes keys from",
					aerr, personKey)
			}
		}
		// The entry changed since it was read: another nird made a key or destroyed it.
	}
	return fmt.Errorf("eventstore: destroy the data key of person %s: the entry kept changing under %d attempts; call Destroy again", personKey, keyAttempts)
}

// purge writes a purge marker on the person's entry, as the client library's Purge does,
// but only if the entry's last sequence is expect (0 = the entry is empty). It returns the
// marker's sequence.
func (k *KeyStore) purge(ctx context.Context, personKey string, expect uint64) (uint64, error) {
	ctx, cancel := k.s.withTimeout(ctx)
	defer cancel()
	m := nats.NewMsg(keySubjectPrefix + personKey)
	m.Header.Set(kvOperation, kvPurge)
	m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	ack, err := k.s.js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(expect))
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// wrongLastSeq reports whether err is the server's refusal of an expected last sequence
// (10071, or 10164 on a replicated stream).
func wrongLastSeq(err error) bool {
	var ae *jetstream.APIError
	return errors.As(err, &ae) && (ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// fetch returns the person's entry as the bucket's stream leader has it; ok is false when
// the entry is empty. It asks the leader (STREAM.MSG.GET), not any replica (a direct get),
// because a lagging follower would answer "no key" for a key another nird just made, and
// Ensure would then try to make one, or "a live key" for one just destroyed.
func (k *KeyStore) fetch(ctx context.Context, personKey string) (keySlot, bool, error) {
	m, err := k.s.leaderGet(ctx, keyStream, map[string]string{"last_by_subj": keySubjectPrefix + personKey})
	switch {
	case errors.Is(err, ErrNoMessage):
		// Only "no message" says the entry is empty: a "stream not found" (also a 404)
		// read as empty would read a stored key as none.
		return keySlot{}, false, nil
	case err != nil:
		return keySlot{}, false, fmt.Errorf("eventstore: data key of person %s: %w", personKey, err)
	}
	slot, err := slotOf(personKey, m)
	return slot, err == nil, err
}

// slotOf reads the entry m of the person's data key, as the client library reads an entry:
// an operation header or a server's marker makes it gone.
func slotOf(personKey string, m *storedMsg) (keySlot, error) {
	slot := keySlot{wrapped: m.Data, rev: m.Seq}
	if len(m.Hdrs) > 0 {
		h, err := nats.DecodeHeadersMsg(m.Hdrs)
		if err != nil {
			return keySlot{}, fmt.Errorf("eventstore: data key of person %s: the entry's headers do not decode: %w", personKey, err)
		}
		switch op := h.Get(kvOperation); {
		case op == kvPurge:
			slot.gone, slot.purged = true, true
		case op != "":
			slot.gone = true
		case h.Get(jetstream.MarkerReasonHeader) != "":
			slot.gone = true
		}
	}
	if slot.gone {
		slot.wrapped = nil
	}
	return slot, nil
}
