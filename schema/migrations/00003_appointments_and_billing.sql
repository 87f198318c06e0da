-- +goose Up
-- CRM appointments and Billing. Every invariant the API promises is also a
-- constraint here, so a second process or a bug in Go cannot break it.
CREATE EXTENSION IF NOT EXISTS btree_gist;

-- Lets appointments reference (clinic, practitioner, 'practitioner'): only a
-- member whose role is practitioner can be booked.
ALTER TABLE members ADD CONSTRAINT members_clinic_user_role_unique UNIQUE (clinic_id, user_id, role);

CREATE TABLE appointments (
    id                uuid PRIMARY KEY,
    clinic_id         uuid NOT NULL REFERENCES clinics (id) ON DELETE CASCADE,
    patient_id        uuid NOT NULL,
    practitioner_id   uuid NOT NULL,
    practitioner_role text NOT NULL DEFAULT 'practitioner',
    starts_at         timestamptz NOT NULL,
    ends_at           timestamptz NOT NULL,
    status            text NOT NULL DEFAULT 'booked',
    notes             text,
    cancel_reason     text,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    CONSTRAINT appointments_clinic_id_id_unique UNIQUE (clinic_id, id),
    CONSTRAINT appointments_patient_fk FOREIGN KEY (clinic_id, patient_id) REFERENCES patients (clinic_id, id),
    CONSTRAINT appointments_practitioner_fk FOREIGN KEY (clinic_id, practitioner_id, practitioner_role)
        REFERENCES members (clinic_id, user_id, role),
    CONSTRAINT appointments_practitioner_role CHECK (practitioner_role = 'practitioner'),
    CONSTRAINT appointments_time_order CHECK (starts_at < ends_at),
    CONSTRAINT appointments_max_length CHECK (ends_at - starts_at <= interval '24 hours'),
    CONSTRAINT appointments_status_known CHECK (status IN ('booked', 'cancelled', 'completed')),
    CONSTRAINT appointments_cancel_reason CHECK ((status = 'cancelled') = (cancel_reason IS NOT NULL)),
    CONSTRAINT appointments_cancel_reason_length CHECK (cancel_reason IS NULL OR length(cancel_reason) BETWEEN 1 AND 500),
    CONSTRAINT appointments_notes_length CHECK (notes IS NULL OR length(notes) <= 2000),
    -- No double booking: a practitioner's non-cancelled appointments never
    -- overlap ([starts_at, ends_at) half-open, so back-to-back slots are fine).
    CONSTRAINT appointments_no_overlap EXCLUDE USING gist (
        clinic_id WITH =, practitioner_id WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&
    ) WHERE (status <> 'cancelled')
);
CREATE INDEX appointments_patient ON appointments (clinic_id, patient_id, id);

-- Gapless invoice numbering: one counter row per clinic, advanced in the
-- issuing transaction (a rollback takes the number back; a sequence would not).
CREATE TABLE invoice_counters (
    clinic_id   uuid PRIMARY KEY REFERENCES clinics (id) ON DELETE CASCADE,
    last_number bigint NOT NULL,
    CONSTRAINT invoice_counters_positive CHECK (last_number > 0)
);

-- Money is integer minor units of the clinic's currency.
CREATE TABLE invoices (
    id              uuid PRIMARY KEY,
    clinic_id       uuid NOT NULL REFERENCES clinics (id) ON DELETE CASCADE,
    number          bigint NOT NULL,
    -- Fixed at issue: the year of issue in the clinic's time zone and the number.
    display_number  text NOT NULL,
    patient_id      uuid NOT NULL,
    appointment_id  uuid,
    currency        char(3) NOT NULL,
    subtotal        bigint NOT NULL,
    tax             bigint NOT NULL,
    total           bigint NOT NULL,
    amount_paid     bigint NOT NULL DEFAULT 0,
    amount_refunded bigint NOT NULL DEFAULT 0,
    status          text NOT NULL,
    issued_at       timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    CONSTRAINT invoices_clinic_id_id_unique UNIQUE (clinic_id, id),
    CONSTRAINT invoices_number_unique UNIQUE (clinic_id, number),
    CONSTRAINT invoices_number_positive CHECK (number > 0),
    CONSTRAINT invoices_display_number_shape CHECK (display_number ~ '^[0-9]{4}-[0-9]{6,}$'),
    CONSTRAINT invoices_patient_fk FOREIGN KEY (clinic_id, patient_id) REFERENCES patients (clinic_id, id),
    CONSTRAINT invoices_appointment_fk FOREIGN KEY (clinic_id, appointment_id) REFERENCES appointments (clinic_id, id),
    CONSTRAINT invoices_currency_shape CHECK (currency ~ '^[A-Z]{3}$'),
    CONSTRAINT invoices_amounts CHECK (subtotal >= 0 AND tax >= 0 AND total = subtotal + tax),
    -- Paid minus refunded never exceeds the total, and never goes below zero.
    CONSTRAINT invoices_balance CHECK (
        amount_paid >= 0 AND amount_refunded >= 0 AND amount_refunded <= amount_paid
        AND amount_paid - amount_refunded <= total),
    CONSTRAINT invoices_status CHECK (
        (status = 'paid' AND amount_paid - amount_refunded = total)
        OR (status = 'issued' AND amount_paid - amount_refunded < total))
);
CREATE INDEX invoices_patient ON invoices (clinic_id, patient_id, id);

CREATE TABLE invoice_lines (
    clinic_id   uuid NOT NULL,
    invoice_id  uuid NOT NULL,
    position    int NOT NULL,
    description text NOT NULL,
    quantity    int NOT NULL,
    unit_price  bigint NOT NULL,
    tax_rate_bp int NOT NULL,
    subtotal    bigint NOT NULL,
    tax         bigint NOT NULL,
    total       bigint NOT NULL,
    PRIMARY KEY (invoice_id, position),
    CONSTRAINT invoice_lines_invoice_fk FOREIGN KEY (clinic_id, invoice_id) REFERENCES invoices (clinic_id, id) ON DELETE CASCADE,
    CONSTRAINT invoice_lines_position CHECK (position BETWEEN 1 AND 100),
    CONSTRAINT invoice_lines_description CHECK (length(description) BETWEEN 1 AND 500),
    CONSTRAINT invoice_lines_quantity CHECK (quantity BETWEEN 1 AND 10000),
    CONSTRAINT invoice_lines_unit_price CHECK (unit_price BETWEEN 0 AND 10000000000),
    CONSTRAINT invoice_lines_tax_rate CHECK (tax_rate_bp BETWEEN 0 AND 10000),
    CONSTRAINT invoice_lines_amounts CHECK (subtotal = quantity * unit_price AND tax >= 0 AND total = subtotal + tax)
);

CREATE TABLE payments (
    id              uuid PRIMARY KEY,
    clinic_id       uuid NOT NULL REFERENCES clinics (id) ON DELETE CASCADE,
    invoice_id      uuid NOT NULL,
    amount          bigint NOT NULL,
    amount_refunded bigint NOT NULL DEFAULT 0,
    method          text NOT NULL,
    reference       text,
    created_at      timestamptz NOT NULL,
    CONSTRAINT payments_clinic_id_id_unique UNIQUE (clinic_id, id),
    CONSTRAINT payments_invoice_fk FOREIGN KEY (clinic_id, invoice_id) REFERENCES invoices (clinic_id, id),
    CONSTRAINT payments_amount_positive CHECK (amount > 0),
    -- Refunds of a payment never exceed its amount.
    CONSTRAINT payments_refunds CHECK (amount_refunded BETWEEN 0 AND amount),
    CONSTRAINT payments_method_known CHECK (method IN ('cash', 'card', 'transfer')),
    CONSTRAINT payments_reference_length CHECK (reference IS NULL OR length(reference) BETWEEN 1 AND 200)
);
CREATE INDEX payments_invoice ON payments (clinic_id, invoice_id, id);

CREATE TABLE refunds (
    id         uuid PRIMARY KEY,
    clinic_id  uuid NOT NULL REFERENCES clinics (id) ON DELETE CASCADE,
    payment_id uuid NOT NULL,
    amount     bigint NOT NULL,
    reason     text NOT NULL,
    created_at timestamptz NOT NULL,
    CONSTRAINT refunds_payment_fk FOREIGN KEY (clinic_id, payment_id) REFERENCES payments (clinic_id, id),
    CONSTRAINT refunds_amount_positive CHECK (amount > 0),
    CONSTRAINT refunds_reason_length CHECK (length(reason) BETWEEN 1 AND 500)
);
CREATE INDEX refunds_payment ON refunds (clinic_id, payment_id, id);

-- +goose Down
DROP TABLE refunds;
DROP TABLE payments;
DROP TABLE invoice_lines;
DROP TABLE invoices;
DROP TABLE invoice_counters;
DROP TABLE appointments;
ALTER TABLE members DROP CONSTRAINT members_clinic_user_role_unique;
