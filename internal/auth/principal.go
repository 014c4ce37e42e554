package auth

import (
	"context"
	"fmt"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// Role is what a principal is allowed to do, in broad strokes. Its string form is the value of
// the "role" field in the token file.
type Role string

// The roles (DESIGN.md "Services and security").
const (
	// RoleKommune is a kommune's case system (fagsystem) or caseworker tool: it registers for
	// its own kommune and reads the persons who live, or lived, there.
	RoleKommune Role = "kommune"
	// RoleAnalyst reads statistics and pseudonymous data, never national ids, and never writes.
	RoleAnalyst Role = "analyst"
	// RoleOperator runs the service: status, rebuild, snapshots. It sees no person data; of
	// the registrations it records only the merge of two persons and its retraction.
	RoleOperator Role = "operator"
	// RoleSystem is nird itself, the regelmotor, which records computed terminations.
	RoleSystem Role = "system"
)

// Roles lists every role, in a stable order (for tests and help texts).
var Roles = []Role{RoleKommune, RoleAnalyst, RoleOperator, RoleSystem}

// Valid reports whether r is one of the defined roles.
func (r Role) Valid() bool {
	switch r {
	case RoleKommune, RoleAnalyst, RoleOperator, RoleSystem:
		return true
	}
	return false
}

// ActorRole maps r to the role recorded in events.
func (r Role) ActorRole() nirv1.ActorRole {
	switch r {
	case RoleKommune:
		return nirv1.ActorRole_ACTOR_ROLE_KOMMUNE
	case RoleAnalyst:
		return nirv1.ActorRole_ACTOR_ROLE_ANALYST
	case RoleOperator:
		return nirv1.ActorRole_ACTOR_ROLE_OPERATOR
	case RoleSystem:
		return nirv1.ActorRole_ACTOR_ROLE_SYSTEM
	}
	return nirv1.ActorRole_ACTOR_ROLE_UNSPECIFIED
}

// Principal is an authenticated caller.
type Principal struct {
	// Name identifies the principal (the token file entry's name, e.g. "oslo-fagsystem"). It is
	// written into events as the actor's subject and may appear in logs.
	Name string
	// Role decides what the principal may do.
	Role Role
	// Kommune is the kommunenummer (4 digits) of a RoleKommune principal; empty otherwise.
	Kommune string
	// System names the case system (fagsystem) behind the token, when the token file says.
	System string
	// NATSUser, when set, binds the token to one case system's NATS user: it is accepted only
	// on requests that NATS user sent (nir.cmd.append.<NATSUser>), never over HTTP, in the
	// web console or from another NATS user ([Guard.CheckNATS]). A token that leaks is then
	// of no use without that user's NATS key too.
	NATSUser string
}

// Actor returns the actor that nird writes into the events p records.
func (p Principal) Actor() *nirv1.Actor {
	return &nirv1.Actor{Subject: p.Name, Role: p.Role.ActorRole(), System: p.System}
}

// String returns a form safe for logs: role, name and kommune.
func (p Principal) String() string {
	if p.Kommune != "" {
		return fmt.Sprintf("%s:%s@%s", p.Role, p.Name, p.Kommune)
	}
	return fmt.Sprintf("%s:%s", p.Role, p.Name)
}

type principalKey struct{}

// NewContext returns a copy of ctx that carries p. The interceptor and the HTTP middleware call
// it; tests of handlers can too.
func NewContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal that [NewContext] stored in ctx, and false if there is none.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
