package projections

import (
	"testing"
)

// TestDB_Apply checks that the models do not depend on batch boundaries, on the state cache, or
// on applying the same events twice (DESIGN.md "Projections": events at or below the checkpoint
// are skipped).
func TestDB_Apply(t *testing.T) {
	t.Parallel()
	recs := population(1, 400, testKommuner)
	ref := openTestDB(t, DBOptions{})
	applyAll(t, ref, recs, len(recs))
	want := dump(t, ref)
	if c, _ := ref.Checkpoint(); c != uint64(len(recs)) {
		t.Fatalf("checkpoint = %d, want %d", c, len(recs))
	}

	tests := []struct {
		name  string
		opt   DBOptions
		batch int
		twice bool
	}{
		{"OneByOne", DBOptions{NoSync: true}, 1, false},
		{"Batches7", DBOptions{NoSync: true}, 7, false},
		{"NoCache", DBOptions{StateCache: -1}, 50, false},
		{"TinyCache", DBOptions{StateCache: 3}, 13, false},
		{"Twice", DBOptions{}, 100, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := openTestDB(t, tt.opt)
			applyAll(t, db, recs, tt.batch)
			if tt.twice {
				applyAll(t, db, recs, 33)
			}
			if got := dump(t, db); got != want {
				t.Fatalf("models differ from a one-batch build (%d vs %d bytes of dump)", len(got), len(want))
			}
		})
	}
}
