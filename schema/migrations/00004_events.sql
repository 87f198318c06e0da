-- +goose Up
-- Domain events. Each clinic's events are numbered 1, 2, 3, ... with no gap:
-- the counter row is advanced in the transaction that emits them.
CREATE TABLE event_sequences (
    clinic_id     uuid PRIMARY KEY REFERENCES clinics (id) ON DELETE CASCADE,
    last_sequence bigint NOT NULL,
    CONSTRAINT event_sequences_positive CHECK (last_sequence > 0)
);

-- Watermill's SQL outbox (watermill-sql v4, DefaultPostgreSQLSchema): events
-- are written here in the emitting transaction, and the forwarder moves them
-- to the configured pub/sub. Created here because the publisher cannot create
-- tables inside a transaction.
CREATE TABLE "watermill_aura_outbox" (
    "offset"         BIGSERIAL,
    "uuid"           VARCHAR(36) NOT NULL,
    "created_at"     TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "payload"        JSON DEFAULT NULL,
    "metadata"       JSON DEFAULT NULL,
    "transaction_id" xid8 NOT NULL,
    PRIMARY KEY ("transaction_id", "offset")
);
CREATE TABLE "watermill_offsets_aura_outbox" (
    consumer_group                VARCHAR(255) NOT NULL,
    offset_acked                  BIGINT,
    last_processed_transaction_id xid8 NOT NULL,
    PRIMARY KEY (consumer_group)
);

-- The "postgres" pub/sub's topic of forwarded events, with the offsets of
-- each consumer group (the event log, downstream services).
CREATE TABLE "watermill_aura_events" (
    "offset"         BIGSERIAL,
    "uuid"           VARCHAR(36) NOT NULL,
    "created_at"     TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "payload"        JSON DEFAULT NULL,
    "metadata"       JSON DEFAULT NULL,
    "transaction_id" xid8 NOT NULL,
    PRIMARY KEY ("transaction_id", "offset")
);
CREATE TABLE "watermill_offsets_aura_events" (
    consumer_group                VARCHAR(255) NOT NULL,
    offset_acked                  BIGINT,
    last_processed_transaction_id xid8 NOT NULL,
    PRIMARY KEY (consumer_group)
);

-- Events a consumer gave up on after its retries, acknowledged so that the
-- stream goes on; `aura outbox retry` delivers them again.
CREATE TABLE consumer_failures (
    consumer   text NOT NULL,
    event_id   uuid NOT NULL,
    envelope   jsonb NOT NULL,
    error      text NOT NULL,
    attempts   int NOT NULL,
    failed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id),
    CONSTRAINT consumer_failures_attempts CHECK (attempts > 0)
);

-- Each consumer's inbox: the events it has handled, written in the same
-- transaction as its effects, so a redelivered event has no second effect.
CREATE TABLE inbox (
    consumer     text NOT NULL,
    event_id     uuid NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX inbox_processed_at ON inbox (processed_at);

-- The event log consumer's copy of each clinic's events, for the API's event
-- log and live stream. position is the order rows were logged in.
CREATE TABLE clinic_events (
    position    bigserial UNIQUE,
    event_id    uuid PRIMARY KEY,
    clinic_id   uuid NOT NULL REFERENCES clinics (id) ON DELETE CASCADE,
    sequence    bigint NOT NULL,
    event       text NOT NULL,
    occurred_at timestamptz NOT NULL,
    envelope    jsonb NOT NULL,
    CONSTRAINT clinic_events_sequence_unique UNIQUE (clinic_id, sequence),
    CONSTRAINT clinic_events_sequence_positive CHECK (sequence > 0),
    CONSTRAINT clinic_events_name_shape CHECK (event ~ '^[a-z]+\.[a-z]+\.[a-z]+$')
);

-- +goose Down
DROP TABLE clinic_events;
DROP TABLE inbox;
DROP TABLE consumer_failures;
DROP TABLE "watermill_offsets_aura_events";
DROP TABLE "watermill_aura_events";
DROP TABLE "watermill_offsets_aura_outbox";
DROP TABLE "watermill_aura_outbox";
DROP TABLE event_sequences;
