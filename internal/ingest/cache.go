package ingest

import (
	"container/list"
	"slices"
	"sync"

	"github.com/introreg/nir/eventstore"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// DefaultHistoryCache is how many persons' histories the append path keeps by default.
const DefaultHistoryCache = 10000

// DefaultHistoryCacheEvents is how many events the kept histories may hold together by
// default. A cached event costs 620–640 bytes of heap with its share of the folded state
// (BenchmarkHistoryCacheMemory, at 10 to 300 events a person), so the default bounds the
// cache near 300 MiB. A bound in persons alone did not bound memory: 10 000 persons with
// 300 events each (monthly hours for years) would hold about 1.8 GiB.
const DefaultHistoryCacheEvents = 500_000

// historyCache keeps the histories of the persons appended to most recently, so that the
// next append for one of them need not read the person back from the stream first.
//
// It is only ever a hint, and that is what makes it safe with several nird processes: the
// append carries the cached last sequence as its concurrency check, so a history that
// another writer has moved on from fails the append with a conflict, and the retry reads the
// person from the stream. A retried event stored by another process is found the same way.
// A refusal never reaches the append, so one made on a cached history is made again on the
// stream's before it is returned (the fault-injection suite found valid registrations
// refused on another nird's stale cache).
//
// A stale entry is not harmless when an erasure made it so: it holds the person's national
// ids in clear, and a re-send of an event it holds is answered as a duplicate there. So an
// entry goes as soon as a data key one of its events names is destroyed (dropSealed), by this
// nird or any other: the key store's watch of the key bucket tells every nird (see New). A
// history read, or a state folded, before that is not kept after it (epoch).
type historyCache struct {
	max       int // persons
	maxEvents int // events of all histories together

	// mu guards order, entries, events, sealed, epoch, recent and off.
	mu      sync.Mutex
	order   *list.List // of *cacheEntry, most recent first
	entries map[string]*list.Element
	events  int // events of all cached histories
	// sealed holds, for each data key id the cached histories name, the keys of the
	// persons whose histories name it (one, or a few where persons were merged: a slice
	// allocates less than a set for each new person).
	sealed map[string][]string
	// epoch counts the data keys destroyed (dropSealed); recent[e%len(recent)] is the id of
	// the e-th. A history or state read at an earlier epoch is kept only if it names none of
	// the keys destroyed since (staleLocked): it may hold what such a key opened. Refusing
	// every history read before any destruction made a run of erasures anywhere in the
	// cluster empty every nird's cache of the persons being appended to (review,
	// 2026-12-07).
	epoch  uint64
	recent [recentDestroyed]string
	// off is set once the key store can no longer tell of destroyed keys (blind): the cache
	// then holds nothing, for the life of the process.
	off bool
}

// recentDestroyed is how many of the last destroyed data keys the cache remembers; a
// history read before more were destroyed than that is not kept.
const recentDestroyed = 1024

type cacheEntry struct {
	key     string
	history []eventstore.Stored // never changed in place: replaced whole
	last    uint64
	// keys are the data key ids the history's events name (and the events merges copied).
	keys []string

	// state is the regelmotor's fold of the first stateN events of a history of key, the
	// last of them at stateSeq (Service.fold): a prefix of every later history of key, since
	// a subject's messages only ever grow. Never changed while it is here: a fold takes it
	// out (takeFolded), advances it, lends it to its caller to read and puts it back.
	state    *rules.State
	stateN   int
	stateSeq uint64
}

// newHistoryCache returns a cache of at most max persons' histories holding at most maxEvents
// events together; nil (no cache) when either is not positive.
func newHistoryCache(max, maxEvents int) *historyCache {
	if max <= 0 || maxEvents <= 0 {
		return nil
	}
	return &historyCache{max: max, maxEvents: maxEvents, order: list.New(), entries: map[string]*list.Element{},
		sealed: map[string][]string{}}
}

// now returns the cache's epoch, to be taken before a history is read: put, extend and
// putFolded keep what was read after it only if no data key was destroyed since.
func (c *historyCache) now() uint64 {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epoch
}

// get returns the cached history of key. The slice must not be changed.
func (c *historyCache) get(key string) ([]eventstore.Stored, uint64, bool) {
	if c == nil {
		return nil, 0, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return nil, 0, false
	}
	c.order.MoveToFront(el)
	e := el.Value.(*cacheEntry)
	// Clipped: the entry's spare capacity is extend's, and a caller's append must not
	// write into it.
	return slices.Clip(e.history), e.last, true
}

// put records history (ending at last) for key, unless a newer one is cached already or a
// data key was destroyed since epoch (now), before which the history was read.
func (c *historyCache) put(key string, history []eventstore.Stored, last, epoch uint64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.staleLocked(epoch, func() []string { return dataKeys(nil, history) }) {
		return
	}
	c.putLocked(key, slices.Clip(history), last)
}

// staleLocked reports whether what was read at epoch (now), naming the data keys ids returns,
// may hold what a key destroyed since opened: it names one of them, or more were destroyed
// than recent remembers, or the cache is off. ids is called only when a key was destroyed
// since epoch. c.mu must be held.
func (c *historyCache) staleLocked(epoch uint64, ids func() []string) bool {
	switch {
	case c.off:
		return true
	case epoch == c.epoch:
		return false
	case c.epoch-epoch > uint64(len(c.recent)):
		return true
	}
	named := ids()
	for e := epoch + 1; e <= c.epoch; e++ {
		if slices.Contains(named, c.recent[e%uint64(len(c.recent))]) {
			return true
		}
	}
	return false
}

// putLocked is put with c.mu held; history's spare capacity becomes the entry's.
func (c *historyCache) putLocked(key string, history []eventstore.Stored, last uint64) {
	if len(history) > c.maxEvents {
		// Longer than the whole bound: keeping it would push out every other person.
		if el, ok := c.entries[key]; ok {
			c.removeLocked(el)
		}
		return
	}
	if el, ok := c.entries[key]; ok {
		e := el.Value.(*cacheEntry)
		if last >= e.last {
			c.events += len(history) - len(e.history)
			e.history, e.last = history, last
			c.unindexLocked(e)
			e.keys = dataKeys(e.keys[:0], history)
			c.indexLocked(e.key, e.keys)
		}
		c.order.MoveToFront(el)
	} else {
		e := &cacheEntry{key: key, history: history, last: last, keys: dataKeys(nil, history)}
		c.entries[key] = c.order.PushFront(e)
		c.events += len(history)
		c.indexLocked(e.key, e.keys)
	}
	c.evictLocked()
}

// indexLocked records in c.sealed that key's history names the data keys ids;
// unindexLocked forgets what it records for the entry e. c.mu must be held.
func (c *historyCache) indexLocked(key string, ids []string) {
	for _, id := range ids {
		if persons := c.sealed[id]; !slices.Contains(persons, key) {
			c.sealed[id] = append(persons, key)
		}
	}
}

func (c *historyCache) unindexLocked(e *cacheEntry) {
	for _, id := range e.keys {
		persons := slices.DeleteFunc(c.sealed[id], func(k string) bool { return k == e.key })
		if len(persons) == 0 {
			delete(c.sealed, id)
		} else {
			c.sealed[id] = persons
		}
	}
}

// dataKeys appends to ids the data key ids that the events of history name, and the events
// merges copied into them, that ids does not hold yet. A person's history names few: its
// registrations, added ids and merges.
func dataKeys(ids []string, history []eventstore.Stored) []string {
	var add func(ev *nirv1.Event)
	add = func(ev *nirv1.Event) {
		if id := ev.GetDataKeyId(); id != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
		for _, c := range ev.GetPersonsMerged().GetAbsorbedEvents() {
			add(c)
		}
	}
	for _, h := range history {
		add(h.Event)
	}
	return ids
}

// evictLocked forgets the least recently used persons until both bounds hold. c.mu must be
// held.
func (c *historyCache) evictLocked() {
	for c.order.Len() > c.max || c.events > c.maxEvents {
		c.removeLocked(c.order.Back())
	}
}

// extend records key's history as base followed by add (ending at last). When base is the
// history cached for key, add is written into the entry's spare capacity: no slice handed
// out covers it (get clips), and writers of key are serialised here by c.mu and by the
// length check. Otherwise a copy with room to grow replaces the entry. Either way a
// person's appends cost no copy of the whole history each (they did, in proportion to it).
// When a data key was destroyed since epoch (now), before which base was read, key is
// forgotten instead.
func (c *historyCache) extend(key string, base, add []eventstore.Stored, last, epoch uint64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.staleLocked(epoch, func() []string { return dataKeys(dataKeys(nil, base), add) }) {
		if el, ok := c.entries[key]; ok {
			c.removeLocked(el)
		}
		return
	}
	if el, ok := c.entries[key]; ok {
		e := el.Value.(*cacheEntry)
		h := e.history
		if len(h) == len(base) && cap(h)-len(h) >= len(add) && (len(h) == 0 || &h[0] == &base[0]) && last >= e.last {
			e.history, e.last = append(h, add...), last
			c.events += len(add)
			n := len(e.keys)
			e.keys = dataKeys(e.keys, add)
			c.indexLocked(key, e.keys[n:])
			c.order.MoveToFront(el)
			c.evictLocked()
			return
		}
	}
	n := len(base) + len(add)
	h := make([]eventstore.Stored, 0, n+n/4+4)
	h = append(append(h, base...), add...)
	c.putLocked(key, h, last)
}

// removeLocked forgets the entry el. c.mu must be held.
func (c *historyCache) removeLocked(el *list.Element) {
	e := el.Value.(*cacheEntry)
	c.order.Remove(el)
	delete(c.entries, e.key)
	c.events -= len(e.history)
	c.unindexLocked(e)
}

// takeFolded hands the state cached for key to the caller, who may change it: how many
// events of key's history it folds and the sequence of the last of them; nil if none. Until
// it is put back (putFolded) the entry has no state, and other folds of key fold the whole.
func (c *historyCache) takeFolded(key string) (*rules.State, int, uint64) {
	if c == nil {
		return nil, 0, 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return nil, 0, 0
	}
	e := el.Value.(*cacheEntry)
	st, n, seq := e.state, e.stateN, e.stateSeq
	e.state, e.stateN, e.stateSeq = nil, 0, 0
	return st, n, seq
}

// putFolded caches st, which nobody changes while it is here, as the fold of the first n events of
// key's history, the last at seq, if key is cached with at least n events, no longer fold is,
// and no data key its history names was destroyed since epoch (now), before which the history
// st folds was read.
func (c *historyCache) putFolded(key string, st *rules.State, n int, seq, epoch uint64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return
	}
	e := el.Value.(*cacheEntry)
	// The entry's keys stand for st's only when st folds no more of the history than the
	// entry holds: a state folded further (History folds what it reads from the stream, and
	// puts no history) named keys the index did not hold, and outlived their destruction
	// (review, 2026-12-07).
	if n <= e.stateN || n > len(e.history) || c.staleLocked(epoch, func() []string { return e.keys }) {
		return
	}
	e.state, e.stateN, e.stateSeq = st, n, seq
}

// dropSealed forgets every history that names the data key id, destroyed: they may hold
// what it opened, the national ids of an erased person in clear. No history read, nor state
// folded, before this call that names id is kept after it (epoch, staleLocked).
func (c *historyCache) dropSealed(id string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	c.recent[c.epoch%uint64(len(c.recent))] = id
	// removeLocked changes c.sealed[id]: the persons are taken first.
	for _, key := range slices.Clone(c.sealed[id]) {
		if el, ok := c.entries[key]; ok {
			c.removeLocked(el)
		}
	}
}

// blind empties the cache and keeps it empty: the key store can no longer tell of destroyed
// keys (its watch of the key bucket ended), so a cached history could keep an erased person's
// ids in clear for good (review, 2026-12-07).
func (c *historyCache) blind() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off = true
	c.epoch++
	for c.order.Len() > 0 {
		c.removeLocked(c.order.Back())
	}
}

// drop forgets key.
func (c *historyCache) drop(key string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		c.removeLocked(el)
	}
}
