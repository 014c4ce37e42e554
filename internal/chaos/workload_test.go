package chaos

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/introreg/nir/rules"
)

// TestNewPerson: every script passes the regelmotor's checks in order, nothing becomes due
// before its last event, and a Due person (and only one) has exactly one computed
// termination due once its script is stored, recorded today as nird records it.
func TestNewPerson(t *testing.T) {
	today := rules.DateFromTime(time.Now())
	recorded := timestamppb.Now()
	for i := range 40 {
		p := NewPerson(i)
		s := rules.NewState("k")
		for e, ev := range p.Events {
			ev.PersonKey, ev.RecordedAt = "k", recorded
			if refusals := rules.Check(s, p.Events[e:e+1], today); len(refusals) > 0 {
				t.Fatalf("person %d event %d refused: %+v", i, e, refusals)
			}
			s.Apply(uint64(e+1), ev)
			// Nothing may become due before the script's last event: the regelmotor
			// would terminate the programme and a later event would be refused.
			if due := rules.DueTerminations(s, today); e < len(p.Events)-1 && len(due) > 0 {
				t.Errorf("person %d: a termination is due after event %d of %d", i, e, len(p.Events))
			}
		}
		due := rules.DueTerminations(s, today)
		if p.Due && len(due) != 1 || !p.Due && len(due) != 0 {
			t.Errorf("person %d (due %v): %d terminations due", i, p.Due, len(due))
		}
	}
}
