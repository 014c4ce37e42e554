package nirv1

import (
	"sync"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// UnmarshalEvent decodes an event as proto.Unmarshal does, with the same result for any
// bytes (the same event, unknown fields included, or an error), in about three quarters of
// the time: decoding was half the CPU of a rebuild's fold (README, Performance).
//
// The fast path is the generated UnmarshalVT (events_vtproto.pb.go), which reflects on
// nothing. Before it, a walk of the encoding (knownFields) checks what UnmarshalVT does not:
// every string field holds UTF-8, as proto.Unmarshal requires of proto3 strings; there is
// no unknown field, whose bytes the two keep differently (proto.Unmarshal writes the tag
// anew); nothing is nested deeper than fastDepth. Bytes that fail the walk or that
// UnmarshalVT refuses are decoded by proto.Unmarshal, which decides (UnmarshalVT also
// refuses a known field of another wire type, which proto.Unmarshal keeps as an unknown
// field). Events nird writes take the fast path; an event of a type this binary does not
// know, the slow one. FuzzUnmarshalEvent holds the two to the same result.
func UnmarshalEvent(data []byte) (*Event, error) {
	ev := new(Event)
	if knownFields(data, eventShape(), 0) && ev.UnmarshalVT(data) == nil {
		return ev, nil
	}
	ev = new(Event)
	if err := proto.Unmarshal(data, ev); err != nil {
		return nil, err
	}
	return ev, nil
}

// EmptyEvent reports whether ev has no payload and no unknown fields. A payload of a kind
// this binary does not know (a newer nird's, in a rolling upgrade) leaves its bytes as
// unknown fields, and the read models count it as such; an event with neither was written
// by something other than nird, whose appends refuse an event without a payload, and is
// quarantined.
func EmptyEvent(ev *Event) bool {
	return ev.GetPayload() == nil && len(ev.ProtoReflect().GetUnknown()) == 0
}

// shape is what knownFields needs of a message type: its fields by number (a slice, as
// field numbers are small: a map look-up per field cost a quarter of the decoding).
type shape struct {
	fields []fieldShape
}

type fieldShape struct {
	known bool
	utf8  bool   // a string proto.Unmarshal checks
	msg   *shape // a message
}

// field returns the field numbered num, or one that is not known.
func (s *shape) field(num protowire.Number) fieldShape {
	if num < 0 || int64(num) >= int64(len(s.fields)) {
		return fieldShape{}
	}
	return s.fields[num]
}

var eventShape = sync.OnceValue(func() *shape {
	return shapeOf((&Event{}).ProtoReflect().Descriptor(), map[protoreflect.FullName]*shape{})
})

// shapeOf builds the shape of md and every message type it holds (seen ends recursion).
func shapeOf(md protoreflect.MessageDescriptor, seen map[protoreflect.FullName]*shape) *shape {
	if s, ok := seen[md.FullName()]; ok {
		return s
	}
	s := &shape{}
	seen[md.FullName()] = s
	fds := md.Fields()
	for i := range fds.Len() {
		if n := int(fds.Get(i).Number()); n >= len(s.fields) {
			s.fields = append(s.fields, make([]fieldShape, n+1-len(s.fields))...)
		}
	}
	for i := range fds.Len() {
		fd := fds.Get(i)
		f := fieldShape{known: true}
		switch {
		case fd.Kind() == protoreflect.StringKind && fd.ParentFile().Syntax() == protoreflect.Proto3:
			f.utf8 = true
		case fd.Kind() == protoreflect.MessageKind:
			f.msg = shapeOf(fd.Message(), seen)
		}
		s.fields[fd.Number()] = f
	}
	return s
}

// fastDepth bounds the nesting the fast path takes. Messages nest without end (an Event's
// PersonsMerged holds Events): UnmarshalVT has no limit, proto.Unmarshal refuses past 10 000
// levels. So the walk comes first, and deeper bytes, which nird never writes, go to
// proto.Unmarshal, which decides.
const fastDepth = 32

// knownFields reports whether the message encoded in data, at nesting depth, holds only
// fields its type knows, in every string field UTF-8, and nothing nested deeper than
// fastDepth; false also for an encoding it cannot walk (proto.Unmarshal decides).
func knownFields(data []byte, s *shape, depth int) bool {
	if depth > fastDepth {
		return false
	}
	for len(data) > 0 {
		// Tags and lengths below 128 are one byte: read without protowire's general varint.
		var num protowire.Number
		var typ protowire.Type
		if b := data[0]; b < 0x80 {
			num, typ, data = protowire.Number(b>>3), protowire.Type(b&7), data[1:]
		} else {
			var n int
			if num, typ, n = protowire.ConsumeTag(data); n < 0 {
				return false
			}
			data = data[n:]
		}
		f := s.field(num)
		if !f.known {
			return false
		}
		if typ == protowire.BytesType && (f.utf8 || f.msg != nil) {
			var v []byte
			if len(data) > 0 && data[0] < 0x80 && int(data[0]) < len(data) {
				v, data = data[1:1+data[0]], data[1+data[0]:]
			} else {
				m := 0
				if v, m = protowire.ConsumeBytes(data); m < 0 {
					return false
				}
				data = data[m:]
			}
			if f.utf8 && !utf8.Valid(v) || f.msg != nil && !knownFields(v, f.msg, depth+1) {
				return false
			}
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, data)
		if m < 0 {
			return false
		}
		data = data[m:]
	}
	return true
}
