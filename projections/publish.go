package projections

import (
	"context"
	"fmt"
	"slices"
	"sort"

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
	t := &rules.DisclosureTable{Parent: parent, Values: make([][]int64, len(rows)), Relations: counterRelations(),
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
