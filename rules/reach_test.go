package rules

import (
	"slices"
	"testing"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestReachOf_PersonInMottak: a person registered before settlement, in mottak (DOMAIN.md 4;
// 6.5: persons in reception belong to the vertskommune), is reached by the kommune that
// registered it, until a move settles the person elsewhere; that kommune then keeps its own
// period.
//
// Found on 2026-12-06 (review of the write path): before, such a person's current kommune was
// "" and no kommune reached it; now the registering kommune does.
func TestReachOf_PersonInMottak(t *testing.T) {
	t.Parallel()
	reg := evPerson("r1", "0301", "1990-01-01", "2024-01-10", nirv1.PermitBasis_PERMIT_BASIS_ASYL_28)
	pr := reg.GetPersonRegistered()
	pr.SettlementDate, pr.SettlementKommune, pr.SettledByAgreement = nil, "", false
	st := Fold("pk", []*nirv1.Event{reg})
	if r := ReachOf(st); !slices.Equal(r.Current, []string{"0301"}) || len(r.Former) != 0 {
		t.Fatalf("reach of a person in mottak registered by 0301: %+v, want current 0301", r)
	}
	if st.Kommune != "" {
		t.Errorf("the bostedskommune (read models, statistics) became %q: only who reaches the person changes", st.Kommune)
	}
	st.Apply(2, &nirv1.Event{Id: "m1", Kommune: "0301", Payload: &nirv1.Event_PersonMoved{
		PersonMoved: &nirv1.PersonMoved{Date: dpb("2024-03-01"), ToKommune: "4601"}}})
	if r := ReachOf(st); !slices.Equal(r.Current, []string{"4601"}) || !slices.Equal(r.Former, []string{"0301"}) {
		t.Fatalf("reach after settlement in 4601: %+v, want current 4601, former 0301", r)
	}
}
