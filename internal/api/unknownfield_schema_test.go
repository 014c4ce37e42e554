package api

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/introreg/nir/internal/ingest"
	"github.com/introreg/nir/internal/prototest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// nirMessages returns every message type of the nir.v1 schema.
func nirMessages(t *testing.T) []protoreflect.MessageType {
	t.Helper()
	var out []protoreflect.MessageType
	protoregistry.GlobalTypes.RangeMessages(func(mt protoreflect.MessageType) bool {
		if mt.Descriptor().ParentFile().Package() == "nir.v1" {
			out = append(out, mt)
		}
		return true
	})
	if len(out) < 20 {
		t.Fatalf("%d nir.v1 message types found", len(out))
	}
	return out
}

// TestJSONUnknownField_AgreesWithProtojson: for every message of the schema, filled in every
// oneof member, written by protojson with every option a client may use (JSON or schema
// names, enums as names or numbers, unset fields emitted as defaults and null), and read back
// by protojson: jsonUnknownField finds no unknown key in it, and finds the key added to any
// of its objects, naming the path of the object it is in as protojson's own decoding does.
func TestJSONUnknownField_AgreesWithProtojson(t *testing.T) {
	for _, mt := range nirMessages(t) {
		md := mt.Descriptor()
		variants := 1
		for i := range md.Oneofs().Len() {
			variants = max(variants, md.Oneofs().Get(i).Fields().Len())
		}
		for v := range variants {
			for _, depth := range []int{0, 6} {
				m := mt.New()
				prototest.Fill(m, v, depth)
				for _, opt := range prototest.MarshalOptions() {
					b, err := opt.Marshal(m.Interface())
					if err != nil {
						t.Fatal(err)
					}
					name := fmt.Sprintf("%s/%d/%d/%+v", md.FullName(), v, depth, opt)
					if err := protojson.Unmarshal(b, mt.New().Interface()); err != nil {
						t.Fatalf("%s: protojson refuses its own output: %v", name, err)
					}
					if p, found := jsonUnknownField(b, md); found {
						t.Errorf("%s: jsonUnknownField names %q unknown in\n%s", name, p, b)
					}
					plantEverywhere(t, name, b, mt)
				}
			}
		}
	}
}

// plantEverywhere adds an unknown key to each object of the JSON b of a message of type mt in
// turn and checks that protojson refuses it as unknown and that jsonUnknownField names the
// object's path.
func plantEverywhere(t *testing.T, name string, b []byte, mt protoreflect.MessageType) {
	t.Helper()
	var root any
	if err := json.Unmarshal(b, &root); err != nil {
		t.Fatal(err)
	}
	var walk func(v any, md protoreflect.MessageDescriptor, path string)
	walk = func(v any, md protoreflect.MessageDescriptor, path string) {
		obj, ok := v.(map[string]any)
		if !ok || strings.HasPrefix(string(md.FullName()), "google.protobuf.") {
			return
		}
		obj["gjelderNyttFelt"] = 1
		planted, _ := json.Marshal(root)
		delete(obj, "gjelderNyttFelt")
		if err := protojson.Unmarshal(planted, mt.New().Interface()); err == nil || !strings.Contains(err.Error(), "unknown field") {
			t.Fatalf("%s at %q: protojson: %v", name, path, err)
		}
		want := fieldPath(path)
		if p, found := jsonUnknownField(planted, mt.Descriptor()); !found || p != want {
			t.Errorf("%s: a key planted at %q: found %v at %q", name, want, found, p)
		}
		for k, fv := range obj {
			fd := md.Fields().ByJSONName(k)
			if fd == nil {
				fd = md.Fields().ByTextName(k)
			}
			if fd == nil || fd.Message() == nil || fd.IsMap() {
				continue
			}
			if l, ok := fv.([]any); ok {
				for i, e := range l {
					walk(e, fd.Message(), fmt.Sprintf("%s.%s[%d]", path, fd.Name(), i))
				}
				continue
			}
			walk(fv, fd.Message(), path+"."+string(fd.Name()))
		}
	}
	walk(root, mt.Descriptor(), "")
}

// TestUnmarshal_LargestAppend: the largest append a client may send, ingest's most
// registrations each with every field of its payload set (the payloads in turn, long
// Norwegian text in every string), is read by Unmarshal in binary and in JSON written with
// every protojson option, within MaxRequestValues and as protojson reads it.
func TestUnmarshal_LargestAppend(t *testing.T) {
	req := &nirv1.AppendRequest{}
	for i := range ingest.DefaultMaxRegistrations {
		r := &nirv1.Registration{}
		prototest.Fill(r.ProtoReflect(), i, 6)
		// Set by nird alone, and refused from a client: a merge's copied events.
		if pm := r.GetEvent().GetPersonsMerged(); pm != nil {
			pm.AbsorbedEvents = nil
		}
		req.Registrations = append(req.Registrations, r)
	}
	b, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	if err := Unmarshal(b, false, &nirv1.AppendRequest{}); err != nil {
		t.Errorf("binary: %v", err)
	}
	for _, opt := range prototest.MarshalOptions() {
		b, err := opt.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		got := &nirv1.AppendRequest{}
		if err := Unmarshal(b, true, got); err != nil || !proto.Equal(got, req) {
			t.Errorf("JSON %+v: %v", opt, err)
		}
	}
}
