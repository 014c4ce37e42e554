package rules

import (
	"math/rand"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// FuzzFold feeds arbitrary wire-format events to the regelmotor: Fold, Check, Evaluate,
// DueTerminations, NextDue and Explain must never panic (issue 3: "Fold must not panic on any
// event sequence"), nor the fold panic inside Apply, which contains it (State.Faults), and
// folding must stay deterministic. Run longer with
// `go test ./rules -run XXX -fuzz FuzzFold -fuzztime 1m`.
func FuzzFold(f *testing.F) {
	for _, data := range wireSeeds(8) {
		f.Add(data, int32(2022), int32(6))
	}
	f.Fuzz(func(t *testing.T, data []byte, year, month int32) { wireBody(t, data, year, month) })
}

// wireBody decodes length-prefixed wire events and runs everything on them.
func wireBody(t testing.TB, data []byte, year, month int32) {
	var evs []*nirv1.Event
	for len(data) >= 2 && len(evs) < 64 { // a person has tens of events, not thousands
		n := int(data[0])<<8 | int(data[1])
		data = data[2:]
		if n > len(data) {
			n = len(data)
		}
		ev := &nirv1.Event{}
		if proto.Unmarshal(data[:n], ev) == nil {
			evs = append(evs, ev)
		}
		data = data[n:]
	}
	now := Date{Y: 2000 + int(uint32(year)%40), M: 1 + time.Month(uint32(month)%12), D: 1 + int(uint32(year)%28)}
	s := Fold("pk", evs)
	if len(s.Faults) > 0 || s.Broken {
		t.Fatalf("the fold panicked on events it contained: %+v (broken %v)", s.Faults, s.Broken)
	}
	_ = Evaluate(s, now)
	_ = DueTerminations(s, now)
	_, _ = NextDue(s)
	if len(evs) > 0 {
		_ = Check(Fold("pk", evs[:len(evs)-1]), evs[len(evs)-1:], now)
	}
	a, b := Explain(evs, now), Explain(evs, now)
	if a.Text() != b.Text() {
		t.Fatalf("explain not deterministic")
	}
	if len(a.State.Faults) > 0 || a.State.Broken {
		t.Fatalf("explain's fold panicked on events it contained: %+v", a.State.Faults)
	}
}

// wireSeeds are length-prefixed wire encodings of generated persons.
func wireSeeds(n int) [][]byte {
	g := &gen{r: rand.New(rand.NewSource(propertySeed))}
	var seeds [][]byte
	for i := 0; i < n; i++ {
		var data []byte
		for _, ev := range g.person() {
			b, _ := proto.Marshal(ev)
			data = append(data, byte(len(b)>>8), byte(len(b)))
			data = append(data, b...)
		}
		seeds = append(seeds, data)
	}
	return seeds
}

// TestProperty_MutatedWireEvents is FuzzFold's body on byte-mutated encodings of generated
// persons with a fixed seed, so every `go test` runs a few thousand odd inputs.
func TestProperty_MutatedWireEvents(t *testing.T) {
	t.Parallel()
	seeds := wireSeeds(8)
	r := rand.New(rand.NewSource(propertySeed + 5))
	for i := 0; i < 400; i++ {
		d := append([]byte(nil), seeds[r.Intn(len(seeds))]...)
		for k := 0; k < 1+r.Intn(8); k++ {
			d[r.Intn(len(d))] = byte(r.Intn(256))
		}
		wireBody(t, d, int32(r.Int31()), int32(r.Int31()))
	}
}
