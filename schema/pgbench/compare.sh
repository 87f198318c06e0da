#!/usr/bin/env bash
# Runs the raw-SQL baseline (pgbench with write.sql) and then `aura bench
# write` against a real `aura serve`, one after the other on this machine,
# with the same clinics, concurrency and duration, and prints the ratio.
#
#   schema/pgbench/compare.sh            # or: make bench-compare
#   CLINICS=16 CONCURRENCY=32 DURATION=30 schema/pgbench/compare.sh
#
# Each side gets a fresh database (dropped afterwards) on the PostgreSQL at
# PGURL. AURA_GROUP_COMMIT_MAX and POOL_MAX_CONNS pass through to the server.
set -euo pipefail
cd "$(dirname "$0")/../.."

PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
CLINICS=${CLINICS:-16}
CONCURRENCY=${CONCURRENCY:-32}
DURATION=${DURATION:-30}   # seconds, for each side
POOL_MAX_CONNS=${POOL_MAX_CONNS:-16}
PORT=${PORT:-18080}
work=$(mktemp -d)
pg_db=aura_pgbench_$$
api_db=aura_apibench_$$
server=

cleanup() {
	if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
	for db in "$pg_db" "$api_db"; do psql -q "$PGURL/postgres" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true; done
	rm -rf "$work"
}
trap cleanup EXIT

echo "building aura" >&2
go build -o "$work/aura" ./cmd/aura

echo "baseline: pgbench, $CONCURRENCY clients, $CLINICS clinics, ${DURATION}s" >&2
AURA_DATABASE_URL="$PGURL/$pg_db?sslmode=disable" AURA_LOG_LEVEL=warn "$work/aura" migrate >/dev/null
psql -q "$PGURL/$pg_db" -v clinics="$CLINICS" -f schema/pgbench/init.sql
pgbench -n -M prepared -c "$CONCURRENCY" -j 2 -T "$DURATION" -D clinics="$CLINICS" \
	-f schema/pgbench/write.sql "$PGURL/$pg_db" | tee "$work/pgbench.txt" >&2
pg_tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$work/pgbench.txt")

echo "API: aura bench write against aura serve on :$PORT" >&2
export AURA_DATABASE_URL="$PGURL/$api_db?sslmode=disable&pool_max_conns=$POOL_MAX_CONNS"
AURA_HTTP_ADDR="127.0.0.1:$PORT" AURA_RATE_LIMITS=off AURA_LOG_LEVEL=warn "$work/aura" serve 2>"$work/serve.log" &
server=$!
for _ in $(seq 100); do
	curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
	sleep 0.1
done
"$work/aura" bench write --url "http://127.0.0.1:$PORT" --clinics "$CLINICS" --concurrency "$CONCURRENCY" \
	--duration "${DURATION}s" --json >"$work/api.json"
api_rps=$(jq -r .throughput_rps "$work/api.json")
jq . "$work/api.json" >&2

awk -v pg="$pg_tps" -v api="$api_rps" -v c="$CONCURRENCY" -v k="$CLINICS" 'BEGIN {
	printf "pgbench write.sql: %.0f tx/s\naura bench write:  %.0f req/s\nratio API/pgbench: %.2fx  (%d clients, %d clinics)\n", pg, api, api / pg, c, k
}'
