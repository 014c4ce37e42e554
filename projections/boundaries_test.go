package projections

// Boundaries of the statistics and the person list that no other test could fail on, found by
// mutation testing on 2026-12-07: each test below is the one that notices the comparison or
// condition it names changed by one (README "Statistics: what is counted", last paragraph).

import (
	"encoding/csv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// TestStatistics_OpenTrainingVedtakRunsFourYears: an open tildeling (no end date, no stans,
// not 6A) counts the person among those with a running training vedtak in its start year and
// the three after, not the fifth (trainingYears; README "Statistics: what is counted").
func TestStatistics_OpenTrainingVedtakRunsFourYears(t *testing.T) {
	s := &scenario{}
	s.person("pkO", "0301", "2021-10-01", asyl, 1)
	trainingTildeling(s, "pkO", "0301", "2022-03-01", "2022-03-01", "")
	acceptedByRules(t, s, "2022-04-01")
	db := openTestDB(t, DBOptions{})
	applyAll(t, db, s.recs, 100)
	for y := 2022; y <= 2025; y++ {
		if got := kommuneCount(t, db, y, "0301", CTrainingVedtak); got != 1 {
			t.Errorf("0301 %d persons with a running training vedtak: %d, want 1", y, got)
		}
	}
	if got := kommuneCount(t, db, 2026, "0301", CTrainingVedtak); got > 0 {
		t.Errorf("0301 2026 persons with a running training vedtak: %d, want none (4 statistical years from 2022)", got)
	}
}

// TestStatistics_StartOnTheDeadlineIsWithin3Months: training that starts on the day of the
// start deadline is in time, as the deadline status says (rules.StartState: overdue only after
// the deadline; DOMAIN.md 3.5, Product decisions 6); a day later is not. Both persons are in
// the target group, settled 2022-11-01, so the deadline is 2023-02-01.
func TestStatistics_StartOnTheDeadlineIsWithin3Months(t *testing.T) {
	s := &scenario{}
	s.person("pkOn", "0301", "2022-10-01", asyl, 1)
	s.person("pkLate", "0301", "2022-10-01", asyl, 2)
	trainingTildeling(s, "pkOn", "0301", "2023-02-01", "2023-02-01", "")
	trainingTildeling(s, "pkLate", "0301", "2023-02-02", "2023-02-02", "")
	acceptedByRules(t, s, "2023-03-01")
	db := openTestDB(t, DBOptions{})
	applyAll(t, db, s.recs, 100)
	for _, pk := range []string{"pkOn", "pkLate"} {
		r, err := db.Person(pk)
		if err != nil || r.StartDeadline.String() != "2023-02-01" {
			t.Fatalf("%s: start deadline %v (%v), want 2023-02-01", pk, r, err)
		}
	}
	st, w := kommuneCount(t, db, 2023, "0301", CTrainingStarted), kommuneCount(t, db, 2023, "0301", CTrainingStartedWithin3m)
	if st != 2 || w != 1 {
		t.Errorf("0301 2023: started %d, within 3 months %d; want 2 and 1 (the start on the deadline day)", st, w)
	}
}

// TestStatistics_TrainingStartCountsWhereItStarted: a training start counts in the kommune the
// person lived in when training started (st.KommuneOn), not where the person lives now: a
// start in 0301 in January 2023 is 0301's after a move to 4601 in June (Product decisions 6,
// 16: the old kommune keeps its own period).
func TestStatistics_TrainingStartCountsWhereItStarted(t *testing.T) {
	s := &scenario{}
	s.person("pkM", "0301", "2022-10-01", asyl, 1)
	trainingTildeling(s, "pkM", "0301", "2023-01-15", "2023-01-15", "2023-05-31")
	s.add("pkM", "0301", "2023-06-01", &nirv1.PersonMoved{ToKommune: "4601", Date: pd("2023-06-01")})
	acceptedByRules(t, s, "2023-07-01")
	db := openTestDB(t, DBOptions{})
	applyAll(t, db, s.recs, 100)
	if got := kommuneCount(t, db, 2023, "0301", CTrainingStarted); got != 1 {
		t.Errorf("0301 2023 training started: %d, want 1 (it started there)", got)
	}
	if got := kommuneCount(t, db, 2023, "4601", CTrainingStarted); got > 0 {
		t.Errorf("4601 2023 training started: %d, want none (the person came after the start)", got)
	}
}

// TestStatistics_MoveOnTheTildelingsStartDay: a person who moves away on the day an open
// tildeling in the old kommune starts counts there in that year only (the period ends with the
// move, Product decisions 16; countedTrainingPeriods takes a move on the start day as within
// the tildeling), not for the tildeling's four statistical years.
func TestStatistics_MoveOnTheTildelingsStartDay(t *testing.T) {
	s := &scenario{}
	s.person("pkD", "0301", "2022-10-01", asyl, 1)
	trainingTildeling(s, "pkD", "0301", "2023-05-15", "2023-06-01", "")
	s.add("pkD", "0301", "2023-06-01", &nirv1.PersonMoved{ToKommune: "4601", Date: pd("2023-06-01")})
	acceptedByRules(t, s, "2023-07-01")
	db := openTestDB(t, DBOptions{})
	applyAll(t, db, s.recs, 100)
	if got := kommuneCount(t, db, 2023, "0301", CTrainingVedtak); got != 1 {
		t.Errorf("0301 2023 persons with a running training vedtak: %d, want 1", got)
	}
	if got := kommuneCount(t, db, 2024, "0301", CTrainingVedtak); got > 0 {
		t.Errorf("0301 2024 persons with a running training vedtak: %d, want none (moved away on the start day in 2023)", got)
	}
}

// TestPublishedStatistics_HoursOfFewPersonsSuppressed: a kommune's hours are a sum over the
// persons given them, so 40 norsk hours given to one person publish that person's hours: the
// hours are suppressed where the count of persons with hours is (Product decisions 14: no
// figure that reveals an individual; rules.DisclosureTable.Contributors), though 40 is no count
// of 1 to 4. With the threshold off (system principal) nothing is suppressed.
func TestPublishedStatistics_HoursOfFewPersonsSuppressed(t *testing.T) {
	s := &scenario{}
	s.person("pkH", "0301", "2022-10-01", asyl, 1)
	trainingTildeling(s, "pkH", "0301", "2023-01-15", "2023-01-15", "")
	s.add("pkH", "0301", "2023-03-02", &nirv1.TrainingHoursRegistered{Type: nirv1.HoursType_HOURS_TYPE_NORSK,
		Month: &nirv1.YearMonth{Year: 2023, Month: 2}, Hours: 40})
	acceptedByRules(t, s, "2023-04-01")
	db := openTestDB(t, DBOptions{})
	applyAll(t, db, s.recs, 100)
	row := func(minCount int64) StatRow {
		t.Helper()
		rows, _, err := db.PublishedStatistics(2023, rules.Date{}, minCount)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if r.Level == LevelKommune && r.Area == "0301" {
				return r
			}
		}
		t.Fatalf("no 0301 row in %+v", rows)
		return StatRow{}
	}
	r := row(5)
	if r.Get(CNorskHours) != int64(HoursOf(40)) || r.Get(CHoursPersons) != 1 {
		t.Fatalf("0301 2023: %d hundredths of norsk hours, %d persons with hours; want 40 hours and 1", r.Get(CNorskHours), r.Get(CHoursPersons))
	}
	if !r.IsSuppressed(CHoursPersons) || !r.IsSuppressed(CNorskHours) {
		t.Errorf("0301 2023: persons with hours suppressed %v, norsk hours suppressed %v; want both (one person's hours)",
			r.IsSuppressed(CHoursPersons), r.IsSuppressed(CNorskHours))
	}
	if r := row(0); r.Suppressed != nil {
		t.Errorf("threshold 0 suppresses %v", r.Suppressed)
	}
}

// TestPersonQuery_DeadlineAndHoursBoundaries: the person list's filter boundaries (DOMAIN.md
// 6.1 «frist overskredet» / «innen N dager»): a deadline is overdue only once its date has
// passed (today is due, not overdue), «innen 30 dager» holds today and the 30th day but not the
// 31st, nor a deadline already overdue; the hours bounds include the bound itself.
func TestPersonQuery_DeadlineAndHoursBoundaries(t *testing.T) {
	now := rules.MustDate(2024, 6, 1)
	for _, c := range []struct {
		deadline        string
		overdue, within bool
	}{
		{"2024-05-31", true, false},
		{"2024-06-01", false, true},
		{"2024-07-01", false, true},
		{"2024-07-02", false, false},
	} {
		r := PersonRow{PersonKey: "pk", Kommune: "0301", NorskDeadline: rules.MustParseDate(c.deadline)}
		over := PersonQuery{Kommune: "0301", Deadline: DeadlineOverdue, Now: now}
		within := PersonQuery{Kommune: "0301", Deadline: DeadlineDueWithin, WithinDays: 30, Now: now}
		if got := over.match(&r); got != c.overdue {
			t.Errorf("norsk deadline %s on %s: overdue filter keeps %v, want %v", c.deadline, now, got, c.overdue)
		}
		if got := within.match(&r); got != c.within {
			t.Errorf("norsk deadline %s on %s: «innen 30 dager» keeps %v, want %v", c.deadline, now, got, c.within)
		}
	}
	r := PersonRow{PersonKey: "pk", Kommune: "0301", NorskHours: HoursOf(40)}
	for _, c := range []struct {
		min, max float64
		want     bool
	}{
		{40, 0, true}, {40.5, 0, false}, {0, 40, true}, {0, 39.5, false}, {40, 40, true},
	} {
		q := PersonQuery{Kommune: "0301", MinNorskHours: c.min, MaxNorskHours: c.max}
		if got := q.match(&r); got != c.want {
			t.Errorf("40 norsk hours, min %v max %v: kept %v, want %v", c.min, c.max, got, c.want)
		}
	}
}

// TestCSV_EveryColumnHoldsItsField: each CSV column (CSVColumns, README "Person list") holds
// the row's field of its name, with every field distinct, so two columns swapped fail; an
// erased person's national id and birth date read «slettet» (Product decisions 15), and the
// termination_computed column is empty without a termination.
func TestCSV_EveryColumnHoldsItsField(t *testing.T) {
	d := rules.MustParseDate
	r := PersonRow{
		PersonKey: "pk1", NationalID: "12345678901", Kommune: "0301", BirthDate: d("1990-05-17"),
		Sex: nirv1.Sex_SEX_FEMALE, Law: nirv1.Law_LAW_IL, PermitDate: d("2022-01-02"), SettlementDate: d("2022-02-03"),
		ProgrammeVedtak: true, ProgrammeKommune: "4601", ProgrammeStart: d("2022-03-04"), ProgrammeEnd: d("2024-03-05"),
		Tiltak: false, Sluttmal: nirv1.Sluttmal_SLUTTMAL_ARBEID, Integreringskontrakt: true,
		TerminationDate: d("2023-04-06"), TerminationReason: nirv1.TerminationReason_TERMINATION_REASON_UTDANNING_VGO, TerminationComputed: false,
		TrainingVedtak: true, TrainingScheme: nirv1.TrainingScheme_TRAINING_SCHEME_RETT_OG_PLIKT, TrainingStart: d("2022-05-07"),
		Norskmal: false, Utdanningsbakgrunn: Yes, NorskHours: HoursOf(100.25), SamfunnHours: HoursOf(20.5),
		NorskDeadline: d("2025-06-08"), NorskDeadlineNote: "note, with comma", StartDeadline: d("2022-05-09"),
		TrainingFirst: d("2022-05-10"), IntroScheme: nirv1.Scheme_SCHEME_RETT_OG_PLIKT, OpplaeringScheme: nirv1.Scheme_SCHEME_KAN_TILBYS,
		InactiveFrom: d("2023-01-11"),
	}
	want := map[string]string{
		"person_key": "pk1", "national_id": "12345678901", "kommune": "0301", "birth_date": "1990-05-17", "sex": "FEMALE",
		"law": "IL", "permit_date": "2022-01-02", "settlement_date": "2022-02-03", "programme_vedtak": "ja",
		"programme_kommune": "4601", "programme_start": "2022-03-04", "programme_end": "2024-03-05", "tiltak": "nei",
		"sluttmal": "ARBEID", "integreringskontrakt": "ja", "termination_date": "2023-04-06",
		"termination_reason": "UTDANNING_VGO", "termination_computed": "nei", "training_vedtak": "ja",
		"training_scheme": "RETT_OG_PLIKT", "training_start": "2022-05-07", "norskmal": "nei", "utdanningsbakgrunn": "ja",
		"norsk_hours": "100.25", "samfunnskunnskap_hours": "20.50", "norsk_deadline": "2025-06-08",
		"norsk_deadline_note": "note, with comma", "start_deadline": "2022-05-09", "training_first": "2022-05-10",
		"intro_scheme": "RETT_OG_PLIKT", "opplaering_scheme": "KAN_TILBYS", "inactive_from": "2023-01-11",
	}
	read := func(r *PersonRow) map[string]string {
		t.Helper()
		line := appendCSVRow(nil, r, true)
		recs, err := csv.NewReader(strings.NewReader(strings.Join(CSVColumns, ",") + "\n" + string(line))).ReadAll()
		if err != nil || len(recs) != 2 || len(recs[1]) != len(CSVColumns) {
			t.Fatalf("CSV %q: %v, %v", line, recs, err)
		}
		got := map[string]string{}
		for i, c := range recs[0] {
			got[c] = recs[1][i]
		}
		return got
	}
	got := read(&r)
	if len(want) != len(CSVColumns) {
		t.Fatalf("the test knows %d columns, CSVColumns has %d", len(want), len(CSVColumns))
	}
	for c, w := range want {
		if got[c] != w {
			t.Errorf("column %s = %q, want %q", c, got[c], w)
		}
	}
	erased := read(r.Erased())
	if erased["national_id"] != rules.ErasedText || erased["birth_date"] != rules.ErasedText {
		t.Errorf("erased person: national_id %q, birth_date %q; want %q", erased["national_id"], erased["birth_date"], rules.ErasedText)
	}
	r.TerminationDate = rules.Date{}
	if got := read(&r)["termination_computed"]; got != "" {
		t.Errorf("termination_computed without a termination = %q, want empty", got)
	}
}

// TestDB_ListPersons_ErasedSinceTheModels: a person erased since the models were made (a
// snapshot's, PersonQuery.Erased) is listed with the identity «slettet» and no birth date
// (Product decisions 15), in the list and in a sorted CSV, read from the models' file; the
// others keep theirs.
func TestDB_ListPersons_ErasedSinceTheModels(t *testing.T) {
	s := listScenario()
	db := openTestDB(t, DBOptions{})
	applyAll(t, db, s.recs, 100)
	erased := func(pk string) bool { return pk == "p1" }
	page, err := db.ListPersons(PersonQuery{Kommune: "0301", Sort: SortBirthDate, Erased: erased})
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, r := range page.Rows {
		switch {
		case r.PersonKey == "p1":
			seen++
			if r.NationalID != rules.ErasedText || !r.BirthDate.IsZero() {
				t.Errorf("erased p1 listed with national id %q, birth date %v", r.NationalID, r.BirthDate)
			}
		case r.NationalID == rules.ErasedText || r.BirthDate.IsZero():
			t.Errorf("%s, not erased, listed with national id %q, birth date %v", r.PersonKey, r.NationalID, r.BirthDate)
		}
	}
	if seen != 1 {
		t.Fatalf("p1 listed %d times in %d rows", seen, len(page.Rows))
	}
	var b strings.Builder
	if _, err := db.ExportCSV(&b, PersonQuery{Kommune: "0301", Sort: SortBirthDate, Erased: erased}, CSVOptions{IncludeNationalID: true}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(b.String(), "p1,"+rules.ErasedText+",0301,"+rules.ErasedText+","); n != 1 {
		t.Errorf("sorted CSV holds p1 erased %d times:\n%s", n, b.String())
	}
}

// TestApply_ErasedRowHasNoBirthDate: after PersonErased the person's row reads «slettet» with
// no birth date (Product decisions 15), also when the fold still reads the registration in
// clear (events whose identity no data key seals, as in a file folded before the key was
// destroyed); the person stays in the statistics.
func TestApply_ErasedRowHasNoBirthDate(t *testing.T) {
	s := &scenario{}
	s.person("pkE", "0301", "2022-10-01", asyl, 1)
	s.tildeling("pkE", "0301", "2022-12-01")
	s.add("pkE", "0301", "2026-12-01", &nirv1.PersonErased{Reason: "test"})
	db := openTestDB(t, DBOptions{})
	applyAll(t, db, s.recs, 100)
	r, err := db.Person("pkE")
	if err != nil {
		t.Fatal(err)
	}
	if r.NationalID != rules.ErasedText || !r.BirthDate.IsZero() {
		t.Errorf("erased person's row: national id %q, birth date %v; want %q and none", r.NationalID, r.BirthDate, rules.ErasedText)
	}
	if got := kommuneCount(t, db, 2022, "0301", CParticipants); got != 1 {
		t.Errorf("0301 2022 participants after the erasure: %d, want 1 (erasure keeps the statistics)", got)
	}
}

// TestAsOf_EventJustAfterTheCutOff: an as-of replay from the live file takes
// the messages the file does not hold from the stream (copyWalk.fetch), and there too an event
// recorded by the cut-off is kept, one recorded a nanosecond after it left out, as the
// stream's own replay decides (RecordedUntil: recorded_at at or before the cut-off).
func TestAsOf_EventJustAfterTheCutOff(t *testing.T) {
	cut := ts("2024-06-01")
	s := &scenario{}
	s.person("pkC", "0301", "2024-02-01", asyl, 1)
	at := s.add("pkC", "0301", "2024-03-01", &nirv1.DemandRegistered{Programme: nirv1.Programme_PROGRAMME_INTRO, Date: pd("2024-03-01")})
	after := s.add("pkC", "0301", "2024-03-02", &nirv1.OfferRegistered{Programme: nirv1.Programme_PROGRAMME_INTRO, Date: pd("2024-03-02")})
	s.add("pkC", "0301", "2024-04-01", &nirv1.DemandRegistered{Programme: nirv1.Programme_PROGRAMME_OPPLAERING, Date: pd("2024-04-01")})
	s.recs[1].Event.RecordedAt = timestamppb.New(cut)
	s.recs[2].Event.RecordedAt = timestamppb.New(cut.Add(time.Nanosecond))
	src := openTestDB(t, DBOptions{})
	// The live file lacks seqs 2 and 3 (a file with gaps): the copy fetches them.
	if _, err := src.Apply([]Record{s.recs[0], s.recs[3]}); err != nil {
		t.Fatal(err)
	}
	dst := openTestDB(t, DBOptions{})
	_, last, err := copyAttested(bg, newTrustingFeed(s.recs), src, dst, 0, cut, func(uint64, uint64) {})
	if err != nil {
		t.Fatal(err)
	}
	if err := dst.foldAll(last, func(uint64, uint64) {}); err != nil { // as Rebuild does after the copy
		t.Fatal(err)
	}
	check := func(what string, db *DB) {
		t.Helper()
		h, err := db.History("pkC")
		if err != nil {
			t.Fatal(err)
		}
		ids := map[string]bool{}
		for _, e := range h {
			ids[e.Event.GetId()] = true
		}
		if len(h) != 3 || !ids[at] || ids[after] {
			t.Errorf("%s holds %d events (recorded at the cut-off: %v, a nanosecond after: %v); want 3, the one at the cut-off, not the one after",
				what, len(h), ids[at], ids[after])
		}
	}
	check("as-of copy of the live file", dst)
	// The same replay from the feed (SliceFeed.Replay, as the stream's).
	p := newTestProjector(t, NewSliceFeed(s.recs))
	if _, err := p.CatchUp(bg); err != nil {
		t.Fatal(err)
	}
	db, err := p.AsOf(bg, AsOfOptions{RecordedUntil: cut})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	check("as-of replay of the feed", db)
}
