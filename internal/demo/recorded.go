package demo

import (
	"hash/fnv"
	"strings"
	"time"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// RecordedTimes returns when each of a person's events (as Generate yields them) was
// recorded in the register, so that a loaded population has a history an as-of replay can
// show: most events a few days after the day they are about (registration within two
// months, DOMAIN.md 2.1), some weeks later, and about half of the corrections (an
// EventRetracted with the events registered beside it) and one termination in ten only
// after the ajourføring deadline of their year (DOMAIN.md 6.3), so that the official figures
// of that year (replayed as of the deadline) differ from the live ones as a real register's
// do: errors not yet corrected, programmes not yet reported terminated. Times fall in working
// hours in Oslo, never after now, and are deterministic for the events' ids.
func RecordedTimes(evs []*nirv1.Event, now time.Time) []time.Time {
	loc := oslo()
	days := make([]rules.Date, len(evs))
	for i, ev := range evs {
		days[i] = idDay(ev.GetId())
	}
	late := make([]bool, len(evs))
	for i, ev := range evs {
		// One termination in ten is registered only after the deadline: the official
		// figures count the programme as ongoing, the live ones as terminated.
		if ev.GetTerminationRegistered() != nil && hash(ev.GetId())%10 == 3 {
			late[i] = true
		}
		if ev.GetEventRetracted() == nil || hash(ev.GetId())%2 != 0 {
			continue
		}
		// The correction group: the retraction and the events registered beside it on
		// the same day (the right tiltak after it, the right reason before it).
		for j := max(i-1, 0); j <= min(i+1, len(evs)-1); j++ {
			if days[j] == days[i] {
				late[j] = true
			}
		}
	}
	out := make([]time.Time, len(evs))
	for i, ev := range evs {
		h := hash(ev.GetId())
		day := days[i]
		switch {
		case late[i]:
			// After the deadline of the correction's year: March to April of the next year.
			day = rules.LastDayOfFebruary(day.Y + 1).AddDays(1 + int(h%60))
		case h%100 < 12:
			day = day.AddDays(14 + int(h>>8%42))
		default:
			day = day.AddDays(int(h >> 8 % 14))
		}
		minute := int(h >> 16 % (8 * 60))
		t := time.Date(day.Y, day.M, day.D, 8+minute/60, minute%60, int(h>>24%60), 0, loc)
		if t.After(now) {
			t = now
		}
		out[i] = t
	}
	return out
}

// ComputedRecordedAt returns when the regelmotor recorded a computed termination that became
// due on day: in its nightly pass after that day, never after now.
func ComputedRecordedAt(due rules.Date, now time.Time) time.Time {
	d := due.AddDays(1)
	t := time.Date(d.Y, d.M, d.D, 2, 0, 0, 0, oslo())
	if t.After(now) {
		return now
	}
	return t
}

func oslo() *time.Location { return rules.Norway }

func hash(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// idDay is the UTC day of a ULID's time part (the day the demo event is about).
func idDay(id string) rules.Date {
	var ms uint64
	for i := 0; i < 10 && i < len(id); i++ {
		ms = ms<<5 | uint64(strings.IndexByte(crockford, id[i])&31)
	}
	return rules.DateFromTime(time.UnixMilli(int64(ms)).UTC())
}
