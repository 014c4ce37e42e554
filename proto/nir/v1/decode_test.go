package nirv1_test

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/introreg/nir/internal/demo"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// sameAsProto fails unless UnmarshalEvent gives for data what proto.Unmarshal gives: both an
// error, or equal events (unknown fields included). It reports whether data decoded.
func sameAsProto(t *testing.T, data []byte) bool {
	t.Helper()
	want := new(nirv1.Event)
	wantErr := proto.Unmarshal(data, want)
	got, err := nirv1.UnmarshalEvent(data)
	switch {
	case (err == nil) != (wantErr == nil):
		t.Fatalf("UnmarshalEvent(%x): error %v, proto.Unmarshal's %v", data, err, wantErr)
	case err != nil:
		if got != nil {
			t.Fatalf("UnmarshalEvent(%x) failed (%v) and returned an event", data, err)
		}
		return false
	case !proto.Equal(got, want):
		t.Fatalf("UnmarshalEvent(%x) = %v, proto.Unmarshal gives %v", data, got, want)
	}
	return true
}

// demoEncodings are the encodings of the demo generator's events: every payload type.
func demoEncodings(t testing.TB, persons int) [][]byte {
	var out [][]byte
	for evs := range demo.Generate(5, persons, rules.MustDate(2025, time.November, 20)) {
		for _, ev := range evs {
			raw, err := proto.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, raw)
		}
	}
	return out
}

// TestUnmarshalEvent: UnmarshalEvent decodes as proto.Unmarshal does the events nird writes,
// and bytes built to part the two: a string that is not UTF-8 at the top and deep inside a
// payload (proto.Unmarshal refuses it, UnmarshalVT alone would not), a known field of another
// wire type (an unknown field to proto.Unmarshal, refused by UnmarshalVT alone), fields given
// twice (the later scalar wins, messages merge), a second payload of another type (it
// replaces the first), unknown fields, and every cut of an encoding.
func TestUnmarshalEvent(t *testing.T) {
	raws := demoEncodings(t, 40)
	types := map[string]bool{}
	for _, raw := range raws {
		if !sameAsProto(t, raw) {
			t.Fatalf("an event nird wrote does not decode: %x", raw)
		}
		ev, _ := nirv1.UnmarshalEvent(raw)
		types[string(ev.ProtoReflect().WhichOneof(ev.ProtoReflect().Descriptor().Oneofs().ByName("payload")).Name())] = true
	}
	t.Logf("%d events, %d payload types", len(raws), len(types))
	if len(types) < 10 {
		t.Fatalf("the demo events hold only %d payload types: %v", len(types), types)
	}

	ev := &nirv1.Event{
		Id: "01J0000000000000000000000Z", PersonKey: "k", RecordedAt: timestamppb.New(time.Unix(1700000000, 5)),
		Payload: &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: "0301"}},
	}
	base, err := proto.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	// proto.Marshal refuses strings that are not UTF-8: such bytes come from elsewhere.
	spoiled := []byte(ev.GetId())
	spoiled[3] = 0xff
	badTop := bytes.Replace(base, []byte(ev.GetId()), spoiled, 1)
	badDeep := bytes.Replace(base, []byte("0301"), []byte("03\xc3\x01"), 1)
	if len(badTop) != len(base) || len(badDeep) != len(base) || bytes.Equal(badTop, base) || bytes.Equal(badDeep, base) {
		t.Fatal("the strings to spoil are not in the encoding")
	}
	moved := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte("0302")) // to_kommune
	cases := map[string]struct {
		data    []byte
		decodes bool
	}{
		"nird's":                           {base, true},
		"not UTF-8 at the top":             {badTop, false},
		"not UTF-8 in the payload":         {badDeep, false},
		"id of another wire type":          {protowire.AppendVarint(protowire.AppendTag(slices.Clone(base), 1, protowire.VarintType), 7), true},
		"id given twice":                   {protowire.AppendString(protowire.AppendTag(slices.Clone(base), 1, protowire.BytesType), "01J1"), true},
		"payload given twice, merged":      {appendPayload(slices.Clone(base), ev, moved), true},
		"recorded_at given twice, merged":  {protowire.AppendBytes(protowire.AppendTag(slices.Clone(base), recordedAtField(), protowire.BytesType), protowire.AppendVarint(protowire.AppendTag(nil, 2, protowire.VarintType), 9)), true},
		"a payload of another type":        {appendOther(slices.Clone(base)), true},
		"unknown fields":                   {protowire.AppendBytes(protowire.AppendTag(slices.Clone(base), 999, protowire.BytesType), []byte{0xff, 0x00}), true},
		"length past the end":              {append(protowire.AppendTag(slices.Clone(base), 1, protowire.BytesType), 5, 'x'), false},
		"a group":                          {protowire.AppendTag(protowire.AppendTag(slices.Clone(base), 998, protowire.StartGroupType), 998, protowire.EndGroupType), true},
		"a group end without its start":    {protowire.AppendTag(slices.Clone(base), 998, protowire.EndGroupType), false},
		"a string in an unknown field":     {protowire.AppendBytes(protowire.AppendTag(slices.Clone(base), 997, protowire.BytesType), []byte{0xc3}), true},
		"empty":                            {nil, true},
		"payload of the wrong wire type":   {protowire.AppendVarint(protowire.AppendTag(slices.Clone(base), payloadField(ev), protowire.VarintType), 1), true},
		"not UTF-8 given as an unknown id": {protowire.AppendFixed32(protowire.AppendTag(slices.Clone(badDeep), 1, protowire.Fixed32Type), 1), false},
	}
	// Events nested in PersonsMerged's absorbed events: past the fast path's depth, and past
	// proto.Unmarshal's limit of 10 000 levels, which it refuses.
	cases["nested 40 deep"] = struct {
		data    []byte
		decodes bool
	}{nested(40), true}
	cases["nested 10 001 deep"] = struct {
		data    []byte
		decodes bool
	}{nested(10001), false}
	for name, c := range cases {
		if got := sameAsProto(t, c.data); got != c.decodes {
			t.Errorf("%s: decodes %v, want %v", name, got, c.decodes)
		}
	}
	for _, raw := range raws[:50] {
		for i := range raw {
			sameAsProto(t, raw[:i])
		}
	}
}

func recordedAtField() protowire.Number {
	return (&nirv1.Event{}).ProtoReflect().Descriptor().Fields().ByName("recorded_at").Number()
}

func payloadField(ev *nirv1.Event) protowire.Number {
	m := ev.ProtoReflect()
	return m.WhichOneof(m.Descriptor().Oneofs().ByName("payload")).Number()
}

// appendPayload appends ev's payload field again, holding fields.
func appendPayload(b []byte, ev *nirv1.Event, fields []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(b, payloadField(ev), protowire.BytesType), fields)
}

// appendOther appends a payload of another type than PersonMoved.
func appendOther(b []byte) []byte {
	other, err := proto.Marshal(&nirv1.Event{Payload: &nirv1.Event_AbsenceRegistered{AbsenceRegistered: &nirv1.AbsenceRegistered{}}})
	if err != nil || len(other) == 0 {
		panic(fmt.Sprintf("%x, %v", other, err))
	}
	return append(b, other...)
}

// nested returns an event whose PersonsMerged payload absorbs an event that absorbs one, and
// so on, depth events in all.
func nested(depth int) []byte {
	payload := (&nirv1.Event{}).ProtoReflect().Descriptor().Fields().ByName("persons_merged").Number()
	absorbed := (&nirv1.PersonsMerged{}).ProtoReflect().Descriptor().Fields().ByName("absorbed_events").Number()
	ev := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "01J0000000000000000000000Z")
	for range depth - 1 {
		merged := protowire.AppendBytes(protowire.AppendTag(nil, absorbed, protowire.BytesType), ev)
		ev = protowire.AppendBytes(protowire.AppendTag(nil, payload, protowire.BytesType), merged)
	}
	return ev
}

// FuzzUnmarshalEvent: UnmarshalEvent and proto.Unmarshal agree on any bytes.
func FuzzUnmarshalEvent(f *testing.F) {
	for _, raw := range demoEncodings(f, 3) {
		f.Add(raw)
	}
	f.Add([]byte{0x0a, 0x01, 'x', 0x08, 0x01, 0x0a, 0x01, 'y'})
	f.Fuzz(func(t *testing.T, data []byte) { sameAsProto(t, data) })
}

// BenchmarkUnmarshalEvent decodes the demo generator's events (every payload type) with
// proto.Unmarshal and with UnmarshalEvent; ns/op is per event.
func BenchmarkUnmarshalEvent(b *testing.B) {
	raws := demoEncodings(b, 40)
	for _, c := range []struct {
		name   string
		decode func([]byte) error
	}{
		{"proto.Unmarshal", func(raw []byte) error { return proto.Unmarshal(raw, new(nirv1.Event)) }},
		{"UnmarshalEvent", func(raw []byte) error { _, err := nirv1.UnmarshalEvent(raw); return err }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := c.decode(raws[i%len(raws)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
