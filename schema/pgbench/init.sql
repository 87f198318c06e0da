-- The rows schema/pgbench/write.sql writes against: one user and :clinics
-- clinics with deterministic ids, in a database migrated by `aura migrate`.
-- Run: psql -v clinics=16 -f schema/pgbench/init.sql "$DATABASE_URL"
INSERT INTO users (id, email, name)
VALUES ('00000000-0000-4000-8000-00000000b001', 'pgbench@example.com', 'pgbench')
ON CONFLICT DO NOTHING;

INSERT INTO clinics (id, name, currency, timezone)
SELECT md5('pgbench-clinic-' || n)::uuid, 'pgbench clinic ' || n, 'EUR', 'Europe/Madrid'
FROM generate_series(1, :clinics) AS n
ON CONFLICT DO NOTHING;
