package api

import (
	"context"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/projections"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// The handlers' own role checks, called in process without the guard: the policy refuses
// these calls first over Connect, so the tests that go through it cannot fail when a
// handler's check is removed (mutation testing, 2026-12-07: both survived). The handlers'
// checks are the second lock (admin.go operator; access.Scope.CanReadHistory), for a policy
// extended by hand or a caller in process (the web console calls the handlers directly).

// TestAdmin_HandlersRefuseEveryRoleButOperator: every AdminService call refuses kommune,
// analyst and system principals with PermissionDenied, and one without a principal with
// Unauthenticated; an operator is let through (a control: the refusals are the role's).
func TestAdmin_HandlersRefuseEveryRoleButOperator(t *testing.T) {
	w := startQuery(t)
	adm := NewAdmin(w.proj, nil)
	adm.SetRetentionYears(10)
	calls := map[string]func(ctx context.Context) error{
		"ProjectionStatus": func(ctx context.Context) error {
			_, err := adm.ProjectionStatus(ctx, connect.NewRequest(&nirv1.ProjectionStatusRequest{}))
			return err
		},
		"ListSnapshots": func(ctx context.Context) error {
			_, err := adm.ListSnapshots(ctx, connect.NewRequest(&nirv1.ListSnapshotsRequest{}))
			return err
		},
		"ListErasureDue": func(ctx context.Context) error {
			_, err := adm.ListErasureDue(ctx, connect.NewRequest(&nirv1.ListErasureDueRequest{}))
			return err
		},
		"DeleteSnapshot": func(ctx context.Context) error {
			_, err := adm.DeleteSnapshot(ctx, connect.NewRequest(&nirv1.DeleteSnapshotRequest{Name: "none-such"}))
			return err
		},
		"VerifyProjections": func(ctx context.Context) error {
			_, err := adm.VerifyProjections(ctx, connect.NewRequest(&nirv1.VerifyProjectionsRequest{}))
			return err
		},
		"CreateSnapshot": func(ctx context.Context) error {
			_, err := adm.CreateSnapshotAs(ctx, &nirv1.CreateSnapshotRequest{}, func(projections.Progress) {})
			return err
		},
		"Rebuild": func(ctx context.Context) error {
			_, err := adm.RebuildAs(ctx, &nirv1.RebuildRequest{Model: "no such model"}, func(projections.Progress) {})
			return err
		},
	}
	bg := context.Background()
	for name, call := range calls {
		for _, p := range []auth.Principal{
			{Name: "oslo", Role: auth.RoleKommune, Kommune: oslo},
			{Name: "analyst", Role: auth.RoleAnalyst},
			{Name: "regelmotor", Role: auth.RoleSystem},
		} {
			if err := call(auth.NewContext(bg, p)); connect.CodeOf(err) != connect.CodePermissionDenied {
				t.Errorf("%s as %s: %v; want PermissionDenied", name, p.Role, err)
			}
		}
		if err := call(bg); connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Errorf("%s without a principal: %v; want Unauthenticated", name, err)
		}
		// The operator gets past the role check: whatever it is answered (the requests
		// are empty or name nothing), it is not a refusal of its role.
		err := call(auth.NewContext(bg, auth.Principal{Name: "op", Role: auth.RoleOperator}))
		if c := connect.CodeOf(err); err != nil && (c == connect.CodePermissionDenied || c == connect.CodeUnauthenticated) {
			t.Errorf("%s as operator: %v; want no refusal of the role", name, err)
		}
	}
}

// TestQuery_AuditHistoryRefusesAnalystInTheHandler: QueryService.AuditHistory refuses an
// analyst in the handler itself (access.Scope.CanReadHistory), although the policy lets
// analysts call the rest of the service: the events hold national ids.
func TestQuery_AuditHistoryRefusesAnalystInTheHandler(t *testing.T) {
	w := startQuery(t)
	bg := context.Background()
	req := &nirv1.AuditHistoryRequest{Person: w.key("p1")}
	if res, err := w.q.AuditHistory(auth.NewContext(bg, auth.Principal{Name: "oslo", Role: auth.RoleKommune, Kommune: oslo}), connect.NewRequest(req)); err != nil || len(res.Msg.GetEntries()) == 0 {
		t.Fatalf("Oslo's audit history of its own person: %v; want its entries", err)
	}
	// A known person and an unknown one: refused before the person is looked up, so the
	// answer does not tell whether the person exists either.
	for _, ref := range []*nirv1.PersonRef{req.Person, {PersonKey: strings.Repeat("ab", 32)}} {
		res, err := w.q.AuditHistory(auth.NewContext(bg, auth.Principal{Name: "analyst", Role: auth.RoleAnalyst}), connect.NewRequest(&nirv1.AuditHistoryRequest{Person: ref}))
		if connect.CodeOf(err) != connect.CodePermissionDenied {
			n := 0
			if res != nil {
				n = len(res.Msg.GetEntries())
			}
			t.Errorf("an analyst's audit history of person key %s…: %d entries, %v; want PermissionDenied", ref.GetPersonKey()[:8], n, err)
		}
	}
}
