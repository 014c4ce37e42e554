package projections

import (
	"testing"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// acceptedByRules checks every event of the scenario with rules.CheckNext against the person's
// state folded so far, as nird's append path does, so that the figures come from events nird
// would have stored.
func acceptedByRules(t *testing.T, s *scenario, now string) {
	t.Helper()
	states := map[string]*rules.State{}
	for _, r := range s.recs {
		pk := r.Event.GetPersonKey()
		st := states[pk]
		if st == nil {
			st = rules.NewState(pk)
			states[pk] = st
		}
		if refs := rules.CheckNext(st, r.Event, rules.MustParseDate(now)); len(refs) > 0 {
			t.Fatalf("event %s refused: %+v", r.Event.GetId(), refs)
		}
		st.Apply(r.Seq, r.Event)
	}
}

// trainingTildeling adds a rett og plikt training tildeling of kommune k from start to end
// ("" = open).
func trainingTildeling(s *scenario, pk, k, rec, start, end string) {
	v := &nirv1.TrainingVedtakRegistered{Scheme: nirv1.TrainingScheme_TRAINING_SCHEME_RETT_OG_PLIKT,
		Type: nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING, VedtakDate: pd(start), StartDate: pd(start)}
	if end != "" {
		v.EndDate = pd(end)
	}
	s.add(pk, k, rec, v)
}

// TestStatistics_TrainingVedtakOnceAcrossReform: found on 2026-12-06 (review of the published
// figures): «training_vedtak» (persons with a training vedtak running in the year) was counted
// once per year and number as registered, so Asker's tildeling under 3025 until 2024-06-30 and
// its next under 3203 from 2024-08-15 counted the one person twice in 3203's 2024 row and in
// the nation; before 2 and 2, now 1 and 1: the person counts once per kommune as the year's
// structure names it (DOMAIN.md Product decisions 13: a number and its successor are one
// kommune; 6.2).
func TestStatistics_TrainingVedtakOnceAcrossReform(t *testing.T) {
	s := &scenario{}
	s.person("pkR", "3025", "2022-10-01", asyl, 1)
	trainingTildeling(s, "pkR", "3025", "2023-08-01", "2023-08-01", "2024-06-30")
	trainingTildeling(s, "pkR", "3203", "2024-08-15", "2024-08-15", "")
	acceptedByRules(t, s, "2024-12-01")

	db := openTestDB(t, DBOptions{})
	applyAll(t, db, s.recs, 100)
	if got := kommuneCount(t, db, 2024, "3203", CTrainingVedtak); got != 1 {
		t.Errorf("3203 Asker 2024 persons with a running training vedtak: got %d, want 1 (one person)", got)
	}
	if got := nationCount(t, db, 2024, CTrainingVedtak); got != 1 {
		t.Errorf("nation 2024 persons with a running training vedtak: got %d, want 1", got)
	}
	if got := kommuneCount(t, db, 2023, "3025", CTrainingVedtak); got != 1 {
		t.Errorf("3025 Asker 2023 persons with a running training vedtak: got %d, want 1", got)
	}
}

// TestStatistics_RowsAreSumsOnEveryStructure: a past year on today's structure (Product
// decisions 13, current_structure) adds up the rows of the numbers that are one kommune today,
// so a person who moved 0627 Røyken → 0220 Asker in 2019 (both 3203 Asker today), with hours
// and a tildeling in both, counts 2 in 3203's 2019 row, as in the two rows on 2019's own
// structure. Found on 2026-12-06 (review of the fixes of the published figures): a fix of the
// same day counted such a person once on today's structure, and the nation's rows of the two
// published tables then differed by the number of such persons, a count of 1 to 4 no cell
// covered (Product decisions 14). Both tables' nation rows must be equal; hours add up.
func TestStatistics_RowsAreSumsOnEveryStructure(t *testing.T) {
	s := &scenario{}
	s.person("pkA", "0627", "2018-06-01", asyl, 5)
	trainingTildeling(s, "pkA", "0627", "2018-09-01", "2018-09-01", "2019-06-14")
	s.add("pkA", "0627", "2019-02-02", &nirv1.TrainingHoursRegistered{Type: nirv1.HoursType_HOURS_TYPE_NORSK,
		Month: &nirv1.YearMonth{Year: 2019, Month: 1}, Hours: 40})
	s.add("pkA", "0627", "2019-06-15", &nirv1.PersonMoved{ToKommune: "0220", Date: pd("2019-06-15")})
	trainingTildeling(s, "pkA", "0220", "2019-08-15", "2019-08-15", "")
	s.add("pkA", "0220", "2019-10-02", &nirv1.TrainingHoursRegistered{Type: nirv1.HoursType_HOURS_TYPE_NORSK,
		Month: &nirv1.YearMonth{Year: 2019, Month: 9}, Hours: 40})
	acceptedByRules(t, s, "2019-12-01")

	db := openTestDB(t, DBOptions{})
	applyAll(t, db, s.recs, 100)
	today := rules.MustParseDate("2026-12-06")
	rows, _, err := db.StatisticsOn(2019, LevelKommune, "3203", today)
	if err != nil || len(rows) != 1 {
		t.Fatal(rows, err)
	}
	for _, c := range []struct {
		c    Counter
		name string
	}{{CHoursPersons, "persons with hours"}, {CTrainingVedtak, "persons with a running training vedtak"}} {
		if got := rows[0].Get(c.c); got != 2 {
			t.Errorf("3203 Asker 2019 on today's structure, %s: got %d, want 2 (0627's and 0220's rows)", c.name, got)
		}
		for _, k := range []string{"0627", "0220"} {
			if got := kommuneCount(t, db, 2019, k, c.c); got != 1 {
				t.Errorf("%s 2019 on 2019's structure, %s: got %d, want 1", k, c.name, got)
			}
		}
	}
	if got := rows[0].Get(CNorskHours); got != 8000 {
		t.Errorf("3203 Asker 2019 on today's structure, norsk hours (hundredths): got %d, want 8000", got)
	}
	own, _, err := db.PublishedStatistics(2019, rules.MustParseDate("2019-01-01"), 0)
	if err != nil || len(own) == 0 || own[0].Level != LevelNation {
		t.Fatal(own, err)
	}
	now, _, err := db.PublishedStatistics(2019, today, 0)
	if err != nil || len(now) == 0 || now[0].Level != LevelNation {
		t.Fatal(now, err)
	}
	for _, c := range []Counter{CHoursPersons, CTrainingVedtak} {
		if a, b := own[0].Get(c), now[0].Get(c); a != b {
			t.Errorf("nation 2019, counter %v: %d on 2019's structure, %d on today's; a difference publishes a count no cell covers", c, a, b)
		}
	}
}

// TestStatistics_MoverLeavesOldKommunesTrainingCount: found on 2026-12-06 (review of the
// published figures): an open tildeling ran 4 statistical years unless a stans ended it, so a
// person who moved 0301 → 4601 on 2021-12-01 was counted before with a running training vedtak
// in 0301 in 2022, 2023 and 2024 (and twice in the nation); now 0301's period ends with the
// move and 4601 counts from its own vedtak (DOMAIN.md Product decisions 16: after a move the
// new kommune sees the person, the old one keeps its own period; 7.4).
func TestStatistics_MoverLeavesOldKommunesTrainingCount(t *testing.T) {
	s := &scenario{}
	s.person("pkM", "0301", "2021-03-01", asyl, 2)
	trainingTildeling(s, "pkM", "0301", "2021-05-01", "2021-05-01", "")
	s.add("pkM", "0301", "2021-12-01", &nirv1.PersonMoved{ToKommune: "4601", Date: pd("2021-12-01")})
	trainingTildeling(s, "pkM", "4601", "2022-01-10", "2022-01-10", "")
	acceptedByRules(t, s, "2024-12-01")

	db := openTestDB(t, DBOptions{})
	applyAll(t, db, s.recs, 100)
	if got := kommuneCount(t, db, 2021, "0301", CTrainingVedtak); got != 1 {
		t.Errorf("0301 2021 persons with a running training vedtak: got %d, want 1 (its own period)", got)
	}
	for _, y := range []int{2022, 2023, 2024} {
		if got := max(kommuneCount(t, db, y, "0301", CTrainingVedtak), 0); got != 0 {
			t.Errorf("0301 %d persons with a running training vedtak: got %d, want 0 (moved away 2021-12-01)", y, got)
		}
		if got := kommuneCount(t, db, y, "4601", CTrainingVedtak); got != 1 {
			t.Errorf("4601 %d persons with a running training vedtak: got %d, want 1", y, got)
		}
		if got := nationCount(t, db, y, CTrainingVedtak); got != 1 {
			t.Errorf("nation %d persons with a running training vedtak: got %d, want 1", y, got)
		}
	}
}

// TestStatistics_Open6AVedtakEndsAtTheDeadline: found on 2026-12-06 (review of the published
// figures): every open tildeling ran 4 statistical years whatever its scheme, so a 6A person
// (DOMAIN.md 3.2: the deadline is 12 months from the first vedtak, extended by leave; utvidet
// opplæring «up to 6 months per vedtak») with an open RETT_6A tildeling from 2023-01-10 and one
// open utvidet vedtak from 2024-01-10 was counted before in 2025 and 2026; now the RETT_6A
// tildeling runs to the 6A deadline (2024-07-10 with the utvidet vedtak) and the utvidet one 6
// months, so 2023 and 2024 only.
func TestStatistics_Open6AVedtakEndsAtTheDeadline(t *testing.T) {
	s := &scenario{}
	s.add("pk6", "0301", "2022-04-01", &nirv1.PersonRegistered{
		BirthDate: pd("1980-01-15"), Sex: nirv1.Sex_SEX_FEMALE, PermitDate: pd("2022-04-01"), PermitBasis: nirv1.PermitBasis_PERMIT_BASIS_KOLLEKTIV_BESKYTTELSE_34,
		ArrivalDate: pd("2022-03-20"), SettlementDate: pd("2022-05-01"), SettlementKommune: "0301", SettledByAgreement: true})
	s.add("pk6", "0301", "2023-01-10", &nirv1.TrainingVedtakRegistered{Scheme: nirv1.TrainingScheme_TRAINING_SCHEME_RETT_6A,
		Type: nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING, VedtakDate: pd("2023-01-10"), StartDate: pd("2023-01-10")})
	s.add("pk6", "0301", "2023-12-01", &nirv1.UtdanningsbakgrunnRegistered{UpperSecondaryCompleted: true, Date: pd("2023-12-01")})
	s.add("pk6", "0301", "2024-01-05", &nirv1.TrainingVedtakRegistered{Scheme: nirv1.TrainingScheme_TRAINING_SCHEME_UTVIDET_6A,
		Type: nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING, VedtakDate: pd("2024-01-05"), StartDate: pd("2024-01-10")})
	acceptedByRules(t, s, "2024-01-05")

	db := openTestDB(t, DBOptions{})
	applyAll(t, db, s.recs, 100)
	for _, y := range []int{2023, 2024} {
		if got := kommuneCount(t, db, y, "0301", CTrainingVedtak); got != 1 {
			t.Errorf("0301 %d persons with a running training vedtak: got %d, want 1", y, got)
		}
	}
	for _, y := range []int{2025, 2026} {
		if got := max(kommuneCount(t, db, y, "0301", CTrainingVedtak), 0); got != 0 {
			t.Errorf("0301 %d persons with a running training vedtak: got %d, want 0 (6A: 12 months from 2023-01-10 + one utvidet vedtak of at most 6 months)", y, got)
		}
	}
}

// TestStatistics_MoveAwayAndBackCountsAgain: a person with an open 0301 tildeling from
// 2021-05-01 who moves to 4601 on 2021-12-01 and back on 2022-03-01 is counted in 0301 again
// from the move back, in the statistics and in 0301's person list for the data year (DOMAIN.md
// Product decisions 16; the hours check, NIR-R021, accepts 0301's 2023 hours under that
// tildeling). Found on 2026-12-06 (review of the fixes of the published figures): the fix that
// ends a tildeling with the move away ended it for good, so the person counted in no kommune's
// training vedtak in 2022 and 2023 and left 0301's Årsrapportering list.
func TestStatistics_MoveAwayAndBackCountsAgain(t *testing.T) {
	s := &scenario{}
	s.person("pkB", "0301", "2021-03-01", asyl, 2)
	trainingTildeling(s, "pkB", "0301", "2021-05-01", "2021-05-01", "")
	s.add("pkB", "0301", "2021-12-01", &nirv1.PersonMoved{ToKommune: "4601", Date: pd("2021-12-01")})
	s.add("pkB", "4601", "2022-03-01", &nirv1.PersonMoved{ToKommune: "0301", Date: pd("2022-03-01")})
	s.add("pkB", "0301", "2023-02-02", &nirv1.TrainingHoursRegistered{Type: nirv1.HoursType_HOURS_TYPE_NORSK,
		Month: &nirv1.YearMonth{Year: 2023, Month: 1}, Hours: 40})
	acceptedByRules(t, s, "2023-12-01")
	db := openTestDB(t, DBOptions{})
	applyAll(t, db, s.recs, 100)
	for _, y := range []int{2021, 2022, 2023, 2024} {
		if got := kommuneCount(t, db, y, "0301", CTrainingVedtak); got != 1 {
			t.Errorf("0301 %d persons with a running training vedtak: got %d, want 1", y, got)
		}
		if got := nationCount(t, db, y, CTrainingVedtak); got != 1 {
			t.Errorf("nation %d persons with a running training vedtak: got %d, want 1", y, got)
		}
	}
	// The open tildeling's 4 statistical years (2021–2024) hold for the later stay too.
	if rows, err := db.Statistics(2025, LevelNation, ""); err != nil || len(rows) == 1 && rows[0].Get(CTrainingVedtak) != 0 {
		t.Errorf("nation 2025: %v, %v; want no person with a running training vedtak", rows, err)
	}
	if got := kommuneCount(t, db, 2022, "4601", CTrainingVedtak); got > 0 {
		t.Errorf("4601 2022 persons with a running training vedtak: got %d, want none (no vedtak of its own)", got)
	}
	p, err := db.ListPersons(PersonQuery{Kommune: "0301", Year: 2023, TrainingVedtak: With})
	if err != nil || p.Total != 1 {
		t.Errorf("0301 list, year 2023, training vedtak: %+v, %v; want the person", p, err)
	}
}

// TestStatistics_OpenTildelingStayEndedByAMoveIsNotCut pins what the statistics count today
// for an open training tildeling (no end date, no stans) whose stay in its kommune ends with a
// move out. OPEN QUESTION for the domain owner: DOMAIN.md does not say how long an open
// tildeling runs for the statistics. The code gives it 4 statistical years from its start
// (trainingYears; README: «counts in it again from the move back, within its 4 years»), and
// cuts the last stay at them, but a stay (or the first part) that a move out ends runs to the
// move, however late: moving away makes years count that staying would not. Product
// decisions 16 decides only that the old kommune keeps its own period, ending with the move.
// Expected counts are by hand from the dates below (0301's «training_vedtak» per year; the
// window of a tildeling from 2019-05-01 is 2019–2022).
func TestStatistics_OpenTildelingStayEndedByAMoveIsNotCut(t *testing.T) {
	type move struct{ by, to, date string }
	for _, tc := range []struct {
		name  string
		moves []move
		want  map[int]int64 // 0301's count; years not named count 0
	}{
		{"no move: the window", nil, map[int]int64{2019: 1, 2020: 1, 2021: 1, 2022: 1}},
		{"later stay to the end: cut at the window, so not counted",
			[]move{{"0301", "4601", "2019-12-01"}, {"4601", "0301", "2024-03-01"}},
			map[int]int64{2019: 1}},
		{"later stay ended by a move out: counted past the window",
			[]move{{"0301", "4601", "2019-12-01"}, {"4601", "0301", "2024-03-01"}, {"0301", "4601", "2025-06-01"}},
			map[int]int64{2019: 1, 2024: 1, 2025: 1}},
		{"first part ended by a late move out: counted past the window",
			[]move{{"0301", "4601", "2024-06-01"}},
			map[int]int64{2019: 1, 2020: 1, 2021: 1, 2022: 1, 2023: 1, 2024: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &scenario{}
			s.person("pkW", "0301", "2019-03-01", asyl, 3)
			trainingTildeling(s, "pkW", "0301", "2019-05-01", "2019-05-01", "")
			for _, m := range tc.moves {
				s.add("pkW", m.by, m.date, &nirv1.PersonMoved{ToKommune: m.to, Date: pd(m.date)})
			}
			acceptedByRules(t, s, "2025-12-01")
			db := openTestDB(t, DBOptions{})
			applyAll(t, db, s.recs, 100)
			for y := 2019; y <= 2026; y++ {
				if got := max(kommuneCount(t, db, y, "0301", CTrainingVedtak), 0); got != tc.want[y] {
					t.Errorf("0301 %d persons with a running training vedtak: got %d, want %d", y, got, tc.want[y])
				}
			}
		})
	}
}
