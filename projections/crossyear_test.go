package projections

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// Differencing across data years (DOMAIN.md Product decisions 14): participants(Y) =
// ongoing(Y-1) + new(Y) in every area, between two published tables. Each test builds a small
// population whose figures are worked out in its comment, publishes 2022 and 2023 and lets
// recoveredAcrossYears (the published cells of both tables, every relation a reader knows,
// one unknown at a time) try to recover a suppressed cell.

// cohort registers n persons in kommune k whose programmes start on start (IL: permit
// two months before; no sluttmål, so the programme stays open) and, with end set, terminate
// on end with reason ARBEID. seq numbers the persons' fødselsnummer from.
func cohort(s *scenario, name, k string, n, seq int, start, end string) {
	permit := rules.MustParseDate(start).AddMonths(-2).String()
	for i := range n {
		pk := fmt.Sprintf("%s-%s-%d", name, k, i)
		s.person(pk, k, permit, asyl, seq+i)
		s.tildeling(pk, k, start)
		if end != "" {
			s.terminate(pk, k, end, end, nirv1.TerminationReason_TERMINATION_REASON_ARBEID)
		}
	}
}

// background puts 8 programmes started in 2022 and 7 in 2023, all open, in each of three
// kommuner: 2022 participants 8, new 8, ongoing 8; 2023 participants 15, new 7, ongoing 15.
func background(s *scenario) {
	for i, k := range []string{"0301", "4601", "5001"} {
		cohort(s, "bg22", k, 8, 100+i*20, "2022-02-01", "")
		cohort(s, "bg23", k, 7, 110+i*20, "2023-02-01", "")
	}
}

// publishedYears returns the published tables of 2022 and 2023 (each year's own structure,
// the default threshold).
func publishedYears(t *testing.T, s *scenario) (prev, cur []StatRow) {
	t.Helper()
	db := openTestDB(t, DBOptions{})
	applyAll(t, db, s.recs, 50)
	prev, _, err := db.PublishedStatistics(2022, rules.Date{}, rules.DefaultMinCount)
	if err != nil {
		t.Fatal(err)
	}
	cur, _, err = db.PublishedStatistics(2023, rules.Date{}, rules.DefaultMinCount)
	if err != nil {
		t.Fatal(err)
	}
	return prev, cur
}

// yearCell is one cell of two published tables: a data year's row (level and area) and
// counter.
type yearCell struct {
	year  int
	level Level
	area  string
	c     Counter
}

func (c yearCell) String() string {
	return fmt.Sprintf("%d %s %q %s", c.year, c.level, c.area, CounterNames()[c.c])
}

// recoveredAcrossYears returns the suppressed cells of the tables of consecutive years (the
// oldest first) that a reader of them all recovers from their published cells, one unknown
// at a time, by: each row's counterRelations, each counter's sums (a fylke of its kommuner,
// the nation of its fylker) and participants(Y) = ongoing(Y-1) + new(Y) in every area in
// both years' tables where it holds (a reader assumes it does: it fails only for a
// programme past its last statistical year that nobody terminated). Hours are left out
// (their persons are the cells).
func recoveredAcrossYears(tabs ...[]StatRow) []string {
	value, known := map[yearCell]int64{}, map[yearCell]bool{}
	byArea := map[yearCell]bool{} // rows present (c unused)
	for _, tab := range tabs {
		for i := range tab {
			r := &tab[i]
			byArea[yearCell{r.Year, r.Level, r.Area, 0}] = true
			for c := range NumCounters {
				cell := yearCell{r.Year, r.Level, r.Area, Counter(c)}
				value[cell], known[cell] = r.Counters[c], !r.IsSuppressed(Counter(c))
			}
		}
	}
	type relation struct {
		total yearCell
		parts []yearCell
	}
	var rels []relation
	sums := map[yearCell]int{} // a fylke's or the nation's cell: its sum's index in rels
	for _, tab := range tabs {
		for i := range tab {
			r := &tab[i]
			at := func(c int) yearCell { return yearCell{r.Year, r.Level, r.Area, Counter(c)} }
			for _, rel := range counterRelations() {
				rr := relation{total: at(rel.Total)}
				for _, p := range rel.Parts {
					rr.parts = append(rr.parts, at(p))
				}
				rels = append(rels, rr)
			}
			if r.Level == LevelNation {
				continue
			}
			parentLevel, parentArea := LevelNation, ""
			if r.Level == LevelKommune {
				parentLevel, parentArea = LevelFylke, r.Area[:2]
			}
			for c := range NumCounters {
				total := yearCell{r.Year, parentLevel, parentArea, Counter(c)}
				j, ok := sums[total]
				if !ok {
					j = len(rels)
					sums[total] = j
					rels = append(rels, relation{total: total})
				}
				rels[j].parts = append(rels[j].parts, at(c))
			}
		}
	}
	for _, tab := range tabs {
		for i := range tab {
			r := &tab[i]
			y1 := yearCell{r.Year - 1, r.Level, r.Area, COngoing}
			part, nw := yearCell{r.Year, r.Level, r.Area, CParticipants}, yearCell{r.Year, r.Level, r.Area, CNew}
			if byArea[yearCell{r.Year - 1, r.Level, r.Area, 0}] && value[part] == value[y1]+value[nw] {
				rels = append(rels, relation{total: part, parts: []yearCell{y1, nw}})
			}
		}
	}
	var out []string
	for changed := true; changed; {
		changed = false
		for _, r := range rels {
			var unknown []yearCell
			for _, c := range append([]yearCell{r.total}, r.parts...) {
				if !known[c] {
					unknown = append(unknown, c)
				}
			}
			if len(unknown) != 1 {
				continue
			}
			u := unknown[0]
			known[u], changed = true, true
			// Solved from the relation's other (known) cells, as a reader would.
			v := value[r.total]
			if u == r.total {
				v = 0
			}
			for _, p := range r.parts {
				switch {
				case u == r.total:
					v += value[p]
				case p != u:
					v -= value[p]
				}
			}
			out = append(out, fmt.Sprintf("%s = %d", u, v))
		}
	}
	return out
}

// wantNotRecovered fails when the cell named (yearCell's String) is among the recovered.
func wantNotRecovered(t *testing.T, prev, cur []StatRow, cell yearCell) {
	t.Helper()
	if !suppressedIn(prev, cur, cell) {
		t.Fatalf("%s is published; the test wants it suppressed", cell)
	}
	rec := recoveredAcrossYears(prev, cur)
	for _, r := range rec {
		if strings.HasPrefix(r, cell.String()+" = ") {
			t.Errorf("recovered %s from the published tables of two years (all recovered: %v)", r, rec)
		}
	}
}

func suppressedIn(prev, cur []StatRow, cell yearCell) bool {
	for _, tab := range [][]StatRow{prev, cur} {
		for i := range tab {
			r := &tab[i]
			if r.Year == cell.year && r.Level == cell.level && r.Area == cell.area {
				return r.IsSuppressed(cell.c)
			}
		}
	}
	return false
}

// TestPublished_NewNotRecoveredFromLastYearsOngoing: 3403 Hamar has 6 programmes started in
// 2022 and still running, and 2 new in 2023. Its 2023 new (2) is suppressed; 2023
// participants (8) and 2022 ongoing (6) are large. Before, 2023 published 8 and 2022 6:
// new = 8 - 6 = 2 (the leak found last session). participants - new is what the reader knows
// from the year before, so the suppression of new must take participants (or a cell that
// moves it) with it.
func TestPublished_NewNotRecoveredFromLastYearsOngoing(t *testing.T) {
	t.Parallel()
	s := &scenario{}
	background(s)
	cohort(s, "h22", "3403", 6, 1, "2022-02-01", "")
	cohort(s, "h23", "3403", 2, 10, "2023-02-01", "")
	prev, cur := publishedYears(t, s)
	wantNotRecovered(t, prev, cur, yearCell{2023, LevelKommune, "3403", CNew})
	if rec := recoveredAcrossYears(prev, cur); len(rec) > 0 {
		t.Errorf("recovered %v", rec)
	}
}

// TestPublished_LastYearsOngoingNotRecoveredFromNew: 3403 Hamar has 3 programmes started in
// 2022 and still running, and 6 new in 2023. Its 2022 row (participants, new, ongoing 3) is
// suppressed; 2023 participants 9 and new 6 are large. Before, 2023 published both: 2022's
// ongoing = 9 - 6 = 3. A year's table must hide new (or participants) wherever the year
// before's table hid ongoing.
func TestPublished_LastYearsOngoingNotRecoveredFromNew(t *testing.T) {
	t.Parallel()
	s := &scenario{}
	background(s)
	cohort(s, "h22", "3403", 3, 1, "2022-02-01", "")
	cohort(s, "h23", "3403", 6, 10, "2023-02-01", "")
	prev, cur := publishedYears(t, s)
	wantNotRecovered(t, prev, cur, yearCell{2022, LevelKommune, "3403", COngoing})
	if rec := recoveredAcrossYears(prev, cur); len(rec) > 0 {
		t.Errorf("recovered %v", rec)
	}
}

// TestPublished_OngoingNotRecoveredThroughParticipants: 3403 Hamar has 12 programmes started
// in 2022 and 5 new in 2023; 14 terminate in 2023 (ARBEID), 3 run on. Its 2023 ongoing (3) is
// suppressed with participants (17) as the cell that hides it within the year (participants
// = ongoing + terminated, terminated 14 published). Before, 2022 ongoing (12) and 2023 new
// (5) were published: participants = 17, then ongoing = 17 - 14 = 3.
func TestPublished_OngoingNotRecoveredThroughParticipants(t *testing.T) {
	t.Parallel()
	s := &scenario{}
	background(s)
	cohort(s, "h22", "3403", 12, 1, "2022-02-01", "")
	cohort(s, "h23", "3403", 5, 20, "2023-02-01", "")
	for i := range 14 {
		k := "3403"
		pk := fmt.Sprintf("h22-%s-%d", k, i)
		if i >= 12 {
			pk = fmt.Sprintf("h23-%s-%d", k, i-12)
		}
		s.terminate(pk, k, "2023-10-01", "2023-10-01", nirv1.TerminationReason_TERMINATION_REASON_ARBEID)
	}
	prev, cur := publishedYears(t, s)
	wantNotRecovered(t, prev, cur, yearCell{2023, LevelKommune, "3403", COngoing})
	if rec := recoveredAcrossYears(prev, cur); len(rec) > 0 {
		t.Errorf("recovered %v", rec)
	}
}

// TestPublished_NothingRecoveredAcrossYears: in random populations, no suppressed cell of any
// year is recovered from the tables of all years 2018-2026 together (recoveredAcrossYears:
// chains of years too), on each year's own structure and on today's (every year on it, as
// current_structure serves them); nor is another kommune's cell by a kommune that also knows
// its own rows of every year (it sees them unsuppressed; kommuner that share a fylke, so
// that the fylke's sums hold others' figures). Before, both recovered cells: 2023's small
// ongoing and terminated of 3403 Hamar (seed 13), and hundreds of cells of other kommuner
// by a kommune's own rows. And across the 2020 reform (seed 21, kommuner of three fylker
// merged into Viken), 2020's new of 30 Viken, suppressed alone among the fylker because one
// of its 2019 kommuner had its ongoing suppressed, read as the nation's less the others' (51).
func TestPublished_NothingRecoveredAcrossYears(t *testing.T) {
	t.Parallel()
	shared := []string{"0301", "4601", "4602", "4611", "5001", "5006", "1103", "1108"}
	// Kommuner of Akershus, Buskerud and Østfold, all Viken (30) from 2020, and their numbers
	// after: 0220 Asker, 0627 Røyken and 0628 Hurum are 3025 Asker from 2020.
	reformed := []string{"0220", "0627", "0628", "0219", "3025", "3024", "0301", "0626", "3201", "3203", "0101", "0104", "3001"}
	for _, c := range []struct {
		seed     uint64
		n        int
		kommuner []string
	}{{3, 400, testKommuner}, {13, 400, testKommuner}, {3, 600, shared}, {13, 600, shared}, {21, 500, reformed}} {
		db := openTestDB(t, DBOptions{})
		applyAll(t, db, population(c.seed, c.n, c.kommuner), 200)
		for _, structure := range []rules.Date{{}, rules.MustParseDate("2026-12-07")} {
			var tabs [][]StatRow
			for y := 2018; y <= 2026; y++ {
				rows, _, err := db.PublishedStatistics(y, structure, rules.DefaultMinCount)
				if err != nil {
					t.Fatal(err)
				}
				tabs = append(tabs, rows)
			}
			if rec := recoveredAcrossYears(tabs...); len(rec) > 0 {
				t.Errorf("seed %d, structure %v: recovered %v", c.seed, structure, rec)
			}
			for _, own := range c.kommuner {
				var seen [][]StatRow
				for _, tab := range tabs {
					seen = append(seen, ownRowKnown(tab, own))
				}
				for _, r := range recoveredAcrossYears(seen...) {
					if strings.Contains(r, string(LevelKommune)) && !strings.Contains(r, own) {
						t.Errorf("seed %d, structure %v: kommune %s recovered %s", c.seed, structure, own, r)
					}
				}
			}
		}
	}
}

// ownRowKnown returns a copy of rows with kommune own's row unsuppressed, as own sees it.
func ownRowKnown(rows []StatRow, own string) []StatRow {
	out := slices.Clone(rows)
	for i := range out {
		if out[i].Level == LevelKommune && out[i].Area == own {
			out[i].Suppressed = nil
		}
	}
	return out
}

// TestOngoingKnown: which sums of the year before's ongoing its published cells give
// (mirrorLastYear publishes new only where they do). Fylke 03 publishes its cell and hides
// 0301 and 0302; fylker 46 and 50 hide theirs, with 4601, 4602 and 5001 hidden; 4603 is
// published.
func TestOngoingKnown(t *testing.T) {
	row := func(level Level, area string, hidden bool) StatRow {
		r := StatRow{Level: level, Area: area}
		if hidden {
			r.suppress(COngoing)
		}
		return r
	}
	build := func(nationHidden bool) []StatRow {
		return []StatRow{row(LevelNation, "", nationHidden),
			row(LevelFylke, "03", false), row(LevelFylke, "46", true), row(LevelFylke, "50", true),
			row(LevelKommune, "0301", true), row(LevelKommune, "0302", true), row(LevelKommune, "0303", false),
			row(LevelKommune, "4601", true), row(LevelKommune, "4602", true), row(LevelKommune, "4603", false),
			row(LevelKommune, "5001", true), row(LevelKommune, "5002", false)}
	}
	for _, c := range []struct {
		ks           string
		nationHidden bool
		want         bool
	}{
		{"0303,4603", false, true},            // published kommuner
		{"0301", false, false},                // one of 03's hidden
		{"0301,0302", false, true},            // all of 03's hidden: 03 less 0303
		{"0301,0302,4603", false, true},       //
		{"4601,4602", false, false},           // all of 46's hidden, but 46 is hidden too
		{"4601,4602,5001", false, true},       // all of the hidden fylker's: the nation less the rest
		{"4601,4602,5001", true, false},       // ... unless the nation is hidden
		{"4601,4602,5001,0301", false, false}, // and half of 03's
		{"4601,4602,5001,0301,0302", false, true},
	} {
		ks := map[string]bool{}
		for k := range strings.SplitSeq(c.ks, ",") {
			ks[k] = true
		}
		if got := ongoingKnown(build(c.nationHidden), ks); got != c.want {
			t.Errorf("ongoingKnown(%s, nation hidden %v) = %v, want %v", c.ks, c.nationHidden, got, c.want)
		}
	}
}
