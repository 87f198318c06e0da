#!/usr/bin/env bash
# The newman smoke flow (`make smoke`, and .ci/run after `make test`): build
# aura, create a fresh database, start `aura serve` on a free local port
# (default settings: postgres pub/sub, default rate limits), wait for /readyz,
# create a user with the CLI, then run docs/smoke.postman_collection.json with
# newman against it: clinic -> practitioner member -> patient -> appointment
# -> invoice -> payment of the total -> the invoice reads as paid. Then it
# runs the Operations folder of the generated docs/aura.postman_collection.json
# (health, readiness, metrics, the document and the reference; no data), whose
# tests check each status is one the document lists. Whatever happens, the
# server is stopped and the database dropped at the end.
#
# Needs Go, node_modules (npm ci), psql, and PostgreSQL at
# AURA_TEST_DATABASE_URL (the test suite's server; default
# postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable), whose role
# may create databases.
set -euo pipefail
cd "$(dirname "$0")/.."

newman=node_modules/.bin/newman
if [ ! -x "$newman" ]; then
  echo "smoke: $newman is missing; run npm ci" >&2
  exit 1
fi

admin_url=${AURA_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
db=aura_smoke_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
# The same server, user and parameters as admin_url, with the database db.
case $admin_url in
  *\?*) query="?${admin_url#*\?}"; base=${admin_url%%\?*} ;;
  *) query=""; base=$admin_url ;;
esac
db_url="${base%/*}/$db$query"

work=$(mktemp -d)
server_pid=""
db_created=""

cleanup() {
  local status=$?
  set +e
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid"
    for _ in $(seq 1 100); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$server_pid" 2>/dev/null; then
      echo "smoke: the server did not stop within 20s; killing it" >&2
      kill -KILL "$server_pid"
    fi
    wait "$server_pid" 2>/dev/null
  fi
  if [ "$status" -ne 0 ] && [ -s "$work/server.log" ]; then
    echo "smoke: failed; the server's log ends with:" >&2
    tail -n 40 "$work/server.log" >&2
  fi
  if [ -n "$db_created" ]; then
    psql "$admin_url" -v ON_ERROR_STOP=1 -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null ||
      echo "smoke: could not drop the database $db" >&2
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "smoke: go build ./cmd/aura"
go build -o "$work/aura" ./cmd/aura

psql "$admin_url" -v ON_ERROR_STOP=1 -qc "CREATE DATABASE \"$db\"" >/dev/null
db_created=yes
echo "smoke: database $db"

port=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')
base_url="http://127.0.0.1:$port"

AURA_DATABASE_URL=$db_url AURA_HTTP_ADDR=127.0.0.1:$port AURA_LOG_FORMAT=text \
  "$work/aura" serve >"$work/server.log" 2>&1 &
server_pid=$!
echo "smoke: aura serve on $base_url (pid $server_pid)"

ready() {
  node -e 'require("http").get(process.argv[1], (r) => process.exit(r.statusCode === 200 ? 0 : 1)).on("error", () => process.exit(1))' "$base_url/readyz"
}
deadline=$((SECONDS + 60))
until ready; do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "smoke: aura serve exited before it was ready" >&2
    exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "smoke: $base_url/readyz did not answer 200 within 60s" >&2
    exit 1
  fi
  sleep 0.2
done
echo "smoke: ready"

# The new API key is the last line of stdout.
key=$(AURA_DATABASE_URL=$db_url "$work/aura" user create --email smoke@example.com --name "Smoke Test" | tail -n 1)
if [ -z "$key" ]; then
  echo "smoke: aura user create printed no key" >&2
  exit 1
fi
echo "smoke: user smoke@example.com created"

"$newman" run docs/smoke.postman_collection.json \
  --env-var "baseUrl=$base_url" \
  --env-var "apiKey=$key" \
  --bail \
  --timeout-request 15000 \
  --reporters cli

"$newman" run docs/aura.postman_collection.json \
  --folder Operations \
  --env-var "baseUrl=$base_url" \
  --env-var "apiKey=$key" \
  --bail \
  --timeout-request 15000 \
  --reporters cli
