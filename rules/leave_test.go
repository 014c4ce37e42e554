package rules

import (
	"math/bits"
	"math/rand"
	"reflect"
	"slices"
	"sort"
	"testing"
)

// TestProperty_LeaveIndex: the leave index (leaveIndex) counts what leaveDays counted when it
// sorted and merged all the leave for each call (leaveDaysOld, a copy of it from before the
// index): built at once (newLeaveIndex) and added to leave by leave (Programme.addLeave, as
// the fold does), after every leave, for random from, base and now, zero ones included, and
// leave that overlaps, adjoins, is open-ended, has no start or ends before it begins. The
// index is the same whatever the order the leave was added in (states folded alike are
// equal).
func TestProperty_LeaveIndex(t *testing.T) {
	r := rand.New(rand.NewSource(propertySeed + 41))
	d0 := md("2018-01-01")
	date := func(zeroOne int) Date {
		if r.Intn(zeroOne) == 0 {
			return Date{}
		}
		return d0.AddDays(r.Intn(400))
	}
	counted, opens := 0, 0
	for c := 0; c < 3000; c++ {
		var p Programme
		for range 1 + r.Intn(25) {
			l := Leave{Period: Period{From: date(12), To: date(8)}}
			if !l.From.IsZero() && !l.To.IsZero() && r.Intn(4) > 0 {
				l.To = l.From.AddDays(r.Intn(3*(r.Intn(3)+1)) - 1) // short, adjoining, or one day before
			}
			p.addLeave(l)
			whole := newLeaveIndex(p.Leave)
			for range 6 {
				from, base, now := date(4), date(4), date(3)
				wantDays, wantOpen := leaveDaysOld(p.Leave, from, base, now)
				for _, x := range []*leaveIndex{p.leaveIndex(), whole} {
					if days, open := x.days(from, base, now); days != wantDays || open != wantOpen {
						t.Fatalf("case %d: leave %v from %v base %v now %v: %d %v, want %d %v", c, p.Leave, from, base, now, days, open, wantDays, wantOpen)
					}
				}
				if wantDays > 0 && !base.IsZero() {
					counted++
				}
				if wantOpen {
					opens++
				}
			}
		}
		if p.leaveIndex() != &p.leave {
			t.Fatalf("case %d: the programme's own index is not in step with its leave", c)
		}
		shuffled := slices.Clone(p.Leave)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if x := newLeaveIndex(shuffled); !reflect.DeepEqual(*x, p.leave) {
			t.Fatalf("case %d: the index of the leave added in another order differs", c)
		}
	}
	if counted < 1000 || opens < 1000 {
		t.Fatalf("%d counts against a base, %d open: the generator must make many of both", counted, opens)
	}
}

// leaveDaysOld is leaveDays as it was before leaveIndex (the oracle of
// TestProperty_LeaveIndex). leaveDays returns the number of days of approved leave on or after from that extend a
// deadline of base, overlapping periods counted once. Leave extends a deadline that is still
// running (DOMAIN.md 3.2: approved leave is added to the deadline): a leave counts when it
// begins on or before the deadline as extended by the leave before it, and a leave that
// begins after the deadline has passed revives nothing. A zero base puts no such limit. An
// open-ended leave counts up to now (it keeps extending the deadline while it lasts); with a
// zero now it counts nothing and open is true, when it began in time.
func leaveDaysOld(leaves []Leave, from, base, now Date) (days int, open bool) {
	var ps []Period
	var opens []Date
	for _, l := range leaves {
		p := l.Period
		if p.From.IsZero() {
			continue
		}
		if p.To.IsZero() {
			if now.IsZero() {
				opens = append(opens, p.From)
				continue
			}
			if now.Before(p.From) {
				continue
			}
			p.To = now
		}
		if p.To.Before(p.From) {
			continue
		}
		if !from.IsZero() && p.From.Before(from) {
			p.From = from
			if p.To.Before(p.From) {
				continue
			}
		}
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].From.Before(ps[j].From) })
	// Merge overlapping and adjacent periods, then count them in order while they begin on
	// or before the deadline as extended so far.
	var merged []Period
	for _, p := range ps {
		if n := len(merged); n > 0 && !p.From.After(merged[n-1].To.AddDays(1)) {
			if p.To.After(merged[n-1].To) {
				merged[n-1].To = p.To
			}
			continue
		}
		merged = append(merged, p)
	}
	for _, p := range merged {
		if !base.IsZero() && p.From.After(base.AddDays(days)) {
			break
		}
		days += p.Days()
	}
	for _, f := range opens {
		if base.IsZero() || !f.After(base.AddDays(days)) {
			open = true
		}
	}
	return days, open
}

// TestLeaveIndex_ChosenDatesStayShallow: leave on dates a kommune chose so that the hash of
// each start rises with the start, as the priority was before it was keyed (unkeyedPriority:
// the longest such run of every other day from 1900 to 2100), and leave on every other day
// added in date order and in reverse, leave the treap of logarithmic depth: a chain made
// every look-up of a programme's latest end linear in its leave. The days counted are all
// of them.
func TestLeaveIndex_ChosenDatesStayShallow(t *testing.T) {
	var every []int64
	for d := md("1900-01-01").days(); d <= md("2100-12-31").days(); d += 2 {
		every = append(every, d)
	}
	chosen := risingRun(every, unkeyedPriority)
	reversed := slices.Clone(every[:5000])
	slices.Reverse(reversed)
	for _, c := range []struct {
		name string
		days []int64
	}{{"chosen", chosen}, {"in date order", every[:5000]}, {"in reverse", reversed}} {
		x := &leaveIndex{}
		for _, d := range c.days {
			day := dateFromDays(d)
			x.add(Leave{Period: Period{From: day, To: day}})
		}
		n := len(c.days)
		t.Logf("%s: %d leaves, depth %d", c.name, n, x.runs.depth())
		if depth, most := x.runs.depth(), 4*bits.Len(uint(n)); depth > most {
			t.Errorf("%s: %d one-day leaves make a treap %d deep, want at most %d", c.name, n, depth, most)
		}
		if days, _ := x.days(Date{}, Date{}, Date{}); days != n {
			t.Errorf("%s: %d days counted, want %d", c.name, days, n)
		}
	}
	if len(chosen) < 300 {
		t.Fatalf("only %d chosen dates: the test needs a long run", len(chosen))
	}
}

// unkeyedPriority is leaveRun.priority as it was, a hash of the start alone (splitmix64),
// which anyone could compute.
func unkeyedPriority(from int64) uint64 {
	z := uint64(from) + 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// risingRun returns the longest run of days, in their order, whose priorities rise
// (patience sorting).
func risingRun(days []int64, priority func(int64) uint64) []int64 {
	var tails []int // indexes in days of the least last element of a run of each length
	prev := make([]int, len(days))
	for i, d := range days {
		j := sort.Search(len(tails), func(j int) bool { return priority(days[tails[j]]) >= priority(d) })
		prev[i] = -1
		if j > 0 {
			prev[i] = tails[j-1]
		}
		if j == len(tails) {
			tails = append(tails, i)
		} else {
			tails[j] = i
		}
	}
	var run []int64
	for i := tails[len(tails)-1]; i >= 0; i = prev[i] {
		run = append(run, days[i])
	}
	slices.Reverse(run)
	return run
}

// depth is the number of runs on the longest path from r down.
func (r *leaveRun) depth() int {
	if r == nil {
		return 0
	}
	return 1 + max(r.left.depth(), r.right.depth())
}
