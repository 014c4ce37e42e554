package projections

import (
	"fmt"
	"testing"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestProjector_RetractionOfALaterID: a stream may hold a retraction of an id that only a
// later event of the person brings (Check refuses it; an older nird, a load or a hostile
// writer of the stream need not have asked). Catching up in batches that split the stream
// anywhere and a rebuild build the same file: the retraction retracts nothing. Before the
// fix, a batch holding both the retraction and the later event retracted it (one re-fold
// at the end, rules.State.ApplyAll) and a batch boundary between them did not.
func TestProjector_RetractionOfALaterID(t *testing.T) {
	const pk = "pk-forward"
	s := &scenario{}
	s.person(pk, "0301", "2024-01-10", asyl, 1)
	s.tildeling(pk, "0301", "2024-02-01")
	later := fmt.Sprintf("01TEST%020d", s.n+2) // the id of the event after the retraction
	s.add(pk, "0301", "2024-03-01", &nirv1.EventRetracted{EventId: later})
	if id := s.add(pk, "0301", "2024-03-02", &nirv1.TiltakRegistered{Code: nirv1.TiltakCode_TILTAK_CODE_NORSK_SAMFUNNSKUNNSKAP,
		FromDate: pd("2024-03-02"), ToDate: pd("2024-06-30"), HoursPerWeek: 20}); id != later {
		t.Fatalf("the later event's id is %s, want %s", id, later)
	}
	var dumps []string
	var p *Projector
	batches := []int{1, 3, len(s.recs)}
	for _, batch := range batches {
		p, _ = newLogged(t, s.recs, Options{Dir: t.TempDir(), BatchSize: batch})
		if _, err := p.CatchUp(bg); err != nil {
			t.Fatal(err)
		}
		dumps = append(dumps, liveDump(t, p))
		if err := p.Rebuild(bg, nil); err != nil {
			t.Fatal(err)
		}
		if rebuilt := liveDump(t, p); rebuilt != dumps[len(dumps)-1] {
			t.Errorf("batches of %d: a rebuild differs from catching up", batch)
		}
	}
	for i, d := range dumps[1:] {
		if d != dumps[0] {
			t.Errorf("catching up in batches of %d differs from one by one", batches[i+1])
		}
	}
	if err := p.Use("", func(db *DB) error {
		h, err := db.History(pk)
		if err == nil && !h[len(h)-1].Effective {
			t.Error("the later event is not effective: a retraction before it retracted it")
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}
