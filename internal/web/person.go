package web

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/oklog/ulid/v2"

	"github.com/introreg/nir/internal/personkey"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
	"github.com/introreg/nir/rules"
)

// personData is the person page: the row of the person list, the regelmotor's view of the
// person's history (rules.Explain: law, schemes, deadlines and the rule behind each), what is
// registered per programme, the audit history and the action forms.
type personData struct {
	Key         string
	Ident       string
	Current     bool // the kommune has the person now (else: its own period only)
	Facts       []fact
	Deadlines   []deadlineView
	Programmes  []programmeView
	Training    *trainingView
	Reception   []string
	History     []historyView
	Retractable []option
	Forms       *actionForms
	Done        string
	Own         string // the principal's kommune
}

type fact struct{ Label, Value, Rule string }

type deadlineView struct {
	Kind, State, Date, Days, Reason, Rule string
	Alert                                 bool
}

type programmeView struct {
	Title       string
	Kommune     string
	Facts       []fact
	Vedtak      []string
	Tiltak      []string
	Absence     []string
	Termination string
	TermRule    string
	NotReg      bool
	Computed    []string
	// The «Legg til» (IL) or delete-and-register (IntroL) form over a computed termination.
	AddReason *reasonForm
	Own       bool
}

// reasonForm is the form over an undeleted computed termination.
type reasonForm struct {
	Anchor     string
	Law        string // "IL" or "INTROL"
	ComputedID string
	Date       string
	EventID    string
	DeleteID   string
	Error      []string
	// Reason, Kind and Why are what a refused form sent, shown again.
	Reason, Kind, Why string
}

type trainingView struct {
	Facts  []fact
	Vedtak []string
	Hours  []fact
	Other  []string
}

type historyView struct {
	Seq       uint64
	Recorded  string
	Actor     string
	Kind      string
	Summary   string
	Effective bool
	Status    string
	ID        string
}

// actionForms are the person page's registration forms; each has a pre-made event id, so a
// form sent twice stores its event once (the id is the idempotency key).
type actionForms struct {
	Tiltak, Absence, Hours, Norskmal, Retract formState
	Reasons                                   []option
	Kinds                                     []option
	TiltakCodes                               []option
	AbsenceTypes                              []option
	Programmes                                []option
	HoursTypes                                []option
	Levels                                    []option
	Today                                     string
	Month                                     string
}

// formState is one form's id, the values sent (re-shown after a refusal) and its errors.
type formState struct {
	ID     string
	Values url.Values
	Error  []string
}

func (f formState) V(name string) string { return f.Values.Get(name) }

// newID makes an event id for a form (a ULID, the event's idempotency key).
func newID() string { return ulid.Make().String() }

// personPage shows one person: QueryService.GetPerson and AuditHistory, through the API's
// authorization, so a kommune sees only the persons it has (or its own period of those it
// had) and any other person is «not found».
func (c *Console) personPage(w http.ResponseWriter, r *http.Request) {
	c.showPerson(w, r, http.StatusOK, actionDone[r.URL.Query().Get("registrert")], nil)
}

// showPerson renders the person page; failed is the form that was refused (re-shown with its
// values and the refusal in place).
func (c *Console) showPerson(w http.ResponseWriter, r *http.Request, status int, done string, failed *failedForm) {
	key := r.PathValue("key")
	if !personkey.IsKey(key) {
		c.errorPage(w, r, http.StatusNotFound, "Fant ikke personen", "Fant ikke personen. En person vises bare for kommunen personen bor eller har bodd i.")
		return
	}
	ctx := r.Context()
	ref := &nirv1.PersonRef{PersonKey: key}
	hist, err := call(c, ctx, nirv1connect.QueryServiceAuditHistoryProcedure, c.query.AuditHistory,
		&nirv1.AuditHistoryRequest{Person: ref, MinSequence: minSeq(r)})
	if err != nil {
		if connect.CodeOf(err) == connect.CodeNotFound {
			c.errorPage(w, r, http.StatusNotFound, "Fant ikke personen", "Fant ikke personen. En person vises bare for kommunen personen bor eller har bodd i.")
			return
		}
		c.apiError(w, r, err)
		return
	}
	row, err := call(c, ctx, nirv1connect.QueryServiceGetPersonProcedure, c.query.GetPerson,
		&nirv1.GetPersonRequest{Person: ref, MinSequence: minSeq(r)})
	current := err == nil
	if err != nil && connect.CodeOf(err) != connect.CodeNotFound {
		c.apiError(w, r, err)
		return
	}
	d := c.personData(r, key, row.GetPerson(), hist, current, failed)
	d.Done = done
	// The title names the person by the start of the key, never by the national id: the
	// browser keeps titles in its history and shows them in tabs and window lists.
	title := "Person " + key[:min(len(key), 8)]
	c.render(w, r, status, "person", c.view(r, title, d))
}

func (c *Console) personData(r *http.Request, key string, row *nirv1.PersonRow, hist *nirv1.AuditHistoryResponse, current bool, failed *failedForm) *personData {
	p := principal(r)
	today := c.today()
	d := &personData{Key: key, Current: current, Own: p.Kommune}
	events := make([]*nirv1.Event, 0, len(hist.GetEntries()))
	for _, e := range hist.GetEntries() {
		events = append(events, e.GetEvent())
	}
	for _, e := range events {
		if pr := e.GetPersonRegistered(); pr != nil {
			d.Ident = rules.KeyingID(pr)
			break
		}
	}
	if row.GetNationalId() != "" {
		d.Ident = row.GetNationalId()
	}
	d.History = historyOf(hist, c.loc)
	for _, e := range hist.GetEntries() {
		ev := e.GetEvent()
		if e.GetEffective() && ev.GetKommune() == p.Kommune && ev.GetEventRetracted() == nil && ev.GetTerminationComputed() == nil {
			d.Retractable = append(d.Retractable, option{Value: ev.GetId(),
				Label: fmt.Sprintf("%s (sekvens %d): %s", eventKindLabels[kindOf(ev)], e.GetSequence(), summary(ev))})
		}
	}
	if !current {
		// A kommune that had the person sees its own period's events, not today's status.
		return d
	}
	ex := rules.Explain(events, today)
	st := ex.State
	lawFact := fact{Label: "Lov", Value: label(lawLabels, ex.Status.Law)}
	if ex.Status.LawVersion != "" {
		lawFact.Rule = ex.Status.LawVersion
	}
	birth := rdateText(st.Person.BirthDate)
	if st.Erased {
		birth = rules.ErasedText // DOMAIN.md Product decisions 15
	}
	d.Facts = []fact{
		{Label: "Fødselsnummer / D-nummer", Value: d.Ident},
		{Label: "Personnøkkel", Value: key},
		{Label: "Fødselsdato", Value: birth},
		{Label: "Kjønn", Value: label(sexLabels, st.Person.Sex)},
		lawFact,
		{Label: "Oppholdsgrunnlag", Value: label(permitLabels, st.Person.PermitBasis)},
		{Label: "Oppholdstillatelse", Value: rdateText(st.Person.PermitDate)},
		{Label: "Ankomst", Value: rdateText(st.Person.ArrivalDate)},
		{Label: "Bostedskommune", Value: kommuneText(st.Kommune, today)},
		{Label: "Bosatt i kommunen", Value: dateText(row.GetSettlementDate())},
	}
	for _, sc := range ex.Status.Schemes {
		d.Facts = append(d.Facts, fact{Label: "Kategori " + strings.ToLower(label(programmeLabels, sc.Programme)), Value: sc.Kategori,
			Rule: ruleText(sc.Version, sc.Section)})
	}
	for _, dl := range ex.Status.Deadlines {
		d.Deadlines = append(d.Deadlines, deadlineOf(dl))
	}
	law := "IL"
	if st.Law == nirv1.Law_LAW_INTROL {
		law = "INTROL"
	}
	for i, pg := range st.Programmes {
		d.Programmes = append(d.Programmes, programmeOf(st, pg, i, law, p.Kommune, today, failed))
	}
	d.Training = trainingOf(st, ex.Status.Hours)
	for _, rp := range st.Reception {
		d.Reception = append(d.Reception, fmt.Sprintf("%s %s–%s, %s timer", label(receptionLabels, rp.Activity), rdateText(rp.From), rdateText(rp.To), decimal(rp.Hours)))
	}
	if p.Kommune != "" {
		d.Forms = newForms(today, failed)
	}
	return d
}

func kommuneText(nr string, on rules.Date) string {
	if nr == "" {
		return ""
	}
	if n := kommuneName(nr, on); n != "" {
		return nr + " " + n
	}
	return nr
}

func ruleText(version, section string) string {
	switch {
	case version == "":
		return section
	case section == "":
		return version
	}
	return version + ", " + section
}

func deadlineOf(dl rules.Deadline) deadlineView {
	v := deadlineView{Kind: label(deadlineKindLabels, dl.Kind), State: label(deadlineStateLabels, dl.State),
		Date: rdateText(dl.Date), Reason: dl.ReasonNB, Rule: ruleText(dl.Version, dl.Section)}
	if dl.Kommune != "" {
		v.Kind += fmt.Sprintf(" (%s, fra %s)", dl.Kommune, rdateText(dl.ProgrammeStart))
	}
	if dl.DataYear != 0 {
		v.Kind += fmt.Sprintf(" %d", dl.DataYear)
	}
	if !dl.Date.IsZero() && dl.State != nirv1.DeadlineState_DEADLINE_STATE_COMPLETED {
		switch {
		case dl.DaysLeft < 0:
			v.Days = fmt.Sprintf("%d dager over fristen", -dl.DaysLeft)
		case dl.DaysLeft == 0:
			v.Days = "i dag"
		default:
			v.Days = fmt.Sprintf("%d dager igjen", dl.DaysLeft)
		}
	}
	v.Alert = dl.State == nirv1.DeadlineState_DEADLINE_STATE_OVERDUE || dl.State == nirv1.DeadlineState_DEADLINE_STATE_CANNOT_COMPUTE
	return v
}

func programmeOf(st *rules.State, pg *rules.Programme, i int, law, own string, today rules.Date, failed *failedForm) programmeView {
	v := programmeView{Title: fmt.Sprintf("Introduksjonsprogram i %s fra %s", kommuneText(pg.Kommune, pg.Start), rdateText(pg.Start)),
		Kommune: pg.Kommune, Own: pg.Kommune == own}
	v.Facts = append(v.Facts, fact{Label: "Start", Value: rdateText(pg.Start)})
	if !pg.PlannedEnd.IsZero() {
		v.Facts = append(v.Facts, fact{Label: "Planlagt slutt", Value: rdateText(pg.PlannedEnd)})
	}
	if end, ver, nb, _, ok := rules.ProgrammeLatestEnd(st, pg, today); ok {
		v.Facts = append(v.Facts, fact{Label: "Seneste sluttdato", Value: rdateText(end), Rule: ruleText(ver.ID, ver.Section)})
	} else if nb != "" {
		v.Facts = append(v.Facts, fact{Label: "Seneste sluttdato", Value: "Kan ikke beregnes: " + nb, Rule: ruleText(ver.ID, ver.Section)})
	}
	if pg.Sluttmal != nirv1.Sluttmal_SLUTTMAL_UNSPECIFIED {
		v.Facts = append(v.Facts, fact{Label: "Sluttmål", Value: label(sluttmalLabels, pg.Sluttmal) + " (fra " + rdateText(pg.SluttmalDate) + ")"})
	} else if law != "INTROL" {
		v.Facts = append(v.Facts, fact{Label: "Sluttmål", Value: "Ikke registrert"})
	}
	if !pg.Integreringskontrakt.IsZero() {
		v.Facts = append(v.Facts, fact{Label: "Integreringskontrakt", Value: "Signert " + rdateText(pg.Integreringskontrakt)})
	}
	for _, vd := range pg.Vedtak {
		s := fmt.Sprintf("%s, vedtak %s", label(vedtakLabels, vd.Type), rdateText(vd.VedtakDate))
		if !vd.From.IsZero() {
			s += ", fra " + rdateText(vd.From)
		}
		if !vd.To.IsZero() {
			s += " til " + rdateText(vd.To)
		}
		if vd.ExtensionMonths > 0 {
			s += fmt.Sprintf(", %d måneder", vd.ExtensionMonths)
		}
		v.Vedtak = append(v.Vedtak, s)
	}
	for _, t := range pg.Tiltak {
		v.Tiltak = append(v.Tiltak, fmt.Sprintf("%s %s–%s, %s timer per uke", label(tiltakLabels, t.Code), rdateText(t.From), rdateText(t.To), decimal(t.HoursPerWeek)))
	}
	for _, l := range pg.Leave {
		typ := "Permisjon etter vedtak"
		if l.Type != nirv1.AbsenceType_ABSENCE_TYPE_UNSPECIFIED {
			typ = label(absenceLabels, l.Type)
		}
		v.Absence = append(v.Absence, fmt.Sprintf("%s %s–%s", typ, rdateText(l.From), rdateText(l.To)))
	}
	for _, a := range pg.Absence {
		v.Absence = append(v.Absence, fmt.Sprintf("%s %s–%s, %s timer", label(absenceLabels, a.Type), rdateText(a.From), rdateText(a.To), decimal(a.Hours)))
	}
	if t := pg.Termination; t != nil {
		v.Termination = fmt.Sprintf("%s %s: %s", label(kindLabels, t.Kind), rdateText(t.Date), label(reasonLabels, t.Reason))
		if t.Computed {
			v.Termination = fmt.Sprintf("Beregnet av regelmotoren %s: %s (%s)", rdateText(t.Date), label(reasonLabels, t.Reason), label(terminationRuleLabels, t.Rule))
			v.TermRule = t.RuleVersion
		}
		v.NotReg = t.Reason == nirv1.TerminationReason_TERMINATION_REASON_IKKE_REGISTRERT
	}
	for _, ct := range pg.ComputedTerminations {
		switch {
		case ct.Deleted:
			v.Computed = append(v.Computed, fmt.Sprintf("Beregnet avslutning %s (%s) slettet av kommunen", rdateText(ct.Date), label(reasonLabels, ct.Reason)))
		case ct.Lapsed:
			v.Computed = append(v.Computed, fmt.Sprintf("Beregnet avslutning %s (%s) står i historikken, men gjelder ikke lenger: grunnlaget for den er endret", rdateText(ct.Date), label(reasonLabels, ct.Reason)))
		case ct != pg.Termination:
			v.Computed = append(v.Computed, fmt.Sprintf("Beregnet avslutning %s (%s) står i historikken; kommunens årsak gjelder", rdateText(ct.Date), label(reasonLabels, ct.Reason)))
		}
	}
	if t := pg.Termination; t != nil && t.Computed && !t.Deleted && v.Own {
		f := &reasonForm{Anchor: fmt.Sprintf("avslutning-%d", i), Law: law, ComputedID: t.EventID, Date: isoDate(t.Date), EventID: newID(), DeleteID: newID()}
		if failed != nil && failed.anchor == f.Anchor {
			f.Error = failed.errors
			f.EventID, f.DeleteID = failed.values.Get("id"), failed.values.Get("slett_id")
			f.Reason, f.Kind, f.Why = failed.values.Get("arsak"), failed.values.Get("type"), failed.values.Get("slettegrunn")
			if dt := failed.values.Get("dato"); dt != "" {
				f.Date = dt
			}
		}
		v.AddReason = f
	}
	return v
}

func trainingOf(st *rules.State, goals []rules.HoursGoal) *trainingView {
	tr := st.Training
	v := &trainingView{}
	if tr.Scheme != nirv1.TrainingScheme_TRAINING_SCHEME_UNSPECIFIED {
		v.Facts = append(v.Facts, fact{Label: "Ordning", Value: label(schemeLabels, tr.Scheme)})
	}
	switch {
	case tr.Utdanningsbakgrunn == nil:
		v.Facts = append(v.Facts, fact{Label: "Utdanningsbakgrunn", Value: "Ikke registrert"})
	case *tr.Utdanningsbakgrunn:
		v.Facts = append(v.Facts, fact{Label: "Utdanningsbakgrunn", Value: "Videregående fra før (" + rdateText(tr.UtdanningsbakgrunnDate) + ")"})
	default:
		v.Facts = append(v.Facts, fact{Label: "Utdanningsbakgrunn", Value: "Uten videregående fra før (" + rdateText(tr.UtdanningsbakgrunnDate) + ")"})
	}
	if n := tr.Norskmal; n != nil {
		v.Facts = append(v.Facts, fact{Label: "Norskmål", Value: fmt.Sprintf("Lytte %s, lese %s, skriftlig %s, muntlig %s (%s)",
			label(cefrLabels, n.Listening), label(cefrLabels, n.Reading), label(cefrLabels, n.Writing), label(cefrLabels, n.Speaking), rdateText(n.Date))})
	} else {
		v.Facts = append(v.Facts, fact{Label: "Norskmål", Value: "Ikke registrert"})
	}
	for _, vd := range tr.Vedtak {
		s := fmt.Sprintf("%s: %s, vedtak %s", label(schemeLabels, vd.Scheme), label(trainingVedtakLabels, vd.Type), rdateText(vd.VedtakDate))
		if !vd.Start.IsZero() {
			s += ", fra " + rdateText(vd.Start)
		}
		if !vd.End.IsZero() {
			s += " til " + rdateText(vd.End)
		}
		v.Vedtak = append(v.Vedtak, s)
	}
	for _, g := range goals {
		v.Hours = append(v.Hours, fact{Label: "Timer " + g.Subject, Value: fmt.Sprintf("%s av %s", decimal(g.Registered), decimal(g.Goal)), Rule: ruleText(g.Version, g.Section)})
	}
	for _, e := range tr.Exemptions {
		v.Other = append(v.Other, fmt.Sprintf("%s (%s) %s", label(exemptionLabels, e.Type), e.LegalBasis, rdateText(e.Date)))
	}
	for _, p := range tr.FullTimeUpperSecondary {
		v.Other = append(v.Other, fmt.Sprintf("Fulltid videregående opplæring %s–%s", rdateText(p.From), rdateText(p.To)))
	}
	for _, l := range tr.Leave {
		v.Other = append(v.Other, fmt.Sprintf("Permisjon %s–%s", rdateText(l.From), rdateText(l.To)))
	}
	return v
}

// kindOf is the payload's field name ("termination_registered").
func kindOf(ev *nirv1.Event) string {
	if f := ev.ProtoReflect().WhichOneof(ev.ProtoReflect().Descriptor().Oneofs().ByName("payload")); f != nil {
		return string(f.Name())
	}
	return ""
}

func historyOf(hist *nirv1.AuditHistoryResponse, loc *time.Location) []historyView {
	out := make([]historyView, 0, len(hist.GetEntries()))
	for _, e := range hist.GetEntries() {
		ev := e.GetEvent()
		h := historyView{Seq: e.GetSequence(), Kind: eventKindLabels[e.GetKind()], Summary: summary(ev), Effective: e.GetEffective(), ID: ev.GetId()}
		if h.Kind == "" {
			h.Kind = e.GetKind()
		}
		if t := ev.GetRecordedAt(); t != nil {
			h.Recorded = t.AsTime().In(loc).Format("02.01.2006 kl. 15:04")
		}
		a := ev.GetActor()
		h.Actor = a.GetSubject()
		if r := label(actorRoleLabels, a.GetRole()); r != "" {
			h.Actor += " (" + r + ")"
		}
		if a.GetSystem() != "" {
			h.Actor += ", " + a.GetSystem()
		}
		var by []string
		for _, c := range e.GetCorrectedBy() {
			by = append(by, fmt.Sprintf("%s ved sekvens %d", correctionLabels[c.GetKind()], c.GetSequence()))
		}
		switch {
		case len(by) > 0:
			h.Status = strings.Join(by, "; ")
		case e.GetEffective():
			h.Status = "Gjelder"
		default:
			h.Status = "Gjelder ikke"
		}
		out = append(out, h)
	}
	return out
}

// summary says what an event registered, in Norwegian, without any national id.
func summary(ev *nirv1.Event) string {
	d := dateText
	switch {
	case ev.GetPersonRegistered() != nil:
		p := ev.GetPersonRegistered()
		return fmt.Sprintf("Født %s, %s, tillatelse %s, ankomst %s, bosatt %s i %s", d(p.GetBirthDate()), label(permitLabels, p.GetPermitBasis()),
			d(p.GetPermitDate()), d(p.GetArrivalDate()), d(p.GetSettlementDate()), p.GetSettlementKommune())
	case ev.GetPersonMoved() != nil:
		return fmt.Sprintf("Flyttet til %s fra %s", ev.GetPersonMoved().GetToKommune(), d(ev.GetPersonMoved().GetDate()))
	case ev.GetDemandRegistered() != nil:
		return fmt.Sprintf("%s, %s", label(programmeLabels, ev.GetDemandRegistered().GetProgramme()), d(ev.GetDemandRegistered().GetDate()))
	case ev.GetOfferRegistered() != nil:
		return fmt.Sprintf("%s, %s", label(programmeLabels, ev.GetOfferRegistered().GetProgramme()), d(ev.GetOfferRegistered().GetDate()))
	case ev.GetProgrammeVedtakRegistered() != nil:
		v := ev.GetProgrammeVedtakRegistered()
		s := fmt.Sprintf("%s, vedtak %s, fra %s", label(vedtakLabels, v.GetType()), d(v.GetVedtakDate()), d(v.GetFromDate()))
		if v.GetToDate() != nil {
			s += " til " + d(v.GetToDate())
		}
		if v.GetExtensionMonths() > 0 {
			s += fmt.Sprintf(", %d måneder", v.GetExtensionMonths())
		}
		return s
	case ev.GetSluttmalRegistered() != nil:
		return fmt.Sprintf("%s fra %s", label(sluttmalLabels, ev.GetSluttmalRegistered().GetSluttmal()), d(ev.GetSluttmalRegistered().GetDate()))
	case ev.GetIntegreringskontraktRegistered() != nil:
		return "Signert " + d(ev.GetIntegreringskontraktRegistered().GetDate())
	case ev.GetTiltakRegistered() != nil:
		t := ev.GetTiltakRegistered()
		return fmt.Sprintf("%s %s–%s, %s timer per uke", label(tiltakLabels, t.GetCode()), d(t.GetFromDate()), d(t.GetToDate()), decimal(t.GetHoursPerWeek()))
	case ev.GetAbsenceRegistered() != nil:
		a := ev.GetAbsenceRegistered()
		return fmt.Sprintf("%s: %s %s–%s, %s timer", label(programmeLabels, a.GetProgramme()), label(absenceLabels, a.GetType()), d(a.GetFromDate()), d(a.GetToDate()), decimal(a.GetHours()))
	case ev.GetTerminationRegistered() != nil:
		t := ev.GetTerminationRegistered()
		return fmt.Sprintf("%s %s: %s", label(kindLabels, t.GetKind()), d(t.GetDate()), label(reasonLabels, t.GetReason()))
	case ev.GetTerminationComputed() != nil:
		t := ev.GetTerminationComputed()
		return fmt.Sprintf("%s %s (%s; regel %s)", label(reasonLabels, t.GetReason()), d(t.GetDate()), label(terminationRuleLabels, t.GetRule()), t.GetRuleVersion())
	case ev.GetComputedTerminationDeleted() != nil:
		x := ev.GetComputedTerminationDeleted()
		return fmt.Sprintf("Slettet %s: %s", x.GetComputedEventId(), x.GetReason())
	case ev.GetTrainingVedtakRegistered() != nil:
		v := ev.GetTrainingVedtakRegistered()
		s := fmt.Sprintf("%s: %s, vedtak %s, fra %s", label(schemeLabels, v.GetScheme()), label(trainingVedtakLabels, v.GetType()), d(v.GetVedtakDate()), d(v.GetStartDate()))
		if v.GetEndDate() != nil {
			s += " til " + d(v.GetEndDate())
		}
		return s
	case ev.GetUtdanningsbakgrunnRegistered() != nil:
		u := ev.GetUtdanningsbakgrunnRegistered()
		if u.GetUpperSecondaryCompleted() {
			return "Videregående fra før (" + d(u.GetDate()) + ")"
		}
		return "Uten videregående fra før (" + d(u.GetDate()) + ")"
	case ev.GetNorskmalRegistered() != nil:
		n := ev.GetNorskmalRegistered()
		return fmt.Sprintf("Lytte %s, lese %s, skriftlig %s, muntlig %s (%s)", label(cefrLabels, n.GetListening()), label(cefrLabels, n.GetReading()),
			label(cefrLabels, n.GetWriting()), label(cefrLabels, n.GetSpeaking()), d(n.GetDate()))
	case ev.GetTrainingHoursRegistered() != nil:
		h := ev.GetTrainingHoursRegistered()
		return fmt.Sprintf("%s %02d.%d: %s timer, fravær %s timer", label(hoursLabels, h.GetType()), h.GetMonth().GetMonth(), h.GetMonth().GetYear(), decimal(h.GetHours()), decimal(h.GetAbsenceHours()))
	case ev.GetFullTimeUpperSecondaryRegistered() != nil:
		f := ev.GetFullTimeUpperSecondaryRegistered()
		return fmt.Sprintf("%s–%s", d(f.GetFromDate()), d(f.GetToDate()))
	case ev.GetReceptionParticipationRegistered() != nil:
		rp := ev.GetReceptionParticipationRegistered()
		return fmt.Sprintf("%s %s–%s, %s timer", label(receptionLabels, rp.GetActivity()), d(rp.GetFromDate()), d(rp.GetToDate()), decimal(rp.GetHours()))
	case ev.GetExemptionRegistered() != nil:
		x := ev.GetExemptionRegistered()
		return fmt.Sprintf("%s (%s) %s", label(exemptionLabels, x.GetType()), x.GetLegalBasis(), d(x.GetDate()))
	case ev.GetIdentifierAdded() != nil:
		a := ev.GetIdentifierAdded()
		return fmt.Sprintf("%s fra %s (%s)", label(idTypeLabels, a.GetType()), d(a.GetDate()), a.GetSource())
	case ev.GetPersonsMerged() != nil:
		m := ev.GetPersonsMerged()
		return fmt.Sprintf("Person %s slått sammen med denne (%d hendelser): %s", m.GetAbsorbedPersonKey(), len(m.GetAbsorbedEvents()), m.GetReason())
	case ev.GetPersonMergedInto() != nil:
		return "Slått sammen med person " + ev.GetPersonMergedInto().GetSurvivingPersonKey()
	case ev.GetEventRetracted() != nil:
		return fmt.Sprintf("Trakk tilbake %s: %s", ev.GetEventRetracted().GetEventId(), ev.GetEventRetracted().GetReason())
	}
	return ""
}

// reasonOptions are the avslutningsårsaker a kommune registers (not «ikke registrert», which
// only the regelmotor sets, DOMAIN.md Product decisions 5a).
func reasonOptions() []option {
	out := options(reasonLabels, "TERMINATION_REASON_")
	return slices.DeleteFunc(out, func(o option) bool { return o.Value == "IKKE_REGISTRERT" })
}

func newForms(today rules.Date, failed *failedForm) *actionForms {
	f := &actionForms{
		Reasons: reasonOptions(), Kinds: options(kindLabels, "TERMINATION_KIND_"), TiltakCodes: options(tiltakLabels, "TILTAK_CODE_"),
		AbsenceTypes: options(absenceLabels, "ABSENCE_TYPE_"), Programmes: options(programmeLabels, "PROGRAMME_"),
		HoursTypes: options(hoursLabels, "HOURS_TYPE_"), Levels: options(cefrLabels, "CEFR_LEVEL_"),
		Today: isoDate(today), Month: fmt.Sprintf("%04d-%02d", today.Y, int(today.M)),
	}
	for _, fs := range []struct {
		name string
		dst  *formState
	}{{"tiltak", &f.Tiltak}, {"fravaer", &f.Absence}, {"timer", &f.Hours}, {"norskmal", &f.Norskmal}, {"trekk-tilbake", &f.Retract}} {
		*fs.dst = formState{ID: newID(), Values: url.Values{}}
		if failed != nil && failed.anchor == fs.name {
			*fs.dst = formState{ID: failed.values.Get("id"), Values: failed.values, Error: failed.errors}
		}
	}
	return f
}
