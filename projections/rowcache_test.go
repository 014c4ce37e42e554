package projections

import (
	"reflect"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestApply_ListBetweenCommitAndCache: a person list read after a commit became visible, and
// before the cached lists followed it, is the committed one. Found on 2026-12-07 (a CI run of
// TestDamage_KeyBlockCutErase read an erased person with its national id after the status
// showed the erasure folded): Apply bumped a kommune's list generation only after the commit,
// and a reader in between was served the list cached before it.
func TestApply_ListBetweenCommitAndCache(t *testing.T) {
	db := openTestDB(t, DBOptions{})
	recs := population(7, 60, testKommuner)
	half := len(recs) / 2
	applyAll(t, db, recs[:half], 50)
	for _, k := range testKommuner { // every list cached
		if _, err := db.kommuneRows(k); err != nil {
			t.Fatal(err)
		}
	}
	committed := func(k string) []PersonRow {
		var rows []PersonRow
		if err := db.view(func(tx *bolt.Tx) error {
			return scanKommune(tx, k, func(r *PersonRow) error { rows = append(rows, *r); return nil })
		}); err != nil {
			t.Fatal(err)
		}
		return rows
	}
	var stale []string
	checked := 0
	afterApplyCommit = func() {
		checked++
		for _, k := range testKommuner {
			got, err := db.kommuneRows(k)
			if err != nil {
				t.Error(err)
				return
			}
			if want := committed(k); !reflect.DeepEqual(got, want) {
				stale = append(stale, k)
			}
		}
	}
	defer func() { afterApplyCommit = nil }()
	applyAll(t, db, recs[half:], 50)
	if checked == 0 {
		t.Fatal("no commit was checked")
	}
	if len(stale) > 0 {
		t.Errorf("between a commit and the cache's update, the lists of %v were not the committed ones", stale)
	}
	// After: the patched cache is the committed list.
	afterApplyCommit = nil
	for _, k := range testKommuner {
		got, err := db.kommuneRows(k)
		if err != nil {
			t.Fatal(err)
		}
		if want := committed(k); !reflect.DeepEqual(got, want) {
			t.Errorf("after the commits, %s's cached list is not the committed one", k)
		}
	}
}
