package projections

import (
	"fmt"

	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// Hand-computed figures (review of the figures fed to statistics, grants and research, 2026-12-07):
// small populations whose expected numbers are worked out from DOMAIN.md's definitions in each
// test's comment, compared with the statistics and the report of terminated participants.

// norskHours registers month y-m's norsk hours for pk, sent by kommune k.
func norskHours(s *scenario, pk, k, rec string, y, m int, h float64) {
	s.add(pk, k, rec, &nirv1.TrainingHoursRegistered{Type: nirv1.HoursType_HOURS_TYPE_NORSK,
		Month: &nirv1.YearMonth{Year: int32(y), Month: int32(m)}, Hours: h})
}

// wantCounts compares counters of one kommune's (or, with k "", the nation's) row of a year.
func wantCounts(t *testing.T, db *DB, y int, k string, want map[Counter]int64) {
	t.Helper()
	for c, w := range want {
		var got int64
		if k == "" {
			got = nationCount(t, db, y, c)
		} else {
			got = kommuneCount(t, db, y, k, c)
		}
		if got != w {
			t.Errorf("%d %q counter %d: got %d, want %d", y, k, c, got, w)
		}
	}
}

// TestFigures_MoveMidYearHoursAndVedtak: an IL rett og plikt person (asyl, permit 2023-01-10,
// settled in 0301 Oslo on 2023-02-10) with a training tildeling in Oslo from 2023-03-01, who
// moves to 4601 Bergen on 2024-06-15 and gets a tildeling there from 2024-07-01.
//
// By hand, DOMAIN.md 3.4, 6.5 (registered hours are the grant basis, by the kommune that gave
// them), 7.4 and Product decisions 16 (the old kommune keeps its own period):
//   - Oslo 2024 norsk hours: January 40, February sent twice (30, then 35: the month is
//     replaced, not added: 35), June 10 (given before the move) = 85 h = 8500 hundredths.
//   - Bergen 2024: June 12 (after the move, same month: both kommuner's count), August 20 =
//     32 h = 3200. Nation 117 h = 11700: none lost, none counted twice.
//   - Persons with hours 2024: 1 in each kommune; the nation is the sum of its kommuner (2:
//     the code's choice, see the report).
//   - Persons with a running training vedtak 2024: Oslo 1 (to the move), Bergen 1.
//   - Training start (Product decisions 6, DOMAIN.md 3.5): first start 2023-03-01 in Oslo, due
//     2023-02-10 + 3 months = 2023-05-10: started 1, within 3 months 1, in Oslo's 2023 row;
//     no start in 2024 (Bergen's tildeling is no first start).
func TestFigures_MoveMidYearHoursAndVedtak(t *testing.T) {
	s := &scenario{}
	s.person("pkM", "0301", "2023-01-10", asyl, 1)
	trainingTildeling(s, "pkM", "0301", "2023-03-01", "2023-03-01", "")
	norskHours(s, "pkM", "0301", "2024-02-02", 2024, 1, 40)
	norskHours(s, "pkM", "0301", "2024-03-02", 2024, 2, 30)
	norskHours(s, "pkM", "0301", "2024-03-05", 2024, 2, 35)
	s.add("pkM", "0301", "2024-06-15", &nirv1.PersonMoved{ToKommune: "4601", Date: pd("2024-06-15")})
	norskHours(s, "pkM", "0301", "2024-06-20", 2024, 6, 10)
	trainingTildeling(s, "pkM", "4601", "2024-07-01", "2024-07-01", "")
	norskHours(s, "pkM", "4601", "2024-07-02", 2024, 6, 12)
	norskHours(s, "pkM", "4601", "2024-09-02", 2024, 8, 20)
	acceptedByRules(t, s, "2024-12-01")

	db := openTestDB(t, DBOptions{})
	applyAll(t, db, s.recs, 3)
	wantCounts(t, db, 2024, "0301", map[Counter]int64{CNorskHours: 8500, CHoursPersons: 1, CTrainingVedtak: 1, CTrainingStarted: 0})
	wantCounts(t, db, 2024, "4601", map[Counter]int64{CNorskHours: 3200, CHoursPersons: 1, CTrainingVedtak: 1, CTrainingStarted: 0})
	wantCounts(t, db, 2024, "", map[Counter]int64{CNorskHours: 11700, CHoursPersons: 2, CTrainingVedtak: 2})
	wantCounts(t, db, 2023, "0301", map[Counter]int64{CTrainingStarted: 1, CTrainingStartedWithin3m: 1, CTrainingVedtak: 1})
}

// TestFigures_ProgrammeAcrossTheYear: an IL programme from 2023-09-01 that ends 2024-02-15 with
// ARBEID, and one from 2024-03-01 still running, both in 0301 Oslo.
//
// By hand (DOMAIN.md 6.2 participants of the year, 2.5, 8 «avgangskohort»; Product decisions 7,
// effective dates): 2023: participants 1,
// new 1, ongoing on 31 December 1, terminated 0. 2024: participants 2 (both programmes ran),
// new 1, ongoing 1, terminated 1 (registered 1, computed 0), direct to work or education 1,
// reason not registered 0. The report of 2024 holds 1 row with reason, 0 without; 2023's none.
func TestFigures_ProgrammeAcrossTheYear(t *testing.T) {
	s := &scenario{}
	s.person("pkA", "0301", "2023-06-01", asyl, 1)
	s.tildeling("pkA", "0301", "2023-09-01")
	s.terminate("pkA", "0301", "2024-02-15", "2024-02-20", nirv1.TerminationReason_TERMINATION_REASON_ARBEID)
	s.person("pkB", "0301", "2023-10-01", asyl, 2)
	s.tildeling("pkB", "0301", "2024-03-01")
	acceptedByRules(t, s, "2024-12-01")

	db := openTestDB(t, DBOptions{})
	applyAll(t, db, s.recs, 100)
	wantCounts(t, db, 2023, "0301", map[Counter]int64{CParticipants: 1, CNew: 1, COngoing: 1, CTerminated: 0})
	wantCounts(t, db, 2024, "0301", map[Counter]int64{CParticipants: 2, CNew: 1, COngoing: 1, CTerminated: 1,
		CTerminatedRegistered: 1, CTerminatedComputed: 0, CDirectWorkOrEducation: 1, CReasonNotRegistered: 0})
	for y, want := range map[int][2]int{2023: {0, 0}, 2024: {1, 0}} {
		rep, err := db.Terminated(ReportQuery{Year: y, Kommune: "0301"})
		if err != nil {
			t.Fatal(err)
		}
		if rep.WithReason != want[0] || rep.WithoutReason != want[1] || len(rep.Rows) != want[0]+want[1] {
			t.Errorf("report %d: %d with, %d without, %d rows; want %v", y, rep.WithReason, rep.WithoutReason, len(rep.Rows), want)
		}
	}
}

// TestFigures_ComputedThenRegisteredReason: under IL the kommune adds the actual reason on top
// of a computed «Avslutningsårsak ikke registrert» (Product decisions 5: the registered reason
// wins in every read model). Programme 2022-03-01 in 0301; computed termination dated
// 2024-03-01, then the kommune adds UTDANNING_VGO dated 2024-03-01.
//
// By hand (DOMAIN.md 2.5): 2024 terminated 1, registered 1, computed 0, not registered 0,
// direct to work or education 1; the report: 1 with reason, 0 without, its reason UTDANNING_VGO.
func TestFigures_ComputedThenRegisteredReason(t *testing.T) {
	s := &scenario{}
	s.person("pkC", "0301", "2021-12-01", asyl, 1)
	s.tildeling("pkC", "0301", "2022-03-01")
	s.computed("pkC", "0301", "2024-03-01", "2022-03-01", "2024-03-02")
	s.terminate("pkC", "0301", "2024-03-01", "2024-03-10", nirv1.TerminationReason_TERMINATION_REASON_UTDANNING_VGO)

	db := openTestDB(t, DBOptions{})
	applyAll(t, db, s.recs, 100)
	wantCounts(t, db, 2024, "0301", map[Counter]int64{CTerminated: 1, CTerminatedRegistered: 1, CTerminatedComputed: 0,
		CReasonNotRegistered: 0, CDirectWorkOrEducation: 1})
	rep, err := db.Terminated(ReportQuery{Year: 2024, Kommune: "0301"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.WithReason != 1 || rep.WithoutReason != 0 || rep.ByReason[nirv1.TerminationReason_TERMINATION_REASON_UTDANNING_VGO] != 1 {
		t.Errorf("report 2024: %+v; want 1 row with UTDANNING_VGO", rep)
	}
}

// TestFigures_ReportKategoriByLaw: the report's kategori filter (DOMAIN.md 6.2, 1.5, 1.7): a
// 6A person (§ 34 permit granted 2022-06-20) has rett, not rett og plikt, to the programme; an
// IL asyl person has rett og plikt. Both terminate in 2023 in 0301. By hand: «rett og plikt
// introduksjonsprogram» holds 1 row (the IL person), law 6A holds 1, both laws 2.
func TestFigures_ReportKategoriByLaw(t *testing.T) {
	s := &scenario{}
	s.person("pk6", "0301", "2022-06-20", nirv1.PermitBasis_PERMIT_BASIS_KOLLEKTIV_BESKYTTELSE_34, 1)
	s.tildeling("pk6", "0301", "2022-09-01")
	s.terminate("pk6", "0301", "2023-05-01", "2023-05-02", nirv1.TerminationReason_TERMINATION_REASON_ARBEID)
	s.person("pkI", "0301", "2022-06-20", asyl, 2)
	s.tildeling("pkI", "0301", "2022-09-01")
	s.terminate("pkI", "0301", "2023-05-01", "2023-05-02", nirv1.TerminationReason_TERMINATION_REASON_ARBEID)

	db := openTestDB(t, DBOptions{})
	applyAll(t, db, s.recs, 100)
	for _, c := range []struct {
		q    ReportQuery
		want int
	}{
		{ReportQuery{Year: 2023}, 2},
		{ReportQuery{Year: 2023, Scheme: nirv1.Scheme_SCHEME_RETT_OG_PLIKT}, 1},
		{ReportQuery{Year: 2023, Law: nirv1.Law_LAW_IL_6A}, 1},
		{ReportQuery{Year: 2023, Law: nirv1.Law_LAW_IL_6A, Scheme: nirv1.Scheme_SCHEME_RETT_OG_PLIKT}, 0},
	} {
		rep, err := db.Terminated(c.q)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Rows) != c.want {
			t.Errorf("%+v: %d rows, want %d", c.q, len(rep.Rows), c.want)
		}
	}
}

// TestPublished_HoursOfFewPersonsSuppressed: a magnitude is suppressed where the persons it
// sums are 1 to 4 (DOMAIN.md Product decisions 14; DisclosureTable.Contributors). Found on
// 2026-12-07 (review of the published figures): both hours counters took the persons with any
// training hours (training_hours_persons) as their contributors, so in 0301 Oslo, where 5
// persons were given norsk hours in 2024 and one of them alone samfunnskunnskap (75 hours,
// the three modules), the samfunnskunnskap hours were published: 75 hours of one person. And
// in 4601 Bergen, 4 persons given samfunnskunnskap only and 1 person norsk (40 hours): the
// norsk hours of that one person. By hand: Oslo's samfunnskunnskap hours and Bergen's norsk
// hours are each one person's, and Bergen's samfunnskunnskap hours 4 persons': all three
// must be «:» (Oslo's norsk hours, 5 persons', may be «:» as a complement).
func TestPublished_HoursOfFewPersonsSuppressed(t *testing.T) {
	s := &scenario{}
	n := 0
	person := func(k string) string {
		n++
		pk := fmt.Sprintf("pkH%02d", n)
		s.person(pk, k, "2023-06-01", asyl, n)
		trainingTildeling(s, pk, k, "2023-09-01", "2023-09-01", "")
		return pk
	}
	samfunn := func(pk, k string, typ nirv1.HoursType, m int, h float64) {
		s.add(pk, k, "2024-12-01", &nirv1.TrainingHoursRegistered{Type: typ,
			Month: &nirv1.YearMonth{Year: 2024, Month: int32(m)}, Hours: h})
	}
	for i := range 5 {
		pk := person("0301")
		norskHours(s, pk, "0301", "2024-12-01", 2024, 3, 40)
		if i == 0 {
			samfunn(pk, "0301", nirv1.HoursType_HOURS_TYPE_SAMFUNNSKUNNSKAP_MODUL_1, 3, 25)
			samfunn(pk, "0301", nirv1.HoursType_HOURS_TYPE_SAMFUNNSKUNNSKAP_MODUL_2, 4, 25)
			samfunn(pk, "0301", nirv1.HoursType_HOURS_TYPE_SAMFUNNSKUNNSKAP_MODUL_3, 5, 25)
		}
	}
	for i := range 5 {
		pk := person("4601")
		if i == 0 {
			norskHours(s, pk, "4601", "2024-12-01", 2024, 3, 40)
			continue
		}
		samfunn(pk, "4601", nirv1.HoursType_HOURS_TYPE_SAMFUNNSKUNNSKAP_MODUL_1, 3, 25)
	}
	acceptedByRules(t, s, "2024-12-01")

	db := openTestDB(t, DBOptions{})
	applyAll(t, db, s.recs, 100)
	rows, _, err := db.PublishedStatistics(2024, rules.Date{}, rules.DefaultMinCount)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[Counter]bool{
		"0301": {CSamfunnHours: true},
		"4601": {CNorskHours: true, CSamfunnHours: true},
	}
	found := 0
	for i := range rows {
		r := &rows[i]
		w, ok := want[r.Area]
		if r.Level != LevelKommune || !ok {
			continue
		}
		found++
		if r.Get(CHoursPersons) != 5 {
			t.Errorf("%s persons with hours: %d, want 5", r.Area, r.Get(CHoursPersons))
		}
		for c, sup := range w {
			if r.IsSuppressed(c) != sup {
				t.Errorf("%s 2024 %s = %d (hundredths): suppressed %v, want %v", r.Area, CounterNames()[c], r.Get(c), r.IsSuppressed(c), sup)
			}
		}
	}
	if found != 2 {
		t.Fatalf("kommune rows found: %d, want 2", found)
	}
}

// TestFigures_IntroLMoveThenErasure: an IntroL participant (permit 2019-06-01, programme in
// 0301 Oslo from 2020-01-15) moves to 4601 Bergen on 2021-06-15; the regelmotor computes
// FLYTTET on the move date in Oslo (Product decisions 5b), Bergen offers a programme from
// 2021-08-01 (DOMAIN.md 7.4: the new kommune may offer one). Then the person is erased.
//
// By hand, 2021 (DOMAIN.md 6.2, 7.4, Product decisions 16: the old kommune keeps its own
// period): Oslo participants 1, ongoing 0, terminated 1 (computed 1, reason FLYTTET 1);
// Bergen participants 1, new 1, ongoing 1, terminated 0; the nation's terminated 1 (none
// lost, none twice) and participants 2 (the nation is the sum of its kommuner: see the
// report). Oslo's 2021 report 1 row, Bergen's none. After the erasure every figure and
// report row is the same (Product decisions 15: erasure leaves every statistic unchanged).
func TestFigures_IntroLMoveThenErasure(t *testing.T) {
	s := &scenario{}
	s.person("pkL", "0301", "2019-06-01", asyl, 1)
	s.tildeling("pkL", "0301", "2020-01-15")
	s.add("pkL", "0301", "2021-06-15", &nirv1.PersonMoved{ToKommune: "4601", Date: pd("2021-06-15")})
	regelmotor(t, s, "pkL", "2021-06-16", nirv1.TerminationRule_TERMINATION_RULE_FLYTTET)
	s.tildeling("pkL", "4601", "2021-08-01")
	acceptedByRules(t, s, "2021-12-01")

	db := openTestDB(t, DBOptions{})
	applyAll(t, db, s.recs, 100)
	check := func(when string) {
		t.Helper()
		wantCounts(t, db, 2021, "0301", map[Counter]int64{CParticipants: 1, COngoing: 0, CTerminated: 1, CTerminatedComputed: 1,
			CReasonBase + Counter(nirv1.TerminationReason_TERMINATION_REASON_FLYTTET): 1})
		wantCounts(t, db, 2021, "4601", map[Counter]int64{CParticipants: 1, CNew: 1, COngoing: 1, CTerminated: 0})
		wantCounts(t, db, 2021, "", map[Counter]int64{CParticipants: 2, CTerminated: 1})
		for k, want := range map[string]int{"0301": 1, "4601": 0} {
			rep, err := db.Terminated(ReportQuery{Year: 2021, Kommune: k})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Rows) != want {
				t.Errorf("%s: %s's 2021 report %d rows, want %d", when, k, len(rep.Rows), want)
			}
		}
	}
	check("before the erasure")
	n := len(s.recs)
	s.add("pkL", "4601", "2022-01-10", &nirv1.PersonErased{Reason: "test"})
	if _, err := db.Apply(s.recs[n:]); err != nil {
		t.Fatal(err)
	}
	check("after the erasure")
}

// regelmotor appends the termination the regelmotor computes for pk on date now, of the rule
// given, as nird's worker would (rules.DueTerminations on the person's folded stream).
func regelmotor(t *testing.T, s *scenario, pk, now string, rule nirv1.TerminationRule) {
	t.Helper()
	var evs []*nirv1.Event
	for _, r := range s.recs {
		if r.Event.GetPersonKey() == pk {
			evs = append(evs, r.Event)
		}
	}
	for _, ev := range rules.DueTerminations(rules.Fold(pk, evs), rules.MustParseDate(now)) {
		if ev.GetTerminationComputed().GetRule() == rule {
			ev.RecordedAt = timestamppb.New(ts(now))
			s.n++
			s.recs = append(s.recs, Record{Seq: uint64(len(s.recs) + 1), Event: ev})
			return
		}
	}
	t.Fatalf("no %s due for %s on %s", rule, pk, now)
}
