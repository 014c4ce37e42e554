package projections

import (
	"path/filepath"
	"sync/atomic"
	"testing"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// TestApply_ErasureOfUnreadablePerson: a person folded into the file while its data key
// opened (the row holds the national id and birth date), whose key is damaged on disk by the
// time the file is opened again: a fold now reads the sealed fields as unreadable (DBOptions.
// Open). The erasure must still write the row: before, such a fold read them «slettet» and
// derived the same row as the erased one, Apply compared the new row with that refold, found
// no change and left the national id and birth date in the live person list (they went only
// at a rebuild).
func TestApply_ErasureOfUnreadablePerson(t *testing.T) {
	t.Parallel()
	var damaged atomic.Bool
	opt := DBOptions{Open: func(ev *nirv1.Event) error {
		if damaged.Load() {
			rules.UnreadableIdentity(ev) // as sealing reads a field whose key does not open
		}
		return nil
	}}
	path := filepath.Join(t.TempDir(), "models.db")
	db, err := Open(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	var s scenario
	const pk, other = "p-damaged", "p-other"
	s.person(pk, "0301", "2024-02-01", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, 1)
	s.person(other, "0301", "2024-02-01", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, 2)
	applyAll(t, db, s.recs, 10)
	if r, err := db.Person(pk); err != nil || r.NationalID == rules.ErasedText || r.BirthDate.IsZero() {
		t.Fatalf("before: %+v, %v; want the id and birth date", r, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	damaged.Store(true)
	db, err = Open(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// The row cache of the kommune's list is filled before the erasure.
	if _, err := db.ListPersons(PersonQuery{Kommune: "0301", PageSize: 10}); err != nil {
		t.Fatal(err)
	}
	n := len(s.recs)
	s.add(pk, "0301", "2026-12-01", &nirv1.PersonErased{Reason: "test"})
	if _, err := db.Apply(s.recs[n:]); err != nil {
		t.Fatal(err)
	}
	if r, err := db.Person(pk); err != nil || r.NationalID != rules.ErasedText || !r.BirthDate.IsZero() {
		t.Errorf("after the erasure: %+v, %v; want «slettet», no birth date", r, err)
	}
	page, err := db.ListPersons(PersonQuery{Kommune: "0301", PageSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range page.Rows {
		if erased := r.NationalID == rules.ErasedText; erased != (r.PersonKey == pk) || erased && !r.BirthDate.IsZero() {
			t.Errorf("the list after the erasure: %s reads %q born %v; want the erased person alone «slettet»", r.PersonKey, r.NationalID, r.BirthDate)
		}
	}
}
