package eventstore_test

import (
	"context"
	"testing"

	"github.com/introreg/nir/eventstore"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// BenchmarkAfter measures the freshness check of the access records (Store.After) for a
// subject without messages, one whose last message is a small event, and one whose last
// message is a merge copying 3 000 events: the three must cost the same
// (TestService_HiddenTiming_LastMessageSize in internal/ingest). Before, the check fetched
// the last messages whole (LastSeqs): on a 2-core machine 110–131 µs, 180–192 µs and
// 1.3–1.7 ms; now 48–76 µs for each.
func BenchmarkAfter(b *testing.B) {
	s, _ := openStore(b, nil)
	ctx := context.Background()
	small, big := personKey("small"), personKey("big")
	merge := newEvent(big)
	absorbed := events(personKey("absorbed"), 3000)
	merge.Payload = &nirv1.Event_PersonsMerged{PersonsMerged: &nirv1.PersonsMerged{AbsorbedPersonKey: personKey("absorbed"), AbsorbedEvents: absorbed}}
	if _, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: small, Events: events(small, 1)}, eventstore.PersonAppend{PersonKey: big, Events: []*nirv1.Event{merge}}); err != nil {
		b.Fatal(err)
	}
	last := mustLastSeq(b, s)
	for _, c := range []struct {
		name string
		key  string
		want eventstore.After
	}{
		{"Unknown", personKey("nobody"), eventstore.After{}},
		{"SmallLast", small, eventstore.After{Held: true, Last: last}},
		{"MergeLast", big, eventstore.After{Held: true, Last: last}},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if got, err := s.After(ctx, []string{c.key}, last); err != nil || got != c.want {
					b.Fatalf("After = %+v, %v; want %+v", got, err, c.want)
				}
			}
		})
	}
}
