package auth

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
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
//   - RegistrationService/Append: kommune (its own kommune, [CanWriteKommune]) and system.
//   - RegistrationService/History: kommune (persons it may read, [CanReadPerson]) and system.
//     Analysts and operators never read a person's history: it holds national ids.
//   - QueryService/*: kommune and analyst. Handlers narrow the rows: a kommune sees its own
//     persons, an analyst pseudonymous rows and statistics only ([Principal.SeesNationalIDs]).
//   - QueryService/AuditHistory: kommune only (the events hold national ids).
//   - AdminService/*: operator (status, rebuild, snapshots).
//   - gRPC health: public. gRPC reflection: any authenticated role.
func DefaultPolicy() Policy {
	authenticated := []Role{RoleKommune, RoleAnalyst, RoleOperator, RoleSystem}
	return Policy{
		nirv1connect.RegistrationServiceAppendProcedure:  {RoleKommune, RoleSystem},
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
	return fmt.Errorf("%w: role %s may not call %s", ErrPermissionDenied, pr.Role, procedure)
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

// CanWriteKommune reports whether p may record events registered for kommune (the envelope's
// kommune field): a kommune principal only for its own kommune, the system principal
// (regelmotor) for any, analysts and operators never.
func CanWriteKommune(p Principal, kommune string) bool {
	switch p.Role {
	case RoleKommune:
		return p.Kommune != "" && p.Kommune == kommune
	case RoleSystem:
		return kommune != ""
	}
	return false
}

// KommunePeriod is a stint of a person's bostedskommune history: from From (inclusive) until To
// (exclusive, the date of the next move); a zero To means the person still lives there, a zero
// From means since before the register knew. Only the calendar date of From and To counts.
type KommunePeriod struct {
	Kommune string
	From    time.Time
	To      time.Time
}

// Period is the time a read concerns, [From, To) by calendar date; a zero bound is open (a
// person's whole history is Period{}).
type Period struct {
	From time.Time
	To   time.Time
}

// CanReadPerson reports whether p may read a person's identifying data (national ids, history)
// for the period read, given the person's bostedskommune history: a kommune principal if the
// person lived in its kommune during some part of read (DOMAIN.md product decision 8:
// "bostedskommune history decides which kommune sees the person"; 7.4); the system principal
// always; analysts and operators never (they get pseudonymous data through other procedures).
//
// A person with no known history is visible to no kommune; the caller should pass the
// registering kommune of the person's first event as a period from the start if it has nothing
// better.
func CanReadPerson(p Principal, history []KommunePeriod, read Period) bool {
	switch p.Role {
	case RoleSystem:
		return true
	case RoleKommune:
	default:
		return false
	}
	if p.Kommune == "" {
		return false
	}
	for _, h := range history {
		if h.Kommune == p.Kommune && overlaps(h.From, h.To, read.From, read.To) {
			return true
		}
	}
	return false
}

// overlaps reports whether the half-open day ranges [aFrom, aTo) and [bFrom, bTo) share a day,
// with zero bounds open.
func overlaps(aFrom, aTo, bFrom, bTo time.Time) bool {
	// Both are non-empty, a starts before b ends, and b starts before a ends.
	return before(aFrom, aTo) && before(bFrom, bTo) && before(aFrom, bTo) && before(bFrom, aTo)
}

// before reports whether day(from) < day(to), treating a zero from as minus infinity and a
// zero to as plus infinity.
func before(from, to time.Time) bool {
	if from.IsZero() || to.IsZero() {
		return true
	}
	return day(from) < day(to)
}

// day is the calendar date of t in t's own location, as a comparable number (yyyymmdd).
func day(t time.Time) int {
	y, m, d := t.Date()
	return y*10000 + int(m)*100 + d
}
