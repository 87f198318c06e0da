package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/aura-clinic/aura/actors"
	"github.com/aura-clinic/aura/actors/crm"
	"github.com/aura-clinic/aura/actors/fault"
	"github.com/aura-clinic/aura/actors/platform"
	"github.com/aura-clinic/aura/messaging"
	"github.com/aura-clinic/aura/schema/store"
)

// BookAppointment books a patient with a practitioner of the clinic, unless
// the practitioner is already booked at that time.
type BookAppointment struct {
	Booking crm.Booking
	// CallerRole is the caller's role in the clinic, resolved by the edge.
	CallerRole platform.Role
}

// Execute implements actors.Command.
func (c BookAppointment) Execute(ctx context.Context, q *store.Queries, m actors.Meta) (crm.Appointment, error) {
	a, err := crm.NewAppointment(m.ClinicID, c.Booking, now())
	if err != nil {
		return crm.Appointment{}, err
	}
	if err := checkOwn(c.CallerRole, a, m); err != nil {
		return crm.Appointment{}, err
	}
	ok, err := q.IsPractitioner(ctx, m.ClinicID, a.PractitionerID)
	if err != nil {
		return crm.Appointment{}, err
	}
	if !ok {
		return crm.Appointment{}, notAPractitioner()
	}
	if _, err := q.Patient(ctx, m.ClinicID, a.PatientID); err != nil {
		return crm.Appointment{}, unknownPatient(err)
	}
	others, err := q.OverlappingAppointments(ctx, m.ClinicID, a.PractitionerID, a.StartsAt, a.EndsAt)
	if err != nil {
		return crm.Appointment{}, err
	}
	if err := a.CheckFree(others); err != nil {
		return crm.Appointment{}, err
	}
	if err := q.InsertAppointment(ctx, a); err != nil {
		return crm.Appointment{}, err
	}
	q.Emit(m.ClinicID, messaging.AppointmentBooked{
		AppointmentID: a.ID, PatientID: a.PatientID, PractitionerID: a.PractitionerID, StartsAt: a.StartsAt, EndsAt: a.EndsAt,
	})
	return a, nil
}

// CancelAppointment cancels a booked appointment, freeing its slot.
type CancelAppointment struct {
	AppointmentID uuid.UUID     `json:"-"`
	Reason        string        `json:"reason"`
	CallerRole    platform.Role `json:"-"`
}

// Execute implements actors.Command.
func (c CancelAppointment) Execute(ctx context.Context, q *store.Queries, m actors.Meta) (crm.Appointment, error) {
	a, err := q.UpdateAppointment(ctx, m.ClinicID, c.AppointmentID, func(a *crm.Appointment) error {
		if err := checkOwn(c.CallerRole, *a, m); err != nil {
			return err
		}
		return a.Cancel(c.Reason, now())
	})
	if err != nil {
		return crm.Appointment{}, err
	}
	q.Emit(m.ClinicID, messaging.AppointmentCancelled{
		AppointmentID: a.ID, PatientID: a.PatientID, PractitionerID: a.PractitionerID, StartsAt: a.StartsAt, EndsAt: a.EndsAt,
	})
	return a, nil
}

// CompleteAppointment marks a booked appointment as held.
type CompleteAppointment struct {
	AppointmentID uuid.UUID
	CallerRole    platform.Role
}

// Execute implements actors.Command.
func (c CompleteAppointment) Execute(ctx context.Context, q *store.Queries, m actors.Meta) (crm.Appointment, error) {
	return q.UpdateAppointment(ctx, m.ClinicID, c.AppointmentID, func(a *crm.Appointment) error {
		if err := checkOwn(c.CallerRole, *a, m); err != nil {
			return err
		}
		return a.Complete(now())
	})
}

// checkOwn keeps practitioners to their own appointments.
func checkOwn(role platform.Role, a crm.Appointment, m actors.Meta) error {
	if role.OwnAppointmentsOnly() && a.PractitionerID != m.UserID {
		return fault.ErrForbidden.New("Practitioners may book, cancel and complete only their own appointments.")
	}
	return nil
}

func notAPractitioner() error {
	return &fault.Error{Code: crm.ErrNotAPractitioner, Detail: "practitioner_id must be the user id of a member with role practitioner.",
		Fields: []fault.FieldError{{Pointer: "/practitioner_id", Code: "not_a_practitioner", Detail: "is not a practitioner of this clinic"}}}
}

// unknownPatient turns "no such patient" into a validation error on the
// member that named it; other errors pass through.
func unknownPatient(err error) error {
	if !fault.HasCode(err, crm.ErrPatientNotFound) {
		return err
	}
	var f fault.Fields
	f.Add("/patient_id", "not_found", "is not a patient of this clinic")
	return f.Err()
}
