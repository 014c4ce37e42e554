package access

import (
	"errors"
	"fmt"
	"testing"
)

// TestEventChecker_RequestChangesPeriods: an EventChecker judges the events of one request,
// each on the state with those before it applied, as CheckEvent does on that state, when the
// request itself moves the person away and back (its move retracted): Oslo's offer dated after
// the move is denied while the person lives in Bergen, and allowed once the move is
// retracted; a stranger's checker finds the person at no point, nor Bergen's before the move.
func TestEventChecker_RequestChangesPeriods(t *testing.T) {
	var h history
	h.register("0301", "0301", "2024-02-01")
	st := h.state()
	move := h.move("0301", "4601", "2024-06-01")
	h.offer("0301", "2024-07-01")
	h.offer("0301", "2024-05-01")
	h.retract("0301", move)
	h.offer("0301", "2024-07-02")
	request := h.events[1:]
	want := map[string][]error{ // ErrDenied stands for a *DeniedError
		"0301": {nil, ErrDenied, nil, nil, nil},
		"4601": {ErrNotFound, nil, nil, ErrDenied, ErrNotFound},
		"5001": {ErrNotFound, ErrNotFound, ErrNotFound, ErrNotFound, ErrNotFound},
	}
	for k, want := range want {
		s := kommune(k)
		c := s.EventChecker()
		st := st.Copy()
		for i, ev := range request {
			field := fmt.Sprintf("registrations[%d].event", i)
			got, fresh := c.Check(st, ev, field), s.CheckEvent(st, ev, field)
			if !sameDecision(got, fresh) || !sameDecision(got, want[i]) {
				t.Errorf("%s, event %d: checker %v, CheckEvent %v, want %v", k, i, got, fresh, want[i])
			}
			st.Apply(st.LastSeq+1, ev)
		}
	}
}

// sameDecision reports whether two CheckEvent answers are the same decision: nil, ErrNotFound
// or a *DeniedError (ErrDenied) for the same field.
func sameDecision(a, b error) bool {
	var da, db *DeniedError
	switch {
	case errors.As(a, &da) && errors.As(b, &db):
		return da.Field == db.Field
	case errors.As(a, &da):
		return errors.Is(b, ErrDenied)
	case errors.As(b, &db):
		return errors.Is(a, ErrDenied)
	}
	return errors.Is(a, b) || a == b
}
