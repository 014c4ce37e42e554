package projections

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/introreg/nir/rules"
)

// publishedState returns the cache's computations started, flights and the waiters of all.
func publishedState(db *DB) (computed, flights, waiters int) {
	db.published.mu.Lock()
	defer db.published.mu.Unlock()
	for _, f := range db.published.flights {
		waiters += f.waiters
	}
	return db.published.computed, len(db.published.flights), waiters
}

// freshPublished is the published table of recs computed in a DB of its own (no cache).
func freshPublished(t *testing.T, recs []Record, year int) []StatRow {
	t.Helper()
	db := openTestDB(t, DBOptions{})
	applyAll(t, db, recs, 200)
	rows, _, err := db.PublishedStatistics(year, rules.Date{}, rules.DefaultMinCount)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestPublishedStatistics_ComputedOnce: callers asking at once for one table wait for one
// suppression of it and one of the year before's (mirrorLastYear); later callers get both
// from the cache without computing; an event that changes the statistics makes the next
// caller compute the changed tables' suppressions, never serve the old ones; a caller's
// changes to its rows do not reach the cache. Not parallel: it holds the process's
// computation slot.
func TestPublishedStatistics_ComputedOnce(t *testing.T) {
	recs := population(11, 400, testKommuner)
	cut := len(recs) * 3 / 4
	db := openTestDB(t, DBOptions{})
	applyAll(t, db, recs[:cut], 200)
	want := freshPublished(t, recs[:cut], 2022)

	suppressSlots <- struct{}{} // no computation starts until all callers wait
	const callers = 8
	results := make(chan []StatRow, callers)
	errs := make(chan error, callers)
	for range callers {
		go func() {
			rows, _, err := db.PublishedStatisticsContext(bg, 2022, rules.Date{}, rules.DefaultMinCount)
			results <- rows
			errs <- err
		}()
	}
	waitFor(t, "the callers to wait for one computation", func() bool {
		_, _, w := publishedState(db)
		return w == callers
	})
	if computed, flights, _ := publishedState(db); computed != 0 || flights != 1 {
		t.Fatalf("%d computations, %d flights for one table; want one flight, not started", computed, flights)
	}
	<-suppressSlots
	for range callers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		if rows := <-results; !reflect.DeepEqual(rows, want) {
			t.Fatal("a waiting caller's table differs from the table computed alone")
		}
	}
	if computed, flights, _ := publishedState(db); computed != 2 || flights != 0 {
		t.Fatalf("%d callers at once: %d computations, %d flights left; want 2 (2022, 2021) and 0", callers, computed, flights)
	}

	rows, _, err := db.PublishedStatistics(2022, rules.Date{}, rules.DefaultMinCount)
	if err != nil {
		t.Fatal(err)
	}
	for i := range rows {
		rows[i].Suppressed = new([NumCounters]bool) // the caller's to modify
	}
	again, _, err := db.PublishedStatistics(2022, rules.Date{}, rules.DefaultMinCount)
	if err != nil {
		t.Fatal(err)
	}
	if computed, _, _ := publishedState(db); computed != 2 || !reflect.DeepEqual(again, want) {
		t.Fatalf("cached table: %d computations (want 2), equal to the table computed alone: %v", computed, reflect.DeepEqual(again, want))
	}

	before2021, _, _ := db.StatisticsOn(2021, LevelKommune, "", rules.Date{})
	applyAll(t, db, recs[cut:], 200)
	after2021, _, _ := db.StatisticsOn(2021, LevelKommune, "", rules.Date{})
	wantComputed := 3 // 2022's table changed
	if !reflect.DeepEqual(before2021, after2021) {
		wantComputed++ // and 2021's
	}
	after, _, err := db.PublishedStatistics(2022, rules.Date{}, rules.DefaultMinCount)
	if err != nil {
		t.Fatal(err)
	}
	wantAfter := freshPublished(t, recs, 2022)
	if reflect.DeepEqual(wantAfter, want) {
		t.Fatal("the later events do not change 2022's table: the test shows nothing")
	}
	if computed, _, _ := publishedState(db); computed != wantComputed || !reflect.DeepEqual(after, wantAfter) {
		t.Errorf("after new events: %d computations (want %d), equal to the new table computed alone: %v", computed, wantComputed, reflect.DeepEqual(after, wantAfter))
	}
}

// TestPublishedStatistics_CallerGone: when the last caller waiting for a suppression has
// gone, the computation is dropped (it never starts here) and the next caller starts afresh
// (the table's and the year before's: two).
// Not parallel: it holds the process's computation slot.
func TestPublishedStatistics_CallerGone(t *testing.T) {
	db := openTestDB(t, DBOptions{})
	applyAll(t, db, population(11, 400, testKommuner), 200)
	suppressSlots <- struct{}{}
	ctx, cancel := context.WithCancel(bg)
	errc := make(chan error, 1)
	go func() {
		_, _, err := db.PublishedStatisticsContext(ctx, 2022, rules.Date{}, rules.DefaultMinCount)
		errc <- err
	}()
	waitFor(t, "the caller to wait", func() bool {
		_, _, w := publishedState(db)
		return w == 1
	})
	db.published.mu.Lock()
	var f *suppressFlight
	for _, x := range db.published.flights {
		f = x
	}
	db.published.mu.Unlock()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	<-suppressSlots
	<-f.done
	if computed, flights, _ := publishedState(db); computed != 0 || flights != 0 || !errors.Is(f.err, context.Canceled) {
		t.Fatalf("after the caller left: %d computations, %d flights, err %v; want none and context.Canceled", computed, flights, f.err)
	}
	if _, _, err := db.PublishedStatisticsContext(bg, 2022, rules.Date{}, rules.DefaultMinCount); err != nil {
		t.Fatal(err)
	}
	if computed, _, _ := publishedState(db); computed != 2 {
		t.Errorf("next caller: %d computations, want 2", computed)
	}
}
