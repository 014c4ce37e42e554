package nirv1

import (
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// TestHoldsUnknown: what a newer nird adds, a kind or a field of the envelope or the payload,
// also in an event a merge copied, is found; a field added deeper (a Date's) is not (the
// documented limit), nor anything in an event of this build.
func TestHoldsUnknown(t *testing.T) {
	newer := func(m proto.Message) {
		m.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 1))
	}
	offer := func() *Event {
		return &Event{Id: "e", Payload: &Event_OfferRegistered{OfferRegistered: &OfferRegistered{Date: &Date{Year: 2024, Month: 1, Day: 2}}}}
	}
	merged := func(c *Event) *Event {
		return &Event{Id: "m", Payload: &Event_PersonsMerged{PersonsMerged: &PersonsMerged{AbsorbedEvents: []*Event{offer(), c}}}}
	}
	envelope, payload, deeper := offer(), offer(), offer()
	newer(envelope)
	newer(payload.GetOfferRegistered())
	newer(deeper.GetOfferRegistered().GetDate())
	for _, c := range []struct {
		name string
		ev   *Event
		want bool
	}{
		{"nil", nil, false},
		{"this build's", offer(), false},
		{"this build's merge", merged(offer()), false},
		{"an unknown kind", &Event{Id: "k"}, true},
		{"an envelope field", envelope, true},
		{"a payload field", payload, true},
		{"a merge's copy of an unknown kind", merged(&Event{Id: "k"}), true},
		{"a merge's copy with a payload field", merged(payload), true},
		{"a Date's field (not looked for)", deeper, false},
	} {
		if got := HoldsUnknown(c.ev); got != c.want {
			t.Errorf("%s: HoldsUnknown = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestHoldsUnknown_EveryKind: every kind of this build, empty or with an unknown field of
// its own, is read through payloadMessage (which takes the wrapper's one field as a message,
// and would panic on a kind that is not one).
func TestHoldsUnknown_EveryKind(t *testing.T) {
	od := (&Event{}).ProtoReflect().Descriptor().Oneofs().ByName("payload")
	for i := range od.Fields().Len() {
		fd := od.Fields().Get(i)
		m := (&Event{Id: "k"}).ProtoReflect()
		m.Set(fd, m.NewField(fd))
		ev := m.Interface().(*Event)
		if HoldsUnknown(ev) {
			t.Errorf("%s: HoldsUnknown of an empty payload of this build = true", fd.Name())
		}
		m.Get(fd).Message().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 9999, protowire.VarintType), 1))
		if !HoldsUnknown(ev) {
			t.Errorf("%s: HoldsUnknown of a payload with an unknown field = false", fd.Name())
		}
	}
}
