package projections

import (
	"io"
	"testing"
	"time"
)

// TestDB_ExportCSVSlowReader: a CSV export whose reader stops reading must not hold up the
// fold. bbolt remaps a growing file only once every read transaction has ended, and holds
// off new ones meanwhile; an export that streamed rows to its client inside its read
// transaction stalled the fold, and with it every query and the append path's id look-up,
// for as long as the client cared to wait (the HTTP write timeout: 2 minutes a request).
func TestDB_ExportCSVSlowReader(t *testing.T) {
	t.Parallel()
	recs := population(7, 3000, []string{"0301"})
	db := openTestDB(t, DBOptions{})
	cut := len(recs) / 5
	applyAll(t, db, recs[:cut], 500)

	pr, pw := io.Pipe()
	exported := make(chan error, 1)
	go func() {
		_, err := db.ExportCSV(pw, PersonQuery{Kommune: "0301"}, CSVOptions{})
		pw.CloseWithError(err)
		exported <- err
	}()
	// One byte read: the export is writing its first 64 KiB and waits for its reader.
	if _, err := io.ReadFull(pr, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	folded := make(chan error, 1)
	go func() {
		for i := cut; i < len(recs); i += 500 {
			if _, err := db.Apply(recs[i:min(i+500, len(recs))]); err != nil {
				folded <- err
				return
			}
		}
		_, err := db.ListPersons(PersonQuery{Kommune: "0301", PageSize: 10})
		folded <- err
	}()
	var stalled bool
	select {
	case err := <-folded:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		stalled = true
	}
	select {
	case err := <-exported:
		t.Fatalf("the export ended before its reader read: %v", err)
	default:
	}
	if _, err := io.Copy(io.Discard, pr); err != nil {
		t.Fatal(err)
	}
	if err := <-exported; err != nil {
		t.Fatal(err)
	}
	if stalled {
		<-folded
		t.Fatal("the fold and a query waited a minute for a CSV export's reader")
	}
}
