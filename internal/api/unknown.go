package api

// Unknown fields: protobuf keeps fields it does not know through decoding and cloning, and
// JSON names them; the register stores and answers only what it has validated, so a request
// that holds any is refused while it is decoded (Unmarshal), whichever way it came, naming
// where with a FieldViolation (unknownfield.go). The console builds its requests itself.

import (
	"fmt"
	"sync"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// unknownField returns where in m the first message that holds fields the schema does not
// define is, as unknownFieldsError names it, and whether there is one. Binary protobuf keeps
// unknown fields through decoding and cloning, so without this check a client could store
// bytes no validation has seen (a national id among them) in the immutable stream.
func unknownField(m protoreflect.Message) (string, bool) {
	p, ok := findUnknown(m)
	return fieldPath(p), ok
}

// fieldPath is the path findUnknown returns as a FieldViolation's field: below the request
// as every field the API names ("registrations[0].event"), or "request" for the request
// itself.
func fieldPath(p string) string {
	if p == "" {
		return "request"
	}
	return p[1:]
}

// findUnknown reports whether m holds unknown fields, and where below m. The path is built
// only on the way back from a find, so a clean message (every valid request) costs no
// allocation per field; only the fields that hold messages are visited, and of a oneof only
// the one that is set.
func findUnknown(m protoreflect.Message) (string, bool) {
	if len(m.GetUnknown()) > 0 {
		return "", true
	}
	sh := shapeOf(m.Descriptor())
	for _, od := range sh.oneofs {
		if fd := m.WhichOneof(od); fd != nil && fd.Message() != nil {
			if p, ok := findUnknown(m.Get(fd).Message()); ok {
				return "." + string(fd.Name()) + p, true
			}
		}
	}
	for _, fd := range sh.fields {
		if !m.Has(fd) {
			continue
		}
		v := m.Get(fd)
		switch {
		case fd.IsMap():
			var at string
			found := false
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				if p, ok := findUnknown(mv.Message()); ok {
					found, at = true, "."+string(fd.Name())+"[…]"+p
				}
				return !found
			})
			if found {
				return at, true
			}
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				if p, ok := findUnknown(l.Get(i).Message()); ok {
					return fmt.Sprintf(".%s[%d]%s", fd.Name(), i, p), true
				}
			}
		default:
			if p, ok := findUnknown(v.Message()); ok {
				return "." + string(fd.Name()) + p, true
			}
		}
	}
	return "", false
}

// messageShape is where unknown fields can hide below a message of one type: its fields
// that hold messages (singular, list or map values) outside a oneof, and its oneofs.
type messageShape struct {
	fields []protoreflect.FieldDescriptor
	oneofs []protoreflect.OneofDescriptor
}

var shapes sync.Map // protoreflect.MessageDescriptor → *messageShape

func shapeOf(md protoreflect.MessageDescriptor) *messageShape {
	if v, ok := shapes.Load(md); ok {
		return v.(*messageShape)
	}
	sh := &messageShape{}
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		switch {
		case fd.ContainingOneof() != nil && !fd.ContainingOneof().IsSynthetic():
			// visited through its oneof
		case fd.IsMap():
			if fd.MapValue().Message() != nil {
				sh.fields = append(sh.fields, fd)
			}
		case fd.Message() != nil:
			sh.fields = append(sh.fields, fd)
		}
	}
	oneofs := md.Oneofs()
	for i := 0; i < oneofs.Len(); i++ {
		if od := oneofs.Get(i); !od.IsSynthetic() {
			sh.oneofs = append(sh.oneofs, od)
		}
	}
	shapes.Store(md, sh)
	return sh
}
