package access

import (
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// Period is rules.Residence: a stint of a person's bostedskommune history.
type Period = rules.Residence

// Periods is rules.Residences: the person's bostedskommune history.
func Periods(st *rules.State) []Period { return rules.Residences(st) }

// lived reports whether the person lived in kommune on date d: d lies within one of the
// kommune's periods, both ends included (the move date belongs to the kommune left as much as
// to the one arrived at: a programme ends on it). The first period is open towards the past,
// since what happened before the settlement (reception, permit) is the settlement kommune's.
// The periods name kommuner in the newest structure (rules.Residences), so kommune is too
// (3001 Halden lived in 3101's periods).
func lived(periods []Period, kommune string, d rules.Date) bool {
	kommune = rules.KommuneNow(kommune)
	for i, p := range periods {
		if p.Kommune != kommune {
			continue
		}
		if (i == 0 || !d.Before(p.From)) && (p.To.IsZero() || !d.After(p.To)) {
			return true
		}
	}
	return false
}

// effectiveDate is the date from which an event takes effect (DOMAIN.md 8: the effective date
// inside the payload, as opposed to the recorded time): the start of a period, or the date of
// a fact; false for events without one (corrections).
func effectiveDate(ev *nirv1.Event) (rules.Date, bool) {
	first := func(ds ...*nirv1.Date) (rules.Date, bool) {
		for _, d := range ds {
			if v, ok := rules.DateOf(d); ok {
				return v, true
			}
		}
		return rules.Date{}, false
	}
	switch {
	case ev.GetPersonRegistered() != nil:
		return first(ev.GetPersonRegistered().GetSettlementDate())
	case ev.GetPersonMoved() != nil:
		return first(ev.GetPersonMoved().GetDate())
	case ev.GetDemandRegistered() != nil:
		return first(ev.GetDemandRegistered().GetDate())
	case ev.GetOfferRegistered() != nil:
		return first(ev.GetOfferRegistered().GetDate())
	case ev.GetProgrammeVedtakRegistered() != nil:
		v := ev.GetProgrammeVedtakRegistered()
		return first(v.GetFromDate(), v.GetVedtakDate())
	case ev.GetSluttmalRegistered() != nil:
		return first(ev.GetSluttmalRegistered().GetDate())
	case ev.GetIntegreringskontraktRegistered() != nil:
		return first(ev.GetIntegreringskontraktRegistered().GetDate())
	case ev.GetTiltakRegistered() != nil:
		return first(ev.GetTiltakRegistered().GetFromDate())
	case ev.GetAbsenceRegistered() != nil:
		return first(ev.GetAbsenceRegistered().GetFromDate())
	case ev.GetTerminationRegistered() != nil:
		return first(ev.GetTerminationRegistered().GetDate())
	case ev.GetTerminationComputed() != nil:
		return first(ev.GetTerminationComputed().GetDate())
	case ev.GetTrainingVedtakRegistered() != nil:
		v := ev.GetTrainingVedtakRegistered()
		return first(v.GetStartDate(), v.GetVedtakDate())
	case ev.GetUtdanningsbakgrunnRegistered() != nil:
		return first(ev.GetUtdanningsbakgrunnRegistered().GetDate())
	case ev.GetNorskmalRegistered() != nil:
		return first(ev.GetNorskmalRegistered().GetDate())
	case ev.GetTrainingHoursRegistered() != nil:
		m := ev.GetTrainingHoursRegistered().GetMonth()
		if m == nil {
			return rules.Date{}, false
		}
		return first(&nirv1.Date{Year: m.GetYear(), Month: m.GetMonth(), Day: 1})
	case ev.GetFullTimeUpperSecondaryRegistered() != nil:
		return first(ev.GetFullTimeUpperSecondaryRegistered().GetFromDate())
	case ev.GetReceptionParticipationRegistered() != nil:
		return first(ev.GetReceptionParticipationRegistered().GetFromDate())
	case ev.GetExemptionRegistered() != nil:
		return first(ev.GetExemptionRegistered().GetDate())
	}
	return rules.Date{}, false
}
