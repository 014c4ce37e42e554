package projections

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

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

// TestCopyAttested_DamagedBlock: a rebuild's copy reads the live file's blocks in short read
// transactions (copyViewBlocks blocks each) while its writer stores what it has read. Damage
// it meets in a block past its first transactions ends the copy with ErrCorrupt (on which a
// rebuild reads the whole stream), and nothing from that block on is stored.
func TestCopyAttested_DamagedBlock(t *testing.T) {
	recs := population(9, 300, testKommuner)
	const damagedBlock = 2*copyViewBlocks + 3
	if n := uint64(len(recs)); n < (damagedBlock+2)*eventsPerBlock {
		t.Fatalf("the population has %d events: too few for block %d", n, damagedBlock)
	}
	for _, damage := range []struct {
		name string
		f    func(block []byte) []byte
	}{
		// The first entry's first byte of data, its checksum left as it was.
		{"checksum", func(b []byte) []byte {
			_, n := binary.Uvarint(b)
			_, m := binary.Uvarint(b[n:])
			b[n+m] ^= 0x5a
			return b
		}},
		// A length that runs past the block's end.
		{"undecodable", func(b []byte) []byte {
			return append(binary.AppendUvarint(nil, damagedBlock*eventsPerBlock), 0xff, 0x7f)
		}},
	} {
		t.Run(damage.name, func(t *testing.T) {
			src := openTestDB(t, DBOptions{})
			applyAll(t, src, recs, 500)
			var key [8]byte
			binary.BigEndian.PutUint64(key[:], damagedBlock)
			if err := src.bolt.Update(func(tx *bolt.Tx) error {
				b := tx.Bucket(bucketEvents)
				return b.Put(key[:], damage.f(append([]byte(nil), b.Get(key[:])...)))
			}); err != nil {
				t.Fatal(err)
			}
			dst := openTestDB(t, DBOptions{})
			var reported uint64
			_, _, err := copyAttested(bg, newTrustingFeed(recs), src, dst, 0, time.Time{}, func(done, _ uint64) { reported = max(reported, done) })
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("copy over a damaged block: %v, want ErrCorrupt", err)
			}
			if reported >= damagedBlock*eventsPerBlock {
				t.Errorf("the copy stored events through seq %d, at or past the damaged block's first (%d)", reported, damagedBlock*eventsPerBlock)
			}
		})
	}
}
