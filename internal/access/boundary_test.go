package access

// The kommune boundary's decisions that no other test of the package could fail on (found by
// mutation testing on 2026-12-07: each case below was the only one to notice a decision
// dropped or negated): Reaches, CheckStatusOf, CheckMerge, and a stranger's registration of
// a person who has nothing but a registration.

import (
	"errors"
	"testing"

	"github.com/introreg/nir/internal/auth"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// movedToBergen is a person Oslo registered on 2024-02-01 who moved to Bergen on 2024-06-01.
func movedToBergen() *rules.State {
	var h history
	h.register("0301", "0301", "2024-02-01")
	h.move("0301", "4601", "2024-06-01")
	return h.state()
}

// TestScope_Reaches: a kommune appends only to a person it has a relation to, current or
// former; an operator (merges only) and the system principal to anyone; an analyst to nobody.
func TestScope_Reaches(t *testing.T) {
	st := movedToBergen()
	for _, c := range []struct {
		scope Scope
		want  bool
	}{
		{kommune("4601"), true},
		{kommune("0301"), true},
		{kommune("1103"), false},
		{kommune("3101"), false},
		{For(auth.Principal{Role: auth.RoleKommune}), false}, // a kommune principal without a kommune
		{For(auth.Principal{Role: auth.RoleAnalyst}), false},
		{For(auth.Principal{Role: auth.RoleOperator}), true},
		{System(&nirv1.Actor{Subject: "regelmotor"}), true},
		{Scope{}, false},
	} {
		if got := c.scope.Reaches(st); got != c.want {
			t.Errorf("%s reaches the person: %v, want %v", c.scope, got, c.want)
		}
	}
}

// TestScope_CheckStatusOf: the person's current status (row, deadlines) is the current
// kommune's; the former kommune keeps its own period's history (Visible), not the person's
// status now (package doc; DOMAIN.md Product decisions 16), and learns the person is not found.
func TestScope_CheckStatusOf(t *testing.T) {
	st := movedToBergen()
	for _, c := range []struct {
		scope Scope
		want  error // nil, ErrNotFound or ErrDenied
	}{
		{kommune("4601"), nil},
		{kommune("0301"), ErrNotFound},
		{kommune("1103"), ErrNotFound},
		{For(auth.Principal{Role: auth.RoleAnalyst}), nil},
		{System(&nirv1.Actor{Subject: "regelmotor"}), nil},
		{For(auth.Principal{Role: auth.RoleOperator}), ErrDenied},
	} {
		err := c.scope.CheckStatus(st)
		if (c.want == nil) != (err == nil) || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: CheckStatus = %v, want %v", c.scope, err, c.want)
		}
	}
}

// TestScope_CheckMerge: persons are merged by the kommune that has the person now, an operator
// or the system principal; the former kommune is refused naming the field, a stranger learns
// nothing (ErrNotFound).
func TestScope_CheckMerge(t *testing.T) {
	st := movedToBergen()
	for _, c := range []struct {
		scope Scope
		want  error
	}{
		{kommune("4601"), nil},
		{kommune("0301"), ErrDenied},
		{kommune("1103"), ErrNotFound},
		{For(auth.Principal{Role: auth.RoleOperator}), nil},
		{System(&nirv1.Actor{Subject: "folkeregister"}), nil},
	} {
		err := c.scope.CheckMerge(st, "registrations[0].event.persons_merged")
		if (c.want == nil) != (err == nil) || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: CheckMerge = %v, want %v", c.scope, err, c.want)
		}
		var de *DeniedError
		if errors.As(err, &de) && de.Field != "registrations[0].event.persons_merged" {
			t.Errorf("%s: refusal names %q", c.scope, de.Field)
		}
	}
}

// TestScope_CheckEvent_StrangerRegistersARegisteredPerson: a person whose whole history is
// its registration by 0301 is 0301's; 1103 registering the same person is answered as for a
// person it cannot see, not judged by the rules (whose refusal of a duplicate would tell
// 1103 that the person exists). The kommune that registered it may send its registration
// again (the rules judge the re-send).
func TestScope_CheckEvent_StrangerRegistersARegisteredPerson(t *testing.T) {
	var h history
	h.register("0301", "0301", "2024-02-01")
	st := h.state()
	reg := func(k string) *nirv1.Event {
		return &nirv1.Event{Kommune: k, Payload: &nirv1.Event_PersonRegistered{PersonRegistered: &nirv1.PersonRegistered{SettlementKommune: k}}}
	}
	if err := kommune("1103").CheckEvent(st, reg("1103"), "registrations[0].event"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a stranger registers a person registered by 0301: %v, want ErrNotFound", err)
	}
	if err := kommune("0301").CheckEvent(st, reg("0301"), "registrations[0].event"); err != nil {
		t.Errorf("0301 re-sends its registration: %v, want nil (the rules decide)", err)
	}
	if err := kommune("1103").CheckEvent(rules.NewState("pk"), reg("1103"), "registrations[0].event"); err != nil {
		t.Errorf("a new person: %v, want nil (the rules decide)", err)
	}
}
