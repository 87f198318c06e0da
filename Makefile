# Aura's everyday commands. `make run` and `make test` are the two set-up
# commands of the README.

DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/aura?sslmode=disable

.PHONY: run test build vet fmt-check migrate

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

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
