package rules

import (
	"fmt"
	"strings"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// Explanation is everything the regelmotor says about one person at a date: the folded state,
// the law, schemes and deadlines (Evaluate), the refusals of the person's own events (each
// checked against the events before it) and the computed terminations due.
type Explanation struct {
	Now      Date
	State    *State
	Status   Status
	Refusals []Refusal
	Due      []*nirv1.Event
}

// Explain folds a person's events (stream order) and explains them at now. Refused events are
// reported and still folded, so the explanation shows what the history holds.
func Explain(events []*nirv1.Event, now Date) *Explanation {
	key := ""
	for _, ev := range events {
		if k := ev.GetPersonKey(); k != "" {
			key = k
			break
		}
	}
	s := NewState(key)
	var refusals []Refusal
	for _, ev := range events {
		if ev == nil {
			continue
		}
		// checkOne does not modify s: this is Check without the copy of the state.
		refusals = append(refusals, checkOne(s, ev, now)...)
		s.Apply(s.LastSeq+1, ev)
	}
	return &Explanation{Now: now, State: s, Status: Evaluate(s, now), Refusals: refusals, Due: DueTerminations(s, now)}
}

// ExplainStored explains a person's stored events (stream order) at now: the folded state,
// law, schemes, deadlines and the computed terminations due. Unlike Explain it checks
// nothing: stored events were accepted when nird stored them, and checking them again at
// another date would report refusals nird never gave. `nirctl rules explain` runs the append
// path on the registrations it previews and explains what that path stored with this.
func ExplainStored(personKey string, events []*nirv1.Event, now Date) *Explanation {
	s := Fold(personKey, events)
	return &Explanation{Now: now, State: s, Status: Evaluate(s, now), Due: DueTerminations(s, now)}
}

// Proto returns the explanation as a PersonStatus message (the JSON form of `nirctl rules
// explain`).
func (e *Explanation) Proto() *nirv1.PersonStatus {
	s := e.State
	ps := &nirv1.PersonStatus{
		PersonKey:       s.PersonKey,
		Now:             e.Now.Proto(),
		Registered:      s.Registered,
		Law:             e.Status.Law,
		Bostedskommune:  s.Kommune,
		DueTerminations: e.Due,
	}
	if e.Status.LawVersion != "" {
		v := pick(lawVersions, s.Person.PermitDate)
		ps.LawRule = &nirv1.RuleRef{Rule: v.Rule, Section: v.Section, Version: e.Status.LawVersion}
	}
	for _, sc := range e.Status.Schemes {
		ps.Schemes = append(ps.Schemes, &nirv1.SchemeAssessment{
			Programme: sc.Programme, Scheme: sc.Scheme, Kategori: sc.Kategori, ReasonNb: sc.ReasonNB, ReasonEn: sc.ReasonEN,
			Rule: &nirv1.RuleRef{Rule: sc.Rule, Section: sc.Section, Version: sc.Version},
		})
	}
	for _, d := range e.Status.Deadlines {
		nb, en := withNote(d.ReasonNB, d.CoverageNB), withNote(d.ReasonEN, d.CoverageEN)
		ps.Deadlines = append(ps.Deadlines, &nirv1.DeadlineStatus{
			Kind: d.Kind, State: d.State, Start: d.Start.Proto(), Date: d.Date.Proto(), DaysLeft: int32(d.DaysLeft),
			Kommune: d.Kommune, ProgrammeStart: d.ProgrammeStart.Proto(), DataYear: int32(d.DataYear),
			ReasonNb: nb, ReasonEn: en,
			Rule: &nirv1.RuleRef{Rule: d.Rule, Section: d.Section, Version: d.Version},
		})
	}
	for _, p := range s.Programmes {
		sum := &nirv1.ProgrammeSummary{Kommune: p.Kommune, Start: p.Start.Proto(), Sluttmal: p.Sluttmal}
		if end, _, _, _, ok := ProgrammeLatestEnd(s, p, e.Now); ok {
			sum.LatestEnd = end.Proto()
		}
		if t := p.Termination; t != nil {
			sum.TerminationReason, sum.TerminationDate, sum.TerminationComputed = t.Reason, t.Date.Proto(), t.Computed
		}
		ps.Programmes = append(ps.Programmes, sum)
	}
	for _, h := range e.Status.Hours {
		ps.Hours = append(ps.Hours, &nirv1.HoursStatus{Subject: h.Subject, Registered: h.Registered, Goal: h.Goal,
			Rule: &nirv1.RuleRef{Rule: h.Rule, Section: h.Section, Version: h.Version}})
	}
	setRefusals(ps, e.Refusals)
	return ps
}

// trimEnum drops the enum's type prefix for the text form: LAW_IL → IL.
func trimEnum(s, prefix string) string { return strings.TrimPrefix(s, prefix) }

// Text renders the explanation for people: one line per fact, each naming its rule, version
// and DOMAIN.md section. Messages are in Norwegian with the English after a slash.
func (e *Explanation) Text() string {
	var b strings.Builder
	s := e.State
	fmt.Fprintf(&b, "now %s\n", e.Now)
	if !s.Registered {
		b.WriteString("person not registered (DOMAIN.md Product decisions 8)\n")
	} else {
		fmt.Fprintf(&b, "bostedskommune %s\n", s.Kommune)
		if e.Status.Law == nirv1.Law_LAW_UNSPECIFIED {
			b.WriteString("law: cannot be decided, permit date missing [lovvalg, DOMAIN.md 1.1]\n")
		} else {
			v := pick(lawVersions, s.Person.PermitDate)
			fmt.Fprintf(&b, "law: %s [%s, %s]\n", trimEnum(e.Status.Law.String(), "LAW_"), e.Status.LawVersion, v.Section)
		}
	}
	for _, sc := range e.Status.Schemes {
		fmt.Fprintf(&b, "scheme %s: %s «%s»: %s / %s [%s, %s]\n",
			trimEnum(sc.Programme.String(), "PROGRAMME_"), trimEnum(sc.Scheme.String(), "SCHEME_"), sc.Kategori,
			sc.ReasonNB, sc.ReasonEN, sc.Version, sc.Section)
	}
	for _, p := range s.Programmes {
		fmt.Fprintf(&b, "programme %s from %s", p.Kommune, p.Start)
		if p.Sluttmal != nirv1.Sluttmal_SLUTTMAL_UNSPECIFIED {
			fmt.Fprintf(&b, " sluttmål %s", trimEnum(p.Sluttmal.String(), "SLUTTMAL_"))
		}
		if t := p.Termination; t != nil {
			src := "registered"
			if t.Computed {
				src = "computed"
			}
			fmt.Fprintf(&b, ", terminated %s %s (%s)", t.Date, trimEnum(t.Reason.String(), "TERMINATION_REASON_"), src)
		}
		if from, v, ok := InactiveFrom(s, p); ok && !e.Now.Before(from) {
			fmt.Fprintf(&b, ", «ingen registreringer siste %d måneder» since %s (last registration %s; computed termination due %s) [%s, %s; the threshold awaits IMDi's confirmation]",
				v.Months, from, s.LastRegistration(), from.AddDays(v.Days), v.ID, v.Section)
		}
		for _, t := range p.ComputedTerminations {
			switch {
			case t.Deleted:
				fmt.Fprintf(&b, ", deleted computed %s %s", t.Date, trimEnum(t.Reason.String(), "TERMINATION_REASON_"))
			case t.Lapsed:
				fmt.Fprintf(&b, ", lapsed computed %s %s (its basis no longer holds)", t.Date, trimEnum(t.Reason.String(), "TERMINATION_REASON_"))
			case t != p.Termination:
				fmt.Fprintf(&b, ", computed %s %s kept in history", t.Date, trimEnum(t.Reason.String(), "TERMINATION_REASON_"))
			}
		}
		b.WriteString("\n")
	}
	if len(s.Unattached) > 0 {
		fmt.Fprintf(&b, "without programme (no effect): %s\n", strings.Join(s.Unattached, ", "))
	}
	if len(s.Retracted) > 0 {
		var ids []string
		for _, le := range s.log {
			if s.Retracted[le.Event.GetId()] {
				ids = append(ids, le.Event.GetId())
			}
		}
		fmt.Fprintf(&b, "retracted: %s\n", strings.Join(ids, ", "))
	}
	if len(s.Faults) > 0 {
		var ids []string
		for _, f := range s.Faults {
			ids = append(ids, f.EventID)
		}
		fmt.Fprintf(&b, "left out, the rules failed on them: %s\n", strings.Join(ids, ", "))
	}
	if s.Broken {
		b.WriteString("the rules failed on this person: nothing derived\n")
	}
	for _, d := range e.Status.Deadlines {
		b.WriteString(DeadlineText(d))
		b.WriteString("\n")
	}
	for _, h := range e.Status.Hours {
		fmt.Fprintf(&b, "hours %s: %g of %g", h.Subject, h.Registered, h.Goal)
		if h.CoverageNB != "" {
			fmt.Fprintf(&b, " (%s / %s)", h.CoverageNB, h.CoverageEN)
		}
		fmt.Fprintf(&b, " [%s, %s]\n", h.Version, h.Section)
	}
	for _, r := range e.Refusals {
		fmt.Fprintf(&b, "refused %s: %s\n", r.EventID, r.MessageNB)
	}
	for _, ev := range e.Due {
		b.WriteString("due: " + TerminationText(ev) + "\n")
	}
	return b.String()
}

// DeadlineText renders one deadline on one line.
func DeadlineText(d Deadline) string {
	var b strings.Builder
	fmt.Fprintf(&b, "deadline %s", trimEnum(d.Kind.String(), "DEADLINE_KIND_"))
	if d.Kommune != "" {
		fmt.Fprintf(&b, " %s/%s", d.Kommune, d.ProgrammeStart)
	}
	if d.DataYear != 0 {
		fmt.Fprintf(&b, " %d", d.DataYear)
	}
	fmt.Fprintf(&b, ": %s", trimEnum(d.State.String(), "DEADLINE_STATE_"))
	if !d.Date.IsZero() {
		fmt.Fprintf(&b, " %s (from %s, %d days)", d.Date, d.Start, d.DaysLeft)
	}
	if d.ReasonNB != "" {
		fmt.Fprintf(&b, ": %s / %s", d.ReasonNB, d.ReasonEN)
	}
	if d.CoverageNB != "" {
		fmt.Fprintf(&b, " (%s / %s)", d.CoverageNB, d.CoverageEN)
	}
	fmt.Fprintf(&b, " [%s, %s]", d.Version, d.Section)
	return b.String()
}

// withNote appends a note to a reason: "reason (note)", or the note alone.
func withNote(reason, note string) string {
	switch {
	case note == "":
		return reason
	case reason == "":
		return note
	}
	return reason + " (" + note + ")"
}

// TerminationText renders a TerminationComputed event on one line.
func TerminationText(ev *nirv1.Event) string {
	t := ev.GetTerminationComputed()
	return fmt.Sprintf("%s %s %s at %s for programme %s/%s (actor %s) [%s]",
		ev.GetId(), trimEnum(t.GetRule().String(), "TERMINATION_RULE_"), trimEnum(t.GetReason().String(), "TERMINATION_REASON_"),
		dateOf(t.GetDate()), ev.GetKommune(), dateOf(t.GetProgrammeStart()), ev.GetActor().GetSubject(), t.GetRuleVersion())
}

// setRefusals puts the refusals in ps as the API's RuleRefusal messages.
func setRefusals(ps *nirv1.PersonStatus, rs []Refusal) {
	for _, r := range rs {
		ps.Refusals = append(ps.Refusals, r.Proto())
	}
}

// Proto returns the refusal as the message the API attaches to a FailedPrecondition error.
func (r Refusal) Proto() *nirv1.RuleRefusal {
	return &nirv1.RuleRefusal{Code: r.Code, Rule: r.Rule, Section: r.Section, Version: r.Version, EventId: r.EventID, MessageNb: r.MessageNB, MessageEn: r.MessageEN}
}
