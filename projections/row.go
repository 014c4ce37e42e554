package projections

import (
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// PersonRow is one person in the person list (personliste, DOMAIN.md 6.1) of their current
// bostedskommune, as folded by the regelmotor. Dates are effective dates; time-dependent
// statuses (overdue, due soon) are computed at query time from them (see Deadlines).
type PersonRow struct {
	PersonKey string
	// Kommune is the current bostedskommune (after the latest move), by its number in the
	// newest kommune structure (rules.KommuneNow: 3001 Halden is listed as 3101; Product
	// decisions 13).
	Kommune string
	// NationalID is the first national id registered. Only the kommune view shows it.
	NationalID string
	BirthDate  rules.Date
	Sex        nirv1.Sex
	Law        nirv1.Law
	PermitDate rules.Date
	// SettlementDate is the date of settlement in the current kommune (move date after a move).
	SettlementDate rules.Date
	// IntroScheme and OpplaeringScheme are the person's kategori for the introduction
	// programme and for opplæring (rett og plikt, kan tilbys, ...; DOMAIN.md 1.7), as the
	// regelmotor decides them.
	IntroScheme      nirv1.Scheme
	OpplaeringScheme nirv1.Scheme

	// Introduksjonsprogram: the latest (by start date) of the programmes of the kommune the
	// person belongs to now, else the last registered (rowProgramme).
	ProgrammeVedtak  bool // a tildeling vedtak exists
	ProgrammeKommune string
	ProgrammeStart   rules.Date
	ProgrammeEnd     rules.Date // latest end date: the regelmotor's frist for the programme
	// ProgrammeEndNote says why the latest end date cannot be computed ("mangler sluttmål").
	ProgrammeEndNote     string
	Tiltak               bool
	Sluttmal             nirv1.Sluttmal
	Integreringskontrakt bool
	TerminationDate      rules.Date
	TerminationReason    nirv1.TerminationReason
	// TerminationComputed is true when the effective termination is the regelmotor's.
	TerminationComputed bool

	// Opplæring i norsk og samfunnskunnskap.
	TrainingVedtak     bool
	TrainingScheme     nirv1.TrainingScheme
	TrainingStart      rules.Date
	Norskmal           bool
	Utdanningsbakgrunn Tristate
	NorskHours         Hours
	SamfunnHours       Hours
	// NorskDeadline is the gjennomføringsfrist (DOMAIN.md 3.2); zero when it cannot be computed,
	// with the reason in NorskDeadlineNote (e.g. "mangler utdanningsbakgrunn").
	NorskDeadline     rules.Date
	NorskDeadlineNote string
	// NorskCompleted is true when the training no longer runs against the deadline (stans,
	// fritak).
	NorskCompleted bool
	// StartDeadline is max(settlement, demand) + 3 months (DOMAIN.md Product decisions 6);
	// TrainingFirst the first training hours or vedtak start.
	StartDeadline rules.Date
	TrainingFirst rules.Date
	// InactiveFrom is the day the latest programme, while open, counts as inactive: the
	// threshold after the person's last registration (rules.InactiveFrom, DOMAIN.md Product
	// decisions 5c). Zero when the programme is not open.
	InactiveFrom rules.Date
	// ProgrammeStartDeadline is the date the introduction programme must have started by
	// (DOMAIN.md 1.2, rules.ProgrammeStartDue), for the persons the rule applies to (zero for
	// the others, and when neither settlement nor krav is known); ProgrammeFirst the first
	// start of any of the person's programmes.
	ProgrammeStartDeadline rules.Date
	ProgrammeFirst         rules.Date
	// Years are the data years the person's programmes and training ran in, as the
	// statistics count them (merged, in order); Terminations the effective terminations of
	// the person's programmes in the row's kommune, by date: the report of terminated
	// participants' rows. The year filter reads them (PersonQuery.Year). Shared between
	// copies of the row: never modified.
	Years        []YearSpan
	Terminations []RowTermination
	// YearHours are the person's registered hours per calendar year of the month they were
	// given in (years with hours only, in order; every kommune's, as NorskHours): the hours
	// filters judge a data year's hours with PersonQuery.Year (DOMAIN.md 3.4, 6.3, 6.5).
	// Shared between copies of the row: never modified.
	YearHours []YearHours
}

// YearHours are the norsk and samfunnskunnskap hours registered for the months of one year.
type YearHours struct {
	Year           int
	Norsk, Samfunn Hours
}

// rowYearHours sums the hours per year of the month, keys in the order of sortedHoursKeys
// (by year first).
func rowYearHours(hours map[rules.HoursKey]float64, keys []rules.HoursKey) []YearHours {
	var out []YearHours
	for _, k := range keys {
		if len(out) == 0 || out[len(out)-1].Year != k.Year {
			out = append(out, YearHours{Year: k.Year})
		}
		h := HoursOf(hours[k])
		if k.Type == nirv1.HoursType_HOURS_TYPE_NORSK {
			out[len(out)-1].Norsk += h
		} else {
			out[len(out)-1].Samfunn += h
		}
	}
	return out
}

// hoursIn returns the person's hours registered for the months of year y.
func (r *PersonRow) hoursIn(y int) YearHours {
	for _, yh := range r.YearHours {
		if yh.Year == y {
			return yh
		}
	}
	return YearHours{Year: y}
}

// YearSpan is a run of data years, From to To inclusive.
type YearSpan struct{ From, To int }

// RowTermination is one effective termination of a programme (TerminatedRow, without what
// the row holds already).
type RowTermination struct {
	Date     rules.Date
	Reason   nirv1.TerminationReason
	Computed bool
}

// registered reports whether the termination has a registered avslutningsårsak (DOMAIN.md 2.5),
// as TerminatedRow.ReasonRegistered.
func (t RowTermination) registered() bool {
	return reasonRegistered(t.Reason)
}

// Inactive reports whether the person is under «ingen registreringer siste 12 måneder» on now.
func (r *PersonRow) Inactive(now rules.Date) bool {
	return !r.InactiveFrom.IsZero() && !now.Before(r.InactiveFrom)
}

// Tristate is yes, no or unknown (utdanningsbakgrunn).
type Tristate uint8

// Tristate values.
const (
	Unknown Tristate = iota
	No
	Yes
)

func (t Tristate) String() string {
	switch t {
	case No:
		return "nei"
	case Yes:
		return "ja"
	}
	return ""
}

// Hours is a number of hours in hundredths, so sums are exact and order-independent.
type Hours int64

// HoursOf converts hours to Hours, rounding to the nearest hundredth.
func HoursOf(h float64) Hours {
	if h < 0 {
		return Hours(h*100 - 0.5)
	}
	return Hours(h*100 + 0.5)
}

// Float returns h in hours.
func (h Hours) Float() float64 { return float64(h) / 100 }

func (r *PersonRow) encode(dst []byte) []byte {
	e := encoder{b: dst}
	e.uvarint(1) // row format
	e.str(r.PersonKey)
	e.str(r.Kommune)
	e.str(r.NationalID)
	e.date(r.BirthDate)
	e.uvarint(uint64(r.Sex))
	e.uvarint(uint64(r.Law))
	e.date(r.PermitDate)
	e.date(r.SettlementDate)
	e.bool(r.ProgrammeVedtak)
	e.str(r.ProgrammeKommune)
	e.date(r.ProgrammeStart)
	e.date(r.ProgrammeEnd)
	e.bool(r.Tiltak)
	e.uvarint(uint64(r.Sluttmal))
	e.bool(r.Integreringskontrakt)
	e.date(r.TerminationDate)
	e.uvarint(uint64(r.TerminationReason))
	e.bool(r.TerminationComputed)
	e.bool(r.TrainingVedtak)
	e.uvarint(uint64(r.TrainingScheme))
	e.date(r.TrainingStart)
	e.bool(r.Norskmal)
	e.uvarint(uint64(r.Utdanningsbakgrunn))
	e.varint(int64(r.NorskHours))
	e.varint(int64(r.SamfunnHours))
	e.date(r.NorskDeadline)
	e.str(r.NorskDeadlineNote)
	e.bool(r.NorskCompleted)
	e.date(r.StartDeadline)
	e.date(r.TrainingFirst)
	e.uvarint(uint64(r.IntroScheme))
	e.uvarint(uint64(r.OpplaeringScheme))
	e.str(r.ProgrammeEndNote)
	e.date(r.InactiveFrom)
	e.date(r.ProgrammeStartDeadline)
	e.date(r.ProgrammeFirst)
	e.uvarint(uint64(len(r.Years)))
	for _, y := range r.Years {
		e.uvarint(uint64(y.From))
		e.uvarint(uint64(y.To))
	}
	e.uvarint(uint64(len(r.Terminations)))
	for _, t := range r.Terminations {
		e.date(t.Date)
		e.uvarint(uint64(t.Reason))
		e.bool(t.Computed)
	}
	e.uvarint(uint64(len(r.YearHours)))
	for _, yh := range r.YearHours {
		e.uvarint(uint64(yh.Year))
		e.varint(int64(yh.Norsk))
		e.varint(int64(yh.Samfunn))
	}
	return e.b
}

func (r *PersonRow) decode(b []byte) error {
	d := decoder{b: b}
	_ = d.uvarint()
	r.PersonKey = d.str()
	r.Kommune = d.str()
	r.NationalID = d.str()
	r.BirthDate = d.date()
	r.Sex = nirv1.Sex(d.uvarint())
	r.Law = nirv1.Law(d.uvarint())
	r.PermitDate = d.date()
	r.SettlementDate = d.date()
	r.ProgrammeVedtak = d.bool()
	r.ProgrammeKommune = d.str()
	r.ProgrammeStart = d.date()
	r.ProgrammeEnd = d.date()
	r.Tiltak = d.bool()
	r.Sluttmal = nirv1.Sluttmal(d.uvarint())
	r.Integreringskontrakt = d.bool()
	r.TerminationDate = d.date()
	r.TerminationReason = nirv1.TerminationReason(d.uvarint())
	r.TerminationComputed = d.bool()
	r.TrainingVedtak = d.bool()
	r.TrainingScheme = nirv1.TrainingScheme(d.uvarint())
	r.TrainingStart = d.date()
	r.Norskmal = d.bool()
	r.Utdanningsbakgrunn = Tristate(d.uvarint())
	r.NorskHours = Hours(d.varint())
	r.SamfunnHours = Hours(d.varint())
	r.NorskDeadline = d.date()
	r.NorskDeadlineNote = d.str()
	r.NorskCompleted = d.bool()
	r.StartDeadline = d.date()
	r.TrainingFirst = d.date()
	r.IntroScheme = nirv1.Scheme(d.uvarint())
	r.OpplaeringScheme = nirv1.Scheme(d.uvarint())
	r.ProgrammeEndNote = d.str()
	r.InactiveFrom = d.date()
	r.ProgrammeStartDeadline = d.date()
	r.ProgrammeFirst = d.date()
	// Fresh slices for every row: a decoded row is copied into the list cache while the
	// decoder's row is reused.
	r.Years, r.Terminations, r.YearHours = nil, nil, nil
	for n := d.uvarint(); n > 0 && d.err == nil; n-- {
		r.Years = append(r.Years, YearSpan{From: int(d.uvarint()), To: int(d.uvarint())})
	}
	for n := d.uvarint(); n > 0 && d.err == nil; n-- {
		r.Terminations = append(r.Terminations, RowTermination{Date: d.date(), Reason: nirv1.TerminationReason(d.uvarint()), Computed: d.bool()})
	}
	for n := d.uvarint(); n > 0 && d.err == nil; n-- {
		r.YearHours = append(r.YearHours, YearHours{Year: int(d.uvarint()), Norsk: Hours(d.varint()), Samfunn: Hours(d.varint())})
	}
	return d.err
}

// TerminatedRow is one terminated programme in the report of terminated participants
// (DOMAIN.md 6.2).
type TerminatedRow struct {
	PersonKey string
	// Kommune is the programme's kommune.
	Kommune string
	Law     nirv1.Law
	// Scheme is the person's kategori for the introduction programme («rett og plikt
	// introduksjonsprogram», «kan tilbys introduksjonsprogram»; DOMAIN.md 6.2).
	Scheme         nirv1.Scheme
	ProgrammeStart rules.Date
	Date           rules.Date
	Reason         nirv1.TerminationReason
	// Computed is true when the effective termination is the regelmotor's.
	Computed bool
	// EventID is the id of the effective termination event.
	EventID string
}

// ReasonRegistered reports whether the row has a registered avslutningsårsak; «Avslutningsårsak
// ikke registrert» (and a missing reason) count as not registered (DOMAIN.md 2.5).
func (t *TerminatedRow) ReasonRegistered() bool {
	return reasonRegistered(t.Reason)
}

func reasonRegistered(r nirv1.TerminationReason) bool {
	return r != nirv1.TerminationReason_TERMINATION_REASON_IKKE_REGISTRERT &&
		r != nirv1.TerminationReason_TERMINATION_REASON_UNSPECIFIED
}

func (t *TerminatedRow) encode(dst []byte) []byte {
	e := encoder{b: dst}
	e.str(t.PersonKey)
	e.str(t.Kommune)
	e.uvarint(uint64(t.Law))
	e.uvarint(uint64(t.Scheme))
	e.date(t.ProgrammeStart)
	e.date(t.Date)
	e.uvarint(uint64(t.Reason))
	e.bool(t.Computed)
	e.str(t.EventID)
	return e.b
}

func (t *TerminatedRow) decode(b []byte) error {
	d := decoder{b: b}
	t.PersonKey = d.str()
	t.Kommune = d.str()
	t.Law = nirv1.Law(d.uvarint())
	t.Scheme = nirv1.Scheme(d.uvarint())
	t.ProgrammeStart = d.date()
	t.Date = d.date()
	t.Reason = nirv1.TerminationReason(d.uvarint())
	t.Computed = d.bool()
	t.EventID = d.str()
	return d.err
}
