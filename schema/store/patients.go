package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/aura-clinic/aura/actors/crm"
)

const patientColumns = `id, clinic_id, first_name, last_name, to_char(date_of_birth, 'YYYY-MM-DD'),
	email, phone, notes, created_at, updated_at`

func scanPatient(row pgx.Row) (crm.Patient, error) {
	var p crm.Patient
	err := row.Scan(&p.ID, &p.ClinicID, &p.FirstName, &p.LastName, &p.DateOfBirth,
		&p.Email, &p.Phone, &p.Notes, &p.CreatedAt, &p.UpdatedAt)
	p.CreatedAt, p.UpdatedAt = p.CreatedAt.UTC(), p.UpdatedAt.UTC()
	return p, err
}

// InsertPatient stores a new patient.
func (q *Queries) InsertPatient(ctx context.Context, p crm.Patient) error {
	_, err := q.db.Exec(ctx, `
		INSERT INTO patients (id, clinic_id, first_name, last_name, date_of_birth, email, phone, notes, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5::date, $6, $7, $8, $9, $10)`,
		p.ID, p.ClinicID, p.FirstName, p.LastName, p.DateOfBirth, p.Email, p.Phone, p.Notes, p.CreatedAt, p.UpdatedAt)
	if err != nil {
		return fmt.Errorf("insert patient: %w", err)
	}
	return nil
}

// Patient returns one patient of the clinic.
func (q *Queries) Patient(ctx context.Context, clinicID, patientID uuid.UUID) (crm.Patient, error) {
	p, err := scanPatient(q.db.QueryRow(ctx,
		`SELECT `+patientColumns+` FROM patients WHERE clinic_id = $1 AND id = $2`, clinicID, patientID))
	if errors.Is(err, pgx.ErrNoRows) {
		return p, crm.ErrPatientNotFound.New("The clinic has no patient with this id.")
	}
	if err != nil {
		return p, fmt.Errorf("patient: %w", err)
	}
	return p, nil
}

// ListPatients returns a page of the clinic's patients in creation order.
func (q *Queries) ListPatients(ctx context.Context, clinicID uuid.UUID, page Page) (List[crm.Patient], error) {
	rows, err := q.db.Query(ctx, `SELECT `+patientColumns+` FROM patients
		WHERE clinic_id = $1 AND id > $2 ORDER BY id LIMIT $3`, clinicID, page.After, page.Limit+1)
	list, err := collectPage(rows, err, page, func(row pgx.CollectableRow) (crm.Patient, error) { return scanPatient(row) })
	if err != nil {
		return list, fmt.Errorf("list patients: %w", err)
	}
	return list, nil
}

// UpdatePatient locks the patient's row, lets update change it, and writes
// the result. It must run inside a transaction.
func (q *Queries) UpdatePatient(ctx context.Context, clinicID, patientID uuid.UUID, update func(*crm.Patient) error) (crm.Patient, error) {
	p, err := scanPatient(q.db.QueryRow(ctx,
		`SELECT `+patientColumns+` FROM patients WHERE clinic_id = $1 AND id = $2 FOR UPDATE`, clinicID, patientID))
	if errors.Is(err, pgx.ErrNoRows) {
		return p, crm.ErrPatientNotFound.New("The clinic has no patient with this id.")
	}
	if err != nil {
		return p, fmt.Errorf("lock patient: %w", err)
	}
	if err := update(&p); err != nil {
		return crm.Patient{}, err
	}
	_, err = q.db.Exec(ctx, `
		UPDATE patients SET first_name = $3, last_name = $4, date_of_birth = $5::date, email = $6,
			phone = $7, notes = $8, updated_at = $9
		WHERE clinic_id = $1 AND id = $2`,
		clinicID, patientID, p.FirstName, p.LastName, p.DateOfBirth, p.Email, p.Phone, p.Notes, p.UpdatedAt)
	if err != nil {
		return crm.Patient{}, fmt.Errorf("update patient: %w", err)
	}
	return p, nil
}
