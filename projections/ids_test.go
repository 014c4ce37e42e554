package projections

import (
	"math/rand/v2"
	"slices"
	"testing"

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
