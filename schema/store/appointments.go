package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/aura-clinic/aura/actors/crm"
)

// exclusionViolation is PostgreSQL's SQLSTATE for an exclusion constraint.
const exclusionViolation = "23P01"

const appointmentColumns = `id, clinic_id, patient_id, practitioner_id, starts_at, ends_at, status, notes,
	cancel_reason, created_at, updated_at`

func scanAppointment(row pgx.Row) (crm.Appointment, error) {
	var a crm.Appointment
	err := row.Scan(&a.ID, &a.ClinicID, &a.PatientID, &a.PractitionerID, &a.StartsAt, &a.EndsAt, &a.Status,
		&a.Notes, &a.CancelReason, &a.CreatedAt, &a.UpdatedAt)
	a.StartsAt, a.EndsAt = a.StartsAt.UTC(), a.EndsAt.UTC()
	a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
	return a, err
}

// IsPractitioner reports whether the user is a member of the clinic with
// role practitioner.
func (q *Queries) IsPractitioner(ctx context.Context, clinicID, userID uuid.UUID) (bool, error) {
	var ok bool
	err := q.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM members
		WHERE clinic_id = $1 AND user_id = $2 AND role = 'practitioner')`, clinicID, userID).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("is practitioner: %w", err)
	}
	return ok, nil
}

// OverlappingAppointments returns the practitioner's non-cancelled
// appointments that intersect [from, to).
func (q *Queries) OverlappingAppointments(ctx context.Context, clinicID, practitionerID uuid.UUID, from, to time.Time) ([]crm.Appointment, error) {
	rows, err := q.db.Query(ctx, `SELECT `+appointmentColumns+` FROM appointments
		WHERE clinic_id = $1 AND practitioner_id = $2 AND status <> 'cancelled'
		AND tstzrange(starts_at, ends_at, '[)') && tstzrange($3, $4, '[)')`, clinicID, practitionerID, from, to)
	if err != nil {
		return nil, fmt.Errorf("overlapping appointments: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (crm.Appointment, error) { return scanAppointment(row) })
	if err != nil {
		return nil, fmt.Errorf("overlapping appointments: %w", err)
	}
	return list, nil
}

// InsertAppointment stores a booked appointment. The exclusion constraint
// is the last guard against double booking: its violation is
// ErrAppointmentConflict, as the domain's own check would have said.
func (q *Queries) InsertAppointment(ctx context.Context, a crm.Appointment) error {
	_, err := q.db.Exec(ctx, `
		INSERT INTO appointments (id, clinic_id, patient_id, practitioner_id, starts_at, ends_at, status, notes, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		a.ID, a.ClinicID, a.PatientID, a.PractitionerID, a.StartsAt, a.EndsAt, a.Status, a.Notes, a.CreatedAt, a.UpdatedAt)
	return appointmentWriteError(err)
}

func appointmentWriteError(err error) error {
	switch {
	case err == nil:
		return nil
	case constraintOf(err, exclusionViolation) == "appointments_no_overlap":
		return crm.ErrAppointmentConflict.New("The practitioner already has an appointment at this time.")
	case constraintOf(err, foreignKeyViolation) == "appointments_patient_fk":
		return fieldNotFound("/patient_id", "is not a patient of this clinic")
	case constraintOf(err, foreignKeyViolation) == "appointments_practitioner_fk":
		return crm.ErrNotAPractitioner.New("practitioner_id is not a practitioner of this clinic.")
	default:
		return fmt.Errorf("write appointment: %w", err)
	}
}

// Appointment returns one appointment of the clinic.
func (q *Queries) Appointment(ctx context.Context, clinicID, id uuid.UUID) (crm.Appointment, error) {
	return q.appointment(ctx, clinicID, id, "")
}

func (q *Queries) appointment(ctx context.Context, clinicID, id uuid.UUID, lock string) (crm.Appointment, error) {
	a, err := scanAppointment(q.db.QueryRow(ctx,
		`SELECT `+appointmentColumns+` FROM appointments WHERE clinic_id = $1 AND id = $2`+lock, clinicID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return a, crm.ErrAppointmentNotFound.New("The clinic has no appointment with this id.")
	}
	if err != nil {
		return a, fmt.Errorf("appointment: %w", err)
	}
	return a, nil
}

// UpdateAppointment locks the appointment, lets update change it, and
// writes its status back. It must run inside a transaction.
func (q *Queries) UpdateAppointment(ctx context.Context, clinicID, id uuid.UUID, update func(*crm.Appointment) error) (crm.Appointment, error) {
	a, err := q.appointment(ctx, clinicID, id, " FOR UPDATE")
	if err != nil {
		return a, err
	}
	if err := update(&a); err != nil {
		return crm.Appointment{}, err
	}
	_, err = q.db.Exec(ctx, `UPDATE appointments SET status = $3, cancel_reason = $4, updated_at = $5
		WHERE clinic_id = $1 AND id = $2`, clinicID, id, a.Status, a.CancelReason, a.UpdatedAt)
	if err != nil {
		return crm.Appointment{}, appointmentWriteError(err)
	}
	return a, nil
}

// ListAppointments returns a page of the clinic's appointments matching f,
// in creation order.
func (q *Queries) ListAppointments(ctx context.Context, clinicID uuid.UUID, f crm.AppointmentFilter, page Page) (List[crm.Appointment], error) {
	rows, err := q.db.Query(ctx, `SELECT `+appointmentColumns+` FROM appointments
		WHERE clinic_id = $1 AND id > $2
		AND ($4::uuid IS NULL OR practitioner_id = $4)
		AND ($5::uuid IS NULL OR patient_id = $5)
		AND ($6::text IS NULL OR status = $6)
		AND ($7::timestamptz IS NULL OR ends_at > $7)
		AND ($8::timestamptz IS NULL OR starts_at < $8)
		ORDER BY id LIMIT $3`,
		clinicID, page.After, page.Limit+1, nullable(f.PractitionerID), nullable(f.PatientID),
		nullText(string(f.Status)), nullTime(f.From), nullTime(f.To))
	list, err := collectPage(rows, err, page, func(row pgx.CollectableRow) (crm.Appointment, error) { return scanAppointment(row) })
	if err != nil {
		return list, fmt.Errorf("list appointments: %w", err)
	}
	return list, nil
}

func nullText(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
