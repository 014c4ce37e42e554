package auth

import (
	"errors"
	"slices"
	"strings"
	"testing"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
	"github.com/introreg/nir/rules"
)

// TestDefaultPolicy checks every role against every procedure of the table, and against
// procedures the table reaches through a service wildcard or not at all. The expectations are
// written out so that a change of the table shows up here.
func TestDefaultPolicy(t *testing.T) {
	t.Parallel()
	const (
		K = RoleKommune
		A = RoleAnalyst
		O = RoleOperator
		S = RoleSystem
	)
	tests := []struct {
		procedure string
		allowed   []Role // roles that may call it; Public means anyone without a token
	}{
		// An operator's appends are narrowed to merges by internal/access.
		{nirv1connect.RegistrationServiceAppendProcedure, []Role{K, S, O}},
		{nirv1connect.RegistrationServiceHistoryProcedure, []Role{K, S}},
		{"/nir.v1.RegistrationService/Delete", nil}, // not in the table: deny by default
		{QueryServiceAll, []Role{K, A}},
		{"/nir.v1.QueryService/ListPersons", []Role{K, A}},
		{"/nir.v1.QueryService/Statistics", []Role{K, A}},
		{QueryServiceAuditHistory, []Role{K}},
		{"/nir.v1.AdminService/CreateSnapshot", []Role{O}},
		{AdminServiceAll, []Role{O}},
		{"/nir.v1.AdminService/Status", []Role{O}},
		{"/nir.v1.AdminService/Rebuild", []Role{O}},
		{"/grpc.health.v1.Health/*", []Role{Public}},
		{"/grpc.health.v1.Health/Check", []Role{Public}},
		{"/grpc.reflection.v1.ServerReflection/*", []Role{K, A, O, S}},
		{"/grpc.reflection.v1alpha.ServerReflection/*", []Role{K, A, O, S}},
		{"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", []Role{K, A, O, S}},
		{"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", []Role{K, A, O, S}},
		{"/nir.v2.QueryService/ListPersons", nil},
		{"/export/personliste.csv", nil},
		{"", nil},
		{"/", nil},
		{"*", nil},
	}
	pol := DefaultPolicy()
	if err := pol.Validate(); err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.procedure] = true
		public := slices.Contains(tt.allowed, Public)
		if got := pol.IsPublic(tt.procedure); got != public {
			t.Errorf("IsPublic(%q) = %v, want %v", tt.procedure, got, public)
		}
		for _, r := range append(slices.Clone(Roles), "", "root", Public) {
			want := public || slices.Contains(tt.allowed, r)
			if got := pol.Allows(r, tt.procedure); got != want {
				t.Errorf("Allows(%q, %q) = %v, want %v", r, tt.procedure, got, want)
			}
			err := pol.Authorize(Principal{Name: "x", Role: r}, tt.procedure)
			if want != (err == nil) || (err != nil && !errors.Is(err, ErrPermissionDenied)) {
				t.Errorf("Authorize(%q, %q) = %v, want allowed=%v", r, tt.procedure, err, want)
			}
		}
	}
	for _, k := range pol.Procedures() {
		if !covered[k] {
			t.Errorf("procedure %q of DefaultPolicy has no expectation in this test", k)
		}
	}
}

func TestPolicy_Extend(t *testing.T) {
	t.Parallel()
	pol := DefaultPolicy()
	pol["/export/personliste.csv"] = []Role{RoleKommune}
	pol["/nir.v1.QueryService/Statistics"] = []Role{RoleAnalyst} // exact wins over the wildcard
	if !pol.Allows(RoleKommune, "/export/personliste.csv") || pol.Allows(RoleAnalyst, "/export/personliste.csv") {
		t.Error("added route not applied")
	}
	if pol.Allows(RoleKommune, "/nir.v1.QueryService/Statistics") || !pol.Allows(RoleKommune, "/nir.v1.QueryService/ListPersons") {
		t.Error("exact entry does not override the service wildcard")
	}
	if roles, key, ok := pol.Roles("/nir.v1.QueryService/ListPersons"); !ok || key != QueryServiceAll || len(roles) != 2 {
		t.Errorf("Roles = %v, %q, %v", roles, key, ok)
	}
	if DefaultPolicy().Allows(RoleKommune, "/export/personliste.csv") {
		t.Error("changing one DefaultPolicy changed another")
	}
	c := pol.Clone()
	c[AdminServiceAll][0] = RoleAnalyst
	if !pol.Allows(RoleOperator, "/nir.v1.AdminService/Status") {
		t.Error("changing a clone changed the original")
	}
	for name, bad := range map[string]Policy{
		"NoSlash":     {"nir.v1.X/Y": {RoleKommune}},
		"NoMethod":    {"/nir.v1.X": {RoleKommune}},
		"UnknownRole": {"/nir.v1.X/Y": {"root"}},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %v", name, bad)
		}
	}
}

func TestPrincipal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p    Principal
		role nirv1.ActorRole
		str  string
	}{
		{Principal{Name: "oslo", Role: RoleKommune, Kommune: "0301", System: "Visma Flyt"}, nirv1.ActorRole_ACTOR_ROLE_KOMMUNE, "kommune:oslo@0301"},
		{Principal{Name: "ssb", Role: RoleAnalyst}, nirv1.ActorRole_ACTOR_ROLE_ANALYST, "analyst:ssb"},
		{Principal{Name: "drift", Role: RoleOperator}, nirv1.ActorRole_ACTOR_ROLE_OPERATOR, "operator:drift"},
		{Principal{Name: "regelmotor", Role: RoleSystem}, nirv1.ActorRole_ACTOR_ROLE_SYSTEM, "system:regelmotor"},
		{Principal{Name: "x", Role: "root"}, nirv1.ActorRole_ACTOR_ROLE_UNSPECIFIED, "root:x"},
	}
	for _, tt := range tests {
		a := tt.p.Actor()
		if a.GetSubject() != tt.p.Name || a.GetRole() != tt.role || a.GetSystem() != tt.p.System {
			t.Errorf("%v.Actor() = %v", tt.p, a)
		}
		if got := tt.p.String(); got != tt.str || strings.Contains(got, "token") {
			t.Errorf("String() = %q, want %q", got, tt.str)
		}
	}
}

// TestPolicy_AuthorizeErrorHoldsNoNationalID: the refusal names the procedure, but a
// national id a caller put in the path (a hostile caller's, or a mistaken URL) is redacted,
// as it is in the guard's log: the error goes back to the caller and into nird's logs.
func TestPolicy_AuthorizeErrorHoldsNoNationalID(t *testing.T) {
	fnr := rules.SyntheticFodselsnummer(rules.MustDate(1990, 3, 4), 7)
	procedure := "/nir.v1.AdminService/" + fnr
	err := DefaultPolicy().Authorize(Principal{Name: "ssb", Role: RoleAnalyst}, procedure)
	if !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("Authorize = %v, want ErrPermissionDenied", err)
	}
	if strings.Contains(err.Error(), fnr) || !strings.Contains(err.Error(), "/nir.v1.AdminService/") {
		t.Errorf("error %q holds the national id, or lost the service", err)
	}
}
