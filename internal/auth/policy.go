package auth

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
	"github.com/introreg/nir/rules"
)

// Public in a [Policy] entry lets anyone call the procedure, without a token (health checks).
// It is not a role: no token file entry can have it.
const Public Role = "public"

// Policy is the authorization table: a procedure name, as Connect names it
// ("/nir.v1.RegistrationService/Append", the URL path of the call), or a whole service
// ("/nir.v1.QueryService/*"), maps to the roles that may call it. An exact name wins over its
// service's wildcard. A procedure that matches nothing is refused for everyone. Plain HTTP
// routes (the CSV export) use their URL path as the procedure name.
//
// Extend a copy of [DefaultPolicy]:
//
//	pol := auth.DefaultPolicy()
//	pol["/export/personliste.csv"] = []auth.Role{auth.RoleKommune}
type Policy map[string][]Role

// Service wildcards of the API services that are not yet in the schema, so that their
// procedures are covered as soon as they are added.
const (
	QueryServiceAll = "/nir.v1.QueryService/*"
	AdminServiceAll = "/nir.v1.AdminService/*"
	// QueryServiceAuditHistory is narrower than its service: analysts may not call it.
	QueryServiceAuditHistory = "/nir.v1.QueryService/AuditHistory"
)

// DefaultPolicy returns a new copy of nird's table:
//
//   - RegistrationService/Append: kommune, system, and operator, which records only the merge
//     of two persons and its retraction (what each may write: internal/access).
//   - RegistrationService/History: kommune and system (which persons: internal/access).
//     Analysts and operators never read a person's history: it holds national ids.
//   - QueryService/*: kommune and analyst. Handlers narrow the rows: a kommune sees its own
//     persons, an analyst pseudonymous rows and statistics only (internal/access).
//   - QueryService/AuditHistory: kommune only (the events hold national ids).
//   - AdminService/*: operator (status, rebuild, snapshots).
//   - gRPC health: public. gRPC reflection: any authenticated role.
func DefaultPolicy() Policy {
	authenticated := []Role{RoleKommune, RoleAnalyst, RoleOperator, RoleSystem}
	return Policy{
		nirv1connect.RegistrationServiceAppendProcedure:  {RoleKommune, RoleSystem, RoleOperator},
		nirv1connect.RegistrationServiceHistoryProcedure: {RoleKommune, RoleSystem},
		QueryServiceAll:                               {RoleKommune, RoleAnalyst},
		QueryServiceAuditHistory:                      {RoleKommune},
		AdminServiceAll:                               {RoleOperator},
		"/grpc.health.v1.Health/*":                    {Public},
		"/grpc.reflection.v1.ServerReflection/*":      authenticated,
		"/grpc.reflection.v1alpha.ServerReflection/*": authenticated,
	}
}

// Clone returns a copy of p that can be changed without changing p.
func (p Policy) Clone() Policy {
	c := make(Policy, len(p))
	for k, v := range p {
		c[k] = slices.Clone(v)
	}
	return c
}

// Procedures returns the table's keys, sorted.
func (p Policy) Procedures() []string {
	return slices.Sorted(maps.Keys(p))
}

// Roles returns the roles allowed to call procedure and the table key that decided it; ok is
// false when no entry matches.
func (p Policy) Roles(procedure string) (roles []Role, key string, ok bool) {
	if roles, ok := p[procedure]; ok {
		return roles, procedure, true
	}
	if i := strings.LastIndexByte(procedure, '/'); i > 0 {
		key = procedure[:i] + "/*"
		if roles, ok := p[key]; ok {
			return roles, key, true
		}
	}
	return nil, "", false
}

// IsPublic reports whether procedure may be called without a token.
func (p Policy) IsPublic(procedure string) bool {
	roles, _, _ := p.Roles(procedure)
	return slices.Contains(roles, Public)
}

// Allows reports whether a principal with role r may call procedure.
func (p Policy) Allows(r Role, procedure string) bool {
	roles, _, _ := p.Roles(procedure)
	return slices.Contains(roles, Public) || (r.Valid() && slices.Contains(roles, r))
}

// Authorize returns nil if pr may call procedure, and an error matching [ErrPermissionDenied]
// that names the role and the procedure otherwise.
func (p Policy) Authorize(pr Principal, procedure string) error {
	if p.Allows(pr.Role, procedure) {
		return nil
	}
	// The procedure is the URL path the client chose: a national id in it is not echoed.
	return fmt.Errorf("%w: role %s may not call %s", ErrPermissionDenied, pr.Role, rules.RedactIDs(procedure))
}

// Validate checks that every key is a procedure name ("/service/method" or "/service/*") and
// every role is defined or Public.
func (p Policy) Validate() error {
	for _, k := range p.Procedures() {
		svc, method, ok := strings.Cut(strings.TrimPrefix(k, "/"), "/")
		if !strings.HasPrefix(k, "/") || !ok || svc == "" || method == "" {
			return fmt.Errorf("auth: policy: key %q is not \"/service/method\" or \"/service/*\"", k)
		}
		for _, r := range p[k] {
			if !r.Valid() && r != Public {
				return fmt.Errorf("auth: policy: key %q: unknown role %q", k, string(r))
			}
		}
	}
	return nil
}
