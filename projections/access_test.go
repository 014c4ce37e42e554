package projections

import (
	"fmt"
	"testing"

	"github.com/introreg/nir/rules"
)

// TestDB_AccessRecords: every subject the models fold has an access record that is the one
// its fold gives (last sequence, successor, erasure, who reaches it, the person list's
// kommune), whatever the batches, and it survives its encoding.
func TestDB_AccessRecords(t *testing.T) {
	t.Parallel()
	recs := population(5, 120, testKommuner)
	states := map[string]*rules.State{}
	for _, r := range recs {
		pk := r.Event.GetPersonKey()
		if states[pk] == nil {
			states[pk] = rules.NewState(pk)
		}
		states[pk].Apply(r.Seq, r.Event)
	}
	moved := 0
	for _, batch := range []int{1, 13, len(recs)} {
		db := openTestDB(t, DBOptions{})
		applyAll(t, db, recs, batch)
		for pk, st := range states {
			chain, err := db.AccessChain(pk, 4)
			if err != nil {
				t.Fatal(err)
			}
			got := chain[0]
			if ckpt := recs[len(recs)-1].Seq; got.Checkpoint != ckpt {
				t.Fatalf("batch %d: the access record of %s read at checkpoint %d, want %d (every event applied)", batch, pk, got.Checkpoint, ckpt)
			}
			want := PersonAccess{LastSeq: st.LastSeq, Successor: st.Successor(), Erased: st.Erased, Reach: rules.ReachOf(st)}
			if st.Registered && st.MergedInto == "" {
				want.Kommune = rules.KommuneNow(st.Kommune)
			}
			if !got.Found || got.Key != pk || fmt.Sprint(got.PersonAccess) != fmt.Sprint(want) {
				t.Fatalf("batch %d: the access record of %s: %+v, want %+v", batch, pk, got, want)
			}
			if len(want.Reach.Former) > 0 {
				moved++
			}
			if row, err := db.Person(pk); (err == nil) != (want.Kommune != "") || err == nil && row.Kommune != want.Kommune {
				t.Fatalf("batch %d: the row of %s: %v, %v; want kommune %q", batch, pk, row, err, want.Kommune)
			}
			// The chain and the row of the person it leads to, from one transaction.
			chain, row, err := db.AccessChainRow(pk, 4)
			end := chain[len(chain)-1]
			wantRow := end.Found && end.Successor == "" && end.Kommune != ""
			if err != nil || chain[0].Key != pk || (row != nil) != wantRow || row != nil && row.Kommune != end.Kommune {
				t.Fatalf("batch %d: AccessChainRow of %s: %+v, row %v, %v; want a row of the chain's end's kommune: %v", batch, pk, chain, row, err, wantRow)
			}
		}
		if chain, err := db.AccessChain("0000000000000000000000000000000000000000000000000000000000000000", 4); err != nil || len(chain) != 1 || chain[0].Found {
			t.Fatalf("the access chain of a subject nobody wrote: %+v, %v", chain, err)
		}
	}
	if moved == 0 {
		t.Fatal("the population moves nobody: the former kommuner are not tested")
	}
	// The encoding keeps every field, and a value cut short does not decode.
	a := PersonAccess{LastSeq: 1 << 40, Successor: "ab", Erased: true, Kommune: "0301", Reach: rules.Reach{Current: []string{"0301"}, Former: []string{"4601", "5001"}}}
	var b PersonAccess
	enc := a.encode()
	if err := b.decode(enc); err != nil || fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("decode(encode(%+v)) = %+v, %v", a, b, err)
	}
	for n := range enc {
		if err := b.decode(enc[:n]); err == nil {
			t.Fatalf("an access record cut to %d of %d bytes decodes", n, len(enc))
		}
	}
}

// BenchmarkAccessChain measures the lookup of a subject's access record before an append or
// a History of a kommune: with the models' checkpoint read in the same transaction
// (SubjectAccess.Checkpoint), for the freshness check.
func BenchmarkAccessChain(b *testing.B) {
	recs := population(5, 120, testKommuner)
	db := openTestDB(b, DBOptions{})
	applyAll(b, db, recs, len(recs))
	var keys []string
	for _, r := range recs {
		keys = append(keys, r.Event.GetPersonKey())
	}
	i := 0
	for b.Loop() {
		if _, err := db.AccessChain(keys[i%len(keys)], 4); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
