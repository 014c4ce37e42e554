package rules

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// Static validation of one event as a client sends it ("Product decisions" 9:
// ingress validation). It needs no person state and no clock: it checks the
// form of the event (ids, enums, dates, kommunenummer, national ids, hours),
// never whether the event is allowed for this person now; that is Check's job.
//
// Fields that nird sets (person_key, actor, recorded_at) are not required,
// but are checked when present. Kommune fields inside a payload (settlement,
// move) must be valid on the payload's own date. The envelope kommune must be
// valid on the event's effective date (EffectiveDate), with one exception: a
// number that ceased at a reform is accepted after it when its successor
// (KommuneSuccessor) is valid then, since a programme that began under the old
// number goes on under it (the fold treats both as one kommune, SameKommune;
// Product decisions 13). Any number valid on the date is accepted, from 2004
// (kommuner_2004_2019.csv, SSB Klass 131): a history from before the 2020
// reform names its kommuner by their numbers then. An event without an
// effective date needs a kommune that exists in the table.

// ErrInvalidEvent is returned (inside a FieldErrors) when an event fails
// static validation. Every *FieldError matches it with errors.Is.
var ErrInvalidEvent = errors.New("invalid event")

// Codes of FieldError, stable strings an API client can branch on.
const (
	// CodeRequired: a required field is missing or empty.
	CodeRequired = "required"
	// CodeInvalidULID: not a 26-character canonical (upper-case Crockford
	// base32) ULID.
	CodeInvalidULID = "invalid_ulid"
	// CodeInvalidEnum: an enum is UNSPECIFIED where a value is required, or
	// a number the schema does not define.
	CodeInvalidEnum = "invalid_enum"
	// CodeInvalidDate: a date that is not a calendar date.
	CodeInvalidDate = "invalid_date"
	// CodeDateOrder: a period ends before it starts, or dates are in an
	// impossible order (born after arriving).
	CodeDateOrder = "date_order"
	// CodeInvalidKommune: not a kommunenummer, or not valid on the date.
	CodeInvalidKommune = "invalid_kommune"
	// CodeInvalidNationalID: a fødselsnummer, D-nummer or DUF-nummer that is
	// not valid.
	CodeInvalidNationalID = "invalid_national_id"
	// CodeInvalidNumber: a number that is negative, not finite or out of range.
	CodeInvalidNumber = "invalid_number"
	// CodeInvalidText: free text that is not valid UTF-8, too long or holds
	// control characters.
	CodeInvalidText = "invalid_text"
	// CodePersonalData: free text that holds a national id.
	CodePersonalData = "personal_data"
	// CodeNotAllowed: a field set where it has no meaning, or a value not
	// allowed in this event (such as a retraction of itself).
	CodeNotAllowed = "not_allowed"
)

// Limits of static validation.
const (
	maxTextLen         = 500 // bytes of free text (reasons, legal basis)
	maxIDTextLen       = 128 // bytes of correlation, causation, actor names
	maxHoursPerWeek    = 168 // hours in a week
	maxHoursPerMonth   = 744 // hours in 31 days
	maxExtensionMonths = 12  // IL/IntroL extensions are at most one year (DOMAIN.md 2.2)
	maxUtvidet6AMonths = 6   // utvidet 6A vedtak at most 6 months ("Product decisions" 3)
)

// FieldError is one problem with one field of an event. It never contains
// the value of a national id, nor the dates of a PersonRegistered (birth,
// permit, arrival, settlement), which with a kommune can point to a person.
type FieldError struct {
	// Field is the path of the field in proto names, e.g.
	// "event.person_registered.fodselsnummer".
	Field string
	// Code is one of the Code constants.
	Code string
	// Msg says what is wrong, for people.
	Msg string
	// Err is the underlying error, when there is one (an *IDError or a
	// kommune lookup error); errors.Is and errors.As see it.
	Err error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Unwrap returns ErrInvalidEvent and the underlying error.
func (e *FieldError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrInvalidEvent}
	}
	return []error{ErrInvalidEvent, e.Err}
}

// FieldErrors is every problem ValidateEvent found, in field order. It is
// never empty when returned as an error.
type FieldErrors []*FieldError

func (es FieldErrors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// Unwrap returns the field errors, so errors.Is(err, ErrInvalidEvent) and
// errors.As(err, new(*FieldError)) work on the list.
func (es FieldErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// ValidateEvent checks one event statically and returns nil or a FieldErrors
// listing every problem found.
func ValidateEvent(ev *nirv1.Event) error {
	v := &validator{}
	if ev == nil {
		v.add("event", CodeRequired, "event is missing")
		return v.err()
	}
	v.ulid("event.id", ev.GetId(), true)
	v.envelope(ev)
	v.payload(ev)
	return v.err()
}

type validator struct {
	errs FieldErrors
}

func (v *validator) err() error {
	if len(v.errs) == 0 {
		return nil
	}
	return v.errs
}

func (v *validator) add(field, code, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{Field: field, Code: code, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) addErr(field, code string, err error) {
	v.errs = append(v.errs, &FieldError{Field: field, Code: code, Msg: err.Error(), Err: err})
}

// EffectiveDate returns the date an event is about, the date its kommune must
// be valid on: the settlement date of a PersonRegistered (else its arrival or
// permit date), the start of a period (tiltak, absence, vedtak from or start
// date, else the vedtak date), the first day of a month of hours, or the
// payload's date. It reports false for events without one (EventRetracted,
// ComputedTerminationDeleted) and when the date is missing or invalid. A
// TerminationComputed's kommune is the exception: it is checked on the
// programme's start (see envelope).
func EffectiveDate(ev *nirv1.Event) (Date, bool) {
	first := func(ps ...*nirv1.Date) (Date, bool) {
		for _, p := range ps {
			if d, ok := DateOf(p); ok {
				return d, true
			}
		}
		return Date{}, false
	}
	switch p := ev.GetPayload().(type) {
	case *nirv1.Event_PersonRegistered:
		m := p.PersonRegistered
		return first(m.GetSettlementDate(), m.GetArrivalDate(), m.GetPermitDate())
	case *nirv1.Event_PersonMoved:
		return first(p.PersonMoved.GetDate())
	case *nirv1.Event_DemandRegistered:
		return first(p.DemandRegistered.GetDate())
	case *nirv1.Event_OfferRegistered:
		return first(p.OfferRegistered.GetDate())
	case *nirv1.Event_ProgrammeVedtakRegistered:
		return first(p.ProgrammeVedtakRegistered.GetFromDate(), p.ProgrammeVedtakRegistered.GetVedtakDate())
	case *nirv1.Event_SluttmalRegistered:
		return first(p.SluttmalRegistered.GetDate())
	case *nirv1.Event_IntegreringskontraktRegistered:
		return first(p.IntegreringskontraktRegistered.GetDate())
	case *nirv1.Event_TiltakRegistered:
		return first(p.TiltakRegistered.GetFromDate())
	case *nirv1.Event_AbsenceRegistered:
		return first(p.AbsenceRegistered.GetFromDate())
	case *nirv1.Event_TerminationRegistered:
		return first(p.TerminationRegistered.GetDate())
	case *nirv1.Event_TerminationComputed:
		return first(p.TerminationComputed.GetDate())
	case *nirv1.Event_TrainingVedtakRegistered:
		return first(p.TrainingVedtakRegistered.GetStartDate(), p.TrainingVedtakRegistered.GetVedtakDate())
	case *nirv1.Event_UtdanningsbakgrunnRegistered:
		return first(p.UtdanningsbakgrunnRegistered.GetDate())
	case *nirv1.Event_NorskmalRegistered:
		return first(p.NorskmalRegistered.GetDate())
	case *nirv1.Event_TrainingHoursRegistered:
		m := p.TrainingHoursRegistered.GetMonth()
		return NewDate(int(m.GetYear()), time.Month(m.GetMonth()), 1)
	case *nirv1.Event_FullTimeUpperSecondaryRegistered:
		return first(p.FullTimeUpperSecondaryRegistered.GetFromDate())
	case *nirv1.Event_ReceptionParticipationRegistered:
		return first(p.ReceptionParticipationRegistered.GetFromDate())
	case *nirv1.Event_ExemptionRegistered:
		return first(p.ExemptionRegistered.GetDate())
	case *nirv1.Event_IdentifierAdded:
		return first(p.IdentifierAdded.GetDate())
	}
	return Date{}, false
}

// ValidULID reports whether s is a canonical ULID: 26 characters of
// upper-case Crockford base32 (no I, L, O, U) whose first character is at
// most 7, so the 128-bit value does not overflow. Lower case is refused,
// because the id is also the dedupe id and must have one spelling.
func ValidULID(s string) bool {
	if len(s) != 26 || s[0] > '7' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
		case c >= 'A' && c <= 'Z' && c != 'I' && c != 'L' && c != 'O' && c != 'U':
		default:
			return false
		}
	}
	return true
}

func (v *validator) ulid(field, s string, required bool) {
	switch {
	case s == "":
		if required {
			v.add(field, CodeRequired, "ULID is required")
		}
	case !ValidULID(s):
		v.add(field, CodeInvalidULID, "not a ULID (26 characters of upper-case Crockford base32)")
	}
}

func (v *validator) envelope(ev *nirv1.Event) {
	if ev.GetDataKeyId() != "" {
		// Product decisions 15: a key of the client's choosing could be another person's, whom
		// this person's erasure would then erase too.
		v.add("event.data_key_id", CodeNotAllowed, "is set by nird when it seals the event; leave it empty")
	}
	if k := ev.GetPersonKey(); k != "" {
		if len(k) > maxIDTextLen || !isPrintableASCII(k) {
			v.add("event.person_key", CodeInvalidText, "person_key must be printable ASCII of at most %d bytes", maxIDTextLen)
		}
	}
	on, _ := EffectiveDate(ev)
	tc := ev.GetTerminationComputed()
	if tc != nil {
		// The regelmotor files a computed termination under the number its programme began
		// under (Programme.Kommune), and a number and its successors are one kommune for a
		// programme (DOMAIN.md Product decisions 13): the number is checked on the programme's
		// start, not on the termination date, which may lie after a split or a second reform.
		// A tildeling under an older number of the same kommune may have moved the start to
		// before the number's first day (3101 Halden, started under 3001 in 2023): the
		// number's one kommune valid then suffices (KommuneValidAs).
		on, _ = DateOf(tc.GetProgrammeStart())
		if _, err := KommuneValidAs(ev.GetKommune(), on); !on.IsZero() && err == nil {
			on = Date{}
		}
	}
	if k := ev.GetKommune(); !on.IsZero() && k != "" {
		if _, err := LookupKommune(k, on); errors.Is(err, ErrKommuneNotValid) {
			if s, ok := KommuneSuccessor(k); ok && s.ValidOn(on) {
				on = Date{} // an old number continuing past the reform: existence suffices
			}
		}
	}
	n := len(v.errs)
	v.kommune("event.kommune", ev.GetKommune(), on, true)
	if tc != nil && len(v.errs) > n && errors.Is(v.errs[n].Err, ErrKommuneNotValid) {
		v.errs[n].Msg += "; a computed termination names the kommune its programme began under, valid on termination_computed.programme_start"
	}
	if ts := ev.GetRecordedAt(); ts != nil && !ts.IsValid() {
		v.add("event.recorded_at", CodeInvalidDate, "not a valid timestamp")
	}
	if a := ev.GetActor(); a != nil {
		v.enum("event.actor.role", int32(a.GetRole()), nirv1.ActorRole_name, true)
		v.text("event.actor.subject", a.GetSubject(), maxIDTextLen, false)
		v.text("event.actor.system", a.GetSystem(), maxIDTextLen, false)
	}
	v.text("event.correlation_id", ev.GetCorrelationId(), maxIDTextLen, false)
	v.text("event.causation_id", ev.GetCausationId(), maxIDTextLen, false)
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// enum checks that n is a value the schema defines and, when required, not
// the UNSPECIFIED zero.
func (v *validator) enum(field string, n int32, names map[int32]string, required bool) {
	if _, ok := names[n]; !ok {
		v.add(field, CodeInvalidEnum, "%d is not a defined value", n)
		return
	}
	if required && n == 0 {
		v.add(field, CodeInvalidEnum, "a value is required (not %s)", names[0])
	}
}

// date checks a date field and returns it (zero when missing or invalid).
func (v *validator) date(field string, p *nirv1.Date, required bool) Date {
	if p == nil {
		if required {
			v.add(field, CodeRequired, "date is required")
		}
		return Date{}
	}
	d, ok := DateOf(p)
	switch {
	case ok:
		return d
	case personalDates(field):
		v.add(field, CodeInvalidDate, "not a calendar date")
	default:
		v.add(field, CodeInvalidDate, "%04d-%02d-%02d is not a calendar date", p.GetYear(), p.GetMonth(), p.GetDay())
	}
	return Date{}
}

// personalDates reports whether the dates of a field describe the person
// (birth, arrival, permit): messages leave their values out, since with a
// kommune they can point to a person.
func personalDates(field string) bool { return strings.HasPrefix(field, "event.person_registered.") }

// order checks from <= to when both are known.
func (v *validator) order(fromField string, from Date, toField string, to Date) {
	if from.IsZero() || to.IsZero() || !to.Before(from) {
		return
	}
	if personalDates(toField) {
		v.add(toField, CodeDateOrder, "is before %s", lastName(fromField))
		return
	}
	v.add(toField, CodeDateOrder, "%s is before %s (%s)", to, lastName(fromField), from)
}

func lastName(field string) string { return field[strings.LastIndexByte(field, '.')+1:] }

// number checks a finite number in [0, limit].
func (v *validator) number(field string, x, limit float64) {
	switch {
	case math.IsNaN(x) || math.IsInf(x, 0):
		v.add(field, CodeInvalidNumber, "not a finite number")
	case x < 0:
		v.add(field, CodeInvalidNumber, "must not be negative")
	case x > limit:
		v.add(field, CodeInvalidNumber, "more than %g", limit)
	}
}

// text checks free text: valid UTF-8, at most limit bytes, no control
// characters, and no national id in it (free text must hold no personal data).
func (v *validator) text(field, s string, limit int, required bool) {
	switch {
	case s == "":
		if required {
			v.add(field, CodeRequired, "text is required")
		}
		return
	case !utf8.ValidString(s):
		v.add(field, CodeInvalidText, "not valid UTF-8")
		return
	case len(s) > limit:
		v.add(field, CodeInvalidText, "longer than %d bytes", limit)
		return
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			v.add(field, CodeInvalidText, "contains a control character")
			return
		}
	}
	if containsNationalID(s) {
		v.add(field, CodePersonalData, "contains what looks like a fødselsnummer, D-nummer or DUF-nummer; free text must hold no personal data")
	}
}

// containsNationalID reports whether s has 11 or 12 digits, whole groups of a number as
// people write one (spaces, dots or hyphens between digit groups), that are a valid national
// id.
func containsNationalID(s string) bool {
	// A run is groups of digits with one separator (space, dot, hyphen) between them: a
	// number as people write one ("010190 12345", "010190-12345", "2024-<id>"). The whole run
	// is checked, and so is every stretch of its groups: an id written next to another number
	// ("sak 2024-<id>", "vedlegg 3-178590-00932") is one such stretch.
	var groups []string
	found := func() bool {
		defer func() { groups = groups[:0] }()
		for i := range groups {
			n := 0
			for j := i; j < len(groups) && n < 12; j++ {
				if n += len(groups[j]); n == 11 || n == 12 {
					if _, err := ParseNationalID(strings.Join(groups[i:j+1], "")); err == nil {
						return true
					}
				}
			}
		}
		return false
	}
	start := -1 // start of the current group in s
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] >= '0' && s[i] <= '9' {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			groups = append(groups, s[start:i])
			start = -1
		}
		if i < len(s) && (s[i] == ' ' || s[i] == '.' || s[i] == '-') && len(groups) > 0 && i > 0 && s[i-1] >= '0' && s[i-1] <= '9' &&
			i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9' {
			continue // a separator inside a number: the run goes on
		}
		if found() {
			return true
		}
	}
	return false
}

// kommune checks a kommunenummer field valid on date on (or existing at all
// when on is unknown).
func (v *validator) kommune(field, nr string, on Date, required bool) {
	if nr == "" {
		if required {
			v.add(field, CodeRequired, "kommunenummer is required")
		}
		return
	}
	var err error
	if on.IsZero() {
		_, err = KommunePeriods(nr)
	} else {
		_, err = LookupKommune(nr, on)
	}
	switch {
	case err == nil:
	case personalDates(field) && errors.Is(err, ErrKommuneNotValid):
		// The lookup error names the date; say which date instead.
		v.errs = append(v.errs, &FieldError{Field: field, Code: CodeInvalidKommune, Err: ErrKommuneNotValid,
			Msg: fmt.Sprintf("kommunenummer %s is not valid on the person's %s", nr, strings.TrimSuffix(lastName(field), "_kommune")+"_date")})
	default:
		v.addErr(field, CodeInvalidKommune, err)
	}
}

func (v *validator) nationalID(field, s string, validate func(string) error) {
	if s == "" {
		return
	}
	if err := validate(s); err != nil {
		v.addErr(field, CodeInvalidNationalID, err)
	}
}

func (v *validator) payload(ev *nirv1.Event) {
	const e = "event."
	switch p := ev.GetPayload().(type) {
	case nil:
		v.add("event.payload", CodeRequired, "exactly one payload is required")
	case *nirv1.Event_PersonRegistered:
		v.personRegistered(p.PersonRegistered)
	case *nirv1.Event_PersonMoved:
		const f = e + "person_moved."
		m := p.PersonMoved
		d := v.date(f+"date", m.GetDate(), true)
		v.kommune(f+"to_kommune", m.GetToKommune(), d, true)
	case *nirv1.Event_DemandRegistered:
		const f = e + "demand_registered."
		m := p.DemandRegistered
		v.enum(f+"programme", int32(m.GetProgramme()), nirv1.Programme_name, true)
		v.date(f+"date", m.GetDate(), true)
	case *nirv1.Event_OfferRegistered:
		const f = e + "offer_registered."
		m := p.OfferRegistered
		v.enum(f+"programme", int32(m.GetProgramme()), nirv1.Programme_name, true)
		v.date(f+"date", m.GetDate(), true)
	case *nirv1.Event_ProgrammeVedtakRegistered:
		v.programmeVedtak(p.ProgrammeVedtakRegistered)
	case *nirv1.Event_SluttmalRegistered:
		const f = e + "sluttmal_registered."
		m := p.SluttmalRegistered
		v.enum(f+"sluttmal", int32(m.GetSluttmal()), nirv1.Sluttmal_name, true)
		v.date(f+"date", m.GetDate(), true)
	case *nirv1.Event_IntegreringskontraktRegistered:
		v.date(e+"integreringskontrakt_registered.date", p.IntegreringskontraktRegistered.GetDate(), true)
	case *nirv1.Event_TiltakRegistered:
		const f = e + "tiltak_registered."
		m := p.TiltakRegistered
		v.enum(f+"code", int32(m.GetCode()), nirv1.TiltakCode_name, true)
		from := v.date(f+"from_date", m.GetFromDate(), true)
		to := v.date(f+"to_date", m.GetToDate(), false)
		v.order(f+"from_date", from, f+"to_date", to)
		v.number(f+"hours_per_week", m.GetHoursPerWeek(), maxHoursPerWeek)
	case *nirv1.Event_AbsenceRegistered:
		const f = e + "absence_registered."
		m := p.AbsenceRegistered
		v.enum(f+"programme", int32(m.GetProgramme()), nirv1.Programme_name, true)
		v.enum(f+"type", int32(m.GetType()), nirv1.AbsenceType_name, true)
		from := v.date(f+"from_date", m.GetFromDate(), true)
		to := v.date(f+"to_date", m.GetToDate(), false)
		v.order(f+"from_date", from, f+"to_date", to)
		limit := float64(maxHoursPerMonth)
		if !from.IsZero() && !to.IsZero() && !to.Before(from) {
			limit = float64(24 * (from.DaysUntil(to) + 1)) // no more hours than the period has
		}
		v.number(f+"hours", m.GetHours(), limit)
	case *nirv1.Event_TerminationRegistered:
		const f = e + "termination_registered."
		m := p.TerminationRegistered
		v.enum(f+"kind", int32(m.GetKind()), nirv1.TerminationKind_name, true)
		v.enum(f+"reason", int32(m.GetReason()), nirv1.TerminationReason_name, true)
		v.date(f+"date", m.GetDate(), true)
	case *nirv1.Event_TerminationComputed:
		const f = e + "termination_computed."
		m := p.TerminationComputed
		v.enum(f+"rule", int32(m.GetRule()), nirv1.TerminationRule_name, true)
		v.enum(f+"reason", int32(m.GetReason()), nirv1.TerminationReason_name, true)
		if r := m.GetReason(); r != nirv1.TerminationReason_TERMINATION_REASON_UNSPECIFIED &&
			r != nirv1.TerminationReason_TERMINATION_REASON_IKKE_REGISTRERT &&
			r != nirv1.TerminationReason_TERMINATION_REASON_FLYTTET {
			v.add(f+"reason", CodeNotAllowed, "a computed termination is IKKE_REGISTRERT or FLYTTET")
		}
		date := v.date(f+"date", m.GetDate(), true)
		start := v.date(f+"programme_start", m.GetProgrammeStart(), true)
		v.order(f+"programme_start", start, f+"date", date)
		v.text(f+"rule_version", m.GetRuleVersion(), maxIDTextLen, true)
	case *nirv1.Event_ComputedTerminationDeleted:
		const f = e + "computed_termination_deleted."
		m := p.ComputedTerminationDeleted
		v.ulid(f+"computed_event_id", m.GetComputedEventId(), true)
		v.text(f+"reason", m.GetReason(), maxTextLen, false)
	case *nirv1.Event_TrainingVedtakRegistered:
		v.trainingVedtak(p.TrainingVedtakRegistered)
	case *nirv1.Event_UtdanningsbakgrunnRegistered:
		v.date(e+"utdanningsbakgrunn_registered.date", p.UtdanningsbakgrunnRegistered.GetDate(), true)
	case *nirv1.Event_NorskmalRegistered:
		const f = e + "norskmal_registered."
		m := p.NorskmalRegistered
		v.enum(f+"listening", int32(m.GetListening()), nirv1.CefrLevel_name, true)
		v.enum(f+"reading", int32(m.GetReading()), nirv1.CefrLevel_name, true)
		v.enum(f+"writing", int32(m.GetWriting()), nirv1.CefrLevel_name, true)
		v.enum(f+"speaking", int32(m.GetSpeaking()), nirv1.CefrLevel_name, true)
		v.date(f+"date", m.GetDate(), true)
	case *nirv1.Event_TrainingHoursRegistered:
		const f = e + "training_hours_registered."
		m := p.TrainingHoursRegistered
		v.enum(f+"type", int32(m.GetType()), nirv1.HoursType_name, true)
		switch ym := m.GetMonth(); {
		case ym == nil:
			v.add(f+"month", CodeRequired, "month is required")
		case ym.GetYear() < 1 || ym.GetYear() > 9999 || ym.GetMonth() < 1 || ym.GetMonth() > 12:
			v.add(f+"month", CodeInvalidDate, "%04d-%02d is not a calendar month", ym.GetYear(), ym.GetMonth())
		}
		v.number(f+"hours", m.GetHours(), maxHoursPerMonth)
		v.number(f+"absence_hours", m.GetAbsenceHours(), maxHoursPerMonth)
	case *nirv1.Event_FullTimeUpperSecondaryRegistered:
		const f = e + "full_time_upper_secondary_registered."
		m := p.FullTimeUpperSecondaryRegistered
		from := v.date(f+"from_date", m.GetFromDate(), true)
		to := v.date(f+"to_date", m.GetToDate(), false)
		v.order(f+"from_date", from, f+"to_date", to)
	case *nirv1.Event_ReceptionParticipationRegistered:
		const f = e + "reception_participation_registered."
		m := p.ReceptionParticipationRegistered
		v.enum(f+"activity", int32(m.GetActivity()), nirv1.ReceptionActivity_name, true)
		from := v.date(f+"from_date", m.GetFromDate(), true)
		to := v.date(f+"to_date", m.GetToDate(), false)
		v.order(f+"from_date", from, f+"to_date", to)
		// Training in mottak can run for years: only sign and finiteness are checked here;
		// the rules bound the hours by the days of the period (NIR-R040), an open-ended one's
		// by the days it has run.
		v.number(f+"hours", m.GetHours(), math.Inf(1))
	case *nirv1.Event_IdentifierAdded:
		const f = e + "identifier_added."
		m := p.IdentifierAdded
		v.enum(f+"type", int32(m.GetType()), nirv1.IdentifierType_name, true)
		switch t := m.GetType(); {
		case m.GetNationalId() == "":
			v.add(f+"national_id", CodeRequired, "national_id is required")
		case t != nirv1.IdentifierType_IDENTIFIER_TYPE_UNSPECIFIED && nirv1.IdentifierType_name[int32(t)] != "":
			v.nationalID(f+"national_id", m.GetNationalId(), func(id string) error { return validateAs(id, t) })
		}
		v.date(f+"date", m.GetDate(), true)
		v.text(f+"source", m.GetSource(), maxIDTextLen, false)
		if len(m.GetSealedNationalId()) > 0 {
			v.add(f+"sealed_national_id", CodeNotAllowed, "is set by nird when it stores the event; send national_id in clear")
		}
	case *nirv1.Event_IdentifierClaimed:
		const f = e + "identifier_claimed."
		m := p.IdentifierClaimed
		v.personKey(f+"person_key", m.GetPersonKey())
		v.enum(f+"type", int32(m.GetType()), nirv1.IdentifierType_name, true)
		v.ulid(f+"event_id", m.GetEventId(), true)
	case *nirv1.Event_PersonsMerged:
		const f = e + "persons_merged."
		m := p.PersonsMerged
		v.personKey(f+"absorbed_person_key", m.GetAbsorbedPersonKey())
		v.text(f+"reason", m.GetReason(), maxTextLen, false)
		if len(m.GetAbsorbedEvents()) > 0 {
			v.add(f+"absorbed_events", CodeNotAllowed, "absorbed_events are copied by nird; leave them empty")
		}
	case *nirv1.Event_PersonErased:
		const f = e + "person_erased."
		m := p.PersonErased
		v.text(f+"reason", m.GetReason(), maxTextLen, true)
		if len(m.GetDestroyedKeys()) > 0 {
			v.add(f+"destroyed_keys", CodeNotAllowed, "destroyed_keys are set by nird; leave them empty")
		}
	case *nirv1.Event_PersonMergedInto:
		const f = e + "person_merged_into."
		m := p.PersonMergedInto
		v.personKey(f+"surviving_person_key", m.GetSurvivingPersonKey())
		v.ulid(f+"merge_event_id", m.GetMergeEventId(), true)
	case *nirv1.Event_ExemptionRegistered:
		const f = e + "exemption_registered."
		m := p.ExemptionRegistered
		v.enum(f+"type", int32(m.GetType()), nirv1.ExemptionType_name, true)
		v.text(f+"legal_basis", m.GetLegalBasis(), maxTextLen, true)
		v.date(f+"date", m.GetDate(), true)
	case *nirv1.Event_EventRetracted:
		const f = e + "event_retracted."
		m := p.EventRetracted
		v.ulid(f+"event_id", m.GetEventId(), true)
		if m.GetEventId() != "" && m.GetEventId() == ev.GetId() {
			v.add(f+"event_id", CodeNotAllowed, "an event cannot retract itself")
		}
		v.text(f+"reason", m.GetReason(), maxTextLen, false)
	default:
		// A payload added to the schema but not to this switch: refuse it
		// rather than let it through unchecked. validate_test.go checks that
		// every oneof member is handled.
		v.add("event.payload", CodeNotAllowed, "payload type %T is not known to the validator", p)
	}
}

func (v *validator) personRegistered(m *nirv1.PersonRegistered) {
	const f = "event.person_registered."
	if m.GetFodselsnummer() == "" && m.GetDNummer() == "" && m.GetDufNummer() == "" {
		v.add(f+"fodselsnummer", CodeRequired, "one of fodselsnummer, d_nummer or duf_nummer is required")
	}
	v.nationalID(f+"fodselsnummer", m.GetFodselsnummer(), ValidateFodselsnummer)
	v.nationalID(f+"d_nummer", m.GetDNummer(), ValidateDNummer)
	v.nationalID(f+"duf_nummer", m.GetDufNummer(), ValidateDUF)
	birth := v.date(f+"birth_date", m.GetBirthDate(), true)
	v.enum(f+"sex", int32(m.GetSex()), nirv1.Sex_name, true)
	permit := v.date(f+"permit_date", m.GetPermitDate(), false)
	// A person in mottak has no permit yet; with a permit its basis decides
	// the law (DOMAIN.md 1.1), so it is required then.
	v.enum(f+"permit_basis", int32(m.GetPermitBasis()), nirv1.PermitBasis_name, m.GetPermitDate() != nil)
	if m.GetPermitDate() == nil && m.GetPermitBasis() != nirv1.PermitBasis_PERMIT_BASIS_UNSPECIFIED {
		v.add(f+"permit_date", CodeRequired, "permit_date is required with permit_basis")
	}
	arrival := v.date(f+"arrival_date", m.GetArrivalDate(), false)
	settled := v.date(f+"settlement_date", m.GetSettlementDate(), m.GetSettlementKommune() != "")
	v.kommune(f+"settlement_kommune", m.GetSettlementKommune(), settled, m.GetSettlementDate() != nil)
	v.order(f+"birth_date", birth, f+"permit_date", permit)
	v.order(f+"birth_date", birth, f+"arrival_date", arrival)
	v.order(f+"birth_date", birth, f+"settlement_date", settled)
	v.order(f+"arrival_date", arrival, f+"settlement_date", settled)
	// Product decisions 15: nird seals the identity when it stores the event.
	if len(m.GetSealedIdentity()) > 0 {
		v.add(f+"sealed_identity", CodeNotAllowed, "is set by nird when it stores the event; send the ids and birth_date in clear")
	}
	if m.AgeAtPermitDate != nil {
		v.add(f+"age_at_permit_date", CodeNotAllowed, "is set by nird from birth_date and permit_date; leave it empty")
	}
}

func (v *validator) programmeVedtak(m *nirv1.ProgrammeVedtakRegistered) {
	const f = "event.programme_vedtak_registered."
	v.enum(f+"type", int32(m.GetType()), nirv1.ProgrammeVedtakType_name, true)
	v.date(f+"vedtak_date", m.GetVedtakDate(), true)
	t := m.GetType()
	needFrom := t == nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING ||
		t == nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_STANS ||
		t == nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_PERMISJON
	from := v.date(f+"from_date", m.GetFromDate(), needFrom)
	to := v.date(f+"to_date", m.GetToDate(), t == nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_PERMISJON)
	v.order(f+"from_date", from, f+"to_date", to)
	n := m.GetExtensionMonths()
	switch {
	case t == nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_UTVIDELSE && n == 0:
		v.add(f+"extension_months", CodeRequired, "an utvidelse needs its length in months")
	case n < 0 || n > maxExtensionMonths:
		v.add(f+"extension_months", CodeInvalidNumber, "must be 1 to %d months", maxExtensionMonths)
	case n != 0 && t != nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_UTVIDELSE:
		v.add(f+"extension_months", CodeNotAllowed, "only an utvidelse has extension_months")
	}
}

func (v *validator) trainingVedtak(m *nirv1.TrainingVedtakRegistered) {
	const f = "event.training_vedtak_registered."
	v.enum(f+"scheme", int32(m.GetScheme()), nirv1.TrainingScheme_name, true)
	v.enum(f+"type", int32(m.GetType()), nirv1.TrainingVedtakType_name, true)
	v.date(f+"vedtak_date", m.GetVedtakDate(), true)
	t := m.GetType()
	needStart := t == nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING ||
		t == nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_STANS ||
		t == nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_PERMISJON
	start := v.date(f+"start_date", m.GetStartDate(), needStart)
	end := v.date(f+"end_date", m.GetEndDate(), t == nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_PERMISJON)
	v.order(f+"start_date", start, f+"end_date", end)
	if m.GetScheme() == nirv1.TrainingScheme_TRAINING_SCHEME_UTVIDET_6A && !start.IsZero() && !end.IsZero() &&
		end.After(start.AddMonths(maxUtvidet6AMonths)) {
		v.add(f+"end_date", CodeNotAllowed, "an utvidet 6A vedtak lasts at most %d months", maxUtvidet6AMonths)
	}
}

// personKey checks that a field holds a person key.
func (v *validator) personKey(field, s string) {
	if !IsPersonKey(s) {
		v.add(field, CodeInvalidText, "%s must be a person key (64 lowercase hex characters)", field[strings.LastIndexByte(field, '.')+1:])
	}
}

// IsPersonKey reports whether s has the form of a person key: 64 lowercase hex characters
// (the hex of an HMAC-SHA256).
func IsPersonKey(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
