package store

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/aura-clinic/aura/actors/platform"
)

// InsertClinic stores a new clinic.
func (q *Queries) InsertClinic(ctx context.Context, c platform.Clinic) (platform.Clinic, error) {
	err := q.db.QueryRow(ctx, `
		INSERT INTO clinics (id, name, currency, timezone) VALUES ($1, $2, $3, $4)
		RETURNING created_at`, c.ID, c.Name, c.Currency, c.Timezone).Scan(&c.CreatedAt)
	if err != nil {
		return platform.Clinic{}, fmt.Errorf("insert clinic: %w", err)
	}
	c.CreatedAt = c.CreatedAt.UTC()
	return c, nil
}

// InsertMember stores a membership; an existing one is ErrMemberExists.
func (q *Queries) InsertMember(ctx context.Context, m platform.Member) (platform.Member, error) {
	err := q.db.QueryRow(ctx, `
		INSERT INTO members (clinic_id, user_id, role) VALUES ($1, $2, $3)
		RETURNING created_at`, m.ClinicID, m.UserID, m.Role).Scan(&m.CreatedAt)
	if constraintOf(err, uniqueViolation) == "members_pkey" {
		return platform.Member{}, platform.ErrMemberExists.Errorf("%s is already a member of this clinic.", m.Email)
	}
	if err != nil {
		return platform.Member{}, fmt.Errorf("insert member: %w", err)
	}
	m.CreatedAt = m.CreatedAt.UTC()
	return m, nil
}

// ListClinics returns a page of the clinics the user is a member of.
func (q *Queries) ListClinics(ctx context.Context, userID uuid.UUID, page Page) (List[platform.ClinicMembership], error) {
	rows, err := q.db.Query(ctx, `
		SELECT c.id, c.name, c.currency, c.timezone, c.created_at, m.role
		FROM members m JOIN clinics c ON c.id = m.clinic_id
		WHERE m.user_id = $1 AND m.clinic_id > $2 ORDER BY m.clinic_id LIMIT $3`, userID, page.After, page.Limit+1)
	list, err := collectPage(rows, err, page, func(row pgx.CollectableRow) (platform.ClinicMembership, error) {
		var c platform.ClinicMembership
		err := row.Scan(&c.ID, &c.Name, &c.Currency, &c.Timezone, &c.CreatedAt, &c.Role)
		c.CreatedAt = c.CreatedAt.UTC()
		return c, err
	})
	if err != nil {
		return list, fmt.Errorf("list clinics: %w", err)
	}
	return list, nil
}

// ListMembers returns a page of the clinic's members, in order of user id.
func (q *Queries) ListMembers(ctx context.Context, clinicID uuid.UUID, page Page) (List[platform.Member], error) {
	rows, err := q.db.Query(ctx, `
		SELECT m.clinic_id, u.id, u.email, u.name, m.role, m.created_at
		FROM members m JOIN users u ON u.id = m.user_id
		WHERE m.clinic_id = $1 AND m.user_id > $2 ORDER BY m.user_id LIMIT $3`, clinicID, page.After, page.Limit+1)
	list, err := collectPage(rows, err, page, func(row pgx.CollectableRow) (platform.Member, error) {
		var m platform.Member
		err := row.Scan(&m.ClinicID, &m.UserID, &m.Email, &m.Name, &m.Role, &m.CreatedAt)
		m.CreatedAt = m.CreatedAt.UTC()
		return m, err
	})
	if err != nil {
		return list, fmt.Errorf("list members: %w", err)
	}
	return list, nil
}
