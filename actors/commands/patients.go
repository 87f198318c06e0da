package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/aura-clinic/aura/actors"
	"github.com/aura-clinic/aura/actors/crm"
	"github.com/aura-clinic/aura/messaging"
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
	if err := q.InsertPatient(ctx, p); err != nil {
		return crm.Patient{}, err
	}
	q.Emit(m.ClinicID, messaging.PatientCreated{PatientID: p.ID})
	return p, nil
}

// UpdatePatient applies a JSON merge patch to one of the clinic's patients.
type UpdatePatient struct {
	PatientID uuid.UUID
	Fields    crm.PatientFields
}

// Execute implements actors.Command.
func (c UpdatePatient) Execute(ctx context.Context, q *store.Queries, m actors.Meta) (crm.Patient, error) {
	var changed []string
	p, err := q.UpdatePatient(ctx, m.ClinicID, c.PatientID, func(p *crm.Patient) error {
		before := *p
		if err := p.Update(c.Fields, now()); err != nil {
			return err
		}
		changed = crm.ChangedFields(before, *p)
		return nil
	})
	if err != nil {
		return crm.Patient{}, err
	}
	if len(changed) > 0 {
		q.Emit(m.ClinicID, messaging.PatientUpdated{PatientID: p.ID, Fields: changed})
	}
	return p, nil
}
