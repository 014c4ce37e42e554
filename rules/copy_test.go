package rules

import (
	"math/rand"
	"reflect"
	"testing"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestProperty_Copy: a copy equals its state in every field, and the two are independent:
// applying the rest of a person's events to the copy gives what folding them all gives,
// while the original stays the fold of the first part. Persons from the generator and
// garbage sequences (retractions, deletions of computed terminations, refolds) alike.
func TestProperty_Copy(t *testing.T) {
	t.Parallel()
	g := &gen{r: rand.New(rand.NewSource(propertySeed + 7))}
	for i := 0; i < 300; i++ {
		var evs []*nirv1.Event
		if i%3 != 2 {
			evs = g.person()
		}
		if i%3 != 0 {
			for range 15 {
				evs = append(evs, g.garbage(evs))
			}
		}
		if len(evs) == 0 {
			continue
		}
		k := g.r.Intn(len(evs) + 1)
		orig := Fold("pk", evs[:k])
		c := orig.Copy()
		if !reflect.DeepEqual(orig, c) {
			t.Fatalf("seed %d case %d: the copy differs from its state", propertySeed+7, i)
		}
		// A second copy of the same state takes other events first: copies share nothing
		// they append to, or one would overwrite the other's.
		other := orig.Copy()
		for j, ev := range g.person()[1:] {
			other.Apply(uint64(len(evs)+j+1), ev)
		}
		for j := k; j < len(evs); j++ {
			c.Apply(uint64(j+1), evs[j])
		}
		for j, ev := range g.person()[1:] {
			other.Apply(uint64(2*len(evs)+j+1), ev)
		}
		if want := Fold("pk", evs); !reflect.DeepEqual(c, want) {
			t.Fatalf("seed %d case %d: the copy with events %d.. applied differs from the whole fold", propertySeed+7, i, k+1)
		}
		if want := Fold("pk", evs[:k]); !reflect.DeepEqual(orig, want) {
			t.Fatalf("seed %d case %d: applying events to the copy changed the original", propertySeed+7, i)
		}
		// Checks apply what they check: a copy checked against does not change either.
		if k < len(evs) {
			c2 := orig.Copy()
			_ = CheckApply(c2, evs[k:], propertyNows[0])
			if want := Fold("pk", evs[:k]); !reflect.DeepEqual(orig, want) {
				t.Fatalf("seed %d case %d: checking against a copy changed the original", propertySeed+7, i)
			}
		}
	}
}

// TestProperty_CheckNext: judging an event without applying it leaves the state exactly as it
// was (the append path checks the cached state itself, which later appends fold on), and
// refuses what Check refuses. Generated persons and garbage sequences, every prefix.
func TestProperty_CheckNext(t *testing.T) {
	t.Parallel()
	g := &gen{r: rand.New(rand.NewSource(propertySeed + 11))}
	for i := 0; i < 200; i++ {
		evs := g.person()
		for range 10 {
			evs = append(evs, g.garbage(evs))
		}
		for k := 0; k < len(evs); k++ {
			st := Fold("pk", evs[:k])
			want := Fold("pk", evs[:k])
			for _, now := range propertyNows {
				got := CheckNext(st, evs[k], now)
				if !reflect.DeepEqual(st, want) {
					t.Fatalf("seed %d case %d: checking event %d changed the state", propertySeed+11, i, k+1)
				}
				if ref := Check(st, evs[k:k+1], now); !reflect.DeepEqual(got, ref) {
					t.Fatalf("seed %d case %d, event %d: CheckNext refuses %v, Check %v", propertySeed+11, i, k+1, got, ref)
				}
			}
		}
	}
}
