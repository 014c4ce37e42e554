package projections

import (
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// DeadlineStatus is the state of a deadline on a given date.
type DeadlineStatus string

// Deadline statuses (DOMAIN.md 3.2, 3.5, Product decisions 3, 4, 6).
const (
	StatusOK            DeadlineStatus = "ok"
	StatusDueSoon       DeadlineStatus = "due_soon"
	StatusOverdue       DeadlineStatus = "overdue"
	StatusCompleted     DeadlineStatus = "completed"
	StatusNotComputable DeadlineStatus = "not_computable"
)

// Deadline names.
const (
	DeadlineProgrammeEnd  = "programme_end"  // the programme's latest end date (Product decisions 4)
	DeadlineNorsk         = "norsk"          // gjennomføringsfrist for norsk (DOMAIN.md 3.2)
	DeadlineTrainingStart = "training_start" // oppstart innen 3 måneder (DOMAIN.md 3.5)
	// DeadlineProgrammeStart: the programme starts within 3 months of settlement or krav
	// (DOMAIN.md 1.2).
	DeadlineProgrammeStart = "programme_start"
)

// DeadlineState is one deadline of a person and its status on a date.
type DeadlineState struct {
	Name   string
	Date   rules.Date
	Status DeadlineStatus
	// Note says why a deadline cannot be computed (e.g. "mangler utdanningsbakgrunn") or how
	// a start deadline was met ("innen fristen", "etter fristen": a start after the deadline
	// is overdue, as on the person's page).
	Note string
}

// Deadlines returns the person's deadlines and their status on now: overdue when the date has
// passed (before now) and the deadline is not met, due soon when it falls within withinDays
// of now (now included). Statuses are computed here, at query time, from the dates the models
// store, so the models themselves never depend on a clock. They are the deadlines and states
// rules.Evaluate gives the person's page (PersonStatus), the programme end of the row's
// programme only: a start within 3 months (DOMAIN.md 1.2, 3.5) is judged by rules.StartState,
// so a late start is overdue in both.
func (r *PersonRow) Deadlines(now rules.Date, withinDays int) []DeadlineState {
	arr, n := r.deadlines(now, withinDays)
	return append([]DeadlineState(nil), arr[:n]...)
}

// deadlines is Deadlines without allocation, for filtering whole lists.
func (r *PersonRow) deadlines(now rules.Date, withinDays int) (arr [4]DeadlineState, n int) {
	out := arr[:0]
	status := func(d rules.Date) DeadlineStatus {
		switch {
		case d.Before(now):
			return StatusOverdue
		case !d.After(now.AddDays(withinDays)):
			return StatusDueSoon
		}
		return StatusOK
	}
	if r.ProgrammeVedtak {
		s := DeadlineState{Name: DeadlineProgrammeEnd, Date: r.ProgrammeEnd}
		switch {
		case !r.TerminationDate.IsZero():
			s.Status = StatusCompleted
		case r.ProgrammeEnd.IsZero():
			s.Status = StatusNotComputable
			s.Note = r.ProgrammeEndNote
		default:
			s.Status = status(r.ProgrammeEnd)
			s.Note = r.ProgrammeEndNote
		}
		out = append(out, s)
	}
	if !r.NorskDeadline.IsZero() || r.NorskDeadlineNote != "" {
		s := DeadlineState{Name: DeadlineNorsk, Date: r.NorskDeadline, Note: r.NorskDeadlineNote}
		switch {
		case r.NorskCompleted:
			s.Status = StatusCompleted
		case r.NorskDeadline.IsZero():
			s.Status = StatusNotComputable
		default:
			s.Status = status(r.NorskDeadline)
		}
		out = append(out, s)
	}
	start := func(name string, due, started rules.Date) {
		if due.IsZero() {
			return
		}
		s := DeadlineState{Name: name, Date: due}
		switch rules.StartState(due, started) {
		case nirv1.DeadlineState_DEADLINE_STATE_COMPLETED:
			s.Status, s.Note = StatusCompleted, "innen fristen"
		case nirv1.DeadlineState_DEADLINE_STATE_OVERDUE:
			s.Status, s.Note = StatusOverdue, "etter fristen"
		default:
			s.Status = status(due)
		}
		out = append(out, s)
	}
	start(DeadlineTrainingStart, r.StartDeadline, r.TrainingFirst)
	start(DeadlineProgrammeStart, r.ProgrammeStartDeadline, r.ProgrammeFirst)
	return arr, len(out)
}

// PersonDeadlines returns a person's deadline states on now (the deadline status model).
func (db *DB) PersonDeadlines(pk string, now rules.Date, withinDays int) ([]DeadlineState, error) {
	row, err := db.Person(pk)
	if err != nil {
		return nil, err
	}
	return row.Deadlines(now, withinDays), nil
}

// PersonStatus returns the regelmotor's full status of a person on now (law, schemes and every
// deadline with its rule version), folded from the stored events: exactly what rules.Evaluate
// says, for a person's detail view. ErrNotFound when the person has no events.
func (db *DB) PersonStatus(pk string, now rules.Date) (rules.Status, error) {
	st, err := db.State(pk)
	if err != nil {
		return rules.Status{}, err
	}
	return rules.Evaluate(st, now), nil
}
