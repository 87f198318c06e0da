-- One API write (POST /v1/clinics/{id}/patients with an Idempotency-Key) as
-- the raw SQL transaction PostgreSQL alone would commit for it: the key's
-- advisory lock and the clinic's, the check for a stored outcome, the
-- patient row, the clinic's event sequence, the event's outbox row and the
-- idempotency record. The API also runs a savepoint around the command and
-- two reads outside the transaction (API key, membership); this baseline
-- leaves them out. Run with -D clinics=N after init.sql with the same N.
\set n random(1, :clinics)
BEGIN;
SELECT pg_try_advisory_xact_lock(hashtextextended(:client_id || '-' || :n || '-' || random(), 0));
SELECT pg_advisory_xact_lock(1095062081, :n);
SELECT fingerprint, outcome, expires_at FROM idempotency_keys
 WHERE user_id = '00000000-0000-4000-8000-00000000b001' AND clinic_id = md5('pgbench-clinic-' || :n)::uuid
   AND key = 'pgbench-' || :client_id || '-' || txid_current() AND expires_at > now();
INSERT INTO patients (id, clinic_id, first_name, last_name, created_at, updated_at)
VALUES (gen_random_uuid(), md5('pgbench-clinic-' || :n)::uuid, 'Eva', 'Ruiz', now(), now());
INSERT INTO event_sequences (clinic_id, last_sequence) VALUES (md5('pgbench-clinic-' || :n)::uuid, 1)
ON CONFLICT (clinic_id) DO UPDATE SET last_sequence = event_sequences.last_sequence + 1
RETURNING last_sequence;
INSERT INTO watermill_aura_outbox (uuid, payload, metadata, transaction_id)
VALUES (gen_random_uuid()::text,
        json_build_object('destination_topic', 'aura_events', 'uuid', gen_random_uuid(),
                          'payload', encode(convert_to(repeat('x', 440), 'UTF8'), 'base64'),
                          'metadata', json_build_object('event', 'crm.patient.created', 'clinic_id', md5('pgbench-clinic-' || :n)::uuid)),
        '{}', pg_current_xact_id());
INSERT INTO idempotency_keys (user_id, clinic_id, key, fingerprint, outcome, created_at, expires_at)
VALUES ('00000000-0000-4000-8000-00000000b001', md5('pgbench-clinic-' || :n)::uuid,
        'pgbench-' || :client_id || '-' || txid_current(), sha256(convert_to(gen_random_uuid()::text, 'UTF8')),
        '{"value": {"id": "0192d3c4-0000-7000-8000-000000000000", "first_name": "Eva", "last_name": "Ruiz"}}',
        now(), now() + interval '24 hours');
COMMIT;
