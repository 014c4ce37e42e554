package projections

import (
	"math"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestRecordedAfter: reading recorded_at alone from an event's encoding gives what decoding
// the whole event gives, also when the field is absent, repeated (merged), or has negative or
// out-of-range nanoseconds, and when other fields come after it.
func TestRecordedAfter(t *testing.T) {
	cut := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	ts := func(sec int64, nanos int32) *timestamppb.Timestamp {
		return &timestamppb.Timestamp{Seconds: sec, Nanos: nanos}
	}
	base := func(rec *timestamppb.Timestamp) []byte {
		b, err := proto.Marshal(&nirv1.Event{Id: "01J0000000000000000000000A", PersonKey: "ab", Kommune: "0301", RecordedAt: rec,
			Payload: &nirv1.Event_DemandRegistered{DemandRegistered: &nirv1.DemandRegistered{Programme: nirv1.Programme_PROGRAMME_INTRO}}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// field appends recorded_at once more, with only the given Timestamp fields.
	field := func(b []byte, sec *int64, nanos *int32) []byte {
		var m []byte
		if sec != nil {
			m = protowire.AppendTag(m, 1, protowire.VarintType)
			m = protowire.AppendVarint(m, uint64(*sec))
		}
		if nanos != nil {
			m = protowire.AppendTag(m, 2, protowire.VarintType)
			m = protowire.AppendVarint(m, uint64(int64(*nanos)))
		}
		b = protowire.AppendTag(b, recordedAtField, protowire.BytesType)
		return protowire.AppendBytes(b, m)
	}
	i64 := func(v int64) *int64 { return &v }
	i32 := func(v int32) *int32 { return &v }
	s := cut.Unix()
	cases := map[string][]byte{
		"none":                base(nil),
		"before":              base(ts(s-1, 0)),
		"at":                  base(ts(s, 0)),
		"a nanosecond after":  base(ts(s, 1)),
		"after":               base(ts(s+3600, 0)),
		"negative nanos":      base(ts(s+1, -999999999)),
		"nanos out of range":  base(ts(s-1, math.MaxInt32)),
		"merged: later secs":  field(base(ts(s-10, 5)), i64(s+10), nil),
		"merged: later nanos": field(base(ts(s, 0)), nil, i32(7)),
		"merged: both again":  field(field(base(ts(s+10, 0)), i64(s-10), nil), nil, i32(3)),
		"merged: empty again": field(base(ts(s+10, 0)), nil, nil),
	}
	for name, b := range cases {
		ev := new(nirv1.Event)
		if err := proto.Unmarshal(b, ev); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := ev.GetRecordedAt().AsTime().After(cut)
		if got := recordedAfter(b, cut); got != want {
			t.Errorf("%s: recordedAfter = %v, decoding says %v (recorded_at %v)", name, got, want, ev.GetRecordedAt().AsTime())
		}
	}
}
