# Aura's everyday commands. `make run` and `make test` are the two set-up
# commands of the README.

DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/aura?sslmode=disable

.PHONY: run test build vet fmt-check migrate lint-api postman postman-check asyncapi-check smoke bench-compare

## run: serve the API on :8080 against the local PostgreSQL (creates and migrates the database)
run:
	AURA_DATABASE_URL="$${AURA_DATABASE_URL:-$(DATABASE_URL)}" go run ./cmd/aura serve

## test: the whole test suite against real PostgreSQL, with the race detector
test:
	go test -race -count=1 ./...

## build: the aura binary in ./bin
build:
	go build -o bin/aura ./cmd/aura

## migrate: apply pending migrations and exit
migrate:
	AURA_DATABASE_URL="$${AURA_DATABASE_URL:-$(DATABASE_URL)}" go run ./cmd/aura migrate

vet:
	go vet ./...

## bench-compare: pgbench's raw-SQL write (schema/pgbench) against `aura bench write`, same machine, and the ratio
bench-compare:
	schema/pgbench/compare.sh

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# The contract's Node tooling (package.json, pinned in package-lock.json):
# Redocly CLI, openapi-to-postmanv2, newman and @asyncapi/parser. The targets
# below install it with `npm ci` when node_modules is missing or older than the
# lock file. Install scripts are skipped: none of the tools needs one (the only
# one in the tree is @scarf/scarf's download analytics).
NODE_BIN := node_modules/.bin
NODE_DEPS := node_modules/.package-lock.json
# Redocly CLI without usage telemetry or update notices.
REDOCLY := REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_NOTIFICATIONS=true $(NODE_BIN)/redocly
POSTMAN_COLLECTION := docs/aura.postman_collection.json

$(NODE_DEPS): package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund

## lint-api: lint docs/openapi.yaml with Redocly CLI (rules in redocly.yaml)
lint-api: $(NODE_DEPS)
	$(REDOCLY) lint --config redocly.yaml docs/openapi.yaml

## postman: generate docs/aura.postman_collection.json from docs/openapi.yaml
postman: $(NODE_DEPS)
	node .ci/postman.js docs/openapi.yaml $(POSTMAN_COLLECTION)

## postman-check: fail if docs/aura.postman_collection.json is not what make postman generates
postman-check: $(NODE_DEPS)
	@tmp=$$(mktemp); trap 'rm -f "$$tmp"' EXIT; \
	node .ci/postman.js docs/openapi.yaml "$$tmp" >/dev/null || exit 1; \
	if ! cmp -s "$$tmp" $(POSTMAN_COLLECTION); then \
	  echo "$(POSTMAN_COLLECTION) is stale: run make postman and commit it. The first differences:"; \
	  diff -u $(POSTMAN_COLLECTION) "$$tmp" | head -n 40; \
	  exit 1; \
	fi; \
	echo "$(POSTMAN_COLLECTION) is up to date with docs/openapi.yaml"

## asyncapi-check: validate docs/asyncapi.yaml (AsyncAPI 3.0) and its event schemas
asyncapi-check: $(NODE_DEPS)
	node .ci/asyncapi-check.js docs/asyncapi.yaml

## smoke: start aura on a fresh database and run the newman smoke flow (docs/smoke.postman_collection.json)
smoke: $(NODE_DEPS)
	bash .ci/smoke.sh
