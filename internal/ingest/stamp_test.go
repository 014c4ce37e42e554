package ingest

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestShallowEventCopiesEveryField sets every field of Event (one member of the payload) and
// checks that shallowEvent copies it: a field added to events.proto and not to shallowEvent
// would be lost on every append.
func TestShallowEventCopiesEveryField(t *testing.T) {
	ev := &nirv1.Event{}
	m := ev.ProtoReflect()
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if od := fd.ContainingOneof(); od != nil && m.WhichOneof(od) != nil {
			continue
		}
		m.Set(fd, someValue(m, fd))
	}
	m.SetUnknown(protoreflect.RawFields{0xf8, 0x3e, 0x01}) // field 999, varint 1
	if got := shallowEvent(ev); !proto.Equal(got, ev) {
		t.Errorf("shallowEvent lost a field:\n got %v\nwant %v", got, ev)
	}
}

func someValue(m protoreflect.Message, fd protoreflect.FieldDescriptor) protoreflect.Value {
	if fd.IsList() || fd.IsMap() {
		panic("Event has no repeated fields; teach someValue")
	}
	switch fd.Kind() {
	case protoreflect.StringKind:
		return protoreflect.ValueOfString("x")
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes([]byte{1})
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(true)
	case protoreflect.EnumKind:
		return protoreflect.ValueOfEnum(1)
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(1)
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(1)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(1)
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(1)
	case protoreflect.MessageKind:
		return protoreflect.ValueOfMessage(m.NewField(fd).Message())
	}
	panic("someValue: kind " + fd.Kind().String())
}

// TestStampLeavesTheRequestAlone: the stamped copy shares the payload, so setting nird's
// fields on it must not reach the registration, which a retry stamps again.
func TestStampLeavesTheRequestAlone(t *testing.T) {
	ev := &nirv1.Event{Id: "01J", Kommune: "0301", Payload: &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{}}}
	want := proto.Clone(ev)
	s := &Service{}
	out := s.stamp(ev, "key", &nirv1.Actor{}, time.Unix(1, 0))
	out.PrevHash, out.DataKeyId = []byte{1}, "k"
	if !proto.Equal(ev, want) {
		t.Errorf("the registration changed: %v", ev)
	}
	if out.GetPersonKey() != "key" || out.GetRecordedAt().AsTime() != time.Unix(1, 0).UTC() || out.GetPersonMoved() == nil {
		t.Errorf("stamped %v", out)
	}
	merged := &nirv1.Event{Payload: &nirv1.Event_PersonsMerged{PersonsMerged: &nirv1.PersonsMerged{AbsorbedEvents: []*nirv1.Event{{Id: "a"}}}}}
	if s.stamp(merged, "key", nil, time.Unix(1, 0)).GetPersonsMerged() == merged.GetPersonsMerged() {
		t.Error("a merge's stamped copy shares its absorbed events, which sealing changes")
	}
}
