package projections

import (
	"testing"

	"github.com/introreg/nir/rules"
)

// TestCounterRelationsHold: the equations disclosure control assumes between a row's counters
// hold in the statistics of a random population, every year, every kommune (Product
// decisions 14: a relation that a reader can use must be known to the suppression).
func TestCounterRelationsHold(t *testing.T) {
	t.Parallel()
	db := openTestDB(t, DBOptions{})
	applyAll(t, db, population(7, 600, testKommuner), 200)
	checked := 0
	for y := 2018; y <= 2027; y++ {
		rows, err := db.Statistics(y, LevelKommune, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			for _, rel := range counterRelations() {
				sum := int64(0)
				for _, p := range rel.Parts {
					sum += r.Counters[p]
				}
				if r.Counters[rel.Total] != sum {
					t.Errorf("%d %s: %s = %d, its parts sum to %d", y, r.Area, CounterNames()[rel.Total], r.Counters[rel.Total], sum)
				}
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("no rows")
	}
}

// TestPublishedStatistics: the published table suppresses every count of 1–4 at every level,
// never a total row of the nation with large counts, and the same cells whatever level is
// read; with threshold 1 nothing (Product decisions 14).
func TestPublishedStatistics(t *testing.T) {
	t.Parallel()
	db := openTestDB(t, DBOptions{})
	applyAll(t, db, population(11, 400, testKommuner), 200)
	rows, _, err := db.PublishedStatistics(2022, rules.Date{}, rules.DefaultMinCount)
	if err != nil {
		t.Fatal(err)
	}
	if rows[0].Level != LevelNation {
		t.Fatalf("first row %v, want the nation", rows[0].Level)
	}
	suppressed := 0
	for _, r := range rows {
		for c, v := range r.Counters {
			if !isMagnitude(Counter(c)) && v >= 1 && v <= 4 && !r.IsSuppressed(Counter(c)) {
				t.Errorf("%s %s: %s = %d published", r.Level, r.Area, CounterNames()[c], v)
			}
			if r.IsSuppressed(Counter(c)) {
				suppressed++
			}
		}
	}
	if suppressed == 0 {
		t.Error("nothing suppressed in a table of 6 kommuner")
	}
	if rows[0].IsSuppressed(CParticipants) {
		t.Errorf("the nation's participants (%d) suppressed", rows[0].Get(CParticipants))
	}
	raw, _, _ := db.PublishedStatistics(2022, rules.Date{}, 1)
	for _, r := range raw {
		if r.Suppressed != nil {
			t.Fatalf("threshold 1 suppressed %s %s", r.Level, r.Area)
		}
	}
}
