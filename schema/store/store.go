// Package store runs Aura's queries against PostgreSQL through pgx v5. The
// same Queries value works on the pool (reads) and inside a transaction
// (writes run by the clinic actor); it maps database errors to the domain's
// fault codes so callers never see driver text.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/aura-clinic/aura/actors/fault"
	"github.com/aura-clinic/aura/messaging"
)

// DBTX is what Queries needs: satisfied by *pgxpool.Pool, *pgx.Conn and pgx.Tx.
type DBTX interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Queries runs Aura's queries on a pool or a transaction. Inside a
// transaction it also collects the events the transaction's writes produce,
// for the emitter to write to the outbox before commit.
type Queries struct {
	db     DBTX
	events []messaging.Pending
}

// Emit records events of a clinic produced by the current transaction.
func (q *Queries) Emit(clinicID uuid.UUID, events ...messaging.Event) {
	for _, e := range events {
		q.events = append(q.events, messaging.Pending{ClinicID: clinicID, Event: e})
	}
}

// Emitted returns the events recorded with Emit, in order.
func (q *Queries) Emitted() []messaging.Pending { return q.events }

// NextEventSequences reserves n sequence numbers of the clinic's events and
// returns the first. The counter row stays locked until the transaction ends
// and a rollback takes the numbers back, so sequences have no gaps.
func (q *Queries) NextEventSequences(ctx context.Context, clinicID uuid.UUID, n int) (int64, error) {
	var last int64
	err := q.db.QueryRow(ctx, `
		INSERT INTO event_sequences (clinic_id, last_sequence) VALUES ($1, $2)
		ON CONFLICT (clinic_id) DO UPDATE SET last_sequence = event_sequences.last_sequence + $2
		RETURNING last_sequence`, clinicID, n).Scan(&last)
	if err != nil {
		return 0, fmt.Errorf("next event sequence: %w", err)
	}
	return last - int64(n) + 1, nil
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
