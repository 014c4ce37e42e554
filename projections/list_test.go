package projections

import (
	"bytes"
	"encoding/csv"
	"errors"
	"reflect"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// listScenario: persons in 0301 with and without what the person list filters on (DOMAIN.md
// 6.1), one who moved away and one who moved in (the bostedskommune decides, DOMAIN.md 7.4).
func listScenario() *scenario {
	s := &scenario{}
	// P1: IL, vedtak, sluttmål, kontrakt, tiltak, training with utdanningsbakgrunn and hours.
	s.person("p1", "0301", "2023-01-10", asyl, 11)
	s.tildeling("p1", "0301", "2023-03-01")
	s.add("p1", "0301", "2023-03-05", &nirv1.SluttmalRegistered{Sluttmal: nirv1.Sluttmal_SLUTTMAL_ARBEID, Date: pd("2023-03-05")})
	s.add("p1", "0301", "2023-03-06", &nirv1.IntegreringskontraktRegistered{Date: pd("2023-03-06")})
	s.add("p1", "0301", "2023-03-07", &nirv1.TiltakRegistered{Code: nirv1.TiltakCode_TILTAK_CODE_SPRAKPRAKSIS, FromDate: pd("2023-03-07"), ToDate: pd("2023-06-07"), HoursPerWeek: 20})
	s.add("p1", "0301", "2023-03-01", &nirv1.OfferRegistered{Programme: nirv1.Programme_PROGRAMME_OPPLAERING, Date: pd("2023-03-01")})
	s.add("p1", "0301", "2023-03-01", &nirv1.TrainingVedtakRegistered{Scheme: nirv1.TrainingScheme_TRAINING_SCHEME_RETT_OG_PLIKT,
		Type: nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING, VedtakDate: pd("2023-03-01"), StartDate: pd("2023-03-01")})
	s.add("p1", "0301", "2023-03-02", &nirv1.UtdanningsbakgrunnRegistered{UpperSecondaryCompleted: false, Date: pd("2023-03-02")})
	s.add("p1", "0301", "2023-04-02", &nirv1.TrainingHoursRegistered{Type: nirv1.HoursType_HOURS_TYPE_NORSK, Month: &nirv1.YearMonth{Year: 2023, Month: 3}, Hours: 40.25})
	s.add("p1", "0301", "2023-05-02", &nirv1.TrainingHoursRegistered{Type: nirv1.HoursType_HOURS_TYPE_NORSK, Month: &nirv1.YearMonth{Year: 2023, Month: 4}, Hours: 60})
	// P2: IL, training vedtak but no utdanningsbakgrunn: norsk deadline cannot be computed.
	s.person("p2", "0301", "2023-02-01", asyl, 12)
	s.add("p2", "0301", "2023-04-01", &nirv1.TrainingVedtakRegistered{Scheme: nirv1.TrainingScheme_TRAINING_SCHEME_RETT_OG_PLIKT,
		Type: nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING, VedtakDate: pd("2023-04-01"), StartDate: pd("2023-04-01")})
	// P3: IntroL, programme terminated with a reason.
	s.person("p3", "0301", "2019-06-01", asyl, 13)
	s.tildeling("p3", "0301", "2019-09-01")
	s.terminate("p3", "0301", "2021-08-31", "2021-09-01", arbei)
	// P4: registered in 0301, moved to 4601: listed in 4601 only.
	s.person("p4", "0301", "2023-01-01", asyl, 14)
	s.add("p4", "0301", "2023-06-01", &nirv1.PersonMoved{ToKommune: "4601", Date: pd("2023-06-01")})
	// P5: registered in 5001, moved to 0301: listed in 0301.
	s.person("p5", "5001", "2022-05-01", asyl, 15)
	s.add("p5", "5001", "2023-01-01", &nirv1.PersonMoved{ToKommune: "0301", Date: pd("2023-01-01")})
	// P7: over 55 at the permit date under IL: «kan tilbys introduksjonsprogram» (DOMAIN.md 1.2).
	s.add("p7", "1103", "2023-02-01", &nirv1.PersonRegistered{Fodselsnummer: rules.SyntheticFodselsnummer(rules.MustDate(1960, 1, 2), 17),
		BirthDate: pd("1960-01-02"), PermitDate: pd("2023-01-15"), PermitBasis: asyl, ArrivalDate: pd("2022-10-01"),
		SettlementDate: pd("2023-02-01"), SettlementKommune: "1103", SettledByAgreement: true})
	// P6: registered, then the registration retracted: in no list.
	pr := s.person("p6", "0301", "2023-01-01", asyl, 16)
	s.add("p6", "0301", "2023-01-02", &nirv1.EventRetracted{EventId: pr, Reason: "feil person"})
	return s
}

func keys(rows []PersonRow) string {
	var ks []string
	for _, r := range rows {
		ks = append(ks, r.PersonKey)
	}
	return strings.Join(ks, ",")
}

// TestDB_ListPersons checks the person list filters, sorting and paging (DOMAIN.md 6.1).
func TestDB_ListPersons(t *testing.T) {
	t.Parallel()
	db := openTestDB(t, DBOptions{})
	applyAll(t, db, listScenario().recs, 4)
	now := rules.MustDate(2024, 1, 15)
	tests := []struct {
		name string
		q    PersonQuery
		want string
	}{
		{"All", PersonQuery{}, "p1,p2,p3,p5"},
		{"MedVedtak", PersonQuery{ProgrammeVedtak: With}, "p1,p3"},
		{"UtenVedtak", PersonQuery{ProgrammeVedtak: Without}, "p2,p5"},
		{"MedTiltak", PersonQuery{Tiltak: With}, "p1"},
		{"MedSluttmal", PersonQuery{Sluttmal: With}, "p1"},
		{"UtenSluttmal", PersonQuery{Sluttmal: Without}, "p2,p3,p5"},
		{"MedKontrakt", PersonQuery{Integreringskontrakt: With}, "p1"},
		{"MedUtdanningsbakgrunn", PersonQuery{Utdanningsbakgrunn: With}, "p1"},
		{"MedOpplaeringVedtak", PersonQuery{TrainingVedtak: With}, "p1,p2"},
		{"Avsluttet", PersonQuery{Terminated: With}, "p3"},
		{"AarsakArbeid", PersonQuery{TerminationReason: arbei}, "p3"},
		{"MedRegistrertAarsak", PersonQuery{ReasonRegistered: With}, "p3"},
		{"AarsakIkkeRegistrert", PersonQuery{ReasonRegistered: Without}, ""},
		{"IntroL", PersonQuery{Law: nirv1.Law_LAW_INTROL}, "p3"},
		{"RettOgPliktIntro", PersonQuery{IntroScheme: nirv1.Scheme_SCHEME_RETT_OG_PLIKT}, "p1,p2,p3,p5"},
		{"KanTilbys", PersonQuery{IntroScheme: nirv1.Scheme_SCHEME_KAN_TILBYS}, ""},
		{"MedNorskTimer", PersonQuery{NorskHours: With}, "p1"},
		{"OpplaeringUtenTimer", PersonQuery{TrainingVedtak: With, NorskHours: Without}, "p2"},
		{"AvslutningRegistrertAvKommunen", PersonQuery{TerminationComputed: Without}, "p3"},
		{"AvslutningBeregnet", PersonQuery{TerminationComputed: With}, ""},
		{"RettOgPliktOpplaeringIL", PersonQuery{Law: nirv1.Law_LAW_IL, OpplaeringScheme: nirv1.Scheme_SCHEME_RETT_OG_PLIKT, Utdanningsbakgrunn: Without}, "p2,p5"},
		// Data year 2023: p1 and p2 had programme or training in 2023; p3's programme ended
		// in 2021. In 2021 only p3's programme ran.
		{"Aar2023", PersonQuery{Year: 2023}, "p1,p2"},
		{"Aar2021", PersonQuery{Year: 2021}, "p3"},
		{"Aar2022", PersonQuery{Year: 2022}, ""},
		{"HoursAtLeast100", PersonQuery{MinNorskHours: 100}, "p1"},
		{"HoursAtMost50", PersonQuery{MaxNorskHours: 50, TrainingVedtak: With}, "p2"},
		{"SortHoursDesc", PersonQuery{Sort: SortNorskHours, Desc: true, TrainingVedtak: With}, "p1,p2"},
		{"SortProgrammeStart", PersonQuery{Sort: SortProgrammeStart, ProgrammeVedtak: With}, "p3,p1"},
		{"Page2", PersonQuery{PageSize: 3, PageToken: "3"}, "p5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := tt.q
			q.Kommune, q.Now = "0301", now
			page, err := db.ListPersons(q)
			if err != nil {
				t.Fatal(err)
			}
			if got := keys(page.Rows); got != tt.want {
				t.Errorf("rows = %s, want %s", got, tt.want)
			}
		})
	}

	page, err := db.ListPersons(PersonQuery{Kommune: "0301", PageSize: 2})
	if err != nil || page.Total != 4 || page.NextPageToken != "c1.person_key.asc.0.p2" || keys(page.Rows) != "p1,p2" {
		t.Errorf("first page = %+v, %v; want p1,p2 of 4 with a token after p2", page, err)
	}
	kan, _ := db.ListPersons(PersonQuery{Kommune: "1103", IntroScheme: nirv1.Scheme_SCHEME_KAN_TILBYS})
	if keys(kan.Rows) != "p7" {
		t.Errorf("«kan tilbys» in 1103 = %q, want p7", keys(kan.Rows))
	}
	moved, _ := db.ListPersons(PersonQuery{Kommune: "4601"})
	if keys(moved.Rows) != "p4" {
		t.Errorf("4601 list = %s, want p4 (moved there)", keys(moved.Rows))
	}
	for _, bad := range []PersonQuery{{Kommune: "1"}, {Kommune: "0301", Sort: "name"}, {Kommune: "0301", Deadline: DeadlineOverdue},
		{Kommune: "0301", PageToken: "x"}, {Kommune: "0301", PageSize: MaxPageSize + 1},
		{Kommune: "0301", PageToken: "c1.person_key.up.0.p2"}, {Kommune: "0301", PageToken: "c1.person_key.asc.x.p2"},
		{Kommune: "0301", PageToken: "c1.person_key.asc.0."},
		// A token of one order used with another.
		{Kommune: "0301", PageToken: "c1.person_key.asc.0.p2", Desc: true},
		{Kommune: "0301", PageToken: "c1.person_key.asc.0.p2", Sort: SortBirthDate}} {
		if _, err := db.ListPersons(bad); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("query %+v: err = %v, want ErrInvalidArgument", bad, err)
		}
	}
}

// TestDB_Deadlines checks deadline statuses computed at query time from stored dates (DOMAIN.md
// 3.2, 3.5, Product decisions 3, 4, 6).
func TestDB_Deadlines(t *testing.T) {
	t.Parallel()
	db := openTestDB(t, DBOptions{})
	applyAll(t, db, listScenario().recs, 100)

	p1, err := db.Person("p1")
	if err != nil {
		t.Fatal(err)
	}
	// IL, no vgo: 36 months from tilbud om oppstart 2023-03-01 (version 2023-08-01 counts
	// from the offer; the earlier version from when rett og plikt arose).
	if p1.NorskDeadline.IsZero() {
		t.Fatalf("p1 has no norsk deadline: %+v", p1)
	}
	// Sluttmål ARBEID (others): 2 years from 2023-03-01.
	if want := rules.MustDate(2025, 3, 1); p1.ProgrammeEnd != want {
		t.Errorf("p1 programme end = %s, want %s", p1.ProgrammeEnd, want)
	}
	tests := []struct {
		name   string
		pk     string
		now    rules.Date
		within int
		want   map[string]DeadlineStatus
	}{
		{"ProgrammeOK", "p1", rules.MustDate(2024, 1, 1), 30, map[string]DeadlineStatus{DeadlineProgrammeEnd: StatusOK, DeadlineTrainingStart: StatusCompleted}},
		{"ProgrammeDueSoon", "p1", rules.MustDate(2025, 2, 20), 30, map[string]DeadlineStatus{DeadlineProgrammeEnd: StatusDueSoon}},
		{"ProgrammeOverdue", "p1", rules.MustDate(2025, 3, 2), 30, map[string]DeadlineStatus{DeadlineProgrammeEnd: StatusOverdue}},
		{"MissingUtdanningsbakgrunn", "p2", rules.MustDate(2024, 1, 1), 30, map[string]DeadlineStatus{DeadlineNorsk: StatusNotComputable}},
		{"Terminated", "p3", rules.MustDate(2024, 1, 1), 30, map[string]DeadlineStatus{DeadlineProgrammeEnd: StatusCompleted}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dls, err := db.PersonDeadlines(tt.pk, tt.now, tt.within)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]DeadlineState{}
			for _, d := range dls {
				got[d.Name] = d
			}
			for name, st := range tt.want {
				if got[name].Status != st {
					t.Errorf("%s = %+v, want status %s", name, got[name], st)
				}
			}
		})
	}
	p2, _ := db.PersonDeadlines("p2", rules.MustDate(2024, 1, 1), 0)
	for _, d := range p2 {
		if d.Name == DeadlineNorsk && d.Note != "mangler utdanningsbakgrunn" {
			t.Errorf("p2 norsk note = %q, want «mangler utdanningsbakgrunn»", d.Note)
		}
	}
	over, _ := db.ListPersons(PersonQuery{Kommune: "0301", Deadline: DeadlineOverdue, Now: rules.MustDate(2025, 3, 2)})
	if !strings.Contains(keys(over.Rows), "p1") {
		t.Errorf("overdue list = %s, want p1 in it", keys(over.Rows))
	}
	soon, _ := db.ListPersons(PersonQuery{Kommune: "0301", Deadline: DeadlineDueWithin, WithinDays: 30, Now: rules.MustDate(2025, 2, 20)})
	if !strings.Contains(keys(soon.Rows), "p1") {
		t.Errorf("due-within-30-days list = %s, want p1 in it", keys(soon.Rows))
	}
	// The detail view agrees with the list's stored dates.
	status, err := db.PersonStatus("p1", rules.MustDate(2024, 1, 1))
	if err != nil {
		t.Fatal(err)
	}
	var sawEnd bool
	for _, d := range status.Deadlines {
		if d.Kind == nirv1.DeadlineKind_DEADLINE_KIND_PROGRAMME_END {
			sawEnd = true
			if d.Date != p1.ProgrammeEnd {
				t.Errorf("regelmotor programme end %s, person list %s", d.Date, p1.ProgrammeEnd)
			}
		}
		if d.Kind == nirv1.DeadlineKind_DEADLINE_KIND_NORSK && d.Date != p1.NorskDeadline {
			t.Errorf("regelmotor norsk deadline %s, person list %s", d.Date, p1.NorskDeadline)
		}
	}
	if !sawEnd || status.Law != nirv1.Law_LAW_IL {
		t.Errorf("status = %+v", status)
	}
	if _, err := db.PersonDeadlines("nobody", rules.MustDate(2024, 1, 1), 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown person: err = %v, want ErrNotFound", err)
	}
}

// TestDB_ExportCSV checks the CSV columns and that national ids appear only in the kommune view.
func TestDB_ExportCSV(t *testing.T) {
	t.Parallel()
	s := listScenario()
	db := openTestDB(t, DBOptions{})
	applyAll(t, db, s.recs, 100)
	fnr := s.recs[0].Event.GetPersonRegistered().GetFodselsnummer()
	tests := []struct {
		name   string
		opt    CSVOptions
		withID bool
	}{
		{"Analyst", CSVOptions{}, false},
		{"Kommune", CSVOptions{IncludeNationalID: true}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			n, err := db.ExportCSV(&b, PersonQuery{Kommune: "0301"}, tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			recs, err := csv.NewReader(&b).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if n != 4 || len(recs) != 5 {
				t.Fatalf("%d rows written, %d CSV records; want 4 and 5", n, len(recs))
			}
			cols := len(CSVColumns)
			if !tt.withID {
				cols--
			}
			if len(recs[0]) != cols {
				t.Errorf("header has %d columns, want %d", len(recs[0]), cols)
			}
			hasID := strings.Contains(b.String()+strings.Join(recs[1], ","), fnr)
			if hasID != tt.withID {
				t.Errorf("national id present = %v, want %v", hasID, tt.withID)
			}
			row := map[string]string{}
			for i, c := range recs[0] {
				row[c] = recs[1][i]
			}
			if row["person_key"] != "p1" || row["norsk_hours"] != "100.25" || row["sluttmal"] != "ARBEID" || row["utdanningsbakgrunn"] != "nei" {
				t.Errorf("p1 row = %v", row)
			}
		})
	}
}

// TestDB_History checks the audit history: who, when, what, and which later events corrected it.
func TestDB_History(t *testing.T) {
	t.Parallel()
	s := terminations2022()
	db := openTestDB(t, DBOptions{})
	applyAll(t, db, s.recs, 100)
	tests := []struct {
		pk        string
		kind      string
		correct   string
		effective bool
	}{
		{"pkC", "termination_computed", CorrectionReason, false},
		{"pkD", "termination_computed", CorrectionDeleted, false},
		{"pkE", "termination_registered", CorrectionRetracted, false},
		{"pkA", "termination_registered", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.pk, func(t *testing.T) {
			h, err := db.History(tt.pk)
			if err != nil {
				t.Fatal(err)
			}
			var found bool
			for _, e := range h {
				if e.Kind != tt.kind {
					continue
				}
				found = true
				if e.Effective != tt.effective {
					t.Errorf("effective = %v, want %v", e.Effective, tt.effective)
				}
				if tt.correct == "" && len(e.CorrectedBy) != 0 || tt.correct != "" && (len(e.CorrectedBy) != 1 || e.CorrectedBy[0].Kind != tt.correct) {
					t.Errorf("corrected by %+v, want one %q", e.CorrectedBy, tt.correct)
				}
				if e.Event.GetActor().GetSubject() == "" || e.Event.GetRecordedAt() == nil {
					t.Errorf("entry lacks who or when: %v", e.Event)
				}
			}
			if !found {
				t.Fatalf("no %s in history %+v", tt.kind, h)
			}
		})
	}
	if _, err := db.History("nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown person: err = %v", err)
	}
}

// TestDB_ListPersonsCache checks that the decoded-row cache follows every applied change: a
// person moving in, a correction, and a person moving out.
func TestDB_ListPersonsCache(t *testing.T) {
	t.Parallel()
	s := listScenario()
	db := openTestDB(t, DBOptions{})
	applyAll(t, db, s.recs, 100)
	list := func(k string, q PersonQuery) string {
		q.Kommune = k
		p, err := db.ListPersons(q)
		if err != nil {
			t.Fatal(err)
		}
		return keys(p.Rows)
	}
	if got := list("0301", PersonQuery{}); got != "p1,p2,p3,p5" {
		t.Fatalf("before: %s", got)
	}
	list("4601", PersonQuery{})
	n := len(s.recs)
	s.add("p4", "4601", "2024-01-01", &nirv1.PersonMoved{ToKommune: "0301", Date: pd("2024-01-01")})
	s.add("p1", "0301", "2024-01-02", &nirv1.PersonMoved{ToKommune: "5001", Date: pd("2024-01-02")})
	tk := s.add("p2", "0301", "2024-01-03", &nirv1.UtdanningsbakgrunnRegistered{UpperSecondaryCompleted: true, Date: pd("2024-01-03")})
	applyAll(t, db, s.recs[n:], 1)
	// The cached lists were patched, not dropped, and equal what the file holds.
	for _, k := range []string{"0301", "4601"} {
		db.rowsMu.Lock()
		e, gen := db.rowCache[k], db.kommuneGen[k]
		db.rowsMu.Unlock()
		if e == nil || e.gen != gen {
			t.Errorf("%s: cached list not patched (entry %v, generation %d)", k, e != nil, gen)
			continue
		}
		var fresh []PersonRow
		db.view(func(tx *bolt.Tx) error {
			return scanKommune(tx, k, func(r *PersonRow) error { fresh = append(fresh, *r); return nil })
		})
		if len(fresh) != len(e.rows) {
			t.Fatalf("%s: cached %d rows, file %d", k, len(e.rows), len(fresh))
		}
		for i := range fresh {
			if !reflect.DeepEqual(fresh[i], e.rows[i]) {
				t.Errorf("%s row %d: cached %+v, file %+v", k, i, e.rows[i], fresh[i])
			}
		}
	}
	if got := list("0301", PersonQuery{}); got != "p2,p3,p4,p5" {
		t.Errorf("after moves: 0301 = %s, want p2,p3,p4,p5", got)
	}
	if got := list("4601", PersonQuery{}); got != "" {
		t.Errorf("after moves: 4601 = %q, want empty", got)
	}
	if got := list("0301", PersonQuery{Utdanningsbakgrunn: With}); got != "p2" {
		t.Errorf("after utdanningsbakgrunn: %s, want p2", got)
	}
	n = len(s.recs)
	s.add("p2", "0301", "2024-01-04", &nirv1.EventRetracted{EventId: tk, Reason: "feil"})
	applyAll(t, db, s.recs[n:], 1)
	if got := list("0301", PersonQuery{Utdanningsbakgrunn: With}); got != "" {
		t.Errorf("after retraction: %q, want nobody", got)
	}
}

// TestDB_ExportCSVSorted checks a sorted export has the order of the sorted list.
func TestDB_ExportCSVSorted(t *testing.T) {
	t.Parallel()
	db := openTestDB(t, DBOptions{})
	applyAll(t, db, population(11, 200, []string{"0301"}), 500)
	q := PersonQuery{Kommune: "0301", Sort: SortBirthDate, Desc: true, PageSize: MaxPageSize}
	page, err := db.ListPersons(q)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	n, err := db.ExportCSV(&b, q, CSVOptions{})
	if err != nil || n != page.Total || n < 150 {
		t.Fatalf("exported %d rows, %v; list has %d", n, err, page.Total)
	}
	recs, _ := csv.NewReader(&b).ReadAll()
	for i, r := range page.Rows {
		if recs[i+1][0] != r.PersonKey {
			t.Fatalf("row %d = %s, want %s", i, recs[i+1][0], r.PersonKey)
		}
	}
}

// TestDB_ExportCSVDisk checks that an export's temporary file draws its bytes from the
// ExportDisk until its client has them, and that an export over the budget fails before it
// writes a byte.
func TestDB_ExportCSVDisk(t *testing.T) {
	t.Parallel()
	s := listScenario()
	db := openTestDB(t, DBOptions{})
	applyAll(t, db, s.recs, 100)
	q := PersonQuery{Kommune: "0301"}

	t.Run("Held", func(t *testing.T) {
		disk := NewExportDisk(1 << 20)
		var held int64
		w := writerFunc(func(p []byte) (int, error) {
			if held == 0 {
				held = disk.Used()
			}
			return len(p), nil
		})
		if _, err := db.ExportCSV(w, q, CSVOptions{Disk: disk}); err != nil {
			t.Fatal(err)
		}
		if held < 100 {
			t.Errorf("while the CSV went to its client the budget held %d bytes, want its size", held)
		}
		if u := disk.Used(); u != 0 {
			t.Errorf("after the export the budget holds %d bytes, want 0", u)
		}
	})
	t.Run("ErrExportDisk", func(t *testing.T) {
		disk := NewExportDisk(100)
		var b bytes.Buffer
		_, err := db.ExportCSV(&b, q, CSVOptions{Disk: disk})
		if !errors.Is(err, ErrExportDisk) {
			t.Fatalf("err = %v, want ErrExportDisk", err)
		}
		if b.Len() != 0 || disk.Used() != 0 {
			t.Errorf("%d bytes written, %d held after a refused export; want none", b.Len(), disk.Used())
		}
	})
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestDB_ListPersons_PagesWhileRowsArrive: a person registered, or one leaving the filter,
// between two page reads neither repeats a row on the next page nor skips one. With the
// page's offset as its token, p0 (sorting first) pushed p2 onto the second page again, and
// p1 leaving the list pulled p3 back onto the first, out of the client's reach.
func TestDB_ListPersons_PagesWhileRowsArrive(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		between func(s *scenario)
		q       PersonQuery
		pages   string
	}{
		{"Arrives", func(s *scenario) { s.person("p0", "0301", "2023-01-05", asyl, 18) }, PersonQuery{}, "p1,p2|p3,p5"},
		{"Leaves", func(s *scenario) {
			s.add("p1", "0301", "2023-07-01", &nirv1.PersonMoved{ToKommune: "4601", Date: pd("2023-07-01")})
		}, PersonQuery{}, "p1,p2|p3,p5"},
		{"ArrivesDesc", func(s *scenario) { s.person("p9", "0301", "2023-01-05", asyl, 19) }, PersonQuery{Desc: true}, "p5,p3|p2,p1"},
		// By hours, most first (p1 100, the rest 0, ties by person key reversed): p8 with 50
		// hours arrives before the cursor, which carries the sort value as well.
		{"ArrivesByHoursDesc", func(s *scenario) {
			s.person("p8", "0301", "2023-02-01", asyl, 18)
			s.add("p8", "0301", "2023-04-01", &nirv1.TrainingVedtakRegistered{Scheme: nirv1.TrainingScheme_TRAINING_SCHEME_RETT_OG_PLIKT,
				Type: nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING, VedtakDate: pd("2023-04-01"), StartDate: pd("2023-04-01")})
			s.add("p8", "0301", "2023-05-02", &nirv1.TrainingHoursRegistered{Type: nirv1.HoursType_HOURS_TYPE_NORSK, Month: &nirv1.YearMonth{Year: 2023, Month: 4}, Hours: 50})
		}, PersonQuery{Sort: SortNorskHours, Desc: true}, "p1,p5|p3,p2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := listScenario()
			n := len(s.recs)
			tt.between(s)
			db := openTestDB(t, DBOptions{})
			applyAll(t, db, s.recs[:n], 4)
			q := tt.q
			q.Kommune, q.PageSize = "0301", 2
			first, err := db.ListPersons(q)
			if err != nil {
				t.Fatal(err)
			}
			applyAll(t, db, s.recs[n:], 4)
			q.PageToken = first.NextPageToken
			second, err := db.ListPersons(q)
			if err != nil {
				t.Fatal(err)
			}
			got := keys(first.Rows) + "|" + keys(second.Rows)
			if got != tt.pages {
				t.Errorf("pages = %s, want %s", got, tt.pages)
			}
		})
	}
}
