package ingest

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/introreg/nir/eventstore"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

func storedN(n int) []eventstore.Stored {
	out := make([]eventstore.Stored, n)
	for i := range out {
		out[i].Seq = uint64(i + 1)
	}
	return out
}

// TestHistoryCache_EventBound: the cache holds at most maxEvents events, forgetting the least
// recently used persons first, and never keeps a history longer than the whole bound (which
// would push out everyone else). Before the bound, 10 000 persons of 300 events each would
// hold about 1.8 GiB (an estimate from the measured bytes an event).
func TestHistoryCache_EventBound(t *testing.T) {
	c := newHistoryCache(10, 100)
	for _, k := range []string{"a", "b", "c"} {
		c.put(k, storedN(30), 30, 0)
	}
	c.put("d", storedN(30), 30, 0) // 120 events: a, the least recent, goes
	if c.holds("a") || !c.holds("b") || !c.holds("d") || c.events != 90 {
		t.Fatalf("after d: a %v, b %v, d %v, %d events; want a gone, 90 events", c.holds("a"), c.holds("b"), c.holds("d"), c.events)
	}
	c.get("b")                     // b is now more recent than c
	c.put("e", storedN(30), 30, 0) // c goes
	if c.holds("c") || !c.holds("b") || c.events != 90 {
		t.Fatalf("after e: c %v, b %v, %d events; want c gone, b kept, 90 events", c.holds("c"), c.holds("b"), c.events)
	}
	c.put("b", storedN(40), 40, 0) // b grows by 10: still within the bound
	if !c.holds("b") || c.events != 100 {
		t.Fatalf("after b grew: b %v, %d events; want b kept, 100 events", c.holds("b"), c.events)
	}
	c.put("f", storedN(101), 101, 0) // longer than the bound: not kept, nobody pushed out
	if c.holds("f") || !c.holds("b") || !c.holds("d") || !c.holds("e") || c.events != 100 {
		t.Fatalf("after f: f %v, b %v, d %v, e %v, %d events", c.holds("f"), c.holds("b"), c.holds("d"), c.holds("e"), c.events)
	}
	c.put("b", storedN(101), 101, 0) // b itself grows past the bound: forgotten
	if c.holds("b") || c.events != 60 {
		t.Fatalf("after b outgrew the bound: b %v, %d events; want b gone, 60", c.holds("b"), c.events)
	}
	c.drop("d")
	if c.holds("d") || c.events != 30 {
		t.Fatalf("after drop: d %v, %d events; want d gone, 30", c.holds("d"), c.events)
	}
}

// TestHistoryCache_CountsEvents: under random puts, stale puts and drops, the cache's event
// count is the sum of its histories' lengths, and both bounds hold.
func TestHistoryCache_CountsEvents(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	c := newHistoryCache(20, 500)
	for range 5000 {
		k := fmt.Sprint(r.IntN(40))
		switch r.IntN(4) {
		case 0:
			c.drop(k)
		default:
			n := r.IntN(120)
			c.put(k, storedN(n), uint64(r.IntN(200)), 0)
		}
		sum := 0
		for el := c.order.Front(); el != nil; el = el.Next() {
			sum += len(el.Value.(*cacheEntry).history)
		}
		if sum != c.events || c.events > 500 || c.order.Len() > 20 || len(c.entries) != c.order.Len() {
			t.Fatalf("cache counts %d events of %d persons (%d entries), holds %d events", c.events, c.order.Len(), len(c.entries), sum)
		}
	}
}

// TestHistoryCache_Extend: a person's appends extend the cached history in its spare
// capacity, without copying it, and without changing any history handed out before: a
// caller that appends to a history it got writes into a copy, and an extend from a history
// that is no longer the cached one replaces it with a copy.
func TestHistoryCache_Extend(t *testing.T) {
	c := newHistoryCache(10, 1000)
	c.put("p", storedN(3), 3, 0)
	h, _, _ := c.get("p")
	c.extend("p", h, []eventstore.Stored{{Seq: 4}}, 4, 0) // a copy with room to grow
	h1, last, _ := c.get("p")
	c.extend("p", h1, []eventstore.Stored{{Seq: 5}}, 5, 0) // in place
	h2, _, _ := c.get("p")
	if len(h1) != 4 || len(h2) != 5 || last != 4 || &h1[0] != &h2[0] || h2[4].Seq != 5 {
		t.Fatalf("extend: got %d then %d events (shared %v), want 4 then 5 in one array", len(h1), len(h2), &h1[0] == &h2[0])
	}
	if c.events != 5 {
		t.Fatalf("cache counts %d events, want 5", c.events)
	}
	// A caller appending to the history it got must not write into the entry.
	mine := append(h1, eventstore.Stored{Seq: 99})
	if h2[4].Seq != 5 || &mine[0] == &h1[0] {
		t.Fatalf("a caller's append wrote into the cached history: %d", h2[4].Seq)
	}
	// Extending the older history h1 (another request's): a copy replaces the entry, and
	// the history handed out as h2 is unchanged.
	c.extend("p", h1, []eventstore.Stored{{Seq: 6}}, 6, 0)
	h3, _, _ := c.get("p")
	if len(h3) != 5 || h3[4].Seq != 6 || &h3[0] == &h2[0] || h2[4].Seq != 5 || c.events != 5 {
		t.Fatalf("extend of an older history: got %v events %d, h2[4] %d", h3, c.events, h2[4].Seq)
	}
	// Nothing cached: extend caches base and add.
	c.extend("q", storedN(2), []eventstore.Stored{{Seq: 3}}, 3, 0)
	if q, last, ok := c.get("q"); !ok || len(q) != 3 || last != 3 || c.events != 8 {
		t.Fatalf("extend of an uncached person: %v %d %v, %d events", q, last, ok, c.events)
	}
}

// holds reports whether key is cached.
func (c *historyCache) holds(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.entries[key]
	return ok
}

// sealedBy returns a history of n events, the first a registration sealed with the data key
// id, and the second, when merged is set, a merge whose copy of the absorbed person's
// registration names the data key merged.
func sealedBy(n int, id, merged string) []eventstore.Stored {
	h := storedN(n)
	for i := range h {
		h[i].Event = &nirv1.Event{}
	}
	h[0].Event.DataKeyId = id
	if merged != "" {
		h[1].Event.Payload = &nirv1.Event_PersonsMerged{PersonsMerged: &nirv1.PersonsMerged{
			AbsorbedEvents: []*nirv1.Event{{DataKeyId: merged}}}}
	}
	return h
}

// TestHistoryCache_DropSealed: a destroyed data key (an erasure's, told by the key store's
// watch, on every nird) drops every history that names it, by its own events or by a merge's
// copies, and leaves the others; a history read, or a state folded, before the destruction is
// not kept after it, so that a request that read the person just before the keys went does
// not put the opened history back (DOMAIN.md Product decisions 15).
//
// Found on 2026-12-07 (review of the erasure): before, the cache was dropped only by the nird
// that stored the erasure, and only for the persons it named, after the destruction; a
// request following a chain to a merged person could cache its opened history in between.
func TestHistoryCache_DropSealed(t *testing.T) {
	c := newHistoryCache(10, 1000)
	before := c.now()
	c.put("survivor", sealedBy(3, "k-s", "k-a"), 3, before)
	c.put("absorbed", sealedBy(2, "k-a", ""), 2, before)
	c.put("other", sealedBy(2, "k-o", ""), 2, before)
	c.dropSealed("k-a")
	for _, k := range []string{"survivor", "absorbed"} {
		if _, _, ok := c.get(k); ok {
			t.Errorf("%s names the destroyed key and is still cached", k)
		}
	}
	if _, _, ok := c.get("other"); !ok {
		t.Error("other names no destroyed key and was dropped")
	}
	// Read before the destruction, kept after it: refused.
	c.put("absorbed", sealedBy(2, "k-a", ""), 2, before)
	c.extend("survivor", nil, sealedBy(3, "k-s", "k-a"), 3, before)
	if _, _, ok := c.get("absorbed"); ok {
		t.Error("a history read before the destruction was cached after it")
	}
	if _, _, ok := c.get("survivor"); ok {
		t.Error("a history extended from one read before the destruction was cached after it")
	}
	// Read after: kept, and its state too; a state folded before is not.
	after := c.now()
	c.put("survivor", sealedBy(3, "k-s", "k-a"), 3, after)
	c.putFolded("survivor", rules.NewState("survivor"), 3, 3, before)
	if st, _, _ := c.takeFolded("survivor"); st != nil {
		t.Error("a state folded before the destruction was cached after it")
	}
	c.putFolded("survivor", rules.NewState("survivor"), 3, 3, after)
	if st, _, _ := c.takeFolded("survivor"); st == nil {
		t.Error("a state folded after the destruction was not cached")
	}
	// The index follows the entries: a key dropped by eviction or replaced is not indexed.
	c.dropSealed("k-s")
	if _, _, ok := c.get("survivor"); ok {
		t.Error("survivor, cached again, names the destroyed k-s and is still cached")
	}
	if len(c.sealed) != 1 || len(c.sealed["k-o"]) != 1 {
		t.Errorf("the index holds %v; want only k-o's one person", c.sealed)
	}
}

// TestHistoryCache_UnrelatedDestructionKeepsTheCache: a data key destroyed while a history is
// read or appended to that names no such key does not cost that history its place. Found on
// 2026-12-07 (review of the erasure's cache drop): any destruction in the cluster made every
// append in flight remove its person's entry and every read in flight cache nothing, so a
// run of erasures emptied every nird's cache. A history that names the key is still refused,
// and so is every history read before more destructions than the cache remembers.
func TestHistoryCache_UnrelatedDestructionKeepsTheCache(t *testing.T) {
	c := newHistoryCache(10, 1000)
	c.put("p", sealedBy(3, "k-p", ""), 3, c.now())
	// An append of p begins: it takes the epoch and reads p from the cache.
	epoch := c.now()
	base, _, ok := c.get("p")
	if !ok {
		t.Fatal("p not cached")
	}
	c.dropSealed("k-q") // another nird erases q meanwhile
	c.extend("p", base, storedN(4)[3:], 4, epoch)
	if h, _, ok := c.get("p"); !ok || len(h) != 4 {
		t.Errorf("p (naming only k-p) after k-q's destruction during its append: cached %v with %d events; want 4", ok, len(h))
	}
	e2 := c.now()
	c.dropSealed("k-q2")
	c.put("r", sealedBy(2, "k-r", ""), 2, e2)
	if !c.holds("r") {
		t.Error("r (naming only k-r) was not cached after k-q2's destruction during its read")
	}
	c.putFolded("r", rules.NewState("r"), 2, 2, e2)
	if st, _, _ := c.takeFolded("r"); st == nil {
		t.Error("r's state, folded before k-q2's destruction, was not cached")
	}
	// One that names a key destroyed during its read is refused, as before.
	e3 := c.now()
	c.dropSealed("k-s")
	c.put("s", sealedBy(2, "k-s", ""), 2, e3)
	if c.holds("s") {
		t.Error("s, naming k-s destroyed during its read, was cached")
	}
	// More destructions than the cache remembers: refused whatever it names.
	e4 := c.now()
	for i := range recentDestroyed + 1 {
		c.dropSealed(fmt.Sprintf("k-x%d", i))
	}
	c.put("t", sealedBy(2, "k-t", ""), 2, e4)
	if c.holds("t") {
		t.Errorf("t, read before %d destructions, was cached", recentDestroyed+1)
	}
}

// TestHistoryCache_Blind: once the key store can no longer tell of destroyed keys, the cache
// lets go of every history and keeps none (review, 2026-12-07).
func TestHistoryCache_Blind(t *testing.T) {
	c := newHistoryCache(10, 1000)
	c.put("p", sealedBy(3, "k-p", ""), 3, c.now())
	epoch := c.now()
	c.blind()
	if c.holds("p") {
		t.Error("p is still cached after the key store went blind")
	}
	c.put("q", sealedBy(2, "k-q", ""), 2, c.now())
	c.extend("r", nil, sealedBy(2, "k-r", ""), 2, epoch)
	if c.holds("q") || c.holds("r") {
		t.Error("the cache kept a history after the key store went blind")
	}
}

// TestHistoryCache_FoldedBeyondTheEntry: a state folded from a longer history than the one
// cached (History folds what it reads from the stream and puts no history) is not kept: the
// cache's index of data keys holds the entry's history's only, and a key only the state's
// further events named would outlive its destruction there. Found on 2026-12-07 (review of
// the erasure's cache drop).
func TestHistoryCache_FoldedBeyondTheEntry(t *testing.T) {
	c := newHistoryCache(10, 1000)
	c.put("p", sealedBy(1, "k-p", ""), 1, c.now())
	h2 := sealedBy(2, "k-p", "k-q")
	c.putFolded("p", FoldHistory("p", h2), len(h2), h2[1].Seq, c.now())
	c.dropSealed("k-q")
	if st, n, _ := c.takeFolded("p"); st != nil {
		t.Errorf("after k-q's destruction the cache holds p's state folding %d events, the merge copy sealed with k-q among them", n)
	}
	// A state of no more than the entry's history is kept.
	c.putFolded("p", FoldHistory("p", h2[:1]), 1, h2[0].Seq, c.now())
	if st, _, _ := c.takeFolded("p"); st == nil {
		t.Error("a state folding the entry's own history was not kept")
	}
}
