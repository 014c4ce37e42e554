package demo

import (
	"time"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// Payload constructors keep the life-cycle code readable.

func (p *person) evOffer(prog nirv1.Programme, d rules.Date) *nirv1.Event {
	return &nirv1.Event{Payload: &nirv1.Event_OfferRegistered{OfferRegistered: &nirv1.OfferRegistered{Programme: prog, Date: p.pd(d)}}}
}

func (p *person) evDemand(prog nirv1.Programme, d rules.Date) *nirv1.Event {
	return &nirv1.Event{Payload: &nirv1.Event_DemandRegistered{DemandRegistered: &nirv1.DemandRegistered{Programme: prog, Date: p.pd(d)}}}
}

func (p *person) evProgrammeVedtak(t nirv1.ProgrammeVedtakType, vedtak, from, to rules.Date, ext int) *nirv1.Event {
	v := &nirv1.ProgrammeVedtakRegistered{Type: t, VedtakDate: p.pd(vedtak), FromDate: p.pd(from), ToDate: p.pd(to), ExtensionMonths: int32(ext)}
	return &nirv1.Event{Payload: &nirv1.Event_ProgrammeVedtakRegistered{ProgrammeVedtakRegistered: v}}
}

func (p *person) evTiltak(code nirv1.TiltakCode, from, to rules.Date, hours float64) *nirv1.Event {
	t := &nirv1.TiltakRegistered{Code: code, FromDate: p.pd(from), ToDate: p.pd(to), HoursPerWeek: hours}
	return &nirv1.Event{Payload: &nirv1.Event_TiltakRegistered{TiltakRegistered: t}}
}

func (p *person) evAbsence(prog nirv1.Programme, t nirv1.AbsenceType, from, to rules.Date, hours float64) *nirv1.Event {
	a := &nirv1.AbsenceRegistered{Programme: prog, Type: t, FromDate: p.pd(from), ToDate: p.pd(to), Hours: hours}
	return &nirv1.Event{Payload: &nirv1.Event_AbsenceRegistered{AbsenceRegistered: a}}
}

func (p *person) evTermination(kind nirv1.TerminationKind, reason nirv1.TerminationReason, d rules.Date) *nirv1.Event {
	t := &nirv1.TerminationRegistered{Kind: kind, Reason: reason, Date: p.pd(d)}
	return &nirv1.Event{Payload: &nirv1.Event_TerminationRegistered{TerminationRegistered: t}}
}

func (p *person) evTrainingVedtak(scheme nirv1.TrainingScheme, t nirv1.TrainingVedtakType, vedtak, start, end rules.Date) *nirv1.Event {
	v := &nirv1.TrainingVedtakRegistered{Scheme: scheme, Type: t, VedtakDate: p.pd(vedtak), StartDate: p.pd(start), EndDate: p.pd(end)}
	return &nirv1.Event{Payload: &nirv1.Event_TrainingVedtakRegistered{TrainingVedtakRegistered: v}}
}

func (p *person) evHours(t nirv1.HoursType, month rules.Date, hours, absence float64) *nirv1.Event {
	h := &nirv1.TrainingHoursRegistered{Type: t, Month: &nirv1.YearMonth{Year: int32(month.Y), Month: int32(month.M)}, Hours: hours, AbsenceHours: absence}
	return &nirv1.Event{Payload: &nirv1.Event_TrainingHoursRegistered{TrainingHoursRegistered: h}}
}

func (p *person) evUtdanning(vgo bool, d rules.Date) *nirv1.Event {
	u := &nirv1.UtdanningsbakgrunnRegistered{UpperSecondaryCompleted: vgo, Date: p.pd(d)}
	return &nirv1.Event{Payload: &nirv1.Event_UtdanningsbakgrunnRegistered{UtdanningsbakgrunnRegistered: u}}
}

// latestPlanned is the latest planned end date a vedtak may carry: dates in the future
// are plausible up to a year ahead (the regelmotor refuses later ones), so a longer plan
// is registered without an end date.
func (p *person) latestPlanned() rules.Date { return p.now.AddYears(1) }

func (p *person) orOpen(d rules.Date) rules.Date {
	if d.After(p.latestPlanned()) {
		return rules.Date{}
	}
	return d
}

// pick returns one of the values with the given weights.
func pick[T any](p *person, values []T, weights []int) T {
	total := 0
	for _, w := range weights {
		total += w
	}
	x := p.r.IntN(total)
	for i, w := range weights {
		if x < w {
			return values[i]
		}
		x -= w
	}
	return values[len(values)-1]
}

const (
	kindNone      = iota // no termination registered: the regelmotor computes one
	kindCompleted        // fullført
	kindInterrupted
	kindStopped
)

// programme generates the introduction programme (DOMAIN.md 2): tilbud (or krav), tildeling,
// sluttmål and integreringskontrakt (IL), tiltak, fravær and permisjon, utvidelse, stans and
// termination, a move during the programme, and corrections.
func (p *person) programme(law nirv1.Law, settled, birth rules.Date, vgo bool, basis nirv1.PermitBasis) {
	now := p.now
	offer := settled.AddDays(p.r.IntN(45))
	if basis == nirv1.PermitBasis_PERMIT_BASIS_FAMILIE_FLYKTNING && p.chance(40) {
		demand := settled.AddDays(10 + p.r.IntN(200))
		if demand.After(now) {
			return
		}
		p.add(demand, p.stintOn(demand), p.evDemand(nirv1.Programme_PROGRAMME_INTRO, demand))
		offer = demand.AddDays(p.r.IntN(30))
	}
	if offer.After(now) {
		return
	}
	st := p.stintOn(offer)
	p.add(offer, st, p.evOffer(nirv1.Programme_PROGRAMME_INTRO, offer))
	vedtak := offer.AddDays(p.r.IntN(21))
	if vedtak.After(now) {
		return
	}
	start := vedtak.AddDays(7 + p.r.IntN(40))
	if p.chance(8) {
		start = start.AddDays(60 + p.r.IntN(60)) // started later than 3 months after settlement
	}
	if st == 1 && !p.moveAt.IsZero() && !p.moveAt.After(start.AddDays(30)) {
		// Moved between the offer and the programme's first month: nothing more in the
		// old kommune, and the new kommune may offer a programme (DOMAIN.md 7.4: moving
		// before the programme is not declining it).
		nv := p.moveAt.AddDays(20 + p.r.IntN(40))
		if p.chance(50) && !nv.After(now) {
			p.add(nv, 2, p.evOffer(nirv1.Programme_PROGRAMME_INTRO, nv))
			p.runProgramme(law, 2, nv, nv.AddDays(7+p.r.IntN(20)), birth, vgo, false)
		}
		return
	}
	p.runProgramme(law, st, vedtak, start, birth, vgo, true)
}

// runProgramme generates one programme stint in stint st from its tildeling. mayMove
// lets the person's move (if any) fall inside the programme.
func (p *person) runProgramme(law nirv1.Law, st int, vedtak, start, birth rules.Date, vgo, mayMove bool) {
	now, r := p.now, p.r
	introL := law == nirv1.Law_LAW_INTROL

	// Sluttmål and ordinary length (DOMAIN.md 2.2; IntroL 2 years + 1, 1.4).
	sluttmal := nirv1.Sluttmal_SLUTTMAL_UNSPECIFIED
	maxExt, planned := 12, 24
	switch {
	case introL:
	case law == nirv1.Law_LAW_IL_6A:
		sluttmal, planned = nirv1.Sluttmal_SLUTTMAL_ARBEID, 6+r.IntN(7)
	case vgo:
		sluttmal = pick(p, []nirv1.Sluttmal{nirv1.Sluttmal_SLUTTMAL_HOYERE_UTDANNING, nirv1.Sluttmal_SLUTTMAL_ARBEID_VGO}, []int{40, 60})
		maxExt, planned = 6, 4+r.IntN(3)
	case rules.AgeOn(birth, start) < 25:
		sluttmal = nirv1.Sluttmal_SLUTTMAL_FULLFORT_VGO
		planned = 24 + r.IntN(13)
	default:
		sluttmal = pick(p, []nirv1.Sluttmal{nirv1.Sluttmal_SLUTTMAL_ARBEID, nirv1.Sluttmal_SLUTTMAL_GRUNNSKOLE, nirv1.Sluttmal_SLUTTMAL_VGO_DELER}, []int{70, 20, 10})
		planned = 12 + r.IntN(13)
	}
	plannedEnd := start.AddMonths(planned).AddDays(-1)
	p.add(vedtak, st, p.evProgrammeVedtak(nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, vedtak, start, p.orOpen(plannedEnd), 0))
	if !introL && p.chance(97) {
		p.add(vedtak, st, &nirv1.Event{Payload: &nirv1.Event_SluttmalRegistered{SluttmalRegistered: &nirv1.SluttmalRegistered{Sluttmal: sluttmal, Date: p.pd(vedtak)}}})
	}
	if law == nirv1.Law_LAW_IL && p.chance(70) {
		if d := start.AddDays(r.IntN(60)); !d.After(now) {
			p.add(d, st, &nirv1.Event{Payload: &nirv1.Event_IntegreringskontraktRegistered{IntegreringskontraktRegistered: &nirv1.IntegreringskontraktRegistered{Date: p.pd(d)}}})
		}
	}

	// How it ends.
	kind := pick(p, []int{kindNone, kindCompleted, kindInterrupted, kindStopped}, []int{7, 69, 20, 4})
	end := plannedEnd.AddDays(-r.IntN(21))
	switch kind {
	case kindInterrupted:
		end = p.between(start.AddDays(30), plannedEnd)
	case kindStopped:
		end = p.between(start.AddDays(60), plannedEnd)
	case kindNone:
		end = plannedEnd
	}
	extendedFrom := rules.Date{} // first day after the plan when an utvidelse is registered
	if (kind == kindCompleted || kind == kindNone) && p.chance(15) {
		ext := 6
		if maxExt > 6 {
			ext = 3 + r.IntN(maxExt-2)
		}
		vd := plannedEnd.AddDays(-r.IntN(30))
		if !vd.After(now) {
			p.add(vd, st, p.evProgrammeVedtak(nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_UTVIDELSE, vd, rules.Date{}, rules.Date{}, ext))
			end = end.AddMonths(ext)
			extendedFrom = plannedEnd.AddDays(1)
		}
	}
	moved := false
	if mayMove && !p.moveAt.IsZero() && p.moveAt.After(start.AddDays(30)) && p.moveAt.Before(end) {
		moved, end = true, p.moveAt
	}
	last := end // last day with activity registered so far
	if last.After(now) {
		last = now
	}

	// Tiltak (DOMAIN.md 2.4, 2.3), each registered once it has started. A tiltak
	// running into an utvidelse is registered up to the planned end and continued by a
	// second registration after it: a tiltak must lie within the vedtak period known when
	// it is registered.
	tiltak := func(code nirv1.TiltakCode, from, to rules.Date, hours float64) *nirv1.Event {
		if to.After(end) {
			to = end
		}
		if from.After(now) || from.After(to) {
			return nil
		}
		if !extendedFrom.IsZero() && from.Before(extendedFrom) && !to.Before(extendedFrom) {
			ev := p.add(from, st, p.evTiltak(code, from, p.orOpen(extendedFrom.AddDays(-1)), hours))
			if !extendedFrom.After(now) {
				p.add(extendedFrom, st, p.evTiltak(code, extendedFrom, p.orOpen(to), hours))
			}
			return ev
		}
		return p.add(from, st, p.evTiltak(code, from, p.orOpen(to), hours))
	}
	days := start.DaysUntil(end)
	tiltak(nirv1.TiltakCode_TILTAK_CODE_NORSK_SAMFUNNSKUNNSKAP, start, start.AddDays(days*7/10), float64(12+r.IntN(9)))
	if !introL {
		tiltak(nirv1.TiltakCode_TILTAK_CODE_KOMPETANSEKARTLEGGING, start, start.AddDays(14+r.IntN(17)), 5)
	}
	tiltak(nirv1.TiltakCode_TILTAK_CODE_LIVSMESTRING, start.AddDays(30), start.AddDays(60+r.IntN(30)), 3)
	if p.chance(35) {
		tiltak(nirv1.TiltakCode_TILTAK_CODE_FORELDREVEILEDNING, start.AddDays(60), start.AddDays(90+r.IntN(30)), 3)
	}
	var work nirv1.TiltakCode
	switch sluttmal {
	case nirv1.Sluttmal_SLUTTMAL_FULLFORT_VGO, nirv1.Sluttmal_SLUTTMAL_VGO_DELER:
		work = nirv1.TiltakCode_TILTAK_CODE_VIDEREGAENDE
	case nirv1.Sluttmal_SLUTTMAL_GRUNNSKOLE:
		work = nirv1.TiltakCode_TILTAK_CODE_GRUNNSKOLE
	case nirv1.Sluttmal_SLUTTMAL_HOYERE_UTDANNING:
		work = pick(p, []nirv1.TiltakCode{nirv1.TiltakCode_TILTAK_CODE_GODKJENNING_UTDANNING, nirv1.TiltakCode_TILTAK_CODE_KURS}, []int{60, 40})
	default:
		work = pick(p, []nirv1.TiltakCode{
			nirv1.TiltakCode_TILTAK_CODE_SPRAKPRAKSIS, nirv1.TiltakCode_TILTAK_CODE_ARBEIDSPRAKSIS,
			nirv1.TiltakCode_TILTAK_CODE_ARBEID_DELTID, nirv1.TiltakCode_TILTAK_CODE_KURS,
			nirv1.TiltakCode_TILTAK_CODE_ARBEID_PRIVAT, nirv1.TiltakCode_TILTAK_CODE_YRKESPROVING,
		}, []int{30, 25, 15, 15, 10, 5})
	}
	workFrom := start.AddDays(days * 4 / 10)
	if p.chance(3) && !workFrom.After(now) {
		// A wrong code, corrected some days later (EventRetracted + the right tiltak).
		wrong := tiltak(nirv1.TiltakCode_TILTAK_CODE_ANNET, workFrom, end, 15)
		fix := workFrom.AddDays(3 + r.IntN(18))
		if wrong != nil && !fix.After(now) {
			right := p.evTiltak(work, workFrom, rules.Date{}, 15)
			right.GetTiltakRegistered().ToDate = wrong.GetTiltakRegistered().GetToDate() // the same period
			p.retract(fix, st, wrong, "feil tiltakskode", right)
		}
	} else {
		tiltak(work, workFrom, end, float64(15+r.IntN(6)))
	}
	if !introL && p.chance(50) {
		from := start.AddDays(days * 8 / 10)
		tiltak(nirv1.TiltakCode_TILTAK_CODE_KARRIEREVEILEDNING, from, from.AddDays(14), 2)
	}

	// Fravær (a few short periods) and permisjon.
	for n := r.IntN(4); n > 0 && start.Before(last); n-- {
		from := p.between(start, last)
		to := from.AddDays(r.IntN(5))
		if to.After(last) {
			continue
		}
		t := pick(p, []nirv1.AbsenceType{nirv1.AbsenceType_ABSENCE_TYPE_FRAVAER_GYLDIG, nirv1.AbsenceType_ABSENCE_TYPE_FRAVAER_UGYLDIG}, []int{70, 30})
		hours := float64((from.DaysUntil(to) + 1) * (3 + r.IntN(5)))
		p.add(to, st, p.evAbsence(nirv1.Programme_PROGRAMME_INTRO, t, from, to, hours))
	}
	if p.chance(6) && days > 180 {
		from := p.between(start.AddDays(60), end.AddDays(-90))
		to := from.AddDays(60 + r.IntN(120))
		vd := from.AddDays(-r.IntN(14))
		if !vd.After(now) && !to.After(p.latestPlanned()) && to.Before(end) {
			if p.chance(50) {
				p.add(vd, st, p.evProgrammeVedtak(nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_PERMISJON, vd, from, to, 0))
			} else if !to.After(now) {
				p.add(to, st, p.evAbsence(nirv1.Programme_PROGRAMME_INTRO, nirv1.AbsenceType_ABSENCE_TYPE_PERMISJON_FODSEL_ADOPSJON, from, to, 0))
			}
		}
	}

	// The end.
	if end.After(now) {
		return // still in the programme
	}
	switch {
	case moved && introL:
		// The regelmotor computes FLYTTET (Product decisions 5 b); nothing to register.
		return
	case moved:
		p.add(end, st, p.evTermination(nirv1.TerminationKind_TERMINATION_KIND_AVBRUTT, nirv1.TerminationReason_TERMINATION_REASON_FLYTTET, end))
		// The new kommune may offer a programme (DOMAIN.md 7.4).
		nv := end.AddDays(20 + r.IntN(40))
		if p.chance(40) && !nv.After(now) {
			p.add(nv, 2, p.evOffer(nirv1.Programme_PROGRAMME_INTRO, nv))
			p.runProgramme(law, 2, nv, nv.AddDays(7+r.IntN(20)), birth, vgo, false)
		}
		return
	case kind == kindNone:
		return
	case kind == kindStopped:
		vd := end.AddDays(-r.IntN(10))
		p.add(vd, st, p.evProgrammeVedtak(nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_STANS, vd, end, rules.Date{}, 0))
		p.add(end, st, p.evTermination(nirv1.TerminationKind_TERMINATION_KIND_STANSET, nirv1.TerminationReason_TERMINATION_REASON_STANSET, end))
		return
	}
	tk := nirv1.TerminationKind_TERMINATION_KIND_FULLFORT
	reasons := []nirv1.TerminationReason{
		nirv1.TerminationReason_TERMINATION_REASON_ARBEID, nirv1.TerminationReason_TERMINATION_REASON_UTDANNING_VGO,
		nirv1.TerminationReason_TERMINATION_REASON_UTDANNING_HOYERE, nirv1.TerminationReason_TERMINATION_REASON_ARBEID_OG_UTDANNING,
		nirv1.TerminationReason_TERMINATION_REASON_UTDANNING_GRUNNSKOLE, nirv1.TerminationReason_TERMINATION_REASON_NAV_TILTAK,
		nirv1.TerminationReason_TERMINATION_REASON_SYKDOM, nirv1.TerminationReason_TERMINATION_REASON_PERMISJON_FODSEL_IKKE_TILBAKE,
		nirv1.TerminationReason_TERMINATION_REASON_UTVANDRET, nirv1.TerminationReason_TERMINATION_REASON_ANNET,
	}
	weights := []int{35, 12, 5, 8, 5, 17, 3, 2, 1, 12}
	if kind == kindInterrupted {
		tk = nirv1.TerminationKind_TERMINATION_KIND_AVBRUTT
		weights = []int{25, 4, 1, 3, 1, 10, 15, 15, 10, 16}
	}
	reason := pick(p, reasons, weights)
	if fix := end.AddDays(10 + r.IntN(30)); p.chance(2) && !fix.After(now) {
		// The right reason first, then the retraction of the wrong one: the programme is
		// never without a registered termination, so the regelmotor has nothing to compute
		// in between (under introduksjonsloven a computed one would block the fix).
		wrong := p.add(end, st, p.evTermination(tk, nirv1.TerminationReason_TERMINATION_REASON_ANNET, end))
		p.add(fix, st, p.evTermination(tk, reason, end))
		p.retract(fix, st, wrong, "feil avslutningsårsak", nil)
		return
	}
	p.add(end, st, p.evTermination(tk, reason, end))
}

// training generates opplæring i norsk og samfunnskunnskap (DOMAIN.md 3): tilbud, vedtak,
// utdanningsbakgrunn and norskmål (IL), monthly hours, leave, fritak, fulltid videregående,
// stans, and utvidet opplæring under 6A.
func (p *person) training(law nirv1.Law, settled, birth rules.Date, vgo bool, basis nirv1.PermitBasis) {
	now, r := p.now, p.r
	var scheme nirv1.TrainingScheme
	switch {
	case law == nirv1.Law_LAW_IL_6A:
		scheme = nirv1.TrainingScheme_TRAINING_SCHEME_RETT_6A
	case refugeeLike(basis):
		scheme = nirv1.TrainingScheme_TRAINING_SCHEME_RETT_OG_PLIKT
	default:
		scheme = nirv1.TrainingScheme_TRAINING_SCHEME_PLIKT
	}
	il := law == nirv1.Law_LAW_IL
	rettOgPlikt := scheme == nirv1.TrainingScheme_TRAINING_SCHEME_RETT_OG_PLIKT

	offer := settled.AddDays(r.IntN(60))
	if p.chance(5) {
		demand := settled.AddDays(r.IntN(90))
		if demand.After(now) {
			return
		}
		p.add(demand, p.stintOn(demand), p.evDemand(nirv1.Programme_PROGRAMME_OPPLAERING, demand))
		offer = demand.AddDays(r.IntN(20))
	}
	if offer.After(now) {
		return
	}
	p.add(offer, p.stintOn(offer), p.evOffer(nirv1.Programme_PROGRAMME_OPPLAERING, offer))
	vedtak := offer.AddDays(r.IntN(21))
	if vedtak.After(now) {
		return
	}
	start := vedtak.AddDays(3 + r.IntN(28))
	if p.chance(3) && il {
		p.add(vedtak, p.stintOn(vedtak), &nirv1.Event{Payload: &nirv1.Event_ExemptionRegistered{ExemptionRegistered: &nirv1.ExemptionRegistered{
			Type: nirv1.ExemptionType_EXEMPTION_TYPE_OPPLAERING, LegalBasis: "IF § 27", Date: p.pd(vedtak)}}})
		return
	}
	p.add(vedtak, p.stintOn(vedtak), p.evTrainingVedtak(scheme, nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING, vedtak, start, rules.Date{}))

	var months int
	switch {
	case law == nirv1.Law_LAW_IL_6A:
		months = 10 + r.IntN(3)
	case scheme == nirv1.TrainingScheme_TRAINING_SCHEME_PLIKT:
		months = 8 + r.IntN(7)
	case vgo:
		months = 10 + r.IntN(9)
	default:
		months = 18 + r.IntN(19)
	}
	end := start.AddMonths(months)

	if il && rettOgPlikt && p.chance(92) {
		if d := start.AddDays(r.IntN(30)); !d.After(now) {
			p.add(d, p.stintOn(d), p.evUtdanning(vgo, d))
		}
	}
	if il && p.chance(85) {
		if d := start.AddDays(r.IntN(60)); !d.After(now) {
			lvl := []nirv1.CefrLevel{nirv1.CefrLevel_CEFR_LEVEL_B1, nirv1.CefrLevel_CEFR_LEVEL_B1, nirv1.CefrLevel_CEFR_LEVEL_B1, nirv1.CefrLevel_CEFR_LEVEL_B2}
			if !vgo {
				if p.chance(30) {
					lvl = []nirv1.CefrLevel{nirv1.CefrLevel_CEFR_LEVEL_A2, nirv1.CefrLevel_CEFR_LEVEL_A2, nirv1.CefrLevel_CEFR_LEVEL_A2, nirv1.CefrLevel_CEFR_LEVEL_B1}
				} else {
					lvl = []nirv1.CefrLevel{nirv1.CefrLevel_CEFR_LEVEL_B1, nirv1.CefrLevel_CEFR_LEVEL_B1, nirv1.CefrLevel_CEFR_LEVEL_B1, nirv1.CefrLevel_CEFR_LEVEL_B1}
				}
			}
			p.add(d, p.stintOn(d), &nirv1.Event{Payload: &nirv1.Event_NorskmalRegistered{NorskmalRegistered: &nirv1.NorskmalRegistered{
				Listening: lvl[0], Reading: lvl[1], Writing: lvl[2], Speaking: lvl[3], Date: p.pd(d)}}})
		}
	}
	if il && !vgo && rules.AgeOn(birth, start) < 25 && p.chance(25) {
		from := rules.MustDate(start.Y, time.August, 15)
		if from.Before(start) {
			from = from.AddYears(1)
		}
		if !from.After(now) {
			to := p.orOpen(from.AddYears(1 + r.IntN(3)).AddDays(-1))
			p.add(from, p.stintOn(from), &nirv1.Event{Payload: &nirv1.Event_FullTimeUpperSecondaryRegistered{
				FullTimeUpperSecondaryRegistered: &nirv1.FullTimeUpperSecondaryRegistered{FromDate: p.pd(from), ToDate: p.pd(to)}}})
		}
	}
	if il && rettOgPlikt && p.chance(3) {
		from := p.between(start.AddDays(30), end.AddDays(-30))
		to := from.AddDays(60 + r.IntN(150))
		if !from.After(now) && !to.After(p.latestPlanned()) {
			p.add(from, p.stintOn(from), p.evAbsence(nirv1.Programme_PROGRAMME_OPPLAERING, nirv1.AbsenceType_ABSENCE_TYPE_PERMISJON_FODSEL_ADOPSJON, from, to, 0))
		}
	}

	// 6A utvidet opplæring (IF § 43 g, from 2023-07-01): utdanningsbakgrunn first, then a
	// vedtak dated within 2 months of the 12-month deadline, lasting at most 6 months.
	if law == nirv1.Law_LAW_IL_6A && p.chance(25) {
		deadline := start.AddMonths(12)
		vd := deadline.AddDays(-30 + r.IntN(61))
		if !vd.Before(rules.MustDate(2023, time.July, 1)) && !vd.After(now) {
			ud := vd.AddDays(-r.IntN(20))
			if ud.Before(rules.MustDate(2023, time.July, 1)) {
				ud = vd
			}
			p.add(ud, p.stintOn(ud), p.evUtdanning(vgo, ud))
			uEnd := deadline.AddMonths(6).AddDays(-1)
			p.add(vd, p.stintOn(vd), p.evTrainingVedtak(nirv1.TrainingScheme_TRAINING_SCHEME_UTVIDET_6A, nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING, vd, deadline, uEnd))
			end = uEnd
		}
	}

	// Monthly hours, registered after each month, up to the month before now.
	lastMonth := rules.Date{Y: now.Y, M: now.M, D: 1}.AddMonths(-1)
	samf := 0
	for m := (rules.Date{Y: start.Y, M: start.M, D: 1}); !m.After(lastMonth) && !m.After(end); m = m.AddMonths(1) {
		key := m.AddMonths(1).AddDays(-1)
		st := p.stintOn(key)
		norsk := float64(20 + r.IntN(41))
		if law == nirv1.Law_LAW_IL_6A {
			norsk = float64(40 + r.IntN(31))
		}
		absence := 0.0
		if p.chance(30) {
			absence = float64(1 + r.IntN(10))
		}
		p.add(key, st, p.evHours(nirv1.HoursType_HOURS_TYPE_NORSK, m, norsk, absence))
		// Samfunnskunnskap: 50 hours before 2022, three modules of 25 hours from 2022
		// (DOMAIN.md 3.4); none under 6A.
		if law != nirv1.Law_LAW_IL_6A && samf < 3 && start.DaysUntil(m) > 30 && p.chance(60) {
			switch {
			case m.Before(rules.MustDate(2022, time.January, 1)):
				if samf < 2 {
					p.add(key, st, p.evHours(nirv1.HoursType_HOURS_TYPE_SAMFUNNSKUNNSKAP, m, 25, 0))
				}
				samf++
			default:
				t := []nirv1.HoursType{nirv1.HoursType_HOURS_TYPE_SAMFUNNSKUNNSKAP_MODUL_1, nirv1.HoursType_HOURS_TYPE_SAMFUNNSKUNNSKAP_MODUL_2, nirv1.HoursType_HOURS_TYPE_SAMFUNNSKUNNSKAP_MODUL_3}[samf]
				p.add(key, st, p.evHours(t, m, 25, 0))
				samf++
			}
		}
	}
	if !end.After(now) && p.chance(55) {
		p.add(end, p.stintOn(end), p.evTrainingVedtak(scheme, nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_STANS, end, end, rules.Date{}))
	}
}
