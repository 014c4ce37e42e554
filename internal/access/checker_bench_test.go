package access

import (
	"fmt"
	"testing"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// BenchmarkEventChecker_ManyMoves judges, as the append path does, a request of 1 000 offers
// for a person of 5 000 moves between Oslo and Bergen (in Oslo now), each on the state with
// those before it applied: by Oslo (current) and by Bergen (former, offers in one of its
// periods). `go test -run '^$' -bench BenchmarkEventChecker_ManyMoves -benchtime 3x
// ./internal/access`. With CheckEvent for each event, which built the periods and reach
// again for each: 6.5-7.3 s by Oslo and 2.7-5.4 s by Bergen; with an EventChecker 10-35 and
// 10-17 ms (two builds in turns, under a load of 15-17, helper-146, 2026-12-07).
func BenchmarkEventChecker_ManyMoves(b *testing.B) {
	var h history
	h.register("0301", "0301", "2010-02-01")
	d := rules.MustParseDate("2010-03-01")
	for i := range 5000 {
		to, by := "4601", "0301"
		if i%2 == 1 {
			to, by = "0301", "4601"
		}
		h.move(by, to, d.AddDays(i).String())
	}
	st := h.state()
	for _, k := range []string{"0301", "4601"} {
		var request []*nirv1.Event
		for i := range 1000 {
			ev := offer("2010-03-01") // in Bergen's first period
			ev.Id, ev.Kommune = fmt.Sprintf("request-%d", i), k
			request = append(request, ev)
		}
		s := kommune(k)
		b.Run(fmt.Sprintf("kommune=%s", k), func(b *testing.B) {
			for b.Loop() {
				checkRequest(b, s, st.Copy(), request)
			}
		})
	}
}

// checkRequest judges each event of request on st, then applies it.
func checkRequest(b *testing.B, s Scope, st *rules.State, request []*nirv1.Event) {
	c := s.EventChecker()
	for i, ev := range request {
		if err := c.Check(st, ev, "event"); err != nil {
			b.Fatalf("event %d: %v", i, err)
		}
		st.Apply(st.LastSeq+1, ev)
	}
}
