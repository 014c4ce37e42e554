package projections

import (
	"testing"

	"github.com/introreg/nir/internal/foldcount"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// retractionPairs is person pk registered in Oslo and n absences, each retracted by the
// next event: a history any kommune can store for its own person (rules' retractionPairs).
func retractionPairs(pk string, n int) []Record {
	s := &scenario{}
	s.person(pk, "0301", "2024-01-10", asyl, 1)
	for range n {
		abs := s.add(pk, "0301", "2024-03-01", &nirv1.AbsenceRegistered{Programme: nirv1.Programme_PROGRAMME_OPPLAERING,
			Type: nirv1.AbsenceType_ABSENCE_TYPE_PERMISJON_FODSEL_ADOPSJON, FromDate: pd("2024-03-01"), ToDate: pd("2024-03-31")})
		s.add(pk, "0301", "2024-03-02", &nirv1.EventRetracted{EventId: abs})
	}
	return s.recs
}

// TestProjector_FoldLinearInRetractions: every fold of a person's whole history in the read
// models (catching up in one batch, History, the retention scan, a rebuild) folds each event
// a bounded number of times however many retractions the history holds
// (rules.State.ApplyAll), where folding it with Apply one event at a time re-folds the log
// at every retraction (foldcount.Linear). A kommune could otherwise make every read of its
// own person slow (helper-121's audit).
// Not parallel: the fault hook is the rules package's, for every fold in the process.
func TestProjector_FoldLinearInRetractions(t *testing.T) {
	const pk = "pk-retracting"
	recs := retractionPairs(pk, 400)
	p, _ := newLogged(t, recs, Options{Dir: t.TempDir(), BatchSize: len(recs)})
	use := func(fn func(db *DB) error) func() error { return func() error { return p.Use("", fn) } }
	due := rules.MustDate(2030, 1, 1)
	foldcount.Linear(t, pk, len(recs),
		foldcount.Op{Name: "CatchUp", Run: func() error { _, err := p.CatchUp(bg); return err }},
		foldcount.Op{Name: "History", Run: use(func(db *DB) error { _, err := db.History(pk); return err })},
		foldcount.Op{Name: "ErasureDue", Run: use(func(db *DB) error { _, _, err := db.ErasureDue(1, due); return err })},
		foldcount.Op{Name: "PersonErasureDue", Run: use(func(db *DB) error { _, _, err := db.PersonErasureDue(1, due, pk); return err })},
		foldcount.Op{Name: "Rebuild", Run: func() error { return p.Rebuild(bg, nil) }},
	)
	if err := p.Use("", func(db *DB) error {
		h, err := db.History(pk)
		if err == nil && (len(h) != len(recs) || h[1].Effective) {
			t.Errorf("history of %d entries (want %d), the first absence effective: %v", len(h), len(recs), h[1].Effective)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}
