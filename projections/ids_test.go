package projections

import "testing"

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
