package commands

import (
	"context"

	"github.com/aura-clinic/aura/actors"
	"github.com/aura-clinic/aura/actors/fault"
	"github.com/aura-clinic/aura/actors/platform"
	"github.com/aura-clinic/aura/messaging"
	"github.com/aura-clinic/aura/schema/store"
)

// AddMember makes the user with Email a member of the clinic with Role,
// creating the user (without an API key) when the email is new.
type AddMember struct {
	Email string `json:"email"`
	Name  string `json:"name"`
	Role  string `json:"role"`
	// GranterRole is the caller's role in the clinic, resolved by the edge.
	GranterRole platform.Role `json:"-"`
}

// Execute implements actors.Command.
func (c AddMember) Execute(ctx context.Context, q *store.Queries, m actors.Meta) (platform.Member, error) {
	var errs fault.Fields
	role, err := platform.ParseRole(c.Role)
	if err != nil {
		errs.Add("/role", "invalid_role", "must be one of owner, admin, practitioner, reception, billing")
	}
	user, userErr := platform.NewUser(c.Email, c.Name)
	if fe, ok := userErr.(*fault.Error); ok {
		errs = append(errs, fe.Fields...)
	}
	if err := errs.Err(); err != nil {
		return platform.Member{}, err
	}
	member, err := platform.AddMember(c.GranterRole, m.ClinicID, user, role)
	if err != nil {
		return platform.Member{}, err
	}
	if user, _, err = q.EnsureUser(ctx, user); err != nil {
		return platform.Member{}, err
	}
	member.UserID, member.Email, member.Name = user.ID, user.Email, user.Name
	if member, err = q.InsertMember(ctx, member); err != nil {
		return platform.Member{}, err
	}
	q.Emit(m.ClinicID, messaging.MemberAdded{UserID: member.UserID, Role: string(member.Role)})
	return member, nil
}
