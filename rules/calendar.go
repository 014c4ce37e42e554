package rules

import (
	"time"
	_ "time/tzdata" // Norway's calendar on any machine, with or without a system zone database
)

// Norway is the register's calendar: the Europe/Oslo time zone. Deadlines, cut-off dates and
// "today" are civil dates in Norway (DOMAIN.md 6.3: the ajourføring deadline is a Norwegian
// date), so every package that turns an instant into a date uses this one location.
//
// The zone database is embedded (time/tzdata), so Norway never depends on the machine's;
// there is no fallback to UTC, which would move every date by a day around midnight.
var Norway = loadNorway()

func loadNorway() *time.Location {
	loc, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		// Unreachable with time/tzdata embedded; a build without it must not start.
		panic("rules: the Europe/Oslo time zone is missing: " + err.Error())
	}
	return loc
}

// Today returns the calendar date in Norway at the instant t.
func Today(t time.Time) Date { return DateFromTime(t.In(Norway)) }
