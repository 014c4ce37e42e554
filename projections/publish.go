package projections

import (
	"context"
	"fmt"
	"slices"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// Published statistics (DOMAIN.md Product decisions 14): the figures served to analysts and
// exported never reveal individuals. PublishedStatistics builds a data year's whole table (the
// nation, every fylke and every kommune on one kommune structure) and suppresses, with
// rules.Suppress, the counts of 1 to minCount-1 and whatever else would let them be recovered
// from the table's totals and the relations between its counters.

// Footnote explains «:» in published statistics, as SSB writes it.
const Footnote = ": Prikket (vises ikke) for å hindre at opplysninger om enkeltpersoner kan utledes: tall fra 1 til 4, og andre tall som ville avsløre dem / suppressed so that no individual can be identified: counts of 1 to 4, and other figures that would reveal them (DOMAIN.md Product decisions 14)"

// counterRelations are the equations that hold between a row's counters, which a reader of
// the table can use as well as its totals (see contributions): participants are ongoing on
// 31 December or terminated in the year; every termination is registered or computed, and
// has one avslutningsårsak; «ikke registrert» is reasons UNSPECIFIED and IKKE_REGISTRERT;
// direct to work or education is the sum of those reasons.
//
// Participants count persons, ongoing and terminated programmes, so participants are at most
// ongoing + terminated (less by the persons with two programmes in the year); likewise a fylke's
// or the nation's count of persons is at most the sum of its kommuner's (less by the persons
// counted in two of them, statTable.rows). The suppression is still computed as if both were
// equations. That protects as well as it did: every change of the suppressed cells that
// rules.Suppress builds keeps each of its equations, so it keeps each difference above too
// (sum less total), and a reader who knows the inequalities, or even the differences, cannot
// tell the true suppressed values from the changed ones. A total that is no longer a sum
// tells a reader less about its parts than a sum did, never more.
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
func (db *DB) PublishedStatisticsContext(ctx context.Context, year int, structure rules.Date, minCount int64) ([]StatRow, []KommuneMapping, error) {
	st, err := db.readStatTable(year, structure)
	if err != nil {
		return nil, nil, err
	}
	mappings := st.mappings
	// Fylke and nation rows count a person who counted in two of their kommuner once
	// (statTable.rows): for the counters of persons they are at most the sum of their
	// kommuner, not always equal to it (see counterRelations).
	kommuner := st.rows(LevelKommune, "")
	rows := st.rows(LevelNation, "")
	if len(rows) == 0 {
		rows = []StatRow{{Year: year, Level: LevelNation}}
	}
	fylkeIndex := map[string]int{}
	for _, f := range st.rows(LevelFylke, "") {
		fylkeIndex[f.Area] = len(rows)
		rows = append(rows, f)
	}
	parent := make([]int, len(rows), len(rows)+len(kommuner))
	parent[0] = -1
	for i := 1; i < len(rows); i++ {
		parent[i] = 0
	}
	for _, k := range kommuner {
		parent = append(parent, fylkeIndex[areaOf(LevelFylke, k.Area)])
		rows = append(rows, k)
	}
	if minCount <= 1 {
		return rows, mappings, nil
	}
	t := &rules.DisclosureTable{Parent: parent, Values: make([][]int64, len(rows)), Relations: counterRelations(),
		Counts: make([]bool, NumCounters), Contributors: map[int]int{int(CNorskHours): int(CHoursPersons), int(CSamfunnHours): int(CHoursPersons)}}
	for c := range t.Counts {
		t.Counts[c] = !isMagnitude(Counter(c))
	}
	for i := range rows {
		// A copy: the computation may outlive this call (another caller waits for it).
		t.Values[i] = slices.Clone(rows[i].Counters[:])
	}
	sup, err := db.published.suppress(ctx, tableKey(year, minCount, rows), t, minCount)
	if err != nil {
		return nil, nil, err
	}
	if len(sup) != len(rows) {
		return nil, nil, fmt.Errorf("projections: disclosure control returned %d rows for a table of %d", len(sup), len(rows))
	}
	for i := range rows {
		for c, s := range sup[i] {
			if s {
				if rows[i].Suppressed == nil {
					rows[i].Suppressed = new([NumCounters]bool)
				}
				rows[i].Suppressed[c] = true
			}
		}
	}
	return rows, mappings, nil
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
