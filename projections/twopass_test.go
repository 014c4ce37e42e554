package projections

import (
	"bytes"
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
)

// The rebuild writes the event-id index from runs sorted chunk by chunk and merged at the
// end: the merge must give the entries in the order bytes.Compare gives their keys (the
// index's order in bbolt), equal keys by sequence, whatever the runs.
func TestRunMerge_OrderOfTheIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	entry := func() ulidEntry {
		var e ulidEntry
		for i := range e.key {
			// Few distinct bytes, so that keys share prefixes and repeat.
			e.key[i] = byte(rng.IntN(3)) * 0x7f
		}
		e.seq = rng.Uint64N(50)
		return e
	}
	for round := range 50 {
		var runs [][]ulidEntry
		var all []ulidEntry
		for range rng.IntN(8) {
			run := make([]ulidEntry, rng.IntN(40))
			for i := range run {
				run[i] = entry()
			}
			slices.SortFunc(run, compareULIDEntries)
			all = append(all, run...)
			runs = append(runs, run)
		}
		slices.SortFunc(all, func(a, b ulidEntry) int {
			if x := bytes.Compare(a.key[:], b.key[:]); x != 0 {
				return x
			}
			return cmp.Compare(a.seq, b.seq)
		})
		var got []ulidEntry
		for m := newRunMerge(runs); !m.done(); {
			got = append(got, m.next())
		}
		if !slices.Equal(got, all) {
			t.Fatalf("round %d: merged %d entries out of the index's order (want %d entries)", round, len(got), len(all))
		}
	}
}
