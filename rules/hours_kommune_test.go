package rules

import (
	"testing"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

func evHours(id, kommune string, y, m int32, hours float64) *nirv1.Event {
	e := newEv(id, kommune)
	e.Payload = &nirv1.Event_TrainingHoursRegistered{TrainingHoursRegistered: &nirv1.TrainingHoursRegistered{
		Type: nirv1.HoursType_HOURS_TYPE_NORSK, Month: &nirv1.YearMonth{Year: y, Month: m}, Hours: hours}}
	return e
}

// TestFold_HoursPerKommune: a month's hours are kept per kommune that registered them (a person
// who moves mid-month has hours from both, DOMAIN.md 3.1, 6.5); a kommune re-sending a month
// replaces its own figure, also under its number from after a reform (Product decisions 13):
// 3101 Halden for 0101 Halden, and 3025 Asker, merged in 2020 from 0220 Asker, 0627 Røyken and
// 0628 Hurum, for the person's Asker of December 2019.
func TestFold_HoursPerKommune(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ before, after, want string }{{"0101", "3101", "0101"}, {"0220", "3025", "0220"}} {
		s := Fold("pk", []*nirv1.Event{
			evPerson("01", c.before, "1990-05-01", "2018-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28),
			evHours("02", c.before, 2019, 12, 40),
			evHours("03", "0301", 2019, 12, 10), // another kommune's hours for the month stay
			evHours("04", c.after, 2019, 12, 35),
		})
		want := map[HoursKey]float64{
			{Type: nirv1.HoursType_HOURS_TYPE_NORSK, Year: 2019, Month: 12, Kommune: c.want}: 35,
			{Type: nirv1.HoursType_HOURS_TYPE_NORSK, Year: 2019, Month: 12, Kommune: "0301"}: 10,
		}
		if len(s.Training.Hours) != len(want) {
			t.Errorf("%s then %s: hours %v, want %v", c.before, c.after, s.Training.Hours, want)
			continue
		}
		for k, v := range want {
			if s.Training.Hours[k] != v {
				t.Errorf("%s then %s: hours %v, want %v", c.before, c.after, s.Training.Hours, want)
			}
		}
	}
}

// TestFold_HoursResentAfterMidMonthMove: a person moves on 2019-12-10 into 0627 Røyken (3025
// Asker from 2020), from 0220 Asker (also 3025) or from 0301 Oslo. 0627 registers December's
// hours (40); in 2020 the merged 3025 re-sends its December figure (40), which the append check
// accepts. The re-send replaces 0627's figure (Product decisions 13: a number and its successor
// are one kommune). Before (found by a review on 2026-12-06) it was keyed by the bostedskommune
// of 1 December or by 3025 itself, kept beside 0627's, and the month counted 80 hours.
func TestFold_HoursResentAfterMidMonthMove(t *testing.T) {
	t.Parallel()
	for _, from := range []string{"0220", "0301"} {
		t.Run(from, func(t *testing.T) {
			move := newEv("03", from)
			move.Payload = &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: "0627", Date: dpb("2019-12-10")}}
			tv := newEv("02", from)
			tv.Payload = &nirv1.Event_TrainingVedtakRegistered{TrainingVedtakRegistered: &nirv1.TrainingVedtakRegistered{
				Scheme: nirv1.TrainingScheme_TRAINING_SCHEME_RETT_OG_PLIKT, Type: nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING,
				VedtakDate: dpb("2018-02-01"), StartDate: dpb("2018-02-01")}}
			evs := []*nirv1.Event{
				evPerson("01", from, "1990-05-01", "2018-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28),
				tv,
				move,
				evHours("04", "0627", 2019, 12, 40),
				evHours("05", "3025", 2019, 12, 40),
			}
			if r := Check(Fold("pk", evs[:4]), evs[4:], MustDate(2020, 1, 15)); len(r) > 0 {
				t.Fatalf("re-send refused: %v", r)
			}
			s := Fold("pk", evs)
			want := HoursKey{Type: nirv1.HoursType_HOURS_TYPE_NORSK, Year: 2019, Month: 12, Kommune: "0627"}
			if len(s.Training.Hours) != 1 || s.Training.Hours[want] != 40 {
				t.Errorf("December 2019 hours %v, want 40 for 0627 only (3025's re-sent figure replacing 0627's)", s.Training.Hours)
			}
		})
	}
}
