-- +goose Up
-- The stored outcome of each POST that carried an Idempotency-Key, written in
-- the same transaction as the write it describes. A key belongs to its user
-- and, on clinic routes, to the clinic (NULL for routes outside a clinic).
CREATE TABLE idempotency_keys (
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    clinic_id   uuid REFERENCES clinics (id) ON DELETE CASCADE,
    key         text NOT NULL,
    fingerprint bytea NOT NULL,
    outcome     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    CONSTRAINT idempotency_keys_scope_unique UNIQUE NULLS NOT DISTINCT (user_id, clinic_id, key),
    CONSTRAINT idempotency_keys_key_shape CHECK (key ~ '^[ -~]{1,255}$'),
    CONSTRAINT idempotency_keys_fingerprint_length CHECK (length(fingerprint) = 32),
    CONSTRAINT idempotency_keys_outcome_shape CHECK (jsonb_typeof(outcome) = 'object' AND (outcome ? 'value' OR outcome ? 'error')),
    CONSTRAINT idempotency_keys_expiry CHECK (expires_at > created_at)
);
-- The cleanup job deletes expired rows in batches, oldest first.
CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);

-- +goose Down
DROP TABLE idempotency_keys;
