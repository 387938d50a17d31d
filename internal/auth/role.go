package auth

import (
	"fmt"
	"slices"
)

// Role is what a principal may do.
type Role string

// Roles, from least to most. Admin includes operator, operator includes viewer; sync may
// only feed a disaster-recovery site's sync stream (admin includes it too).
const (
	// Public routes need no credentials (GET /healthz, POST /api/v1/login).
	Public Role = "public"
	// Any is any authenticated principal, whatever its role.
	Any      Role = "any"
	Viewer   Role = "viewer"
	Operator Role = "operator"
	Admin    Role = "admin"
	Sync     Role = "sync"
	// Peer routes are for other nodes only: requests signed with the cluster secret.
	Peer Role = "peer"
)

// Assignable are the roles a user or a token may be given.
var Assignable = []Role{Viewer, Operator, Admin, Sync}

// ParseRole reads a role a user or token may have.
func ParseRole(s string) (Role, error) {
	if r := Role(s); slices.Contains(Assignable, r) {
		return r, nil
	}
	return "", fmt.Errorf("%q is not a role (viewer, operator, admin, sync)", s)
}

// Allows reports whether a principal with role have may use a route that needs role need.
func (have Role) Allows(need Role) bool {
	switch need {
	case Public:
		return true
	case Any:
		return have != ""
	case Peer:
		return have == Peer
	case Sync:
		return have == Sync || have == Admin || have == Peer
	}
	rank := map[Role]int{Viewer: 1, Operator: 2, Admin: 3, Peer: 3}
	return rank[have] > 0 && rank[have] >= rank[need]
}
