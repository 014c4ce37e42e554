package projections

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// modelDump is Dump of the models alone: the buckets derived from the persons' states, not
// the stored events, their index or the quarantine. Of the access records (persons) only the
// person list's kommune counts here: the rest follows the person's log, not its effective
// events: the last sequence is where the stored events end, faulted ones included, and the
// reach counts the registrations the log holds, a faulted one too (rules.ReachOf, as
// access.Scope.Relation: the kommune that wrote a registration may write it again), so a
// subject whose every event faulted has a record.
func modelDump(t *testing.T, db *DB) string {
	t.Helper()
	var b strings.Builder
	err := db.view(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketPersons, bucketList, bucketStats, bucketTerminated, bucketDue} {
			fmt.Fprintf(&b, "bucket %s\n", name)
			if err := bucket(tx, name).ForEach(func(k, v []byte) error {
				if string(name) == string(bucketPersons) {
					var a PersonAccess
					if err := a.decode(v); err != nil {
						return err
					}
					if a.Kommune == "" {
						return nil
					}
					v = []byte(a.Kommune)
				}
				fmt.Fprintf(&b, "%x %x\n", k, v)
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestProjector_FoldFault: an event the rules panic on (rules.SetFaultForTest; no real input
// does) stops nothing. Catching up, in batches that split the stream anywhere, goes on past
// it; its sequence is quarantined as QuarantineFoldFault, counted in Stats and listed in
// Status; every model is what folding the stream without it gives, the other persons' as
// well; and a rebuild and an as-of replay quarantine the same and build the same file.
// Not parallel: the fault hook is the rules package's, for every fold in the process.
func TestProjector_FoldFault(t *testing.T) {
	recs := population(31, 60, testKommuner)
	faulty := map[string]bool{}
	for i, r := range recs {
		if i%13 == 6 {
			faulty[r.Event.GetId()] = true
		}
	}
	t.Cleanup(rules.SetFaultForTest(func(ev *nirv1.Event) bool { return faulty[ev.GetId()] }))

	// What the rules leave out: the faulty events the log does not retract, and any event
	// whose fold folds one (a merge copying it).
	states := map[string]*rules.State{}
	var want []Quarantine
	left := map[uint64]bool{}
	for _, r := range recs {
		pk := r.Event.GetPersonKey()
		if states[pk] == nil {
			states[pk] = rules.NewState(pk)
		}
		states[pk].Apply(r.Seq, r.Event)
	}
	for _, st := range states {
		for _, f := range st.Faults {
			want = append(want, Quarantine{Seq: f.Seq, Reason: QuarantineFoldFault})
			left[f.Seq] = true
		}
	}
	slices.SortFunc(want, func(a, b Quarantine) int { return int(a.Seq) - int(b.Seq) })
	if len(want) < 5 {
		t.Fatalf("the rules faulted %d events of the %d chosen", len(want), len(faulty))
	}
	var without []Record
	for _, r := range recs {
		if !left[r.Seq] {
			without = append(without, r)
		}
	}
	ref := openTestDB(t, DBOptions{})
	applyAll(t, ref, without, len(without)+1)
	wantModels := modelDump(t, ref)

	for _, batch := range []int{1, 7, 5000} {
		p, log := newLogged(t, recs, Options{Dir: t.TempDir(), BatchSize: batch})
		if _, err := p.CatchUp(bg); err != nil {
			t.Fatalf("catch-up in batches of %d over a fold fault: %v", batch, err)
		}
		st, err := p.Status(bg)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(st.Quarantined, want) || st.QuarantinedTotal != uint64(len(want)) || p.Stats().Quarantined != uint64(len(want)) {
			t.Fatalf("batch %d: quarantined %v (total %d, stats %d), want %v", batch, st.Quarantined, st.QuarantinedTotal, p.Stats().Quarantined, want)
		}
		if st.Lag != 0 {
			t.Fatalf("batch %d: lag %d after catch-up", batch, st.Lag)
		}
		// Each fault is logged once, by sequence and the panic's type; so is an event that
		// a later retraction's re-fold folds again (its quarantine entry removed).
		faults, again := strings.Count(log.String(), `panic=panic(rules.errFaultForTest)`), strings.Count(log.String(), "is folded again")
		if faults-again != len(want) || batch == 1 && again == 0 {
			t.Fatalf("batch %d: %d fold faults and %d folded again logged, want %d faults left and some folded again:\n%s", batch, faults, again, len(want), log.String())
		}
		// The quarantines added count those released again too: a quarantine and its
		// release between two scrapes must still show (the alert on the gauge missed them).
		// A new file's catch-up finds them again: none is new.
		if s := p.Stats(); s.QuarantinesFoundAgain != uint64(faults) || s.QuarantinesNew != 0 {
			t.Fatalf("batch %d: Stats() counts %d quarantines found again and %d new, want the %d fold faults logged found again", batch, s.QuarantinesFoundAgain, s.QuarantinesNew, faults)
		}
		if err := p.Use("", func(db *DB) error {
			if got := modelDump(t, db); got != wantModels {
				t.Errorf("batch %d: the models differ from folding the stream without the faulted events", batch)
			}
			// The faulted event stays in its person's history, not effective.
			for _, q := range want[:1] {
				pk := recs[q.Seq-1].Event.GetPersonKey()
				h, err := db.History(pk)
				if err != nil {
					return err
				}
				found := false
				for _, e := range h {
					if e.Seq == q.Seq {
						found = true
						if e.Effective {
							t.Errorf("batch %d: the faulted event at seq %d shows as effective", batch, q.Seq)
						}
					}
				}
				if !found {
					t.Errorf("batch %d: the faulted event at seq %d left its person's history", batch, q.Seq)
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		caught := liveDump(t, p)
		if err := p.Rebuild(bg, nil); err != nil {
			t.Fatalf("rebuild over a fold fault: %v", err)
		}
		if rebuilt := liveDump(t, p); rebuilt != caught {
			t.Fatalf("batch %d: a rebuild differs from catching up over a fold fault", batch)
		}
		if p.Stats().Quarantined != uint64(len(want)) {
			t.Fatalf("after rebuild Stats().Quarantined = %d, want %d", p.Stats().Quarantined, len(want))
		}
		db, err := p.AsOf(bg, AsOfOptions{RecordedUntil: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)})
		if err != nil {
			t.Fatalf("as-of replay over a fold fault: %v", err)
		}
		q, err := db.Quarantined(0)
		models := modelDump(t, db)
		db.Close()
		if err != nil || !slices.Equal(q, want) {
			t.Fatalf("as-of replay quarantined %v, %v; want %v", q, err, want)
		}
		if models != wantModels {
			t.Fatalf("batch %d: the as-of replay's models differ", batch)
		}
	}
}
