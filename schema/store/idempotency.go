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

// TryLockIdempotencyKeys takes a transaction-scoped advisory lock on each
// of lockIDs, without waiting, in one statement. locked[i] false means another
// transaction (in this process or another) is running a request with the key
// of lockIDs[i].
func (q *Queries) TryLockIdempotencyKeys(ctx context.Context, lockIDs []int64) (locked []bool, err error) {
	rows, err := q.db.Query(ctx, `
		SELECT pg_try_advisory_xact_lock(k.id) FROM unnest($1::bigint[]) WITH ORDINALITY AS k(id, n) ORDER BY k.n`, lockIDs)
	if err == nil {
		locked, err = pgx.CollectRows(rows, pgx.RowTo[bool])
	}
	if err != nil {
		return nil, fmt.Errorf("lock idempotency keys: %w", err)
	}
	return locked, nil
}

// IdempotencyKey names a key in a clinic's scope: its user's key.
type IdempotencyKey struct {
	UserID uuid.UUID
	Key    string
}

// IdempotencyRecords returns the unexpired records of keys in clinicID's
// scope (uuid.Nil: outside any clinic), in one statement; a key without one
// is not in the result.
func (q *Queries) IdempotencyRecords(ctx context.Context, clinicID uuid.UUID, keys []IdempotencyKey) ([]IdempotencyRecord, error) {
	users, names := make([]uuid.UUID, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		users[i], names[i] = k.UserID, k.Key
	}
	// Equality, not IS NOT DISTINCT FROM, so that the scope's unique index
	// finds each key instead of scanning all of the user's keys. ($1 is still
	// named outside a clinic, so that the statement has a type for it.)
	scope := `k.clinic_id = $1`
	if clinicID == uuid.Nil {
		scope = `k.clinic_id IS NULL AND $1::uuid IS NULL`
	}
	rows, err := q.db.Query(ctx, `
		SELECT k.user_id, k.key, k.fingerprint, k.outcome, k.expires_at FROM idempotency_keys k
		WHERE `+scope+` AND (k.user_id, k.key) IN (SELECT * FROM unnest($2::uuid[], $3::text[]))
			AND k.expires_at > now()`,
		nullable(clinicID), users, names)
	if err != nil {
		return nil, fmt.Errorf("read idempotency keys: %w", err)
	}
	recs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (IdempotencyRecord, error) {
		rec := IdempotencyRecord{ClinicID: clinicID}
		err := row.Scan(&rec.UserID, &rec.Key, &rec.Fingerprint, &rec.Outcome, &rec.ExpiresAt)
		return rec, err
	})
	if err != nil {
		return nil, fmt.Errorf("read idempotency keys: %w", err)
	}
	return recs, nil
}

// SaveIdempotencyRecords stores recs, all of one clinic and of distinct keys,
// each expiring ttl from now, in place of expired records of the same keys,
// in one statement. It returns recs with their expiry. An unexpired record
// of one of the keys is an error: the caller holds the keys' locks and has
// checked, so that means a bug.
func (q *Queries) SaveIdempotencyRecords(ctx context.Context, recs []IdempotencyRecord, ttl time.Duration) ([]IdempotencyRecord, error) {
	if len(recs) == 0 {
		return nil, nil
	}
	users, keys := make([]uuid.UUID, len(recs)), make([]string, len(recs))
	fingerprints, outcomes := make([][]byte, len(recs)), make([]string, len(recs))
	for i, rec := range recs {
		if rec.ClinicID != recs[0].ClinicID {
			return nil, errors.New("save idempotency keys: records of two clinics")
		}
		users[i], keys[i], fingerprints[i], outcomes[i] = rec.UserID, rec.Key, rec.Fingerprint, string(rec.Outcome)
	}
	rows, err := q.db.Query(ctx, `
		INSERT INTO idempotency_keys (user_id, clinic_id, key, fingerprint, outcome, created_at, expires_at)
		SELECT r.user_id, $1, r.key, r.fingerprint, r.outcome::jsonb, now(), now() + $6::interval
		FROM unnest($2::uuid[], $3::text[], $4::bytea[], $5::text[]) AS r(user_id, key, fingerprint, outcome)
		ON CONFLICT ON CONSTRAINT idempotency_keys_scope_unique DO UPDATE
			SET fingerprint = excluded.fingerprint, outcome = excluded.outcome,
				created_at = excluded.created_at, expires_at = excluded.expires_at
			WHERE idempotency_keys.expires_at <= now()
		RETURNING user_id, key, expires_at`,
		nullable(recs[0].ClinicID), users, keys, fingerprints, outcomes, ttl)
	if err != nil {
		return nil, fmt.Errorf("save idempotency keys: %w", err)
	}
	expiry := make(map[IdempotencyKey]time.Time, len(recs))
	var k IdempotencyKey
	var expiresAt time.Time
	if _, err := pgx.ForEachRow(rows, []any{&k.UserID, &k.Key, &expiresAt}, func() error {
		expiry[k] = expiresAt
		return nil
	}); err != nil {
		return nil, fmt.Errorf("save idempotency keys: %w", err)
	}
	saved := make([]IdempotencyRecord, len(recs))
	for i, rec := range recs {
		at, ok := expiry[IdempotencyKey{UserID: rec.UserID, Key: rec.Key}]
		if !ok {
			return nil, fmt.Errorf("save idempotency keys: an unexpired record of key %q exists", rec.Key)
		}
		rec.ExpiresAt = at
		saved[i] = rec
	}
	return saved, nil
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
