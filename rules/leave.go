package rules

import (
	"math"
	"math/rand/v2"
	"sort"
)

// leaveIndex is approved leave kept for leaveDays: the closed leave periods merged into
// runs of consecutive days, and the earliest start of an open-ended leave. A programme keeps
// one as its fold adds leave (Programme.addLeave), so that the latest end, judged for every
// event of an append, looks its leave up in time logarithmic in it: it sorted and merged all
// of it for each, and 1 000 permisjon vedtak on a programme of 7 000 took 1.3-1.6 s to check
// (BenchmarkPerPerson_Hostile, leaveVedtak). The runs are a treap (a search tree by start,
// a heap by a hash of the start keyed by leaveSeed), whose shape the runs alone decide in a
// process: a state folded however holds the same one, and a leave added before the others
// costs no more than one after.
type leaveIndex struct {
	// n is how many leaves the index holds (all of Programme.Leave when it is in step).
	n    int
	runs *leaveRun
	// open is the earliest start of an open-ended leave (zero: none).
	open Date
}

// leaveRun is a run of leave days, as days since 0001-01-01, both ends included, and the
// runs that start before it (left) and after it (right); days is theirs and its own.
type leaveRun struct {
	from, to, days int64
	left, right    *leaveRun
}

// newLeaveIndex returns the index of leaves.
func newLeaveIndex(leaves []Leave) *leaveIndex {
	x := &leaveIndex{}
	for _, l := range leaves {
		x.add(l)
	}
	return x
}

// add adds l as leaveDays counts it: a leave without a start counts nothing, one without an
// end is open-ended, one that ends before it begins counts nothing.
func (x *leaveIndex) add(l Leave) {
	x.n++
	switch p := l.Period; {
	case p.From.IsZero(), !p.To.IsZero() && p.To.Before(p.From):
	case p.To.IsZero():
		if x.open.IsZero() || p.From.Before(x.open) {
			x.open = p.From
		}
	default:
		x.insert(p.From.days(), p.To.days())
	}
}

// insert merges the days a to b into the runs, with those it overlaps or adjoins.
func (x *leaveIndex) insert(a, b int64) {
	before, rest := splitRuns(x.runs, a)
	if last := lastRun(before); last != nil && last.to >= a-1 {
		a, b = last.from, max(b, last.to)
		before, _ = splitRuns(before, last.from)
	}
	merged, after := splitRuns(rest, b+2)
	if last := lastRun(merged); last != nil {
		b = max(b, last.to)
	}
	x.runs = joinRuns(joinRuns(before, &leaveRun{from: a, to: b, days: b - a + 1}), after)
}

// copy returns a deep copy of x.
func (x leaveIndex) copy() leaveIndex {
	x.runs = x.runs.clone()
	return x
}

func (r *leaveRun) clone() *leaveRun {
	if r == nil {
		return nil
	}
	c := *r
	c.left, c.right = r.left.clone(), r.right.clone()
	return &c
}

// leaveSeed keys the runs' priorities (leaveRun.priority), drawn once a process. With a
// hash of the start alone, which anyone can compute, a kommune could choose leave dates
// whose hashes rise with them: 366 one-day permisjon vedtak on every other day from 1900
// to 2100 so chosen made the treap one chain, and each look-up of a latest end linear in
// the leave (TestLeaveIndex_ChosenDatesStayShallow). Keyed, no dates are better chosen than
// others, and the depth stays logarithmic whatever the dates; the shape differs from one
// process to another, but no count depends on it, and it is never stored.
var leaveSeed = rand.Uint64()

// priority is the heap order of run r: a hash of its start keyed by leaveSeed (splitmix64).
func (r *leaveRun) priority() uint64 {
	z := (uint64(r.from) ^ leaveSeed) + 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

func (r *leaveRun) total() int64 {
	if r == nil {
		return 0
	}
	return r.days
}

func (r *leaveRun) fix() *leaveRun {
	r.days = r.left.total() + r.to - r.from + 1 + r.right.total()
	return r
}

// splitRuns splits the runs of r into those that start before day d and the others.
func splitRuns(r *leaveRun, d int64) (before, rest *leaveRun) {
	if r == nil {
		return nil, nil
	}
	if r.from < d {
		r.right, rest = splitRuns(r.right, d)
		return r.fix(), rest
	}
	before, r.left = splitRuns(r.left, d)
	return before, r.fix()
}

// joinRuns joins the runs of l and of r, which all start after l's.
func joinRuns(l, r *leaveRun) *leaveRun {
	switch {
	case l == nil:
		return r
	case r == nil:
		return l
	case l.priority() > r.priority():
		l.right = joinRuns(l.right, r)
		return l.fix()
	}
	r.left = joinRuns(l, r.left)
	return r.fix()
}

// lastRun is the run of r that starts last (nil if none).
func lastRun(r *leaveRun) *leaveRun {
	for r != nil && r.right != nil {
		r = r.right
	}
	return r
}

// upTo is the number of days of the runs on or before day d.
func (x *leaveIndex) upTo(d int64) int64 {
	var n int64
	var last *leaveRun // the run that starts last on or before d
	for r := x.runs; r != nil; {
		if r.from > d {
			r = r.left
			continue
		}
		n += r.left.total() + r.to - r.from + 1
		last, r = r, r.right
	}
	if last != nil && last.to > d {
		n -= last.to - d
	}
	return n
}

// within is the number of days of the runs from day a to day b.
func (x *leaveIndex) within(a, b int64) int64 {
	if a > b {
		return 0
	}
	return x.upTo(b) - x.upTo(a-1)
}

// days is leaveDays for the index's leave. The leave counted is the set S of days of the
// runs, and of the open-ended leave from its earliest start to now (when now is given and
// not before it), on or after from. leaveDays counts the runs of S in order while each
// begins on or before base extended by the days before it; with S(d) the days of S on or
// before day d, that is the least t ≥ 0 with S(base+t) ≤ t (the t-th day after base is the
// first one the leave before it does not reach), found by binary search as S(base+t)-t only
// falls.
func (x *leaveIndex) days(from, base, now Date) (days int, open bool) {
	lo := int64(math.MinInt64 / 4)
	if !from.IsZero() {
		lo = from.days()
	}
	ja, jb := int64(0), int64(-1) // the open-ended leave up to now, if any
	if !x.open.IsZero() && !now.IsZero() && !now.Before(x.open) {
		ja, jb = max(x.open.days(), lo), now.days()
	}
	upTo := func(d int64) int64 {
		n := x.within(lo, d)
		if a, b := ja, min(jb, d); a <= b {
			n += b - a + 1 - x.within(a, b)
		}
		return n
	}
	last := jb
	if r := lastRun(x.runs); r != nil {
		last = max(last, r.to)
	}
	total := int(upTo(last))
	if base.IsZero() {
		days = total
	} else {
		b := base.days()
		days = sort.Search(total, func(t int) bool { return upTo(b+int64(t)) <= int64(t) })
	}
	open = !x.open.IsZero() && now.IsZero() && (base.IsZero() || !x.open.After(base.AddDays(days)))
	return days, open
}
