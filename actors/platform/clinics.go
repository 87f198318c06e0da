package platform

import (
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/text/currency"

	"github.com/aura-clinic/aura/actors/fault"
)

// Clinic is a tenant: every clinic-owned row carries its id.
type Clinic struct {
	ID        uuid.UUID `json:"id"`
	Name      string    `json:"name"`
	Currency  string    `json:"currency"`
	Timezone  string    `json:"timezone"`
	CreatedAt time.Time `json:"created_at"`
}

// NewClinic validates the clinic's details and returns it with a fresh id.
// currency is an ISO 4217 code ("EUR"); timezone an IANA zone ("Europe/Madrid").
func NewClinic(name, currencyCode, timezone string) (Clinic, error) {
	var errs fault.Fields
	name = strings.TrimSpace(name)
	errs.Length("/name", name, 1, 200)
	if !isISO4217(currencyCode) {
		errs.Add("/currency", "invalid_currency", "must be an ISO 4217 currency code such as EUR")
	}
	if !isIANAZone(timezone) {
		errs.Add("/timezone", "invalid_timezone", "must be an IANA time zone such as Europe/Madrid")
	}
	if err := errs.Err(); err != nil {
		return Clinic{}, err
	}
	return Clinic{ID: uuid.Must(uuid.NewV7()), Name: name, Currency: currencyCode, Timezone: timezone}, nil
}

func isISO4217(code string) bool {
	if len(code) != 3 || strings.ToUpper(code) != code {
		return false
	}
	_, err := currency.ParseISO(code)
	return err == nil
}

func isIANAZone(name string) bool {
	if name == "" || name == "Local" || len(name) > 64 {
		return false
	}
	_, err := time.LoadLocation(name)
	return err == nil
}

// Member is a user's membership of a clinic.
type Member struct {
	ClinicID  uuid.UUID `json:"-"`
	UserID    uuid.UUID `json:"user_id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

// ClinicMembership is a clinic as one of its members sees it.
type ClinicMembership struct {
	Clinic
	Role Role `json:"role"`
}

// Errors of the membership rules.
var (
	// ErrClinicNotFound is what a non-member sees for any path of a clinic,
	// so that a clinic's existence never leaks.
	ErrClinicNotFound   = fault.Define("clinic_not_found", fault.NotFound, "Clinic not found")
	ErrMemberExists     = fault.Define("member_exists", fault.Conflict, "Already a member")
	ErrRoleNotGrantable = fault.Define("role_not_grantable", fault.Forbidden, "Role not grantable")
)

// AddMember checks that a member with role granter may make user a member
// with role, and returns the membership.
func AddMember(granter Role, clinicID uuid.UUID, user User, role Role) (Member, error) {
	if !granter.CanGrant(role) {
		return Member{}, ErrRoleNotGrantable.Errorf("A member with role %s cannot grant the role %s.", granter, role)
	}
	return Member{ClinicID: clinicID, UserID: user.ID, Email: user.Email, Name: user.Name, Role: role}, nil
}
