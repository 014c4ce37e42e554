package projections

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

const (
	asyl  = nirv1.PermitBasis_PERMIT_BASIS_ASYL_28
	ikke  = nirv1.TerminationReason_TERMINATION_REASON_IKKE_REGISTRERT
	arbei = nirv1.TerminationReason_TERMINATION_REASON_ARBEID
)

// terminations2022 is the scenario of the 2022 report (DOMAIN.md 2.5, 6.2, Product decisions
// 5): registered and computed terminations, a reason the kommune adds later ("Legg til" under
// IL; delete then register under IntroL), retractions, and corrections recorded after the
// 2022 ajourføring cut-off of 2023-02-28 (DOMAIN.md 6.3).
func terminations2022() *scenario {
	s := &scenario{}
	// A: IL, registered reason ARBEID.
	s.person("pkA", "0301", "2021-03-01", asyl, 1)
	s.tildeling("pkA", "0301", "2021-05-01")
	s.terminate("pkA", "0301", "2022-06-30", "2022-07-10", arbei)
	// B: IL, computed «Avslutningsårsak ikke registrert», nothing added.
	s.person("pkB", "0301", "2021-01-10", asyl, 2)
	s.tildeling("pkB", "0301", "2021-02-01")
	s.computed("pkB", "0301", "2022-03-31", "2021-02-01", "2022-04-01")
	// C: IL, computed, then the kommune adds UTDANNING_VGO on top (before the cut-off).
	s.person("pkC", "0301", "2021-02-01", asyl, 3)
	s.tildeling("pkC", "0301", "2021-03-01")
	s.computed("pkC", "0301", "2022-09-30", "2021-03-01", "2022-10-01")
	s.terminate("pkC", "0301", "2022-09-30", "2023-01-15", nirv1.TerminationReason_TERMINATION_REASON_UTDANNING_VGO)
	// D: IntroL, computed, deleted by the kommune, then registered NAV_TILTAK.
	s.person("pkD", "0301", "2019-06-01", asyl, 4)
	s.tildeling("pkD", "0301", "2020-01-15")
	cd := s.computed("pkD", "0301", "2022-01-15", "2020-01-15", "2022-01-16")
	s.add("pkD", "0301", "2022-02-01", &nirv1.ComputedTerminationDeleted{ComputedEventId: cd, Reason: "feil"})
	s.terminate("pkD", "0301", "2022-01-15", "2022-02-01", nirv1.TerminationReason_TERMINATION_REASON_NAV_TILTAK)
	// E: IL, registered termination retracted: not terminated.
	s.person("pkE", "0301", "2021-04-01", asyl, 5)
	s.tildeling("pkE", "0301", "2021-06-01")
	te := s.terminate("pkE", "0301", "2022-05-01", "2022-05-03", arbei)
	s.add("pkE", "0301", "2022-05-20", &nirv1.EventRetracted{EventId: te, Reason: "feil person"})
	// F: terminated in 2021: not in the 2022 report.
	s.person("pkF", "4601", "2021-01-05", asyl, 6)
	s.tildeling("pkF", "4601", "2021-02-01")
	s.terminate("pkF", "4601", "2021-12-31", "2022-01-05", nirv1.TerminationReason_TERMINATION_REASON_SYKDOM)
	// G: IntroL, computed, never corrected.
	s.person("pkG", "4601", "2019-02-01", asyl, 7)
	s.tildeling("pkG", "4601", "2019-11-30")
	s.computed("pkG", "4601", "2022-11-30", "2019-11-30", "2022-12-01")
	// H: IL, computed; the kommune adds ARBEID after the cut-off.
	s.person("pkH", "0301", "2021-05-01", asyl, 8)
	s.tildeling("pkH", "0301", "2021-06-01")
	s.computed("pkH", "0301", "2022-12-01", "2021-06-01", "2022-12-02")
	s.terminate("pkH", "0301", "2022-12-01", "2023-03-15", arbei)
	// I: IL, registered SYKDOM, retracted after the cut-off.
	s.person("pkI", "4601", "2021-06-01", asyl, 9)
	s.tildeling("pkI", "4601", "2021-07-01")
	ti := s.terminate("pkI", "4601", "2022-08-01", "2022-08-05", nirv1.TerminationReason_TERMINATION_REASON_SYKDOM)
	s.add("pkI", "4601", "2023-03-10", &nirv1.EventRetracted{EventId: ti, Reason: "feil"})
	return s
}

type reportLine struct {
	pk         string
	reason     nirv1.TerminationReason
	registered bool
	computed   bool
}

func reportLines(rep *Report) []reportLine {
	var out []reportLine
	for _, r := range rep.Rows {
		out = append(out, reportLine{r.PersonKey, r.Reason, r.ReasonRegistered(), r.Computed})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].pk < out[j].pk })
	return out
}

func newTestProjector(t *testing.T, feed Feed) *Projector {
	t.Helper()
	p, err := New(feed, Options{Dir: t.TempDir(), BatchSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// TestTerminatedReport2022 checks the report of terminated participants for 2022 (DOMAIN.md
// 6.2): every 2022 termination under both laws, «Avslutningsårsak ikke registrert» counted as
// such, a reason added later replacing it, and what an as-of replay at the 2022 ajourføring
// deadline (DOMAIN.md 6.3, Product decisions 7) shows instead.
func TestTerminatedReport2022(t *testing.T) {
	t.Parallel()
	s := terminations2022()
	feed := NewSliceFeed(s.recs)
	p := newTestProjector(t, feed)
	if _, err := p.CatchUp(bg); err != nil {
		t.Fatal(err)
	}
	cutoff := rules.LastDayOfFebruary(2023).Time().Add(24*time.Hour - time.Nanosecond)

	tests := []struct {
		name          string
		asOf          bool
		want          []reportLine
		with, without int
		listWithout   string // 0301's person list «Avslutningsårsak ikke registrert»
	}{
		{"Live", false, []reportLine{
			{"pkA", arbei, true, false},
			{"pkB", ikke, false, true},
			{"pkC", nirv1.TerminationReason_TERMINATION_REASON_UTDANNING_VGO, true, false},
			{"pkD", nirv1.TerminationReason_TERMINATION_REASON_NAV_TILTAK, true, false},
			{"pkG", ikke, false, true},
			{"pkH", arbei, true, false},
		}, 4, 2, "pkB"},
		{"AsOf2023-02-28", true, []reportLine{
			{"pkA", arbei, true, false},
			{"pkB", ikke, false, true},
			{"pkC", nirv1.TerminationReason_TERMINATION_REASON_UTDANNING_VGO, true, false},
			{"pkD", nirv1.TerminationReason_TERMINATION_REASON_NAV_TILTAK, true, false},
			{"pkG", ikke, false, true},
			{"pkH", ikke, false, true},
			{"pkI", nirv1.TerminationReason_TERMINATION_REASON_SYKDOM, true, false},
		}, 4, 3, "pkB,pkH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := func(db *DB) {
				rep, err := db.Terminated(ReportQuery{Year: 2022})
				if err != nil {
					t.Fatal(err)
				}
				got := reportLines(rep)
				if len(got) != len(tt.want) {
					t.Fatalf("report rows = %+v, want %+v", got, tt.want)
				}
				for i := range got {
					if got[i] != tt.want[i] {
						t.Errorf("row %d = %+v, want %+v", i, got[i], tt.want[i])
					}
				}
				if rep.WithReason != tt.with || rep.WithoutReason != tt.without {
					t.Errorf("with/without reason = %d/%d, want %d/%d", rep.WithReason, rep.WithoutReason, tt.with, tt.without)
				}
				only, err := db.Terminated(ReportQuery{Year: 2022, Registered: Without})
				if err != nil {
					t.Fatal(err)
				}
				if len(only.Rows) != tt.without {
					t.Errorf("«ikke registrert» filter gave %d rows, want %d", len(only.Rows), tt.without)
				}
				kan, _ := db.Terminated(ReportQuery{Year: 2022, Scheme: nirv1.Scheme_SCHEME_KAN_TILBYS})
				if len(kan.Rows) != 0 {
					t.Errorf("«kan tilbys» rows = %d, want 0 (all are rett og plikt)", len(kan.Rows))
				}
				introl, _ := db.Terminated(ReportQuery{Year: 2022, Law: nirv1.Law_LAW_INTROL})
				if len(introl.Rows) != 2 { // D and G
					t.Errorf("IntroL rows = %d, want 2", len(introl.Rows))
				}
				page, err := db.ListPersons(PersonQuery{Kommune: "0301", ReasonRegistered: Without})
				if err != nil || keys(page.Rows) != tt.listWithout {
					t.Errorf("person list without registered reason = %v, %v; want %s", page, err, tt.listWithout)
				}
				y2021, _ := db.Terminated(ReportQuery{Year: 2021})
				if len(y2021.Rows) != 1 || y2021.Rows[0].PersonKey != "pkF" {
					t.Errorf("2021 report = %+v, want only pkF", y2021.Rows)
				}
			}
			if !tt.asOf {
				if err := p.Use("", func(db *DB) error { run(db); return nil }); err != nil {
					t.Fatal(err)
				}
				return
			}
			db, err := p.AsOf(bg, AsOfOptions{RecordedUntil: cutoff})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			run(db)
		})
	}
}

// TestStatistics2022 checks the statistics of the 2022 scenario per kommune, fylke and nation
// (DOMAIN.md 2.5, 6.2, Product decisions 7).
func TestStatistics2022(t *testing.T) {
	t.Parallel()
	db := openTestDB(t, DBOptions{})
	applyAll(t, db, terminations2022().recs, 5)
	tests := []struct {
		level Level
		area  string
		want  map[Counter]int64
	}{
		{LevelKommune, "0301", map[Counter]int64{CParticipants: 6, CTerminated: 5, CTerminatedComputed: 1,
			CTerminatedRegistered: 4, CReasonNotRegistered: 1, CDirectWorkOrEducation: 3, COngoing: 1, CNew: 0}},
		{LevelFylke, "03", map[Counter]int64{CTerminated: 5}},
		{LevelKommune, "4601", map[Counter]int64{CParticipants: 2, CTerminated: 1, CReasonNotRegistered: 1, COngoing: 1}},
		{LevelNation, "", map[Counter]int64{CTerminated: 6, CReasonNotRegistered: 2, CParticipants: 8}},
	}
	for _, tt := range tests {
		rows, err := db.Statistics(2022, tt.level, tt.area)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 1 {
			t.Fatalf("%s %s: %d rows, want 1", tt.level, tt.area, len(rows))
		}
		for c, v := range tt.want {
			if got := rows[0].Get(c); got != v {
				t.Errorf("%s %s: counter %s = %d, want %d", tt.level, tt.area, CounterNames()[c], got, v)
			}
		}
	}
	rows, _ := db.Statistics(2022, LevelKommune, "0301")
	if got := rows[0].ShareDirectWorkOrEducation(); got != 0.6 {
		t.Errorf("share direct to work or education = %v, want 0.6", got)
	}
	if got := rows[0].Reason(ikke); got != 1 {
		t.Errorf("IKKE_REGISTRERT count = %d, want 1", got)
	}
	if _, err := db.Statistics(2022, "county", ""); err == nil {
		t.Error("unknown level accepted")
	}
}

// TestWriteReport checks the as-of result written to a directory as JSON and CSV.
func TestWriteReport(t *testing.T) {
	t.Parallel()
	db := openTestDB(t, DBOptions{})
	applyAll(t, db, terminations2022().recs, 100)
	dir := t.TempDir()
	files, err := db.WriteReport(dir, 2022, rules.MustDate(2023, 2, 28), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 5 {
		t.Fatalf("files = %v", files)
	}
	b, err := os.ReadFile(filepath.Join(dir, "terminated.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n != 7 { // header + 6 rows
		t.Errorf("terminated.csv has %d lines, want 7:\n%s", n, b)
	}
	if !strings.Contains(string(b), "pkB,0301,IL,RETT_OG_PLIKT,2021-02-01,2022-03-31,IKKE_REGISTRERT,nei,ja,") {
		t.Errorf("terminated.csv lacks pkB's row:\n%s", b)
	}
	p, _ := os.ReadFile(filepath.Join(dir, "persons.csv"))
	if strings.Contains(string(p), "national_id") || strings.Count(string(p), "\n") != 10 {
		t.Errorf("persons.csv must be the analyst view with 9 persons:\n%s", p)
	}
	// pkE's programme (IL, no sluttmål) has no computable end; pkA's is terminated.
	for _, want := range []string{",training_start_status,programme_start_status\n", "pkA,", ",completed,"} {
		if !strings.Contains(string(p), want) {
			t.Errorf("persons.csv lacks %q:\n%s", want, p)
		}
	}
	js, _ := os.ReadFile(filepath.Join(dir, "statistics.json"))
	if !strings.Contains(string(js), `"reason_not_registered": 2`) {
		t.Errorf("statistics.json lacks the nation's count of 2 not registered:\n%.600s", js)
	}
}

// TestStatisticsTrainingStartMidMonth: the statistics' «oppstart innen 3 måneder» share the
// regelmotor's definition (rules.TrainingStartDue, DOMAIN.md 3.5, Product decisions 6): hours
// for a month count from the start of the vedtak covering them, so a vedtak starting after the
// deadline in the deadline's own month is a late start, with or without hours for that month
// (issue 11).
func TestStatisticsTrainingStartMidMonth(t *testing.T) {
	t.Parallel()
	var s scenario
	birth := rules.MustDate(1994, 4, 4)
	for i, pk := range []string{"pkLate", "pkInTime"} {
		s.add(pk, "4601", "2023-02-15", &nirv1.PersonRegistered{
			Fodselsnummer: rules.SyntheticFodselsnummer(birth, 40+i), BirthDate: birth.Proto(), Sex: nirv1.Sex_SEX_MALE,
			PermitDate: pd("2022-11-01"), PermitBasis: nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, ArrivalDate: pd("2022-06-01"),
			SettlementDate: pd("2023-02-15"), SettlementKommune: "4601", SettledByAgreement: true})
	}
	// Deadline 2023-05-15. pkLate's vedtak starts 2023-05-20, pkInTime's 2023-05-10; both have
	// hours for May.
	for pk, start := range map[string]string{"pkLate": "2023-05-20", "pkInTime": "2023-05-10"} {
		s.add(pk, "4601", start, &nirv1.TrainingVedtakRegistered{Scheme: nirv1.TrainingScheme_TRAINING_SCHEME_RETT_OG_PLIKT,
			Type: nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING, VedtakDate: pd(start), StartDate: pd(start)})
		s.add(pk, "4601", "2023-06-02", &nirv1.TrainingHoursRegistered{Type: nirv1.HoursType_HOURS_TYPE_NORSK,
			Month: &nirv1.YearMonth{Year: 2023, Month: 5}, Hours: 20})
	}
	db := openTestDB(t, DBOptions{})
	applyAll(t, db, s.recs, 3)
	rows, err := db.Statistics(2023, LevelKommune, "4601")
	if err != nil || len(rows) != 1 {
		t.Fatalf("rows %v, err %v", rows, err)
	}
	if got, want := [2]int64{rows[0].Get(CTrainingStarted), rows[0].Get(CTrainingStartedWithin3m)}, [2]int64{2, 1}; got != want {
		t.Errorf("training started, within 3 months = %v, want %v", got, want)
	}
	row, err := db.Person("pkLate")
	if err != nil {
		t.Fatal(err)
	}
	if row.TrainingFirst != rules.MustDate(2023, 5, 20) {
		t.Errorf("pkLate's training start = %s, want 2023-05-20", row.TrainingFirst)
	}
}

// TestPersonListStans: a programme stopped by a stans ends on the stans date; while it waits for
// its avslutningsårsak the list's programme-end deadline is the registration within 30 days,
// and the regelmotor's due date is the day after (Product decisions 11).
func TestPersonListStans(t *testing.T) {
	t.Parallel()
	var s scenario
	s.person("pkS", "0301", "2022-10-01", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, 7)
	s.tildeling("pkS", "0301", "2022-12-01")
	s.add("pkS", "0301", "2022-12-01", &nirv1.SluttmalRegistered{Sluttmal: nirv1.Sluttmal_SLUTTMAL_ARBEID, Date: pd("2022-12-01")})
	s.add("pkS", "0301", "2024-03-10", &nirv1.ProgrammeVedtakRegistered{Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_STANS,
		VedtakDate: pd("2024-03-10"), FromDate: pd("2024-03-15")})
	db := openTestDB(t, DBOptions{})
	applyAll(t, db, s.recs, 10)
	row, err := db.Person("pkS")
	if err != nil {
		t.Fatal(err)
	}
	if row.ProgrammeEnd != rules.MustDate(2024, 4, 14) || !strings.Contains(row.ProgrammeEndNote, "stanset 2024-03-15") {
		t.Errorf("programme end %s %q, want 2024-04-14 and the stans", row.ProgrammeEnd, row.ProgrammeEndNote)
	}
	for now, want := range map[string]DeadlineStatus{"2024-03-20": StatusOK, "2024-04-10": StatusDueSoon, "2024-04-15": StatusOverdue} {
		if got := row.Deadlines(rules.MustParseDate(now), 30)[0]; got.Status != want && !(want == StatusOK && got.Status == StatusDueSoon) {
			t.Errorf("%s: %s %s, want %s", now, got.Name, got.Status, want)
		}
	}
	for now, want := range map[string]int{"2024-04-14": 0, "2024-04-15": 1} {
		due, err := db.DueTerminations(rules.MustParseDate(now))
		if err != nil {
			t.Fatal(err)
		}
		if len(due) != want || (want == 1 && due[0].GetTerminationComputed().GetRule() != nirv1.TerminationRule_TERMINATION_RULE_STANS) {
			t.Errorf("%s: due %v, want %d STANS", now, due, want)
		}
	}
}

// TestPersonListInactive: the filter «ingen registreringer siste 12 måneder» lists persons with
// an open programme and no registration for 12 months, from the day the threshold is reached
// until the regelmotor acts 30 days later (DOMAIN.md Product decisions 5c). A registration
// recorded later, whatever its effective date, starts the 12 months again.
func TestPersonListInactive(t *testing.T) {
	t.Parallel()
	var s scenario
	for i, pk := range []string{"pkQuiet", "pkBusy"} {
		s.person(pk, "0301", "2022-10-01", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, 20+i)
		s.tildeling(pk, "0301", "2023-01-09")
		s.add(pk, "0301", "2023-01-10", &nirv1.SluttmalRegistered{Sluttmal: nirv1.Sluttmal_SLUTTMAL_FULLFORT_VGO, Date: pd("2023-01-09")})
	}
	// pkBusy's kommune registers, in March 2024, an absence from 2023.
	s.add("pkBusy", "0301", "2024-03-01", &nirv1.AbsenceRegistered{Programme: nirv1.Programme_PROGRAMME_INTRO,
		Type: nirv1.AbsenceType_ABSENCE_TYPE_FRAVAER_GYLDIG, FromDate: pd("2023-05-02"), ToDate: pd("2023-05-03"), Hours: 10})
	db := openTestDB(t, DBOptions{})
	applyAll(t, db, s.recs, 4)
	for _, tt := range []struct {
		now  string
		want []string
	}{
		{"2024-01-09", nil},
		{"2024-01-10", []string{"pkQuiet"}},
		{"2025-03-02", []string{"pkBusy", "pkQuiet"}},
	} {
		page, err := db.ListPersons(PersonQuery{Kommune: "0301", Inactive: With, Now: rules.MustParseDate(tt.now)})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range page.Rows {
			got = append(got, r.PersonKey)
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%s: inactive %v, want %v", tt.now, got, tt.want)
		}
	}
	if _, err := db.ListPersons(PersonQuery{Kommune: "0301", Inactive: With}); err == nil {
		t.Error("the inactivity filter without now was accepted")
	}
	due, err := db.DueTerminations(rules.MustDate(2024, 2, 9))
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 1 || due[0].GetPersonKey() != "pkQuiet" || due[0].GetTerminationComputed().GetRule() != nirv1.TerminationRule_TERMINATION_RULE_INAKTIV ||
		rules.MustParseDate("2024-01-10") != mustDateOf(due[0].GetTerminationComputed().GetDate()) {
		t.Errorf("due on 2024-02-09: %v, want pkQuiet's INAKTIV dated 2024-01-10", due)
	}
}

func mustDateOf(p *nirv1.Date) rules.Date {
	d, _ := rules.DateOf(p)
	return d
}

// TestStatisticsKommuneStructure: statistics for a past year are reported on that year's
// kommune structure, or on today's, with the mapping (DOMAIN.md Product decisions 13, SSB
// classification 131). The models count under the numbers registered.
func TestStatisticsKommuneStructure(t *testing.T) {
	t.Parallel()
	var s scenario
	// A programme in 0101 Halden from 2019 (pre-2020 number), one in 3001 Halden from 2022 that
	// runs into 2024, and one in 1507 Ålesund from 2023 (split in 2024).
	s.person("pkH19", "0101", "2018-11-01", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, 31)
	s.tildeling("pkH19", "0101", "2019-02-01")
	s.person("pkH22", "3001", "2022-05-01", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, 32)
	s.tildeling("pkH22", "3001", "2022-08-01")
	s.add("pkH22", "3001", "2022-08-01", &nirv1.SluttmalRegistered{Sluttmal: nirv1.Sluttmal_SLUTTMAL_ARBEID, Date: pd("2022-08-01")})
	s.add("pkH22", "3101", "2024-01-10", &nirv1.TiltakRegistered{Code: nirv1.TiltakCode_TILTAK_CODE_KURS, FromDate: pd("2024-01-08"), ToDate: pd("2024-06-30")})
	s.person("pkA", "1507", "2023-01-01", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, 33)
	s.tildeling("pkA", "1507", "2023-03-01")
	s.add("pkA", "1507", "2023-03-01", &nirv1.SluttmalRegistered{Sluttmal: nirv1.Sluttmal_SLUTTMAL_ARBEID, Date: pd("2023-03-01")})
	db := openTestDB(t, DBOptions{})
	applyAll(t, db, s.recs, 5)

	areas := func(rows []StatRow) map[string]int64 {
		out := map[string]int64{}
		for _, r := range rows {
			out[r.Area] = r.Get(CParticipants)
		}
		return out
	}
	// 2019 on 2019's structure: 0101 Halden in 01 Østfold.
	rows, ms, err := db.StatisticsOn(2019, LevelKommune, "", rules.Date{})
	if err != nil || fmt.Sprint(areas(rows)) != "map[0101:1]" || len(ms) != 0 {
		t.Errorf("2019: %v %v %v", areas(rows), ms, err)
	}
	rows, _, _ = db.StatisticsOn(2019, LevelFylke, "", rules.Date{})
	if fmt.Sprint(areas(rows)) != "map[01:1]" {
		t.Errorf("2019 fylker: %v", areas(rows))
	}
	// 2019 on today's structure: 0101 is 3101, in 31 Østfold.
	rows, ms, _ = db.StatisticsOn(2019, LevelKommune, "", rules.MustDate(2026, 12, 1))
	if fmt.Sprint(areas(rows)) != "map[3101:1]" || fmt.Sprint(ms) != "[{0101 3101 []}]" {
		t.Errorf("2019 on today's structure: %v %v", areas(rows), ms)
	}
	// 2024 on 2024's structure: the 3001 programme counts as 3101; 1507 has no one number.
	rows, ms, _ = db.StatisticsOn(2024, LevelKommune, "", rules.Date{})
	if fmt.Sprint(areas(rows)) != "map[1507:1 3101:1]" || fmt.Sprint(ms) != "[{1507 1507 [1508 1580]} {3001 3101 []}]" {
		t.Errorf("2024: %v %v", areas(rows), ms)
	}
	// A kommune of another structure is mapped before filtering: 3101 asked for 2023 is 3001.
	rows, _, _ = db.StatisticsOn(2023, LevelKommune, "3101", rules.Date{})
	if fmt.Sprint(areas(rows)) != "map[3001:1]" {
		t.Errorf("2023, area 3101: %v", areas(rows))
	}
	// The person list files pkH22 under 3101, the number Halden's principal holds.
	if page, err := db.ListPersons(PersonQuery{Kommune: "3101"}); err != nil || page.Total != 2 {
		t.Errorf("3101's person list: %v, %v (want pkH19 and pkH22)", page, err)
	}
}
