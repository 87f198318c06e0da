package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/aura-clinic/aura/actors/platform"
)

// EnsureUser inserts u, or returns the existing user with u's email. created
// reports which happened.
func (q *Queries) EnsureUser(ctx context.Context, u platform.User) (platform.User, bool, error) {
	err := q.db.QueryRow(ctx, `
		INSERT INTO users (id, email, name) VALUES ($1, $2, $3)
		ON CONFLICT (email) DO NOTHING
		RETURNING created_at`, u.ID, u.Email, u.Name).Scan(&u.CreatedAt)
	if err == nil {
		u.CreatedAt = u.CreatedAt.UTC()
		return u, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return platform.User{}, false, fmt.Errorf("insert user: %w", err)
	}
	existing, err := q.UserByEmail(ctx, u.Email)
	return existing, false, err
}

// UserByEmail returns the user with the (lower-case) email.
func (q *Queries) UserByEmail(ctx context.Context, email string) (platform.User, error) {
	var u platform.User
	err := q.db.QueryRow(ctx, `SELECT id, email, name, created_at FROM users WHERE email = $1`, email).
		Scan(&u.ID, &u.Email, &u.Name, &u.CreatedAt)
	if err != nil {
		return platform.User{}, fmt.Errorf("user by email: %w", err)
	}
	u.CreatedAt = u.CreatedAt.UTC()
	return u, nil
}

// InsertAPIKey stores a key (its hash only).
func (q *Queries) InsertAPIKey(ctx context.Context, k platform.APIKey) (platform.APIKey, error) {
	err := q.db.QueryRow(ctx, `
		INSERT INTO api_keys (id, user_id, name, prefix, secret_hash) VALUES ($1, $2, $3, $4, $5)
		RETURNING created_at`, k.ID, k.UserID, k.Name, k.Prefix, k.SecretHash).Scan(&k.CreatedAt)
	if err != nil {
		return platform.APIKey{}, fmt.Errorf("insert api key: %w", err)
	}
	k.CreatedAt = k.CreatedAt.UTC()
	return k, nil
}

// Caller is the user an API key signs in, and their membership of the
// clinic asked about.
type Caller struct {
	User platform.User
	// Member is the user's membership of the clinic, nil when they are not
	// a member of it (or no clinic was asked about).
	Member *platform.ClinicMembership
}

// Authenticate returns the caller whose unrevoked key has the given secret
// hash, with their membership of clinicID (uuid.Nil asks about none), in one
// query. ok is false for an unknown or revoked key.
func (q *Queries) Authenticate(ctx context.Context, secretHash []byte, clinicID uuid.UUID) (c Caller, ok bool, err error) {
	var member struct { // NULL when the user is not a member
		id                       *uuid.UUID
		name, currency, timezone *string
		createdAt                *time.Time
		role                     *platform.Role
	}
	err = q.db.QueryRow(ctx, `
		SELECT u.id, u.email, u.name, u.created_at, c.id, c.name, c.currency, c.timezone, c.created_at, m.role
		FROM api_keys k JOIN users u ON u.id = k.user_id
		LEFT JOIN (members m JOIN clinics c ON c.id = m.clinic_id) ON m.user_id = u.id AND m.clinic_id = $2
		WHERE k.secret_hash = $1 AND k.revoked_at IS NULL`, secretHash, clinicID).
		Scan(&c.User.ID, &c.User.Email, &c.User.Name, &c.User.CreatedAt,
			&member.id, &member.name, &member.currency, &member.timezone, &member.createdAt, &member.role)
	if errors.Is(err, pgx.ErrNoRows) {
		return Caller{}, false, nil
	}
	if err != nil {
		return Caller{}, false, fmt.Errorf("authenticate: %w", err)
	}
	c.User.CreatedAt = c.User.CreatedAt.UTC()
	if member.role != nil {
		c.Member = &platform.ClinicMembership{Role: *member.role, Clinic: platform.Clinic{
			ID: *member.id, Name: *member.name, Currency: *member.currency, Timezone: *member.timezone,
			CreatedAt: member.createdAt.UTC(),
		}}
	}
	return c, true, nil
}

// ListAPIKeys returns a page of the user's keys, revoked ones included.
func (q *Queries) ListAPIKeys(ctx context.Context, userID uuid.UUID, page Page) (List[platform.APIKey], error) {
	rows, err := q.db.Query(ctx, `
		SELECT id, user_id, name, prefix, created_at, revoked_at FROM api_keys
		WHERE user_id = $1 AND id > $2 ORDER BY id LIMIT $3`, userID, page.After, page.Limit+1)
	list, err := collectPage(rows, err, page, func(row pgx.CollectableRow) (platform.APIKey, error) {
		var k platform.APIKey
		err := row.Scan(&k.ID, &k.UserID, &k.Name, &k.Prefix, &k.CreatedAt, &k.RevokedAt)
		k.CreatedAt, k.RevokedAt = k.CreatedAt.UTC(), utcPtr(k.RevokedAt)
		return k, err
	})
	if err != nil {
		return list, fmt.Errorf("list api keys: %w", err)
	}
	return list, nil
}

// RevokeAPIKey revokes one of the user's keys. Revoking a revoked key
// succeeds and keeps the first revocation time; another user's key is not found.
func (q *Queries) RevokeAPIKey(ctx context.Context, userID, keyID uuid.UUID) error {
	tag, err := q.db.Exec(ctx, `
		UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
		WHERE id = $1 AND user_id = $2`, keyID, userID)
	if err != nil {
		return fmt.Errorf("revoke api key: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return platform.ErrAPIKeyNotFound.New("No API key of yours has this id.")
	}
	return nil
}
