package projections

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// Published statistics (DOMAIN.md Product decisions 14): the figures served to analysts and
// exported never reveal individuals. PublishedStatistics builds a data year's whole table (the
// nation, every fylke and every kommune on one kommune structure) and suppresses, with
// rules.Suppress, the counts of 1 to minCount-1 and whatever else would let them be recovered
// from the table's totals, the relations between its counters and the year before's table
// (counterRelations lists the relations).

// Footnote explains «:» in published statistics, as SSB writes it.
const Footnote = ": Prikket (vises ikke) for å hindre at opplysninger om enkeltpersoner kan utledes: tall fra 1 til 4, og andre tall som ville avsløre dem / suppressed so that no individual can be identified: counts of 1 to 4, and other figures that would reveal them (DOMAIN.md Product decisions 14)"

// counterRelations are the equations that hold between a row's counters, which a reader of
// the table can use as well as its totals (see contributions): participants are ongoing on
// 31 December or terminated in the year; every termination is registered or computed, and
// has one avslutningsårsak; «ikke registrert» is reasons UNSPECIFIED and IKKE_REGISTRERT;
// direct to work or education is the sum of those reasons.
//
// Every linear relation between published cells (DOMAIN.md Product decisions 14) known to
// this code, and whether a suppressed cell could be recovered from published cells by it:
//
//  1. Within a row, counterRelations: participants = ongoing + terminated; terminated =
//     registered + computed; terminated = Σ reasons; reason_not_registered = UNSPECIFIED +
//     IKKE_REGISTRERT; direct_work_or_education = Σ its reasons. rules.Suppress moves a
//     suppressed cell only with a block that keeps them: not recoverable.
//  2. Across areas, per counter: a fylke is the sum of its kommuner, the nation of its
//     fylker. Two balancings per cell (rules.Suppress): not recoverable, also by a kommune
//     that knows its own row.
//  3. Hours: norsk_hours and samfunnskunnskap_hours sum the hours of norsk_hours_persons and
//     samfunnskunnskap_hours_persons, and are suppressed with them (Contributors); their
//     areas as in 2. training_hours_persons is tied to those two by no equation (a person
//     may have both kinds): max(norsk, samfunn) ≤ it ≤ norsk + samfunn. Not recoverable. The
//     implied counts norsk + samfunn - it (persons given both kinds) and it - norsk (only
//     samfunnskunnskap), like training_started - within_3_months (late starts), are no
//     published cell and may be 1 to 4: not protected (a domain owner decides whether an
//     implied count is a cell).
//  4. participants, new and terminated of one year: no equation (new ≤ participants; a
//     programme may start and end in the year). participants - new is the programmes
//     carried in from the year before, which is 5.
//  5. Across years, in every area: participants(Y) = ongoing(Y-1) + new(Y) (a programme
//     open on 31 December is a participant the next year; it fails only for a programme
//     past its last statistical year that nobody terminated). Each year suppressed on its
//     own, it was recoverable three ways: a suppressed new(Y) as participants(Y) -
//     ongoing(Y-1) (8 - 6 = 2); a suppressed ongoing(Y-1) as participants(Y) - new(Y); and
//     participants(Y) suppressed as the complement of a small ongoing(Y) as ongoing(Y-1) +
//     new(Y), and with it ongoing(Y) = participants(Y) - terminated(Y). Closed by
//     knownDifferences (a year's table keeps participants - new, which the year before
//     published, under every change it hides a cell with) and by mirrorLastYear (new(Y) is
//     suppressed wherever the year before's published cells do not give ongoing(Y-1)).
//  6. No other counter carries over between years: training_vedtak, hours, their persons
//     and training_started are counted per year, a training start once per person.
//  7. One year on two structures (its own and today's, current_structure): a row a reform
//     left alone has the same values in both tables, but each table is suppressed on its
//     own, so a complement suppressed in one may be published in the other (left: a
//     domain owner must decide whether past years are published on one structure only).
//  8. Tables of one year from two files: the live models and every as-of snapshot compute
//     their tables from their own events. 5 is closed within one file (a year and the year
//     before from the same file). An official snapshot of Y+1 mirrors the suppression of Y
//     as its own replay computes it, with the corrections to Y recorded after Y's cut-off,
//     which may differ from the table of Y published from Y's snapshot; and any two files'
//     tables of one year differ by the persons corrected between them. Closing that needs
//     a decision: which table of Y is the published one that later tables must respect
//     (e.g. the official snapshot's suppression kept and read by every later table).
func counterRelations() []rules.CounterRelation {
	reasons := make([]int, NumReasons)
	var work []int
	for r := range NumReasons {
		reasons[r] = int(CReasonBase) + r
		if isWorkOrEducation(nirv1.TerminationReason(r)) {
			work = append(work, int(CReasonBase)+r)
		}
	}
	return []rules.CounterRelation{
		{Total: int(CParticipants), Parts: []int{int(COngoing), int(CTerminated)}},
		{Total: int(CTerminated), Parts: []int{int(CTerminatedRegistered), int(CTerminatedComputed)}},
		{Total: int(CTerminated), Parts: reasons},
		{Total: int(CReasonNotRegistered), Parts: []int{int(CReasonBase) + int(nirv1.TerminationReason_TERMINATION_REASON_UNSPECIFIED),
			int(CReasonBase) + int(nirv1.TerminationReason_TERMINATION_REASON_IKKE_REGISTRERT)}},
		{Total: int(CDirectWorkOrEducation), Parts: work},
	}
}

// knownDifferences are the relations a reader of a year's table knows from the year before's
// table: participants - new is the year before's ongoing (5 above), published there unless
// suppressed. Taken as known always (whether the year before suppressed it or not), every
// change disclosure control hides a cell of this year with keeps it: new never moves
// without participants.
func knownDifferences() []rules.CounterRelation {
	return []rules.CounterRelation{{Total: int(CParticipants), Parts: []int{int(CNew)}}}
}

// isMagnitude reports the counters that sum hours rather than count persons.
func isMagnitude(c Counter) bool { return c == CNorskHours || c == CSamfunnHours }

// PublishedStatistics returns a data year's statistics at every level (the nation, then fylker,
// then kommuner, each in area order) on the kommune structure of date structure (zero: the
// data year's own; see StatisticsOn), with StatRow.Suppressed set by disclosure control with
// threshold minCount (counts of 1 to minCount-1; minCount ≤ 1 suppresses nothing). Every
// caller gets the same suppression for the same year, structure and threshold, whichever
// level or area it reads. The rows are the caller's to modify.
func (db *DB) PublishedStatistics(year int, structure rules.Date, minCount int64) ([]StatRow, []KommuneMapping, error) {
	return db.PublishedStatisticsContext(context.Background(), year, structure, minCount)
}

// PublishedStatisticsContext is PublishedStatistics that gives up when ctx is done. The
// suppression is computed once per table and kept (see publishedCache): a call on a table
// already published costs a read of the year's statistics, not a suppression.
//
// A year's table is the year's own suppression (suppressedTable) and, so that it reveals no
// ongoing the year before's table suppressed, new wherever that was (mirrorLastYear). The
// year before's suppression is its own alone: it depends on that year's figures only, not on
// the years before it, so a year's table depends on two years' figures and no further.
func (db *DB) PublishedStatisticsContext(ctx context.Context, year int, structure rules.Date, minCount int64) ([]StatRow, []KommuneMapping, error) {
	rows, mappings, err := db.suppressedTable(ctx, year, structure, minCount)
	if err != nil || minCount <= 1 || year-1 < 1900 {
		return rows, mappings, err
	}
	prevStructure := lastYearsStructure(year, structure)
	prev, prevMappings, err := db.suppressedTable(ctx, year-1, prevStructure, minCount)
	if err != nil {
		return nil, nil, err
	}
	mirrorLastYear(rows, prev, prevMappings, effectiveStructure(year, structure), effectiveStructure(year-1, prevStructure))
	return rows, mappings, nil
}

// suppressedTable returns a data year's table (the nation, fylker, kommuner) with the year's
// own suppression (rules.Suppress under counterRelations and knownDifferences) set.
func (db *DB) suppressedTable(ctx context.Context, year int, structure rules.Date, minCount int64) ([]StatRow, []KommuneMapping, error) {
	kommuner, mappings, err := db.StatisticsOn(year, LevelKommune, "", structure)
	if err != nil {
		return nil, nil, err
	}
	nation := StatRow{Year: year, Level: LevelNation}
	fylker := map[string]*StatRow{}
	for i := range kommuner {
		k := &kommuner[i]
		f := k.Area[:min(2, len(k.Area))]
		if fylker[f] == nil {
			fylker[f] = &StatRow{Year: year, Level: LevelFylke, Area: f}
		}
		fylker[f].Counters.add(&k.Counters, 1)
		nation.Counters.add(&k.Counters, 1)
	}
	rows := []StatRow{nation}
	fs := make([]string, 0, len(fylker))
	for f := range fylker {
		fs = append(fs, f)
	}
	sort.Strings(fs)
	fylkeIndex := map[string]int{}
	for _, f := range fs {
		fylkeIndex[f] = len(rows)
		rows = append(rows, *fylker[f])
	}
	parent := make([]int, len(rows), len(rows)+len(kommuner))
	parent[0] = -1
	for i := 1; i < len(rows); i++ {
		parent[i] = 0
	}
	for _, k := range kommuner {
		parent = append(parent, fylkeIndex[k.Area[:min(2, len(k.Area))]])
		rows = append(rows, k)
	}
	if minCount <= 1 {
		return rows, mappings, nil
	}
	t := &rules.DisclosureTable{Parent: parent, Values: make([][]int64, len(rows)), Relations: append(counterRelations(), knownDifferences()...),
		Counts: make([]bool, NumCounters), Contributors: map[int]int{int(CNorskHours): int(CNorskHoursPersons), int(CSamfunnHours): int(CSamfunnHoursPersons)}}
	for c := range t.Counts {
		t.Counts[c] = !isMagnitude(Counter(c))
	}
	for i := range rows {
		// A copy: the computation may outlive this call (another caller waits for it).
		t.Values[i] = slices.Clone(rows[i].Counters[:])
	}
	sup, err := db.published.suppress(ctx, tableKey(year, minCount, kommuner), t, minCount)
	if err != nil {
		return nil, nil, err
	}
	if len(sup) != len(rows) {
		return nil, nil, fmt.Errorf("projections: disclosure control returned %d rows for a table of %d", len(sup), len(rows))
	}
	for i := range rows {
		for c, s := range sup[i] {
			if s {
				rows[i].suppress(Counter(c))
			}
		}
	}
	return rows, mappings, nil
}

// suppress marks counter c of the row suppressed.
func (s *StatRow) suppress(c Counter) {
	if s.Suppressed == nil {
		s.Suppressed = new([NumCounters]bool)
	}
	s.Suppressed[c] = true
}

// lastYearsStructure is the structure the year before year is published on when year is
// published on structure: its own when structure is year's own (zero, or 1 January of
// year, as the API asks), else the same (today's).
func lastYearsStructure(year int, structure rules.Date) rules.Date {
	if structure.IsZero() || structure == effectiveStructure(year, rules.Date{}) {
		return rules.Date{}
	}
	return structure
}

// effectiveStructure is the date of the structure a year's table is on (StatisticsOn).
func effectiveStructure(year int, structure rules.Date) rules.Date {
	if structure.IsZero() {
		return rules.Date{Y: year, M: time.January, D: 1}
	}
	return structure
}

// mirrorLastYear suppresses new in each row of cur (year Y) whose participants - new is an
// ongoing(Y-1) that prev (the year before's table, with its own suppression) suppressed
// (relation 5 at counterRelations): else participants(Y) - new(Y) published it. The change
// that hides ongoing(Y-1) in prev, with new(Y) moving the other way in the same areas, keeps
// every published cell of both tables (participants(Y) stays, and new(Y) sums across areas
// as ongoing(Y-1) does), so that new(Y) needs no complement of its own.
//
// A row's ongoing(Y-1) is that of the kommune rows of prev whose numbers count in it on
// cur's structure (its sources; curOn and prevOn are the tables' structures); new is
// suppressed where prev's published cells do not give that sum (ongoingKnown). Any of the
// sources suppressed suppressed new before: across a reform (a fylke of kommuner of three
// fylker before), a row of cur whose sum prev publishes was shown «:» alone among its
// fylker, and read as the nation's less the others' (a cell shown suppressed that is not).
func mirrorLastYear(cur, prev []StatRow, prevMappings []KommuneMapping, curOn, prevOn rules.Date) {
	prevRow := map[string]*StatRow{} // by level and area
	var numbers []string
	for i := range prev {
		r := &prev[i]
		prevRow[string(r.Level)+"/"+r.Area] = r
		if r.Level == LevelKommune {
			numbers = append(numbers, r.Area)
		}
	}
	for _, m := range prevMappings {
		numbers = append(numbers, m.From)
	}
	sources := map[string]map[string]bool{} // kommune of cur -> kommuner of prev
	for _, n := range numbers {
		from, _, _ := rules.KommuneIn(n, prevOn)
		to, _, _ := rules.KommuneIn(n, curOn)
		if prevRow[string(LevelKommune)+"/"+from] == nil {
			continue
		}
		if sources[to] == nil {
			sources[to] = map[string]bool{}
		}
		sources[to][from] = true
	}
	// Each row's sources: those of its kommuner.
	rowSources := map[string]map[string]bool{} // by level and area of cur
	for to, from := range sources {
		for _, level := range []Level{LevelKommune, LevelFylke, LevelNation} {
			key := string(level) + "/" + areaKey(level, to)
			if rowSources[key] == nil {
				rowSources[key] = map[string]bool{}
			}
			maps.Copy(rowSources[key], from)
		}
	}
	for i := range cur {
		r := &cur[i]
		srcs := rowSources[string(r.Level)+"/"+r.Area]
		if len(srcs) == 0 {
			continue
		}
		if !ongoingKnown(prev, srcs) {
			r.suppress(CNew)
		}
	}
}

// ongoingKnown reports whether the sum of ongoing over the kommuner ks of table prev (their
// rows' areas) follows from prev's published cells: a published kommune is known; the
// suppressed kommuner of a fylke only all together, from the fylke's published cell less its
// published kommuner; or all together with those of the other fylker whose cell is
// suppressed, from the nation's cell. Exact: the sum follows from no other combination of
// those cells (the suppressed kommuner of a fylke occur in its cell and the nation's alone).
func ongoingKnown(prev []StatRow, ks map[string]bool) bool {
	type fylke struct{ suppressed, in int }
	fylker := map[string]*fylke{}
	nationShown := true
	for i := range prev {
		r := &prev[i]
		if r.Level == LevelNation {
			nationShown = !r.IsSuppressed(COngoing)
		}
		if r.Level != LevelKommune || !r.IsSuppressed(COngoing) {
			continue
		}
		f := fylker[areaKey(LevelFylke, r.Area)]
		if f == nil {
			f = &fylke{}
			fylker[areaKey(LevelFylke, r.Area)] = f
		}
		f.suppressed++
		if ks[r.Area] {
			f.in++
		}
	}
	fromNation := -1 // whether the nation's cell is taken (1) or not (0) for the suppressed fylker
	for i := range prev {
		r := &prev[i]
		f := fylker[r.Area]
		if r.Level != LevelFylke || f == nil {
			continue
		}
		if f.in != 0 && f.in != f.suppressed {
			return false
		}
		if !r.IsSuppressed(COngoing) {
			continue
		}
		all := 0
		if f.in > 0 {
			all = 1
		}
		if fromNation >= 0 && fromNation != all {
			return false
		}
		fromNation = all
	}
	return fromNation != 1 || nationShown
}

// IsSuppressed reports whether counter c of the row is suppressed by disclosure control.
func (s *StatRow) IsSuppressed(c Counter) bool {
	return s.Suppressed != nil && s.Suppressed[c]
}

// ShareDirectSuppressed and ShareWithin3mSuppressed report whether a share would reveal a
// suppressed count (its numerator or its denominator is suppressed).
func (s *StatRow) ShareDirectSuppressed() bool {
	return s.IsSuppressed(CDirectWorkOrEducation) || s.IsSuppressed(CTerminated)
}

// ShareWithin3mSuppressed: see ShareDirectSuppressed.
func (s *StatRow) ShareWithin3mSuppressed() bool {
	return s.IsSuppressed(CTrainingStartedWithin3m) || s.IsSuppressed(CTrainingStarted)
}
