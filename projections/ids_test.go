package projections

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestDB_EventPersons: the event-id index answers for every event applied, live in small
// batches and by a rebuild (which stores events undecoded), and knows nothing beyond its
// checkpoint.
func TestDB_EventPersons(t *testing.T) {
	t.Parallel()
	recs := population(7, 120, testKommuner)
	want := map[string]string{}
	var ids []string
	for _, r := range recs {
		want[r.Event.GetId()] = r.Event.GetPersonKey()
		ids = append(ids, r.Event.GetId())
	}
	unknown := []string{"01HZX3J5Q8RBN0M9T7W2K4C6D1", "not-a-ulid"}
	check := func(t *testing.T, lookup func([]string) (map[string]string, uint64, error), upTo uint64) {
		t.Helper()
		got, ckpt, err := lookup(append(ids, unknown...))
		if err != nil {
			t.Fatal(err)
		}
		if ckpt != upTo {
			t.Errorf("checkpoint %d, want %d", ckpt, upTo)
		}
		for _, r := range recs {
			id := r.Event.GetId()
			if pk, ok := got[id]; r.Seq <= upTo && pk != want[id] {
				t.Fatalf("event %s at seq %d: person %q (found %v), want %q", id, r.Seq, pk, ok, want[id])
			} else if r.Seq > upTo && ok {
				t.Fatalf("event %s at seq %d beyond the checkpoint %d is known", id, r.Seq, upTo)
			}
		}
		for _, id := range unknown {
			if _, ok := got[id]; ok {
				t.Errorf("unknown id %s found", id)
			}
		}
	}

	t.Run("Live", func(t *testing.T) {
		db := openTestDB(t, DBOptions{})
		half := len(recs) / 2
		applyAll(t, db, recs[:half], 7)
		check(t, db.EventPersons, recs[half-1].Seq)
		applyAll(t, db, recs[half:], 7)
		check(t, db.EventPersons, recs[len(recs)-1].Seq)
	})
	t.Run("Rebuild", func(t *testing.T) {
		p := newTestProjector(t, NewSliceFeed(recs))
		if err := p.Rebuild(bg, nil); err != nil {
			t.Fatal(err)
		}
		check(t, p.EventPersons, recs[len(recs)-1].Seq)
	})
}

// BenchmarkDB_EventPersons is the append path's look-up of a new event's id (a miss, as for
// every new event) and of a stored one (a hit), in the index of a population of 20 000 events.
func BenchmarkDB_EventPersons(b *testing.B) {
	recs := population(11, 2000, testKommuner)
	db := openTestDB(b, DBOptions{NoSync: true})
	applyAll(b, db, recs, 1000)
	miss := []string{"01JZX3J5Q8RBN0M9T7W2K4C6D1"}
	hit := []string{recs[len(recs)/2].Event.GetId()}
	b.Logf("%d events indexed", len(recs))
	for _, c := range []struct {
		name string
		ids  []string
	}{{"Miss", miss}, {"Hit", hit}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, _, err := db.EventPersons(c.ids); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// storedIDAgrees fails unless storedID gives the id proto.Unmarshal gives the event encoded
// in data, whenever it decodes: the index a rebuild writes from the stored encodings must be
// the one of the events it folds.
func storedIDAgrees(t *testing.T, data []byte) {
	t.Helper()
	ev := new(nirv1.Event)
	if proto.Unmarshal(data, ev) != nil {
		return // quarantined by the fold, and its entry taken out (TestProjector_Quarantine)
	}
	if got := storedID(data); string(got) != ev.GetId() {
		t.Fatalf("storedID(%x) = %q, proto.Unmarshal's id %q", data, got, ev.GetId())
	}
}

// TestStoredID: storedID reads an event's id as proto.Unmarshal does: from encodings as nird
// writes them, and from ones damaged or built otherwise (the id given twice, the last
// winning; field 1 of another wire type, an unknown field; the id after the payload; bytes
// flipped and cut).
func TestStoredID(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	for _, rec := range population(7, 40, testKommuner) {
		raw, err := proto.Marshal(rec.Event)
		if err != nil {
			t.Fatal(err)
		}
		storedIDAgrees(t, raw)
		if string(storedID(raw)) != rec.Event.GetId() || rec.Event.GetId() == "" {
			t.Fatalf("storedID of event %s = %q", rec.Event.GetId(), storedID(raw))
		}
		twice := protowire.AppendString(protowire.AppendTag(slices.Clone(raw), 1, protowire.BytesType), "01J0000000000000000000000Z")
		storedIDAgrees(t, twice)
		if string(storedID(twice)) != "01J0000000000000000000000Z" {
			t.Fatalf("the id given twice: storedID = %q, want the last", storedID(twice))
		}
		storedIDAgrees(t, protowire.AppendVarint(protowire.AppendTag(slices.Clone(raw), 1, protowire.VarintType), 7))
		storedIDAgrees(t, protowire.AppendBytes(protowire.AppendTag(slices.Clone(raw), 1, protowire.BytesType), []byte{0xff, 0xfe}))
		for range 20 {
			b := slices.Clone(raw)
			switch r.IntN(3) {
			case 0:
				b[r.IntN(len(b))] ^= byte(1 << r.IntN(8))
			case 1:
				b = b[:r.IntN(len(b))]
			case 2:
				b = append(b[:r.IntN(len(b))], b[r.IntN(len(b)):]...)
			}
			storedIDAgrees(t, b)
		}
	}
}

// FuzzStoredID: storedID agrees with proto.Unmarshal on any bytes.
func FuzzStoredID(f *testing.F) {
	for _, rec := range population(7, 5, testKommuner) {
		raw, _ := proto.Marshal(rec.Event)
		f.Add(raw)
	}
	f.Add([]byte{0x0a, 0x01, 'x', 0x08, 0x01, 0x0a, 0x01, 'y'})
	f.Fuzz(func(t *testing.T, data []byte) { storedIDAgrees(t, data) })
}

// TestIDBlocks: the event-id index in blocks (ids.go) answers as a map from each id to its
// lowest sequence would, whatever order the ids come in: in batches and one by one, earlier
// than every id before and between two blocks, given twice, changed and taken out (as
// unindex does), in blocks of 1, 2, 3 and the default entries. Every block holds sorted
// entries of its own range, at most idsPerBlock, under its first key; and the dump equals
// that of the same entries written in one go, and written by a rebuild (idCollector).
func TestIDBlocks(t *testing.T) {
	defer func(n int) { idsPerBlock = n }(idsPerBlock)
	for _, per := range []int{1, 2, 3, 80} {
		idsPerBlock = per
		r := rand.New(rand.NewPCG(uint64(per), 5))
		db := openTestDB(t, DBOptions{NoSync: true})
		want := map[string]uint64{} // idKey → sequence
		var known []string
		newKey := func() []byte {
			if r.IntN(20) == 0 {
				return idKey(fmt.Sprintf("not-a-ulid-%d", r.Uint64()))
			}
			var k [16]byte
			// a few milliseconds' ids, so that many share their first bytes
			binary.BigEndian.PutUint64(k[:8], uint64(1_700_000_000_000+r.IntN(40))<<16|uint64(r.IntN(1<<16)))
			binary.BigEndian.PutUint64(k[8:], r.Uint64())
			return k[:]
		}
		update := func(fn func(tx *bolt.Tx) error) {
			t.Helper()
			if err := db.update(fn); err != nil {
				t.Fatal(err)
			}
		}
		for round := range 400 {
			switch op := r.IntN(10); {
			case op < 6 || len(known) == 0:
				var batch []idEntry
				for range 1 + r.IntN(3*per+2) {
					e := idEntry{key: newKey(), seq: 1 + r.Uint64N(1e6)}
					if len(known) > 0 && r.IntN(4) == 0 {
						e.key = []byte(known[r.IntN(len(known))]) // given again
					}
					batch = append(batch, e)
					if s, ok := want[string(e.key)]; !ok || e.seq < s {
						if !ok {
							known = append(known, string(e.key))
						}
						want[string(e.key)] = e.seq
					}
				}
				update(func(tx *bolt.Tx) error { return putIDs(tx, batch) })
			case op < 8:
				i := r.IntN(len(known))
				k := known[i]
				known = slices.Delete(known, i, i+1)
				delete(want, k)
				update(func(tx *bolt.Tx) error { return setID(bucket(tx, bucketIDs), []byte(k), 0, true) })
			default:
				k := known[r.IntN(len(known))]
				want[k] = 1 + r.Uint64N(1e6)
				update(func(tx *bolt.Tx) error { return setID(bucket(tx, bucketIDs), []byte(k), want[k], false) })
			}
			if round%25 != 24 {
				continue
			}
			if err := db.view(func(tx *bolt.Tx) error {
				b := bucket(tx, bucketIDs)
				for k, s := range want {
					if got, ok := lookupID(b, []byte(k)); !ok || got != s {
						t.Fatalf("blocks of %d, round %d: id %x at %d (found %v), want %d", per, round, k, got, ok, s)
					}
				}
				for range 50 {
					if k := newKey(); want[string(k)] == 0 {
						if got, ok := lookupID(b, k); ok {
							t.Fatalf("blocks of %d: id %x never indexed found at %d", per, k, got)
						}
					}
				}
				checkIDBlocks(t, b, per)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		// The same entries in one go, and as a rebuild writes them.
		var all []idEntry
		var batch idBatch
		for k, s := range want {
			all = append(all, idEntry{key: []byte(k), seq: s})
			if isULIDKey([]byte(k)) {
				batch.ulids = append(batch.ulids, ulidEntry{key: [16]byte([]byte(k)), seq: s})
			} else {
				batch.other = append(batch.other, idEntry{key: []byte(k), seq: s})
			}
		}
		once := openTestDB(t, DBOptions{NoSync: true})
		if err := once.update(func(tx *bolt.Tx) error { return putIDs(tx, all) }); err != nil {
			t.Fatal(err)
		}
		rebuilt := openTestDB(t, DBOptions{NoSync: true})
		var c idCollector
		c.add(batch)
		for more := true; more; {
			var err error
			if more, err = c.writeStep(rebuilt); err != nil {
				t.Fatal(err)
			}
		}
		got := dump(t, db)
		if !strings.Contains(got, "bucket ids\n") || strings.Count(got, "\n") < len(want) {
			t.Fatalf("blocks of %d: the dump does not list the %d entries", per, len(want))
		}
		if d := dump(t, once); d != got {
			t.Fatalf("blocks of %d: the index written in rounds dumps otherwise than written in one go", per)
		}
		if d := dump(t, rebuilt); d != got {
			t.Fatalf("blocks of %d: the index written in rounds dumps otherwise than written by a rebuild", per)
		}
	}
}

// checkIDBlocks fails unless every block of the event-id index holds 1 to per entries,
// sorted, beginning with its key, and after every entry of the block before it.
func checkIDBlocks(t *testing.T, b bkt, per int) {
	t.Helper()
	var last []byte
	c := b.Cursor()
	for k, v := c.First(); k != nil && isULIDKey(k); k, v = c.Next() {
		blk := idBlock(v)
		if len(v)%idEntrySize != 0 || blk.len() < 1 || blk.len() > per {
			t.Fatalf("block %x of %d bytes (at most %d entries of %d)", k, len(v), per, idEntrySize)
		}
		if !bytes.Equal(blk.key(0), k) {
			t.Fatalf("block %x begins with %x", k, blk.key(0))
		}
		for i := range blk.len() {
			if last != nil && bytes.Compare(last, blk.key(i)) >= 0 {
				t.Fatalf("block %x: entry %x after %x", k, blk.key(i), last)
			}
			last = blk.key(i)
		}
	}
}

// BenchmarkPutIDs is catching up's share of the event-id index: a transaction that indexes a
// batch of 64 new ids (later than every id before, as new events' ids are) in an index of
// 100 000, in blocks of 40, 80 (idsPerBlock) and 160 entries, and with a key per entry as
// before schema 15 (perKey: a bucket of its own, a checked Get and a Put per id). ns/op is
// per batch.
func BenchmarkPutIDs(b *testing.B) {
	defer func(n int) { idsPerBlock = n }(idsPerBlock)
	perKey := func(tx *bolt.Tx, es []idEntry) error {
		raw, err := tx.CreateBucketIfNotExists([]byte("ids-per-key"))
		if err != nil {
			return err
		}
		kb := bkt{b: raw, name: []byte("ids-per-key")}
		for _, e := range es {
			if v := kb.Get(e.key); v != nil {
				continue
			}
			if err := kb.Put(e.key, binary.AppendUvarint(nil, e.seq)); err != nil {
				return err
			}
		}
		return nil
	}
	for _, per := range []int{0, 40, 80, 160} {
		name, put := fmt.Sprintf("blocks=%d", per), putIDs
		if per == 0 {
			name, put = "perKey", perKey
		}
		b.Run(name, func(b *testing.B) {
			idsPerBlock = max(per, 1)
			db := openTestDB(b, DBOptions{NoSync: true})
			ms, seq := uint64(1_700_000_000_000), uint64(0)
			batch := func() []idEntry {
				out := make([]idEntry, 64)
				for i := range out {
					var k [16]byte
					seq++
					binary.BigEndian.PutUint64(k[:8], ms<<16|seq&0xffff)
					binary.BigEndian.PutUint64(k[8:], seq*0x9e3779b97f4a7c15)
					out[i] = idEntry{key: k[:], seq: seq}
					ms++
				}
				return out
			}
			for range 100_000 / 64 {
				es := batch()
				if err := db.update(func(tx *bolt.Tx) error { return put(tx, es) }); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				es := batch()
				if err := db.update(func(tx *bolt.Tx) error { return put(tx, es) }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
