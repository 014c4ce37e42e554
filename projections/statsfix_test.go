package projections

import (
	"testing"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// kommuneCount returns counter c of kommune k's row for the year, or -1 without a row.
func kommuneCount(t *testing.T, db *DB, year int, k string, c Counter) int64 {
	t.Helper()
	rows, err := db.Statistics(year, LevelKommune, k)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 {
		return -1
	}
	return rows[0].Get(c)
}

// nationCount returns counter c of the nation's row for the year.
func nationCount(t *testing.T, db *DB, year int, c Counter) int64 {
	t.Helper()
	rows, err := db.Statistics(year, LevelNation, "")
	if err != nil || len(rows) != 1 {
		t.Fatalf("nation rows %v %v", rows, err)
	}
	return rows[0].Get(c)
}

// TestStatistics_HoursOfTwoKommunerInOneMonth: a person who moves mid-month is given hours for
// that month by both kommuner (DOMAIN.md 3.1, 6.5: hours are part of the grant basis). Each
// kommune's hours count, in that kommune; a kommune re-sending its month replaces its own
// figure and leaves the other kommune's alone.
func TestStatistics_HoursOfTwoKommunerInOneMonth(t *testing.T) {
	s := &scenario{}
	s.person("pkH", "0301", "2022-10-01", asyl, 1)
	s.add("pkH", "0301", "2023-01-02", &nirv1.TrainingVedtakRegistered{Scheme: nirv1.TrainingScheme_TRAINING_SCHEME_RETT_OG_PLIKT,
		Type: nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING, VedtakDate: pd("2023-01-02"), StartDate: pd("2023-01-02")})
	s.add("pkH", "0301", "2023-05-15", &nirv1.PersonMoved{ToKommune: "4601", Date: pd("2023-05-15")})
	s.add("pkH", "4601", "2023-05-20", &nirv1.TrainingVedtakRegistered{Scheme: nirv1.TrainingScheme_TRAINING_SCHEME_RETT_OG_PLIKT,
		Type: nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING, VedtakDate: pd("2023-05-16"), StartDate: pd("2023-05-16")})
	may := &nirv1.YearMonth{Year: 2023, Month: 5}
	s.add("pkH", "0301", "2023-06-02", &nirv1.TrainingHoursRegistered{Type: nirv1.HoursType_HOURS_TYPE_NORSK, Month: may, Hours: 40})
	s.add("pkH", "4601", "2023-06-03", &nirv1.TrainingHoursRegistered{Type: nirv1.HoursType_HOURS_TYPE_NORSK, Month: may, Hours: 30})

	db := openTestDB(t, DBOptions{})
	applyAll(t, db, s.recs, 100)
	want := map[string]int64{"0301": 4000, "4601": 3000} // hundredths of an hour
	check := func(when string) {
		t.Helper()
		if got := nationCount(t, db, 2023, CNorskHours); got != want["0301"]+want["4601"] {
			t.Errorf("%s: nation 2023 norsk hours: got %d hundredths, want %d", when, got, want["0301"]+want["4601"])
		}
		for k, w := range want {
			if got := kommuneCount(t, db, 2023, k, CNorskHours); got != w {
				t.Errorf("%s: %s 2023 norsk hours: got %d hundredths, want %d", when, k, got, w)
			}
			if got := kommuneCount(t, db, 2023, k, CHoursPersons); got != 1 {
				t.Errorf("%s: %s 2023 persons with hours: got %d, want 1", when, k, got)
			}
		}
	}
	check("both kommuner reported")

	// 0301 corrects its May: the new total replaces its old one (a re-sent monthly total is
	// not added), 4601's stays.
	s.add("pkH", "0301", "2023-06-10", &nirv1.TrainingHoursRegistered{Type: nirv1.HoursType_HOURS_TYPE_NORSK, Month: may, Hours: 35})
	applyAll(t, db, s.recs[len(s.recs)-1:], 100)
	want["0301"] = 3500
	check("0301 corrected its month")
}

// TestStatistics_TrainingVedtakEndsAtItsOwnStans: each training tildeling runs until the stans
// that stops it (rules.TrainingPeriods), not until the person's last stans: a tildeling in
// 0301 stopped in 2021 counts in no later year, although a later tildeling in 4601 runs into
// 2023.
func TestStatistics_TrainingVedtakEndsAtItsOwnStans(t *testing.T) {
	s := &scenario{}
	tv := func(k string, typ nirv1.TrainingVedtakType, start string) {
		s.add("pkT", k, start, &nirv1.TrainingVedtakRegistered{Scheme: nirv1.TrainingScheme_TRAINING_SCHEME_RETT_OG_PLIKT,
			Type: typ, VedtakDate: pd(start), StartDate: pd(start)})
	}
	tildeling, stans := nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING, nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_STANS
	s.person("pkT", "0301", "2020-11-01", asyl, 1)
	tv("0301", tildeling, "2021-02-01")
	tv("0301", stans, "2021-06-01")
	s.add("pkT", "0301", "2021-12-01", &nirv1.PersonMoved{ToKommune: "4601", Date: pd("2021-12-01")})
	tv("4601", tildeling, "2022-01-10")
	tv("4601", stans, "2023-03-01")

	db := openTestDB(t, DBOptions{})
	applyAll(t, db, s.recs, 100)
	for _, c := range []struct {
		year    int
		kommune string
		want    int64
	}{{2021, "0301", 1}, {2022, "0301", 0}, {2023, "0301", 0}, {2022, "4601", 1}, {2023, "4601", 1}, {2024, "4601", 0}} {
		got := max(kommuneCount(t, db, c.year, c.kommune, CTrainingVedtak), 0)
		if got != c.want {
			t.Errorf("%s %d persons with a running training vedtak: got %d, want %d", c.kommune, c.year, got, c.want)
		}
	}
}

// TestStatistics_StartWithin3mOnlyForTargetGroup: the share «oppstart innen 3 måneder»
// (DOMAIN.md 3.5, Product decisions 6) is of the persons the 3-month rule applies to, the
// opplæring target group (the deadline status shows the rule for them only). A person outside
// it (17 at the permit date; IL 18–67) whose training starts could never count as started in
// time, so he counted in the denominator only; he now counts in neither.
func TestStatistics_StartWithin3mOnlyForTargetGroup(t *testing.T) {
	s := &scenario{}
	s.add("pkY", "0301", "2022-10-01", &nirv1.PersonRegistered{
		BirthDate: pd("2005-06-01"), Sex: nirv1.Sex_SEX_MALE, PermitDate: pd("2022-10-01"), PermitBasis: asyl,
		ArrivalDate: pd("2022-09-01"), SettlementDate: pd("2022-11-01"), SettlementKommune: "0301", SettledByAgreement: true})
	s.person("pkZ", "0301", "2022-10-01", asyl, 2) // 32 at the permit date, settled 2022-11-01
	for _, pk := range []string{"pkY", "pkZ"} {
		s.add(pk, "0301", "2022-12-01", &nirv1.TrainingVedtakRegistered{Scheme: nirv1.TrainingScheme_TRAINING_SCHEME_RETT_OG_PLIKT,
			Type: nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING, VedtakDate: pd("2022-12-01"), StartDate: pd("2022-12-01")})
	}
	db := openTestDB(t, DBOptions{})
	applyAll(t, db, s.recs, 100)
	st, w := kommuneCount(t, db, 2022, "0301", CTrainingStarted), kommuneCount(t, db, 2022, "0301", CTrainingStartedWithin3m)
	if st != 1 || w != 1 {
		t.Errorf("0301 2022: started %d, started within 3 months %d; want 1 and 1 (the person in the target group, "+
			"who started a month after settlement; not the 17-year-old outside it)", st, w)
	}
}
