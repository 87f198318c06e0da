// Package store runs Aura's queries against PostgreSQL through pgx v5. The
// same Queries value works on the pool (reads) and inside a transaction
// (writes run by the clinic actor); it maps database errors to the domain's
// fault codes so callers never see driver text.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/aura-clinic/aura/actors/fault"
)

// DBTX is what Queries needs: satisfied by *pgxpool.Pool, *pgx.Conn and pgx.Tx.
type DBTX interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Queries runs Aura's queries on a pool or a transaction.
type Queries struct {
	db DBTX
}

// New returns Queries that run on db.
func New(db DBTX) *Queries { return &Queries{db: db} }

// Page asks for at most Limit items whose id sorts after After (the zero
// UUID starts at the beginning). Ids are UUIDv7, so id order is creation
// order, and a page boundary is stable under concurrent inserts.
type Page struct {
	Limit int
	After uuid.UUID
}

// List is one page of items, and whether more follow it.
type List[T any] struct {
	Items   []T
	HasMore bool
}

// collectPage reads up to page.Limit items of a query that asked for
// page.Limit+1 rows, so HasMore needs no second query.
func collectPage[T any](rows pgx.Rows, err error, page Page, scan func(pgx.CollectableRow) (T, error)) (List[T], error) {
	if err != nil {
		return List[T]{}, err
	}
	items, err := pgx.CollectRows(rows, scan)
	if err != nil {
		return List[T]{}, err
	}
	list := List[T]{Items: items}
	if len(items) > page.Limit {
		list.Items, list.HasMore = items[:page.Limit], true
	}
	return list, nil
}

// PostgreSQL's SQLSTATEs for constraint violations the store maps.
const (
	uniqueViolation     = "23505"
	foreignKeyViolation = "23503"
	checkViolation      = "23514"
)

// fieldNotFound is a validation error: the member at pointer names a row
// that does not exist (in the clinic).
func fieldNotFound(pointer, detail string) error {
	var f fault.Fields
	f.Add(pointer, "not_found", detail)
	return f.Err()
}

// constraintOf returns the violated constraint's name when err is a
// PostgreSQL error with SQLSTATE code, else "".
func constraintOf(err error, code string) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == code {
		return pgErr.ConstraintName
	}
	return ""
}

// utcPtr returns t in UTC, or nil for nil: pgx scans timestamptz in local time.
func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
