-- +goose Up
-- Platform: users, their API keys, clinics (the tenants) and memberships.
CREATE TABLE users (
    id         uuid PRIMARY KEY,
    email      text NOT NULL,
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_unique UNIQUE (email),
    CONSTRAINT users_email_lowercase CHECK (email = lower(email)),
    CONSTRAINT users_email_shape CHECK (email ~ '^[^@[:space:]]+@[^@[:space:]]+$' AND length(email) <= 254),
    CONSTRAINT users_name_length CHECK (length(name) BETWEEN 1 AND 200)
);

-- Keys are stored only as a SHA-256 hash of the secret; prefix is the first
-- characters of the key, kept so a user can tell their keys apart.
CREATE TABLE api_keys (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text NOT NULL DEFAULT '',
    prefix       text NOT NULL,
    secret_hash  bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    CONSTRAINT api_keys_secret_hash_unique UNIQUE (secret_hash),
    CONSTRAINT api_keys_secret_hash_length CHECK (length(secret_hash) = 32),
    CONSTRAINT api_keys_name_length CHECK (length(name) <= 100),
    CONSTRAINT api_keys_revoked_after_created CHECK (revoked_at IS NULL OR revoked_at >= created_at)
);
CREATE INDEX api_keys_user_id ON api_keys (user_id, id);

CREATE TABLE clinics (
    id         uuid PRIMARY KEY,
    name       text NOT NULL,
    currency   char(3) NOT NULL,
    timezone   text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT clinics_name_length CHECK (length(name) BETWEEN 1 AND 200),
    CONSTRAINT clinics_currency_shape CHECK (currency ~ '^[A-Z]{3}$'),
    CONSTRAINT clinics_timezone_length CHECK (length(timezone) BETWEEN 1 AND 64)
);

CREATE TABLE members (
    clinic_id  uuid NOT NULL REFERENCES clinics (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (clinic_id, user_id),
    CONSTRAINT members_role_known CHECK (role IN ('owner', 'admin', 'practitioner', 'reception', 'billing'))
);
CREATE INDEX members_user_id ON members (user_id, clinic_id);

-- CRM: patients belong to exactly one clinic.
CREATE TABLE patients (
    id            uuid PRIMARY KEY,
    clinic_id     uuid NOT NULL REFERENCES clinics (id) ON DELETE CASCADE,
    first_name    text NOT NULL,
    last_name     text NOT NULL,
    date_of_birth date,
    email         text,
    phone         text,
    notes         text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    -- Lets clinic-owned rows of later tables reference (clinic_id, patient_id),
    -- so a row can never point at another clinic's patient.
    CONSTRAINT patients_clinic_id_id_unique UNIQUE (clinic_id, id),
    CONSTRAINT patients_first_name_length CHECK (length(first_name) BETWEEN 1 AND 100),
    CONSTRAINT patients_last_name_length CHECK (length(last_name) BETWEEN 1 AND 100),
    CONSTRAINT patients_email_shape CHECK (email IS NULL OR (email ~ '^[^@[:space:]]+@[^@[:space:]]+$' AND length(email) <= 254)),
    CONSTRAINT patients_phone_shape CHECK (phone IS NULL OR phone ~ '^\+?[0-9 ()./-]{3,32}$'),
    CONSTRAINT patients_notes_length CHECK (notes IS NULL OR length(notes) <= 10000),
    CONSTRAINT patients_date_of_birth_range CHECK (date_of_birth IS NULL OR date_of_birth >= DATE '1900-01-01'),
    CONSTRAINT patients_updated_after_created CHECK (updated_at >= created_at)
);

-- +goose Down
DROP TABLE patients;
DROP TABLE members;
DROP TABLE clinics;
DROP TABLE api_keys;
DROP TABLE users;
