package rules

import (
	"container/heap"
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
)

// Disclosure control of published statistics (DOMAIN.md Product decisions 14): figures IMDi
// and SSB publish never reveal individuals. Counts of 1 to Threshold-1 are suppressed
// (primary suppression, shown as «:» as SSB does), and further cells are suppressed so that
// no suppressed value can be recovered from the totals of the published table (secondary
// suppression).
//
// The table is a tree of areas (the nation, its fylker, their kommuner) by counters, where
// every area's value is the sum of its children's, and counters of one area may be tied by
// relations (terminated = registered + computed, and so on). A suppressed value is safe when
// the published values and all these equations leave it undetermined: when some change of
// the suppressed values alone keeps every equation true. Suppress builds such changes
// explicitly. For each primary cell it takes a smallest change of the area's counters that
// keeps the area's relations (a block: the counter alone, or it and the counters that must
// move with it), and two disjoint ways of balancing it in the tree (a sibling area or an
// area in a sibling subtree moving the other way, or a chain to the root); every cell these
// touch is suppressed. The primary cell and every secondary cell then move under a change
// that no published value rules out, and, with two balancings that share no kommune (but the
// primary cell's own), still do when one kommune knows its own true figures (a kommune sees
// its own unsuppressed; the difference of the two changes avoids it). That holds for a
// fylke's or the nation's small count too: its two balancings go down to different kommuner
// under it, so that neither of them, knowing its own figures and the published table,
// recovers the count, and with it the small count of the other kommuner under it.

// DisclosureTable is a table to publish: a tree of areas by counters.
type DisclosureTable struct {
	// Parent of each area; -1 for a root. Each area's value is the sum of its children's.
	Parent []int
	// Values are [area][counter].
	Values [][]int64
	// Relations tie counters within each area: Values[a][Total] = Σ Values[a][Parts], or
	// Total - Σ Parts is known to the reader from elsewhere (another year's table: the
	// caller's participants - new). Suppress uses them on changes only (a change keeps
	// Total - Σ Parts), so both kinds are one to it; the values need not satisfy the second.
	Relations []CounterRelation
	// Counts marks the counters that count persons: 1 to Threshold-1 is suppressed.
	Counts []bool
	// Contributors maps a magnitude counter (hours) to the counter of the persons it sums: the
	// magnitude is suppressed where that count is.
	Contributors map[int]int
}

// CounterRelation is Total = Σ Parts, or Total - Σ Parts known, for every area.
type CounterRelation struct {
	Total int
	Parts []int
}

// DefaultMinCount is the default threshold: counts of 1 to 4 are suppressed.
const DefaultMinCount = 5

// Suppress returns the cells to suppress ([area][counter]) with threshold minCount (counts
// of 1 to minCount-1 are primary; minCount ≤ 1 suppresses nothing). It is deterministic.
func Suppress(t *DisclosureTable, minCount int64) [][]bool {
	out, _ := SuppressContext(context.Background(), t, minCount)
	return out
}

// SuppressContext is Suppress that stops when ctx is done (a national table takes about a
// second of CPU): it then returns ctx's error and no cells. The context is checked before
// each area's primary cells, so it stops within one area's work.
func SuppressContext(ctx context.Context, t *DisclosureTable, minCount int64) ([][]bool, error) {
	nA := len(t.Values)
	out := make([][]bool, nA)
	nC := 0
	if nA > 0 {
		nC = len(t.Values[0])
	}
	for a := range out {
		out[a] = make([]bool, nC)
	}
	if minCount <= 1 || nA == 0 {
		return out, nil
	}
	primary := func(a, c int) bool {
		v := t.Values[a][c]
		if c < len(t.Counts) && t.Counts[c] {
			return v >= 1 && v < minCount
		}
		if n, ok := t.Contributors[c]; ok {
			p := t.Values[a][n]
			return v != 0 && p >= 0 && p < minCount
		}
		return false
	}
	s := &suppressor{t: t, out: out, children: make([][]int, nA), blocks: map[int][][]int{}}
	for a, p := range t.Parent {
		if p >= 0 {
			s.children[p] = append(s.children[p], a)
		}
	}
	// Roots first, then fylker, then kommuner: the cells most constrained by the tree
	// choose first.
	order := make([]int, nA)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool { return s.depth(order[i]) < s.depth(order[j]) })
	for _, a := range order {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for c := 0; c < nC; c++ {
			if primary(a, c) {
				s.protect(a, c)
			}
		}
	}
	return out, nil
}

// blockCache keeps the blocks of each table shape (counters and relations), which depend on
// nothing else: the register publishes one shape.
var blockCache = struct {
	sync.Mutex
	m map[string][][]int
}{m: map[string][][]int{}}

type suppressor struct {
	t        *DisclosureTable
	out      [][]bool
	children [][]int
	blocks   map[int][][]int
}

func (s *suppressor) depth(a int) int {
	d := 0
	for p := s.t.Parent[a]; p >= 0; p = s.t.Parent[p] {
		d++
	}
	return d
}

// protect suppresses cell (a, c) and the cells of a block and two balancings around it.
func (s *suppressor) protect(a, c int) {
	blocks := s.blockFor(c)
	if len(blocks) > 4 {
		// The blocks cheapest at a itself; the balancings repeat them elsewhere.
		blocks = slices.Clone(blocks)
		sort.SliceStable(blocks, func(i, j int) bool { return s.cellCost(a, blocks[i]) < s.cellCost(a, blocks[j]) })
		blocks = blocks[:4]
	}
	var bestBlock []int
	var best []balancing
	bestCost := -1
	for _, blk := range blocks {
		bs := s.balancings(a, blk, -1)
		first := bs.at(0)
		chosen := []balancing{first}
		// The second way: another of bs; above a kommune, where every way of bs goes down
		// through the same kommune (bs.below), one going down through another, if any.
		second, from := bs, 1
		if len(bs.below) > 0 {
			second, from = s.balancings(a, blk, bs.below[len(bs.below)-1]), 0
		}
		for i := from; i < second.len(); i++ {
			if b := second.at(i); disjointLeaves(s, first, b, a) {
				chosen = append(chosen, b)
				break
			}
		}
		cost := 0
		for _, b := range chosen {
			cost += b.cost
		}
		if len(chosen) < 2 {
			cost += 1 << 20 // a second, disjoint balancing is worth much
		}
		if bestCost < 0 || cost < bestCost {
			bestCost, bestBlock, best = cost, blk, chosen
		}
	}
	s.out[a][c] = true
	for _, b := range best {
		for _, area := range b.areas {
			for _, cc := range bestBlock {
				s.out[area][cc] = true
			}
		}
	}
}

// cellCost is what suppressing block blk in area adds: the cells not yet suppressed,
// weighted by their level (totals avoided) and by their values so that small cells are
// preferred (as SSB does).
func (s *suppressor) cellCost(area int, blk []int) int {
	// A cell of a kommune costs 1000, of a fylke 3000, of the nation 9000 (totals are what
	// readers need most), plus its value up to 999.
	base := 1000
	switch leafDepth := s.height(area); {
	case s.t.Parent[area] < 0:
		base = 9000
	case leafDepth > 0:
		base = 3000
	}
	n := 0
	for _, c := range blk {
		if !s.out[area][c] {
			v := s.t.Values[area][c]
			if v < 0 {
				v = -v
			}
			n += base + int(min(v, 999))
		}
	}
	return n
}

// height is 0 for a leaf, else 1 + the height of its first child.
func (s *suppressor) height(a int) int {
	h := 0
	for len(s.children[a]) > 0 {
		a = s.children[a][0]
		h++
	}
	return h
}

// balancing is one way of balancing a change: the areas that move (with a), and its cost.
type balancing struct {
	areas []int
	cost  int
}

// disjointLeaves reports whether balancings x and y share no leaf area but a itself: any
// kommune may know its own figures, and must not find both balancings blocked. A kommune
// under a (a fylke) is no exception: knowing its own part of a, it would recover a from
// the published values and its own where both balancings go through it, and so the small
// count of the other kommuner under a (before, such leaves were exempt:
// TestProperty_SuppressionRecoversNothing, TestQuery_StatisticsOwnRowRevealsNoOtherSmallCount).
func disjointLeaves(s *suppressor, x, y balancing, a int) bool {
	for _, area := range x.areas {
		if len(s.children[area]) == 0 && area != a && slices.Contains(y.areas, area) {
			return false
		}
	}
	return true
}

// balancings returns the ways of balancing a change of block blk at area a, cheapest first,
// that avoid leaf area avoid where they can (-1: none; its cells cost more than all others):
// for a itself or an ancestor u (not a root), each sibling v of u moving the other way, with
// a path down to a leaf under a (when a is not a leaf) and under v; and the chain from a leaf
// under a up to the root. Every such set of signed areas keeps every tree sum. The areas of
// each way are built only when asked for (balancingSet.at): protect reads the first few.
func (s *suppressor) balancings(a int, blk []int, avoid int) *balancingSet {
	bs := &balancingSet{s: s, blk: blk, avoid: avoid, memo: make([]down, len(s.t.Parent)), cands: make(candHeap, 0, len(s.t.Parent))}
	below := bs.best(a)
	bs.below = bs.downPath(a)
	path := []int{a}
	pathCost := bs.cellCost(a) + below.cost
	for u := a; s.t.Parent[u] >= 0; u = s.t.Parent[u] {
		p := s.t.Parent[u]
		for _, v := range s.children[p] {
			if v == u {
				continue
			}
			// Every child of v opens another way down, so that a second balancing need not
			// share the first's kommune.
			vCost := pathCost + bs.cellCost(v)
			if len(s.children[v]) == 0 {
				bs.add(balancingCand{cost: vCost, k: len(path), v: v, w: -1})
			}
			for _, w := range s.children[v] {
				bw := bs.best(w)
				bs.add(balancingCand{cost: vCost + bs.cellCost(w) + bw.cost, k: len(path), v: v, w: w})
			}
		}
		path = append(path, p)
		pathCost += bs.cellCost(p)
	}
	// The chain to the root: every ancestor moves too (path now ends at the root).
	bs.add(balancingCand{cost: pathCost, k: len(path), v: -1, w: -1})
	bs.path = path
	// A heap of the ways by (cost, order found): at takes them cheapest first, as a stable
	// sort by cost would give them, and protect seldom needs more than a few.
	bs.n = len(bs.cands)
	heap.Init(&bs.cands)
	return bs
}

// balancingSet is the ways of balancing one change (balancings), cheapest first.
type balancingSet struct {
	s     *suppressor
	blk   []int
	avoid int             // a leaf area the ways avoid where they can, or -1
	memo  []down          // by area: the cheapest way down to a leaf below it
	path  []int           // a, then its ancestors up to the root
	below []int           // the leaf path below a
	cands candHeap        // the ways not yet taken
	n     int             // the number of ways
	taken []balancingCand // the ways taken from the heap, cheapest first
}

// balancingCand is one way: path[:k], then below, then v (≥ 0) and w (≥ 0) with the leaf
// path below w; idx is the order it was found in.
type balancingCand struct {
	cost, idx, k, v, w int
}

// avoidCost is the cost of a cell of the area a balancingSet avoids: more than the cells of
// any way together (a few areas of at most 10⁴ each), and small enough for a 32-bit int with
// them.
const avoidCost = 1 << 30

// cellCost is the suppressor's, but the area avoided costs avoidCost.
func (bs *balancingSet) cellCost(area int) int {
	if area == bs.avoid {
		return avoidCost
	}
	return bs.s.cellCost(area, bs.blk)
}

func (bs *balancingSet) add(c balancingCand) {
	c.idx = len(bs.cands)
	bs.cands = append(bs.cands, c)
}

func (bs *balancingSet) len() int { return bs.n }

// candHeap orders the ways by (cost, order found): taken from it cheapest first, they come
// as a stable sort by cost would give them.
type candHeap []balancingCand

func (h candHeap) Len() int { return len(h) }
func (h candHeap) Less(i, j int) bool {
	return h[i].cost < h[j].cost || h[i].cost == h[j].cost && h[i].idx < h[j].idx
}
func (h candHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *candHeap) Push(x any)   { *h = append(*h, x.(balancingCand)) }
func (h *candHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// sorted returns the i-th cheapest way (0 ≤ i < len).
func (bs *balancingSet) sorted(i int) balancingCand {
	for len(bs.taken) <= i {
		bs.taken = append(bs.taken, heap.Pop(&bs.cands).(balancingCand))
	}
	return bs.taken[i]
}

// down is the cheapest way from a node down to a leaf: its cost (the cells below the node)
// and the node's child it takes (-1 at a leaf).
type down struct {
	cost, next int
	done       bool
}

func (bs *balancingSet) best(x int) down {
	if d := bs.memo[x]; d.done {
		return d
	}
	d := down{next: -1, done: true}
	for i, ch := range bs.s.children[x] {
		sub := bs.best(ch)
		cost := bs.cellCost(ch) + sub.cost
		if i == 0 || cost < d.cost {
			d.cost, d.next = cost, ch
		}
	}
	bs.memo[x] = d
	return d
}

// downPath is the leaf path below x, x excluded.
func (bs *balancingSet) downPath(x int) []int {
	var out []int
	for n := bs.best(x).next; n >= 0; n = bs.best(n).next {
		out = append(out, n)
	}
	return out
}

// at returns the i-th way with its areas.
func (bs *balancingSet) at(i int) balancing {
	c := bs.sorted(i)
	areas := append(append([]int{}, bs.path[:c.k]...), bs.below...)
	if c.v >= 0 {
		areas = append(areas, c.v)
	}
	if c.w >= 0 {
		areas = append(append(areas, c.w), bs.downPath(c.w)...)
	}
	return balancing{areas: areas, cost: c.cost}
}

// blockFor returns the supports of the smallest changes of one area's counters that move
// counter c and keep every relation (some +1, some -1; c first). A counter in no relation is a block
// alone. Blocks of up to 4 counters are searched; the result is cached per counter.
func (s *suppressor) blockFor(c int) [][]int {
	if bs, ok := s.blocks[c]; ok {
		return bs
	}
	key := fmt.Sprint(len(s.t.Values[0]), s.t.Relations, c)
	blockCache.Lock()
	bs, ok := blockCache.m[key]
	blockCache.Unlock()
	if ok {
		s.blocks[c] = bs
		return bs
	}
	defer func() {
		blockCache.Lock()
		blockCache.m[key] = s.blocks[c]
		blockCache.Unlock()
	}()
	nC := len(s.t.Values[0])
	holds := func(d map[int]int) bool {
		for _, r := range s.t.Relations {
			sum := -d[r.Total]
			for _, p := range r.Parts {
				sum += d[p]
			}
			if sum != 0 {
				return false
			}
		}
		return true
	}
	// Counters that share a relation with c, transitively: only they can be in its block.
	related := map[int]bool{c: true}
	for changed := true; changed; {
		changed = false
		for _, r := range s.t.Relations {
			members := append([]int{r.Total}, r.Parts...)
			touch := false
			for _, m := range members {
				touch = touch || related[m]
			}
			if !touch {
				continue
			}
			for _, m := range members {
				if !related[m] {
					related[m], changed = true, true
				}
			}
		}
	}
	var cands []int
	for x := 0; x < nC; x++ {
		if x != c && related[x] {
			cands = append(cands, x)
		}
	}
	var found [][]int
	for size := 0; size <= 3 && len(found) == 0; size++ {
		forEachSubset(cands, size, func(sub []int) {
			for signs := 0; signs < 1<<len(sub); signs++ {
				d := map[int]int{c: 1}
				for i, x := range sub {
					d[x] = 1
					if signs&(1<<i) != 0 {
						d[x] = -1
					}
				}
				if holds(d) {
					found = append(found, append([]int{c}, sub...)) // the support is what is suppressed
					return
				}
			}
		})
	}
	if len(found) == 0 {
		// No block of up to 4 counters: every related counter moves (sum relations always
		// have one, so this is a guard).
		found = [][]int{append([]int{c}, cands...)}
	}
	s.blocks[c] = found
	return found
}

// forEachSubset calls f with each subset of xs of the given size, in lexicographic order.
func forEachSubset(xs []int, size int, f func([]int)) {
	sub := make([]int, 0, size)
	var rec func(start int)
	rec = func(start int) {
		if len(sub) == size {
			f(slices.Clone(sub))
			return
		}
		for i := start; i < len(xs); i++ {
			sub = append(sub, xs[i])
			rec(i + 1)
			sub = sub[:len(sub)-1]
		}
	}
	rec(0)
}
