// Package prototest holds test helpers for the nir.v1 schema, shared by the tests of
// internal/api and internal/regfile: messages with every field set, to check that the
// largest valid requests and files are read.
package prototest

import (
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Text is what Fill puts in every string: 518 bytes (nird stores free text of at most 500)
// of Norwegian text, with multi-byte letters, quotes, commas and backslashes, which JSON and
// CSV escape.
var Text = strings.Repeat("Flytta til Bodø, «sak» \"x\" \\ ", 16) + "slutt."

// Fill sets every field of m, nested messages down to depth: variant picks each oneof's
// member and each enum's value (never the unspecified one); a list gets two entries, a
// Timestamp now, a date or a month a valid one, a string Text.
func Fill(m protoreflect.Message, variant, depth int) {
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if o := fd.ContainingOneof(); o != nil && !o.IsSynthetic() && o.Fields().Get(variant%o.Fields().Len()) != fd {
			continue
		}
		switch {
		case fd.IsMap(), fd.Message() != nil && depth == 0:
		case fd.IsList():
			l := m.Mutable(fd).List()
			for range 2 {
				e := l.NewElement()
				if fd.Message() != nil {
					Fill(e.Message(), variant, depth-1)
				} else {
					e = scalar(fd, variant)
				}
				l.Append(e)
			}
		case fd.Message() != nil && fd.Message().FullName() == "google.protobuf.Timestamp":
			m.Set(fd, protoreflect.ValueOfMessage(timestamppb.Now().ProtoReflect()))
		case fd.Message() != nil:
			Fill(m.Mutable(fd).Message(), variant, depth-1)
		default:
			m.Set(fd, scalar(fd, variant))
		}
	}
}

// scalar is Fill's value of a field fd that is not a message.
func scalar(fd protoreflect.FieldDescriptor, variant int) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(true)
	case protoreflect.EnumKind:
		vs := fd.Enum().Values()
		return protoreflect.ValueOfEnum(vs.Get(1 + variant%(vs.Len()-1)).Number())
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(12) // a valid year, month and day too
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(1 << 40)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(12)
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(1 << 40)
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(7.5)
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(37.5)
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes([]byte("\x00\xffæøå"))
	default:
		return protoreflect.ValueOfString(Text)
	}
}

// MarshalOptions are the ways a client may write JSON with protojson: JSON or schema names,
// enums by name or number, unset fields left out or written (as defaults and null).
func MarshalOptions() []protojson.MarshalOptions {
	var out []protojson.MarshalOptions
	for i := range 8 {
		out = append(out, protojson.MarshalOptions{UseProtoNames: i&1 != 0, UseEnumNumbers: i&2 != 0, EmitUnpopulated: i&4 != 0})
	}
	return out
}
