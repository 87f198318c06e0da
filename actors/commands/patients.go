package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/aura-clinic/aura/actors"
	"github.com/aura-clinic/aura/actors/crm"
	"github.com/aura-clinic/aura/schema/store"
)

// CreatePatient registers a patient in the clinic.
type CreatePatient struct {
	Fields crm.PatientFields
}

// Execute implements actors.Command.
func (c CreatePatient) Execute(ctx context.Context, q *store.Queries, m actors.Meta) (crm.Patient, error) {
	p, err := crm.NewPatient(m.ClinicID, c.Fields, now())
	if err != nil {
		return crm.Patient{}, err
	}
	return p, q.InsertPatient(ctx, p)
}

// UpdatePatient applies a JSON merge patch to one of the clinic's patients.
type UpdatePatient struct {
	PatientID uuid.UUID
	Fields    crm.PatientFields
}

// Execute implements actors.Command.
func (c UpdatePatient) Execute(ctx context.Context, q *store.Queries, m actors.Meta) (crm.Patient, error) {
	return q.UpdatePatient(ctx, m.ClinicID, c.PatientID, func(p *crm.Patient) error {
		return p.Update(c.Fields, now())
	})
}
