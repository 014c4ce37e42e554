package projections

import (
	"crypto/sha256"
	"fmt"
	"testing"
)

// TestModels_StreamBeforeIdentity: a stream written before ids could be added and persons
// merged (issue 12, DOMAIN.md Product decisions 15) needs no migration: it holds no claim, no
// merge, and folds to byte-identical read models. The digest was computed with the same
// population and batches at 91f1d80, the commit before issue 12's changes. If it changes, the
// read models of every existing stream change: that needs a new schema version (which makes
// nird refold them) and a new digest, never just a new digest.
func TestModels_StreamBeforeIdentity(t *testing.T) {
	t.Parallel()
	const want = "ec3167d705724d806abe8298af2731f6c7914cb3a9f2991c0d931aa3355c1ce6"
	recs := population(11, 400, testKommuner)
	db := openTestDB(t, DBOptions{})
	applyAll(t, db, recs, 97)
	if got := fmt.Sprintf("%x", sha256.Sum256([]byte(dump(t, db)))); got != want {
		t.Fatalf("the read models of a stream written before issue 12 changed: digest %s, want %s", got, want)
	}
}
