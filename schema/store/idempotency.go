package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// IdempotencyRecord is the stored outcome of a request that carried an
// Idempotency-Key. Outcome is opaque JSON to the store.
type IdempotencyRecord struct {
	UserID      uuid.UUID
	ClinicID    uuid.UUID // uuid.Nil for routes outside a clinic
	Key         string
	Fingerprint []byte
	Outcome     []byte
	ExpiresAt   time.Time
}

// nullable turns uuid.Nil into SQL NULL.
func nullable(id uuid.UUID) *uuid.UUID {
	if id == uuid.Nil {
		return nil
	}
	return &id
}

// TryLockIdempotencyKey takes a transaction-scoped advisory lock on lockID,
// without waiting. false means another transaction (in this process or
// another) is running a request with the same key.
func (q *Queries) TryLockIdempotencyKey(ctx context.Context, lockID int64) (bool, error) {
	var ok bool
	if err := q.db.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, lockID).Scan(&ok); err != nil {
		return false, fmt.Errorf("lock idempotency key: %w", err)
	}
	return ok, nil
}

// IdempotencyRecord returns the unexpired record of the key in its scope.
func (q *Queries) IdempotencyRecord(ctx context.Context, userID, clinicID uuid.UUID, key string) (IdempotencyRecord, bool, error) {
	rec := IdempotencyRecord{UserID: userID, ClinicID: clinicID, Key: key}
	err := q.db.QueryRow(ctx, `
		SELECT fingerprint, outcome, expires_at FROM idempotency_keys
		WHERE user_id = $1 AND clinic_id IS NOT DISTINCT FROM $2 AND key = $3 AND expires_at > now()`,
		userID, nullable(clinicID), key).Scan(&rec.Fingerprint, &rec.Outcome, &rec.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return rec, false, nil
	}
	if err != nil {
		return rec, false, fmt.Errorf("read idempotency key: %w", err)
	}
	return rec, true, nil
}

// SaveIdempotencyRecord stores rec, expiring ttl from now, in place of an
// expired record of the same key. It returns rec with its expiry. An
// unexpired record of the key is an error: the caller holds the key's lock
// and has checked, so that means a bug.
func (q *Queries) SaveIdempotencyRecord(ctx context.Context, rec IdempotencyRecord, ttl time.Duration) (IdempotencyRecord, error) {
	err := q.db.QueryRow(ctx, `
		INSERT INTO idempotency_keys (user_id, clinic_id, key, fingerprint, outcome, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, now(), now() + $6::interval)
		ON CONFLICT ON CONSTRAINT idempotency_keys_scope_unique DO UPDATE
			SET fingerprint = excluded.fingerprint, outcome = excluded.outcome,
				created_at = excluded.created_at, expires_at = excluded.expires_at
			WHERE idempotency_keys.expires_at <= now()
		RETURNING expires_at`,
		rec.UserID, nullable(rec.ClinicID), rec.Key, rec.Fingerprint, rec.Outcome, ttl).Scan(&rec.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return rec, errors.New("save idempotency key: an unexpired record of the key exists")
	}
	if err != nil {
		return rec, fmt.Errorf("save idempotency key: %w", err)
	}
	return rec, nil
}

// PurgeExpiredIdempotencyKeys deletes every expired record, batch rows per
// statement so that no lock is held for long, and returns how many it deleted.
func (q *Queries) PurgeExpiredIdempotencyKeys(ctx context.Context, batch int) (int64, error) {
	if batch <= 0 {
		return 0, fmt.Errorf("purge idempotency keys: batch %d is not positive", batch)
	}
	var total int64
	for {
		n, err := q.deleteExpiredIdempotencyKeys(ctx, batch)
		total += n
		if err != nil || n < int64(batch) {
			return total, err
		}
	}
}

// deleteExpiredIdempotencyKeys deletes up to batch expired records, oldest
// first, skipping rows another transaction holds.
func (q *Queries) deleteExpiredIdempotencyKeys(ctx context.Context, batch int) (int64, error) {
	tag, err := q.db.Exec(ctx, `
		DELETE FROM idempotency_keys WHERE ctid IN (
			SELECT ctid FROM idempotency_keys WHERE expires_at <= now()
			ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)`, batch)
	if err != nil {
		return 0, fmt.Errorf("delete expired idempotency keys: %w", err)
	}
	return tag.RowsAffected(), nil
}
