package projections

import (
	"slices"
	"testing"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// TestPersonList_OverdueAsThePersonPage: Found on 2026-12-06 (review of the read models): the
// person list's «frist overskredet» filter and PersonDeadlines missed deadlines the person
// page (rules.Evaluate) shows as passed. An IL refugee (rett og plikt to the programme and to
// training) settled in 0301 on 2024-02-01 (DOMAIN.md 1.2: the programme starts within 3
// months; 3.5 and Product decisions 6: so does training); no programme has started, training
// started late on 2024-07-01. On 2024-08-01 the page shows PROGRAMME_START and TRAINING_START
// OVERDUE. Before, the read model had no programme start deadline and called the late training
// start completed («etter fristen»), so the overdue list had 0 persons; now both are overdue
// there too, and every deadline the row shows has the page's state.
func TestPersonList_OverdueAsThePersonPage(t *testing.T) {
	var s scenario
	s.person("pkLate", "0301", "2024-01-01", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, 61)
	s.add("pkLate", "0301", "2024-07-02", &nirv1.TrainingVedtakRegistered{Scheme: nirv1.TrainingScheme_TRAINING_SCHEME_RETT_OG_PLIKT,
		Type: nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING, VedtakDate: pd("2024-06-20"), StartDate: pd("2024-07-01")})
	// Settled the same day, programme and training started in time: both starts are met.
	s.person("pkInTime", "0301", "2024-01-01", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, 62)
	s.tildeling("pkInTime", "0301", "2024-03-01")
	s.add("pkInTime", "0301", "2024-03-02", &nirv1.TrainingVedtakRegistered{Scheme: nirv1.TrainingScheme_TRAINING_SCHEME_RETT_OG_PLIKT,
		Type: nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING, VedtakDate: pd("2024-03-01"), StartDate: pd("2024-03-01")})
	db := openTestDB(t, DBOptions{})
	applyAll(t, db, s.recs, 5)
	now := rules.MustDate(2024, 8, 1)

	kinds := map[string]nirv1.DeadlineKind{
		DeadlineProgrammeEnd: nirv1.DeadlineKind_DEADLINE_KIND_PROGRAMME_END, DeadlineNorsk: nirv1.DeadlineKind_DEADLINE_KIND_NORSK,
		DeadlineTrainingStart: nirv1.DeadlineKind_DEADLINE_KIND_TRAINING_START, "programme_start": nirv1.DeadlineKind_DEADLINE_KIND_PROGRAMME_START, // DeadlineProgrammeStart
	}
	states := map[DeadlineStatus]nirv1.DeadlineState{
		StatusOK: nirv1.DeadlineState_DEADLINE_STATE_OK, StatusDueSoon: nirv1.DeadlineState_DEADLINE_STATE_DUE_SOON,
		StatusOverdue: nirv1.DeadlineState_DEADLINE_STATE_OVERDUE, StatusCompleted: nirv1.DeadlineState_DEADLINE_STATE_COMPLETED,
		StatusNotComputable: nirv1.DeadlineState_DEADLINE_STATE_CANNOT_COMPUTE,
	}
	for _, pk := range []string{"pkLate", "pkInTime"} {
		st, err := db.PersonStatus(pk, now)
		if err != nil {
			t.Fatal(err)
		}
		page := map[nirv1.DeadlineKind]nirv1.DeadlineState{}
		for _, d := range st.Deadlines {
			page[d.Kind] = d.State
		}
		dls, err := db.PersonDeadlines(pk, now, rules.DueSoonDays)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[nirv1.DeadlineKind]bool{}
		for _, d := range dls {
			k := kinds[d.Name]
			seen[k] = true
			if want, ok := page[k]; !ok || states[d.Status] != want {
				t.Errorf("%s: PersonDeadlines %s is %s (%s); the person page says %v", pk, d.Name, d.Status, d.Note, want)
			}
		}
		for _, k := range []nirv1.DeadlineKind{nirv1.DeadlineKind_DEADLINE_KIND_PROGRAMME_START, nirv1.DeadlineKind_DEADLINE_KIND_TRAINING_START} {
			if _, ok := page[k]; ok && !seen[k] {
				t.Errorf("%s: the person page shows %v (%v); PersonDeadlines does not", pk, k, page[k])
			}
		}
	}
	page, err := db.ListPersons(PersonQuery{Kommune: "0301", Deadline: DeadlineOverdue, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if page.Total != 1 || page.Rows[0].PersonKey != "pkLate" {
		t.Errorf("«frist overskredet» on %s: %d persons %v, want pkLate only", now, page.Total, keysOf(page.Rows))
	}
	// Before the programme start deadline (2024-05-01) it is due within 30 days on 2024-04-10
	// for pkLate, and met for pkInTime.
	soon, err := db.ListPersons(PersonQuery{Kommune: "0301", Deadline: DeadlineDueWithin, WithinDays: 30, Now: rules.MustDate(2024, 4, 10)})
	if err != nil {
		t.Fatal(err)
	}
	if soon.Total != 1 || soon.Rows[0].PersonKey != "pkLate" {
		t.Errorf("«innen 30 dager» on 2024-04-10: %d persons %v, want pkLate only", soon.Total, keysOf(soon.Rows))
	}
}

func keysOf(rows []PersonRow) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.PersonKey)
	}
	return out
}

// TestPersonList_YearIsTheReportsYear: Found on 2026-12-06 (review of the read models): the
// person list's year filter, which the console's Årsrapportering counts its gaps with, judged
// the row's latest programme only, and counted training for every year after its start, with
// no end. In kommune 0301 (DOMAIN.md 2.5, 6.2: terminations of the year without a registered
// reason; participants of the year as the statistics count them, DOMAIN.md 8, Product
// decisions 7):
//   - pkTwo: programme 1 terminated «ikke registrert» on 2023-05-01, a new one from 2024-01-15;
//   - pkLate: a programme from 2022, «ikke registrert» dated 2024-02-01;
//   - pkOld: a programme from 2017 terminated «ikke registrert» on 2019-03-01, training
//     2017-03-01 to 2019-03-01.
//
// Before, the gap «Avsluttet uten registrert avslutningsårsak» held pkLate for 2023 (not
// pkTwo), and pkOld for 2024; now each year's gap holds the persons the report of terminated
// participants of that year holds, and the year filter keeps the persons the statistics count
// in the year.
func TestPersonList_YearIsTheReportsYear(t *testing.T) {
	var s scenario
	s.person("pkTwo", "0301", "2019-05-01", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, 41)
	s.tildeling("pkTwo", "0301", "2020-05-01")
	s.computed("pkTwo", "0301", "2023-05-01", "2020-05-01", "2023-05-02")
	s.tildeling("pkTwo", "0301", "2024-01-15")

	s.person("pkLate", "0301", "2019-06-01", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, 42)
	s.tildeling("pkLate", "0301", "2022-02-01")
	s.computed("pkLate", "0301", "2024-02-01", "2022-02-01", "2024-02-02")

	s.person("pkOld", "0301", "2017-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, 96)
	s.tildeling("pkOld", "0301", "2017-03-01")
	s.add("pkOld", "0301", "2017-03-02", &nirv1.TrainingVedtakRegistered{Scheme: nirv1.TrainingScheme_TRAINING_SCHEME_RETT_OG_PLIKT,
		Type: nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING, VedtakDate: pd("2017-03-01"), StartDate: pd("2017-03-01"), EndDate: pd("2019-03-01")})
	s.computed("pkOld", "0301", "2019-03-01", "2017-03-01", "2019-03-02")
	db := openTestDB(t, DBOptions{})
	applyAll(t, db, s.recs, 5)

	list := func(q PersonQuery) []string {
		t.Helper()
		q.Kommune = "0301"
		page, err := db.ListPersons(q)
		if err != nil {
			t.Fatal(err)
		}
		return keysOf(page.Rows)
	}
	for y := 2017; y <= 2025; y++ {
		for _, reg := range []Filter{Without, With, Any} {
			rep, err := db.Terminated(ReportQuery{Year: y, Kommune: "0301", Registered: reg})
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, r := range rep.Rows {
				want = append(want, r.PersonKey)
			}
			slices.Sort(want)
			q := PersonQuery{Year: y, ReasonRegistered: reg}
			if reg == Any {
				q.Terminated = With
			}
			if got := list(q); !slices.Equal(got, want) {
				t.Errorf("%d, registered reason %v: the person list has %v, the report of terminated participants %v", y, reg, got, want)
			}
		}
	}
	if got := list(PersonQuery{Year: 2023, ReasonRegistered: Without}); !slices.Equal(got, []string{"pkTwo"}) {
		t.Errorf("2023 gap «Avsluttet uten registrert avslutningsårsak» = %v, want [pkTwo]", got)
	}
	if got := list(PersonQuery{Year: 2023, TerminationComputed: With}); !slices.Equal(got, []string{"pkTwo"}) {
		t.Errorf("2023 gap «Beregnede avslutninger» = %v, want [pkTwo]", got)
	}
	// Ran in the year: pkOld's programme and training both ended in 2019.
	for y, want := range map[int][]string{
		2016: nil,
		2018: {"pkOld"},
		2019: {"pkOld"},
		2020: {"pkTwo"},
		2023: {"pkLate", "pkTwo"},
		2024: {"pkLate", "pkTwo"},
	} {
		if got := list(PersonQuery{Year: y}); !slices.Equal(got, want) {
			t.Errorf("persons whose programme or training ran in %d: %v, want %v", y, got, want)
		}
	}
	// Not terminated in 2024 but ran in it: pkTwo (its 2024 programme runs); pkLate's ended.
	if got := list(PersonQuery{Year: 2024, Terminated: Without}); !slices.Equal(got, []string{"pkTwo"}) {
		t.Errorf("ran in 2024, not terminated in it: %v, want [pkTwo]", got)
	}
	// Without a year the filters still judge the row's programme: pkTwo's runs.
	if got := list(PersonQuery{ReasonRegistered: Without}); !slices.Equal(got, []string{"pkLate", "pkOld"}) {
		t.Errorf("«ikke registrert» without a year: %v, want [pkLate pkOld]", got)
	}
}

// TestPersonList_RowShowsTheKommunesOwnProgramme: Found on 2026-12-06 (review of the read
// models): the row showed the programme created last in stream order. An IL participant moves
// 0301 → 4601 on 2024-03-01; 4601 registers its programme from 2024-04-01 with a sluttmål; 0301
// then registers late its own programme from 2024-02-01 (dated before the move, which it may).
// Before, 4601's row, deadline status and filters described 0301's programme (no sluttmål, so
// 4601's gap «uten sluttmål» counted the person); now the row shows the programme of the
// kommune the person belongs to now (DOMAIN.md Product decisions 16: after a move the new
// kommune sees the person; the old one keeps its own period).
func TestPersonList_RowShowsTheKommunesOwnProgramme(t *testing.T) {
	var s scenario
	s.person("pkM", "0301", "2023-10-01", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, 51)
	s.add("pkM", "0301", "2024-03-02", &nirv1.PersonMoved{ToKommune: "4601", Date: pd("2024-03-01")})
	s.tildeling("pkM", "4601", "2024-04-01")
	s.add("pkM", "4601", "2024-04-02", &nirv1.SluttmalRegistered{Sluttmal: nirv1.Sluttmal_SLUTTMAL_ARBEID, Date: pd("2024-04-01")})
	s.add("pkM", "0301", "2024-04-10", &nirv1.ProgrammeVedtakRegistered{
		Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, VedtakDate: pd("2024-01-20"), FromDate: pd("2024-02-01")})
	db := openTestDB(t, DBOptions{})
	applyAll(t, db, s.recs, 1)
	page, err := db.ListPersons(PersonQuery{Kommune: "4601"})
	if err != nil || len(page.Rows) != 1 {
		t.Fatalf("4601's list: %v %v", page, err)
	}
	r := page.Rows[0]
	if r.ProgrammeKommune != "4601" || r.ProgrammeStart != rules.MustDate(2024, 4, 1) || r.Sluttmal != nirv1.Sluttmal_SLUTTMAL_ARBEID || r.ProgrammeEnd.IsZero() {
		t.Errorf("4601's row shows the programme of %s from %s (sluttmål %v, end %s), not its own from 2024-04-01",
			r.ProgrammeKommune, r.ProgrammeStart, r.Sluttmal, r.ProgrammeEnd)
	}
	gap, err := db.ListPersons(PersonQuery{Kommune: "4601", Law: nirv1.Law_LAW_IL, ProgrammeVedtak: With, Sluttmal: Without, Year: 2024})
	if err != nil {
		t.Fatal(err)
	}
	if gap.Total != 0 {
		t.Errorf("4601's gap «uten sluttmål» counts the person (%d), whose 4601 programme has a sluttmål", gap.Total)
	}
}

// TestPersonList_HoursFilterJudgesTheDataYear: Found on 2026-12-06 (review of the published
// figures): the Årsrapportering's gap «Vedtak om opplæring uten registrerte timer»
// (internal/web/reports.go: year, training_vedtak=with, norsk_hours=without) judged the
// person's norsk hours of all years. pkG's training vedtak in 0301 runs from 2023-02-01
// without end; 40 norsk hours are registered for March 2023 and none for 2024. Data for a year
// must be complete by the ajourføringsfrist (DOMAIN.md 6.3), and a year's registered norsk
// hours are part of that year's norsktilskudd basis (DOMAIN.md 3.4, 6.5). Before, pkG was
// in no year's gap; now it is in 2024's and not in 2023's, and the min/max bounds judge the
// year's hours too (pkH: 10 hours in 2023, 30 in 2024).
func TestPersonList_HoursFilterJudgesTheDataYear(t *testing.T) {
	var s scenario
	s.person("pkG", "0301", "2022-10-01", asyl, 71)
	s.add("pkG", "0301", "2023-02-01", &nirv1.TrainingVedtakRegistered{Scheme: nirv1.TrainingScheme_TRAINING_SCHEME_RETT_OG_PLIKT,
		Type: nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING, VedtakDate: pd("2023-02-01"), StartDate: pd("2023-02-01")})
	s.add("pkG", "0301", "2023-04-02", &nirv1.TrainingHoursRegistered{Type: nirv1.HoursType_HOURS_TYPE_NORSK,
		Month: &nirv1.YearMonth{Year: 2023, Month: 3}, Hours: 40})
	s.person("pkH", "0301", "2022-10-01", asyl, 72)
	s.add("pkH", "0301", "2023-02-01", &nirv1.TrainingVedtakRegistered{Scheme: nirv1.TrainingScheme_TRAINING_SCHEME_RETT_OG_PLIKT,
		Type: nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING, VedtakDate: pd("2023-02-01"), StartDate: pd("2023-02-01")})
	s.add("pkH", "0301", "2023-04-02", &nirv1.TrainingHoursRegistered{Type: nirv1.HoursType_HOURS_TYPE_NORSK,
		Month: &nirv1.YearMonth{Year: 2023, Month: 3}, Hours: 10})
	s.add("pkH", "0301", "2024-04-02", &nirv1.TrainingHoursRegistered{Type: nirv1.HoursType_HOURS_TYPE_NORSK,
		Month: &nirv1.YearMonth{Year: 2024, Month: 3}, Hours: 30})
	db := openTestDB(t, DBOptions{})
	applyAll(t, db, s.recs, 2)

	list := func(q PersonQuery) []string {
		t.Helper()
		q.Kommune = "0301"
		page, err := db.ListPersons(q)
		if err != nil {
			t.Fatal(err)
		}
		if page.Total != len(page.Rows) {
			t.Fatalf("total %d for %d rows", page.Total, len(page.Rows))
		}
		return keysOf(page.Rows)
	}
	for _, c := range []struct {
		name string
		q    PersonQuery
		want []string
	}{
		{"2024 gap «Vedtak om opplæring uten registrerte timer»", PersonQuery{Year: 2024, TrainingVedtak: With, NorskHours: Without}, []string{"pkG"}},
		{"2023 gap «Vedtak om opplæring uten registrerte timer»", PersonQuery{Year: 2023, TrainingVedtak: With, NorskHours: Without}, nil},
		{"2024 with norsk hours", PersonQuery{Year: 2024, NorskHours: With}, []string{"pkH"}},
		{"2023 with norsk hours", PersonQuery{Year: 2023, NorskHours: With}, []string{"pkG", "pkH"}},
		{"2024 at least 20 norsk hours", PersonQuery{Year: 2024, MinNorskHours: 20}, []string{"pkH"}},
		{"2023 at least 20 norsk hours", PersonQuery{Year: 2023, MinNorskHours: 20}, []string{"pkG"}},
		{"2023 at most 20 norsk hours", PersonQuery{Year: 2023, MaxNorskHours: 20}, []string{"pkH"}},
		// Without a year: the person's hours of all years, as before.
		{"any year, no norsk hours", PersonQuery{NorskHours: Without}, nil},
		{"any year, at least 40 norsk hours", PersonQuery{MinNorskHours: 40}, []string{"pkG", "pkH"}},
	} {
		if got := list(c.q); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
