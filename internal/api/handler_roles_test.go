package api_test

import (
	"context"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/introreg/nir/internal/auth"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestHistory_HandlerRefusesRolesWithoutNationalIDs: RegistrationService.History refuses
// analysts and operators in the handler itself (access.Scope.CanReadHistory), not only in
// the guard's policy: a policy extended by hand (auth.Policy is a map nird's wiring copies and
// extends) must not open the events, which hold national ids, to a role that never sees them.
// Mutation testing (2026-12-07) found the handler's check could be removed with every test
// passing: each went through the default policy, which refuses the call first.
func TestHistory_HandlerRefusesRolesWithoutNationalIDs(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	oslo := auth.NewContext(ctx, auth.Principal{Name: "oslo", Role: auth.RoleKommune, Kommune: "0301"})
	own, err := f.reg.History(oslo, connect.NewRequest(&nirv1.HistoryRequest{Person: &nirv1.PersonRef{NationalId: f.oslo}}))
	if err != nil || len(own.Msg.GetEvents()) == 0 {
		t.Fatalf("Oslo's history of its own person: %v (%d events); want the events", err, len(own.Msg.GetEvents()))
	}
	// A known person and an unknown one: the refusal comes before the person is looked up,
	// so it does not tell the role whether the person exists either.
	unknown := strings.Repeat("ab", 32)
	for _, p := range []auth.Principal{
		{Name: "analyst", Role: auth.RoleAnalyst},
		{Name: "operator", Role: auth.RoleOperator},
	} {
		for _, key := range []string{own.Msg.GetPersonKey(), unknown} {
			res, err := f.reg.History(auth.NewContext(ctx, p), connect.NewRequest(&nirv1.HistoryRequest{Person: &nirv1.PersonRef{PersonKey: key}}))
			if connect.CodeOf(err) != connect.CodePermissionDenied {
				n := 0
				if res != nil {
					n = len(res.Msg.GetEvents())
				}
				t.Errorf("%s reads the history of person key %s…: %d events, %v; want PermissionDenied", p.Role, key[:8], n, err)
			}
		}
	}
}
