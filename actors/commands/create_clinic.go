package commands

import (
	"context"

	"github.com/aura-clinic/aura/actors"
	"github.com/aura-clinic/aura/actors/platform"
	"github.com/aura-clinic/aura/messaging"
	"github.com/aura-clinic/aura/schema/store"
)

// CreateClinic creates a clinic whose owner is the caller.
type CreateClinic struct {
	Name     string `json:"name"`
	Currency string `json:"currency"`
	Timezone string `json:"timezone"`
}

// Execute implements actors.Command.
func (c CreateClinic) Execute(ctx context.Context, q *store.Queries, m actors.Meta) (platform.ClinicMembership, error) {
	clinic, err := platform.NewClinic(c.Name, c.Currency, c.Timezone)
	if err != nil {
		return platform.ClinicMembership{}, err
	}
	if clinic, err = q.InsertClinic(ctx, clinic); err != nil {
		return platform.ClinicMembership{}, err
	}
	owner := platform.Member{ClinicID: clinic.ID, UserID: m.UserID, Role: platform.RoleOwner}
	if _, err := q.InsertMember(ctx, owner); err != nil {
		return platform.ClinicMembership{}, err
	}
	q.Emit(clinic.ID, messaging.ClinicCreated{
		ClinicID: clinic.ID, Name: clinic.Name, Currency: clinic.Currency, Timezone: clinic.Timezone, OwnerID: m.UserID,
	})
	return platform.ClinicMembership{Clinic: clinic, Role: platform.RoleOwner}, nil
}
