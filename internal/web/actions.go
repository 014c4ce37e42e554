package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"connectrpc.com/connect"

	"github.com/introreg/nir/internal/ingest"
	"github.com/introreg/nir/internal/personkey"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
	"github.com/introreg/nir/rules"
)

// failedForm is a form the person page shows again, with what was sent and why it was not
// registered.
type failedForm struct {
	anchor string
	values url.Values
	errors []string
}

// actionDone are the messages after a registration, by form.
var actionDone = map[string]string{
	"legg-til-arsak":     "Avslutningsårsaken er registrert.",
	"slett-og-registrer": "Den beregnede avslutningen er slettet, og avslutningsårsaken er registrert.",
	"tiltak":             "Tiltaket er registrert.",
	"fravaer":            "Fraværet er registrert.",
	"timer":              "Timene er registrert.",
	"norskmal":           "Norskmålet er registrert.",
	"trekk-tilbake":      "Hendelsen er trukket tilbake.",
}

// personAction registers what a form on the person page says, through
// RegistrationService.Append in process: the same append path, access rules and regelmotor
// checks as any case system's request. A refusal is shown in the form, in Norwegian.
func (c *Console) personAction(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if !personkey.IsKey(key) {
		c.errorPage(w, r, http.StatusNotFound, "Fant ikke personen", "Fant ikke personen.")
		return
	}
	p := principal(r)
	form := r.PostForm
	action := form.Get("handling")
	anchor := form.Get("skjema")
	if anchor == "" {
		anchor = action
	}
	fail := func(status int, msgs ...string) {
		c.showPerson(w, r, status, "", &failedForm{anchor: anchor, values: form, errors: msgs})
	}
	if p.Kommune == "" {
		c.errorPage(w, r, http.StatusForbidden, "Ingen tilgang", "Bare en kommune registrerer for sine personer.")
		return
	}
	regs, errs := buildRegistrations(action, key, p.Kommune, form)
	if len(errs) > 0 {
		fail(http.StatusUnprocessableEntity, errs...)
		return
	}
	if err := c.allowed(r.Context(), nirv1connect.RegistrationServiceAppendProcedure); err != nil {
		c.apiError(w, r, err)
		return
	}
	positions, err := c.reg.AppendAs(ingest.WithTransport(r.Context(), ingest.TransportConsole), &nirv1.AppendRequest{Registrations: regs})
	if err != nil {
		status, msgs := appendRefusal(err)
		if status >= 500 {
			c.failed(r, "registration from the console failed", err, "principal", p.String())
		}
		fail(status, msgs...)
		return
	}
	var last uint64
	for _, pos := range positions {
		last = max(last, pos.GetSequence())
	}
	wrote(r, last)
	c.log.InfoContext(r.Context(), "registration from the console", "principal", p.String(), "form", action, "events", len(positions))
	target := "/personer/" + url.PathEscape(key) + "?registrert=" + url.QueryEscape(action) + "#melding"
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// appendRefusal turns an append error into a status and Norwegian messages: a rule refusal
// carries the regelmotor's own Norwegian message (with code, rule, section and version).
func appendRefusal(err error) (int, []string) {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return http.StatusInternalServerError, []string{"Registreringen feilet. Feilen er logget."}
	}
	switch ce.Code() {
	case connect.CodeFailedPrecondition:
		var msgs []string
		for _, d := range ce.Details() {
			if m, err := d.Value(); err == nil {
				if rr, ok := m.(*nirv1.RuleRefusal); ok {
					msgs = append(msgs, "Avvist av regelmotoren: "+rr.GetMessageNb())
				}
			}
		}
		if len(msgs) == 0 {
			msgs = []string{"Avvist: " + ce.Message()}
		}
		return http.StatusUnprocessableEntity, msgs
	case connect.CodeInvalidArgument:
		field, reason := "", ce.Message()
		for _, d := range ce.Details() {
			if m, err := d.Value(); err == nil {
				if fv, ok := m.(*nirv1.FieldViolation); ok {
					field, reason = fv.GetField(), fv.GetReason()
				}
			}
		}
		if i := strings.LastIndexByte(field, '.'); i >= 0 {
			field = field[i+1:]
		}
		return http.StatusUnprocessableEntity, []string{fmt.Sprintf("Ugyldig verdi i feltet «%s»: %s.", field, reason)}
	case connect.CodeNotFound:
		return http.StatusNotFound, []string{"Fant ikke personen i kommunen din."}
	case connect.CodePermissionDenied:
		return http.StatusForbidden, []string{"Ingen tilgang: en kommune registrerer bare for personer den har, og retter bare sine egne registreringer."}
	case connect.CodeAborted:
		return http.StatusConflict, []string{"Personen ble endret samtidig. Last siden på nytt og prøv igjen."}
	case connect.CodeAlreadyExists:
		// The form's event id is another event's (a user editing the hidden field): the
		// user's doing, not a failure to log at error level.
		return http.StatusConflict, []string{"Skjemaets hendelses-id er allerede brukt. Last siden på nytt og prøv igjen."}
	case connect.CodeResourceExhausted:
		return http.StatusRequestEntityTooLarge, []string{"Registreringen er for stor."}
	case connect.CodeUnavailable, connect.CodeDeadlineExceeded, connect.CodeCanceled:
		return http.StatusServiceUnavailable, []string{"Registeret svarte ikke i tide. Prøv igjen."}
	}
	return http.StatusInternalServerError, []string{"Registreringen feilet. Feilen er logget."}
}

// formReader reads a form's fields and collects what is wrong with them, in Norwegian.
type formReader struct {
	v    url.Values
	errs []string
}

func (f *formReader) bad(format string, a ...any) { f.errs = append(f.errs, fmt.Sprintf(format, a...)) }

func (f *formReader) text(name, lbl string, required bool) string {
	s := strings.TrimSpace(f.v.Get(name))
	if required && s == "" {
		f.bad("%s må fylles ut.", lbl)
	}
	if len(s) > 500 {
		f.bad("%s er for lang (høyst 500 tegn).", lbl)
	}
	return s
}

func (f *formReader) date(name, lbl string, required bool) *nirv1.Date {
	s := strings.TrimSpace(f.v.Get(name))
	if s == "" {
		if required {
			f.bad("%s må fylles ut.", lbl)
		}
		return nil
	}
	d, err := rules.ParseDate(s)
	if err != nil {
		f.bad("%s er ikke en gyldig dato (ÅÅÅÅ-MM-DD).", lbl)
		return nil
	}
	return d.Proto()
}

func (f *formReader) number(name, lbl string, required bool) float64 {
	s := strings.ReplaceAll(strings.TrimSpace(f.v.Get(name)), ",", ".")
	if s == "" {
		if required {
			f.bad("%s må fylles ut.", lbl)
		}
		return 0
	}
	x, err := strconv.ParseFloat(s, 64)
	if err != nil || x < 0 || x > 10000 {
		f.bad("%s må være et tall fra 0 til 10 000.", lbl)
		return 0
	}
	return x
}

// choice parses a select's value as an enum value (its name without prefix); unknown or
// empty is an error naming the field.
func choice[E interface {
	comparable
	String() string
}](f *formReader, name, lbl string, m map[E]string, prefix string) E {
	s := f.v.Get(name)
	for k := range m {
		if s != "" && strings.TrimPrefix(k.String(), prefix) == s {
			return k
		}
	}
	f.bad("Velg %s.", strings.ToLower(lbl))
	var zero E
	return zero
}

// buildRegistrations turns a form into registrations for the person, registered for kommune.
func buildRegistrations(action, key, kommune string, v url.Values) ([]*nirv1.Registration, []string) {
	f := &formReader{v: v}
	id := v.Get("id")
	if !rules.ValidULID(id) {
		return nil, []string{"Skjemaet mangler hendelses-id. Last siden på nytt og prøv igjen."}
	}
	person := &nirv1.PersonRef{PersonKey: key}
	reg := func(id string, ev *nirv1.Event) *nirv1.Registration {
		ev.Id, ev.Kommune = id, kommune
		return &nirv1.Registration{Person: person, Event: ev}
	}
	var regs []*nirv1.Registration
	switch action {
	case "legg-til-arsak", "slett-og-registrer":
		reason := choice(f, "arsak", "Avslutningsårsak", reasonLabels, "TERMINATION_REASON_")
		kind := choice(f, "type", "Avslutningstype", kindLabels, "TERMINATION_KIND_")
		date := f.date("dato", "Avslutningsdato", true)
		term := &nirv1.Event{Payload: &nirv1.Event_TerminationRegistered{TerminationRegistered: &nirv1.TerminationRegistered{Kind: kind, Reason: reason, Date: date}}}
		if action == "slett-og-registrer" {
			computed := v.Get("beregnet")
			why := f.text("slettegrunn", "Grunnen til slettingen", true)
			did := v.Get("slett_id")
			if !rules.ValidULID(computed) || !rules.ValidULID(did) {
				return nil, []string{"Skjemaet mangler hendelses-id. Last siden på nytt og prøv igjen."}
			}
			regs = append(regs, reg(did, &nirv1.Event{Payload: &nirv1.Event_ComputedTerminationDeleted{
				ComputedTerminationDeleted: &nirv1.ComputedTerminationDeleted{ComputedEventId: computed, Reason: why}}}))
		}
		regs = append(regs, reg(id, term))
	case "tiltak":
		code := choice(f, "kode", "Tiltak", tiltakLabels, "TILTAK_CODE_")
		from := f.date("fra", "Fra-dato", true)
		to := f.date("til", "Til-dato", true)
		hours := f.number("timer_per_uke", "Timer per uke", false)
		f.period(from, to)
		regs = append(regs, reg(id, &nirv1.Event{Payload: &nirv1.Event_TiltakRegistered{TiltakRegistered: &nirv1.TiltakRegistered{
			Code: code, FromDate: from, ToDate: to, HoursPerWeek: hours}}}))
	case "fravaer":
		prog := choice(f, "program", "Program", programmeLabels, "PROGRAMME_")
		typ := choice(f, "type", "Type fravær", absenceLabels, "ABSENCE_TYPE_")
		from := f.date("fra", "Fra-dato", true)
		to := f.date("til", "Til-dato", true)
		hours := f.number("timer", "Timer", false)
		f.period(from, to)
		regs = append(regs, reg(id, &nirv1.Event{Payload: &nirv1.Event_AbsenceRegistered{AbsenceRegistered: &nirv1.AbsenceRegistered{
			Programme: prog, Type: typ, FromDate: from, ToDate: to, Hours: hours}}}))
	case "timer":
		typ := choice(f, "type", "Timetype", hoursLabels, "HOURS_TYPE_")
		month := strings.TrimSpace(v.Get("maned"))
		var ym *nirv1.YearMonth
		if d, err := rules.ParseDate(month + "-01"); err != nil {
			f.bad("Måned må fylles ut (ÅÅÅÅ-MM).")
		} else {
			ym = &nirv1.YearMonth{Year: int32(d.Y), Month: int32(d.M)}
		}
		hours := f.number("timer", "Timer", true)
		absence := f.number("fravaerstimer", "Fraværstimer", false)
		regs = append(regs, reg(id, &nirv1.Event{Payload: &nirv1.Event_TrainingHoursRegistered{TrainingHoursRegistered: &nirv1.TrainingHoursRegistered{
			Type: typ, Month: ym, Hours: hours, AbsenceHours: absence}}}))
	case "norskmal":
		l := choice(f, "lytte", "Nivå for lytte", cefrLabels, "CEFR_LEVEL_")
		rd := choice(f, "lese", "Nivå for lese", cefrLabels, "CEFR_LEVEL_")
		wr := choice(f, "skriftlig", "Nivå for skriftlig", cefrLabels, "CEFR_LEVEL_")
		sp := choice(f, "muntlig", "Nivå for muntlig", cefrLabels, "CEFR_LEVEL_")
		date := f.date("dato", "Dato", true)
		regs = append(regs, reg(id, &nirv1.Event{Payload: &nirv1.Event_NorskmalRegistered{NorskmalRegistered: &nirv1.NorskmalRegistered{
			Listening: l, Reading: rd, Writing: wr, Speaking: sp, Date: date}}}))
	case "trekk-tilbake":
		target := v.Get("hendelse")
		if !rules.ValidULID(target) {
			f.bad("Velg hendelsen som skal trekkes tilbake.")
		}
		why := f.text("grunn", "Grunnen til tilbaketrekkingen", true)
		regs = append(regs, reg(id, &nirv1.Event{Payload: &nirv1.Event_EventRetracted{EventRetracted: &nirv1.EventRetracted{EventId: target, Reason: why}}}))
	default:
		return nil, []string{"Ukjent skjema."}
	}
	if len(f.errs) > 0 {
		return nil, f.errs
	}
	return regs, nil
}

// period checks that a period's end is not before its start (the append path would refuse it
// in English; the form says it in Norwegian).
func (f *formReader) period(from, to *nirv1.Date) {
	a, okA := rules.DateOf(from)
	b, okB := rules.DateOf(to)
	if okA && okB && b.Before(a) {
		f.bad("Til-datoen ligger før fra-datoen.")
	}
}
