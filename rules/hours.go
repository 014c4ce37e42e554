package rules

import (
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// RuleNorskHours names the norsk hour goal rule.
const RuleNorskHours = "timer-norsk"

// norskHoursVersion holds the norsk hour goals (timemål) where the law has one: introduksjonsloven
// and plikt without rett. Under integreringsloven rett og plikt and 6A the requirement is a
// minimum level, not hours (DOMAIN.md 3.4).
type norskHoursVersion struct {
	Version
	// IntroL is the goal for IntroL rett og plikt; IntroLPlikt for IntroL plikt only.
	IntroL, IntroLPlikt float64
	// ILPlikt is the goal for IL plikt without rett (0: none).
	ILPlikt float64
}

// norskHoursVersions select by the permit date (IntroL: 550 hours for a first permit from
// 2012-01-01, 250 before, DOMAIN.md 1.4) or by the training start (IL plikt: 250, reduced to
// 225 from 2022-01-01 so that norsk and samfunnskunnskap together are at most 300, DOMAIN.md 3.4).
var norskHoursVersions = []norskHoursVersion{
	{Version: Version{ID: RuleNorskHours + "/2005-09-01", Rule: RuleNorskHours, Section: "DOMAIN.md 1.4, 3.4",
		ValidFrom: ymd(2005, 9, 1), ValidTo: ymd(2012, 1, 1), Summary: "IntroL 250 hours norsk; plikt only 250"},
		IntroL: 250, IntroLPlikt: 250, ILPlikt: 250},
	{Version: Version{ID: RuleNorskHours + "/2012-01-01", Rule: RuleNorskHours, Section: "DOMAIN.md 1.4, 3.4",
		ValidFrom: ymd(2012, 1, 1), ValidTo: ymd(2022, 1, 1), Summary: "IntroL 550 hours norsk; plikt only 250"},
		IntroL: 550, IntroLPlikt: 250, ILPlikt: 250},
	{Version: Version{ID: RuleNorskHours + "/2022-01-01", Rule: RuleNorskHours, Section: "DOMAIN.md 1.4, 3.4",
		ValidFrom: ymd(2022, 1, 1), Summary: "IntroL 550 hours norsk; IL plikt only 225"},
		IntroL: 550, IntroLPlikt: 250, ILPlikt: 225},
}

// HoursGoal is the registered hours of one subject against its goal (timemål).
type HoursGoal struct {
	// Subject is "norsk" or "samfunnskunnskap".
	Subject                string
	Registered             float64
	Goal                   float64
	Rule, Section, Version string
	// CoverageNB and CoverageEN say when the version was applied to a date it does not cover.
	CoverageNB, CoverageEN string
}

// trainingStart returns when training started (DOMAIN.md 3.5, Product decisions 6): the first
// training tildeling start, or the first month with registered hours, whichever is earlier. A
// month of hours counts from the later of its first day and the start of the vedtak period that
// covers it, since training cannot start before its vedtak: hours for May under a vedtak from
// 20 May mean a start on 20 May, not on 1 May (issue 11). A month that no vedtak period covers
// (history from before vedtak were required, DOMAIN.md 6.5) counts from its first day.
func trainingStart(s *State) Date {
	var started Date
	for _, tv := range s.Training.Vedtak {
		if tv.Type == nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING && !tv.Start.IsZero() &&
			(started.IsZero() || tv.Start.Before(started)) {
			started = tv.Start
		}
	}
	// A month counts from a day within it, so the earliest month of hours counts from the
	// earliest day: only its start is looked up (every month's took a person of 4 000
	// vedtak and 4 000 months 0.2-0.5 s on every Evaluate, BenchmarkTrainingPeriods).
	var first Date
	for k, h := range s.Training.Hours {
		if h <= 0 {
			continue
		}
		if m, ok := NewDate(k.Year, k.Month, 1); ok && (first.IsZero() || m.Before(first)) {
			first = m
		}
	}
	if first.IsZero() {
		return started
	}
	if m := hoursStart(trainingPeriods(s), first); started.IsZero() || m.Before(started) {
		started = m
	}
	return started
}

// hoursStart returns the first day a month of hours (first the month's first day) can count
// from: the first day, or the start of the earliest vedtak period covering the month when that
// period starts later in the month. A month no period covers keeps its first day.
func hoursStart(periods []Period, first Date) Date {
	last := first.AddMonths(1).AddDays(-1)
	var from Date
	for _, p := range periods {
		if p.From.After(last) || (!p.To.IsZero() && p.To.Before(first)) {
			continue // the period does not cover the month
		}
		d := p.From
		if d.Before(first) {
			d = first
		}
		if from.IsZero() || d.Before(from) {
			from = d
		}
	}
	if from.IsZero() {
		return first
	}
	return from
}

// HoursGoals returns the person's registered training hours against the goals that apply
// (DOMAIN.md 3.4, 1.4): samfunnskunnskap 50 hours, 75 in three modules for training started from
// 2022 (or registered per module); norsk hours only under introduksjonsloven and for plikt
// without rett. 6A has no samfunnskunnskap scheme (DOMAIN.md 1.5 [I]). The version is selected by
// the training start, else by now. In the 75-hour scheme the samfunnskunnskap an asylum seeker
// had in reception counts toward the goal after the permit (one scheme, DOMAIN.md 3.4); an
// asylum seeker (no permit yet) of 18 or more has the reception goal of 25 hours (DOMAIN.md 3.4,
// 4, 5).
func HoursGoals(s *State, now Date) []HoursGoal {
	if s.Person.PermitDate.IsZero() {
		return receptionGoals(s, now)
	}
	ts := TrainingScheme(s.Person, s.Law)
	if ts.Scheme == nirv1.Scheme_SCHEME_NONE || s.Law == nirv1.Law_LAW_IL_6A {
		return nil
	}
	var norsk, samf float64
	modules := false
	for k, h := range s.Training.Hours {
		switch k.Type {
		case nirv1.HoursType_HOURS_TYPE_NORSK:
			norsk += h
		case nirv1.HoursType_HOURS_TYPE_SAMFUNNSKUNNSKAP:
			samf += h
		case nirv1.HoursType_HOURS_TYPE_SAMFUNNSKUNNSKAP_MODUL_1, nirv1.HoursType_HOURS_TYPE_SAMFUNNSKUNNSKAP_MODUL_2,
			nirv1.HoursType_HOURS_TYPE_SAMFUNNSKUNNSKAP_MODUL_3:
			samf += h
			modules = true
		}
	}
	sel := trainingStart(s)
	if sel.IsZero() {
		sel = now
	}
	var out []HoursGoal
	sv := pick(samfunnskunnskapVersions, sel)
	if modules && !sv.Modules {
		// Hours registered per module mean the 75-hour scheme, and with it the 225-hour norsk
		// duty for plikt only (DOMAIN.md 3.4).
		sel = samfunnskunnskapVersions[len(samfunnskunnskapVersions)-1].ValidFrom
		sv = pick(samfunnskunnskapVersions, sel)
	}
	if s.Law == nirv1.Law_LAW_INTROL {
		sv = samfunnskunnskapVersions[0] // IntroL: 50 hours (DOMAIN.md 1.4)
	}
	if sv.Reception > 0 {
		samf += receptionSamfunnskunnskap(s)
	}
	svOn := sel
	if s.Law == nirv1.Law_LAW_INTROL {
		svOn = s.Person.PermitDate // the IntroL goal of 50 hours (the first version)
	}
	g := HoursGoal{Subject: "samfunnskunnskap", Registered: samf, Goal: sv.Hours, Rule: sv.Rule, Section: sv.Section, Version: sv.ID}
	g.CoverageNB, g.CoverageEN = coverage(sv.Version, svOn)
	out = append(out, g)

	var goal float64
	var nv norskHoursVersion
	var nvOn Date
	switch {
	case s.Law == nirv1.Law_LAW_INTROL:
		nvOn = s.Person.PermitDate
		nv = pick(norskHoursVersions, nvOn)
		goal = nv.IntroL
		if ts.Scheme == nirv1.Scheme_SCHEME_PLIKT {
			goal = nv.IntroLPlikt
		}
	case ts.Scheme == nirv1.Scheme_SCHEME_PLIKT:
		nvOn = sel
		nv = pick(norskHoursVersions, nvOn)
		goal = nv.ILPlikt
	}
	if goal > 0 {
		g := HoursGoal{Subject: "norsk", Registered: norsk, Goal: goal, Rule: nv.Rule, Section: nv.Section, Version: nv.ID}
		g.CoverageNB, g.CoverageEN = coverage(nv.Version, nvOn)
		out = append(out, g)
	}
	return out
}

// receptionSamfunnskunnskap sums the samfunnskunnskap hours registered in reception (DOMAIN.md
// 4: ReceptionParticipationRegistered, RECEPTION_ACTIVITY_SAMFUNNSKUNNSKAP) of the scheme that
// starts there (DOMAIN.md 3.4): periods from its first day (2022-01-01; before, reception
// taught «norsk kultur og norske verdier») and before the permit (after it, training is
// registered as training hours, DOMAIN.md 4, and would count twice).
func receptionSamfunnskunnskap(s *State) float64 {
	var from Date
	for _, v := range samfunnskunnskapVersions {
		if v.Reception > 0 {
			from = v.ValidFrom
			break
		}
	}
	permit := s.Person.PermitDate
	var h float64
	for _, r := range s.Reception {
		if r.Activity != nirv1.ReceptionActivity_RECEPTION_ACTIVITY_SAMFUNNSKUNNSKAP || r.Hours <= 0 ||
			r.From.Before(from) || !permit.IsZero() && !r.From.Before(permit) {
			continue
		}
		h += r.Hours
	}
	return h
}

// receptionGoals is the goal of an asylum seeker, a person without a permit (in reception,
// DOMAIN.md 4): samfunnskunnskap starts in reception with 25 hours (DOMAIN.md 3.4, 5), for
// those of 18 or more (IL § 5) from the 75-hour scheme of 2022-01-01 on; none before, and
// none without a birth date.
func receptionGoals(s *State, now Date) []HoursGoal {
	sv := pick(samfunnskunnskapVersions, now)
	if sv.Reception == 0 || AgeOn(s.Person.BirthDate, now) < 18 {
		return nil
	}
	return []HoursGoal{{Subject: "samfunnskunnskap", Registered: receptionSamfunnskunnskap(s), Goal: sv.Reception,
		Rule: sv.Rule, Section: "DOMAIN.md 3.4, 4, 5", Version: sv.ID}}
}
