package demo

import (
	"slices"
	"testing"
	"time"

	"github.com/introreg/nir/rules"
)

// TestRecordedTimes checks the demo's recorded times: never before the day an event is
// about nor after now, most within the two months of DOMAIN.md 2.1, deterministic, and some
// corrections recorded only after the ajourføring deadline of their year (DOMAIN.md 6.3), the
// case an as-of replay exists for.
func TestRecordedTimes(t *testing.T) {
	now := time.Date(2025, time.November, 20, 12, 0, 0, 0, time.UTC)
	var events, within2m, lateCorrections, corrections int
	for _, evs := range collect(7, 1000, testNow) {
		at := RecordedTimes(evs, now)
		if again := RecordedTimes(evs, now); !slices.EqualFunc(at, again, time.Time.Equal) {
			t.Fatal("recorded times differ between two calls")
		}
		for i, ev := range evs {
			events++
			day := dateOfMs(ulidTime(t, ev.GetId()))
			rec := rules.DateFromTime(at[i].In(oslo()))
			if rec.Before(day) || at[i].After(now) {
				t.Fatalf("event %s about %s recorded %v (now %v)", ev.GetId(), day, at[i], now)
			}
			if day.AddMonths(2).After(rec) || at[i].Equal(now) {
				within2m++
			}
			if ev.GetEventRetracted() != nil {
				corrections++
				if rec.After(rules.LastDayOfFebruary(day.Y + 1)) {
					lateCorrections++
				}
			}
		}
	}
	if share := float64(within2m) / float64(events); share < 0.9 {
		t.Errorf("%.2f of events recorded within two months, want most", share)
	}
	if corrections == 0 || lateCorrections == 0 || lateCorrections == corrections {
		t.Errorf("%d of %d corrections recorded after their year's deadline, want some but not all", lateCorrections, corrections)
	}
	d := rules.MustDate(2023, time.March, 4)
	if got := ComputedRecordedAt(d, now); rules.DateFromTime(got.In(oslo())) != d.AddDays(1) {
		t.Errorf("computed termination due %s recorded %v, want the night after", d, got)
	}
	if got := ComputedRecordedAt(rules.DateFromTime(now), now); !got.Equal(now) {
		t.Errorf("computed termination due today recorded %v, want now", got)
	}
}
