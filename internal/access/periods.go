package access

import (
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// Period is a stint of a person's bostedskommune history: the person lived in Kommune from
// From until To, the date of the move away (zero To: still there). The first period starts at
// the settlement date.
type Period struct {
	Kommune string
	From    rules.Date
	To      rules.Date
}

// Periods returns the person's bostedskommune history, folded by the regelmotor: the
// settlement kommune from the settlement date, then each move in the order of its date
// (rules.State.Moves, retracted moves left out). The last period is the current one
// (st.Kommune). A person who is not registered (or whose registration was retracted) has
// none. Kommuner are named by their number in the newest structure (rules.KommuneNow), so a
// kommune renumbered at a reform (3001 → 3101 Halden) has its persons under the number its
// principal holds, and a renumbering recorded as a move changes nothing (DOMAIN.md Product
// decisions 13).
func Periods(st *rules.State) []Period {
	if st == nil || !st.Registered {
		return nil
	}
	out := []Period{{Kommune: rules.KommuneNow(st.Person.SettlementKommune), From: st.Person.SettlementDate}}
	for _, m := range st.Moves {
		last := &out[len(out)-1]
		to := rules.KommuneNow(m.To)
		if to == last.Kommune {
			continue // a move to where the person lives already changes nothing
		}
		last.To = m.Date
		out = append(out, Period{Kommune: to, From: m.Date})
	}
	return out
}

// lived reports whether the person lived in kommune on date d: d lies within one of the
// kommune's periods, both ends included (the move date belongs to the kommune left as much as
// to the one arrived at: a programme ends on it). The first period is open towards the past,
// since what happened before the settlement (reception, permit) is the settlement kommune's.
func lived(periods []Period, kommune string, d rules.Date) bool {
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
