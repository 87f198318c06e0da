// Package platform holds the Platform domain: users, their API keys, clinics
// (the tenants) and memberships with roles. Its rules are plain functions and
// methods with no dependency on HTTP, actors or SQL.
package platform

import "fmt"

// Role is a member's role in a clinic.
type Role string

// The roles a member can have.
const (
	RoleOwner        Role = "owner"
	RoleAdmin        Role = "admin"
	RolePractitioner Role = "practitioner"
	RoleReception    Role = "reception"
	RoleBilling      Role = "billing"
)

// Roles lists every role, most powerful first.
var Roles = []Role{RoleOwner, RoleAdmin, RolePractitioner, RoleReception, RoleBilling}

// ParseRole returns the role named s.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("unknown role %q", s)
}

// Permission is something a member may be allowed to do in their clinic.
type Permission string

// The permissions routes require.
const (
	ReadClinic        Permission = "clinic:read"    // see the clinic and its members
	ManageMembers     Permission = "members:manage" // add members
	ReadPatients      Permission = "patients:read"
	WritePatients     Permission = "patients:write"
	ReadAppointments  Permission = "appointments:read"
	WriteAppointments Permission = "appointments:write" // book, cancel, complete (practitioners: their own only)
	ReadBilling       Permission = "billing:read"       // invoices and payments
	WriteBilling      Permission = "billing:write"      // issue invoices, record payments and refunds
)

// grants is the role matrix: what each role may do.
var grants = map[Role][]Permission{
	RoleOwner:        {ReadClinic, ManageMembers, ReadPatients, WritePatients, ReadAppointments, WriteAppointments, ReadBilling, WriteBilling},
	RoleAdmin:        {ReadClinic, ManageMembers, ReadPatients, WritePatients, ReadAppointments, WriteAppointments, ReadBilling, WriteBilling},
	RolePractitioner: {ReadClinic, ReadPatients, ReadAppointments, WriteAppointments},
	RoleReception:    {ReadClinic, ReadPatients, WritePatients, ReadAppointments, WriteAppointments},
	RoleBilling:      {ReadClinic, ReadPatients, ReadBilling, WriteBilling},
}

// OwnAppointmentsOnly reports whether the role may book, cancel and complete
// only appointments where the member is the practitioner.
func (r Role) OwnAppointmentsOnly() bool { return r == RolePractitioner }

// Can reports whether the role grants permission p.
func (r Role) Can(p Permission) bool {
	for _, g := range grants[r] {
		if g == p {
			return true
		}
	}
	return false
}

// CanGrant reports whether a member with role r may give another member the
// role target: owners may grant any role; admins any role but owner.
func (r Role) CanGrant(target Role) bool {
	switch r {
	case RoleOwner:
		return true
	case RoleAdmin:
		return target != RoleOwner
	default:
		return false
	}
}
