package projections

import (
	"testing"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// TestDB_NorskDeadlineOpenLeave: DOMAIN.md 3.2, «Approved leave (godkjent permisjon) is added
// to the deadline». The person list stores the norsk deadline without a clock; a person on
// approved leave with no end date has no known deadline (not computable, «permisjon uten
// sluttdato»), not the date without the leave, by which the list showed the person overdue.
// When the leave ends the deadline moves by it.
func TestDB_NorskDeadlineOpenLeave(t *testing.T) {
	t.Parallel()
	s := &scenario{}
	s.person("p1", "0301", "2022-01-10", asyl, 21)
	s.add("p1", "0301", "2022-02-01", &nirv1.UtdanningsbakgrunnRegistered{UpperSecondaryCompleted: true, Date: pd("2022-02-01")})
	leave := s.add("p1", "0301", "2022-11-01", &nirv1.AbsenceRegistered{Programme: nirv1.Programme_PROGRAMME_OPPLAERING,
		Type: nirv1.AbsenceType_ABSENCE_TYPE_PERMISJON_FODSEL_ADOPSJON, FromDate: pd("2022-11-01")})
	db := openTestDB(t, DBOptions{})
	applyAll(t, db, s.recs, 100)

	norsk := func(now rules.Date) DeadlineState {
		t.Helper()
		dls, err := db.PersonDeadlines("p1", now, 30)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range dls {
			if d.Name == DeadlineNorsk {
				return d
			}
		}
		t.Fatalf("no norsk deadline in %+v", dls)
		return DeadlineState{}
	}
	// 18 months from 2022-01-10 is 2023-07-10, which has passed on 2023-09-01 while the person
	// is still on leave.
	if d := norsk(rules.MustDate(2023, 9, 1)); d.Status != StatusNotComputable || d.Note != "permisjon uten sluttdato" {
		t.Errorf("on open leave: norsk deadline %+v, want not computable «permisjon uten sluttdato»", d)
	}

	// The leave is corrected to end on 2023-03-31 (151 days): the deadline is 2023-12-08.
	s2 := &scenario{n: s.n}
	s2.recs = append(s2.recs, s.recs...)
	s2.add("p1", "0301", "2023-04-01", &nirv1.EventRetracted{EventId: leave})
	s2.add("p1", "0301", "2023-04-01", &nirv1.AbsenceRegistered{Programme: nirv1.Programme_PROGRAMME_OPPLAERING,
		Type: nirv1.AbsenceType_ABSENCE_TYPE_PERMISJON_FODSEL_ADOPSJON, FromDate: pd("2022-11-01"), ToDate: pd("2023-03-31")})
	applyAll(t, db, s2.recs[len(s.recs):], 100)
	if d := norsk(rules.MustDate(2023, 9, 1)); d.Status != StatusOK || d.Date != rules.MustDate(2023, 12, 8) {
		t.Errorf("after the leave: norsk deadline %+v, want ok 2023-12-08", d)
	}
}
