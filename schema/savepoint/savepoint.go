// Package savepoint runs a unit of work inside a savepoint of a pgx
// transaction. The savepoint is created together with the work's first
// statement, in one round trip (a pipeline of two) rather than in a round
// trip of its own, and it is never released: the next unit's savepoint nests
// inside it, and rolling back to that one keeps this one's work. Group commit
// (a savepoint per write of a batch) and the postgres consumers (a savepoint
// per event of a batch) use it.
//
// PostgreSQL tracks up to 64 of a transaction's subtransactions in shared
// memory; beyond that, every other session's snapshots get slower. Keep the
// units of one transaction that write to 64 or fewer.
package savepoint

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Savepoint is one unit of work's view of the transaction: its statements
// run inside the unit's savepoint, created with the first of them. A unit
// that runs no statement creates no savepoint. It is a store.DBTX.
//
// Units of one transaction must run one after the other, as they share the
// savepoint's name: a rollback goes to the latest savepoint of the name,
// the running unit's.
type Savepoint struct {
	tx      pgx.Tx
	name    string
	created bool
}

// New returns the view of tx for one unit of work, whose savepoint is
// called name (an SQL identifier).
func New(tx pgx.Tx, name string) *Savepoint {
	return &Savepoint{tx: tx, name: name}
}

// Exec runs a statement inside the savepoint.
func (s *Savepoint) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if s.created {
		return s.tx.Exec(ctx, sql, args...)
	}
	results, err := s.withSavepoint(ctx, sql, args)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	tag, err := results.Exec()
	if closeErr := results.Close(); err == nil {
		err = closeErr
	}
	return tag, err
}

// QueryRow runs a query of one row inside the savepoint.
func (s *Savepoint) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if s.created {
		return s.tx.QueryRow(ctx, sql, args...)
	}
	results, err := s.withSavepoint(ctx, sql, args)
	if err != nil {
		return errRow{err}
	}
	return pipelinedRow{row: results.QueryRow(), results: results}
}

// Query runs a query inside the savepoint. Rows are read after Query
// returns, so the savepoint, if it is still to be created, takes a round
// trip of its own.
func (s *Savepoint) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if !s.created {
		if _, err := s.tx.Exec(ctx, "SAVEPOINT "+s.name); err != nil {
			return nil, fmt.Errorf("savepoint: %w", err)
		}
		s.created = true
	}
	return s.tx.Query(ctx, sql, args...)
}

// Rollback undoes the unit's statements, if it ran any.
func (s *Savepoint) Rollback(ctx context.Context) error {
	if !s.created {
		return nil
	}
	if _, err := s.tx.Exec(ctx, "ROLLBACK TO SAVEPOINT "+s.name); err != nil {
		return fmt.Errorf("roll back to savepoint: %w", err)
	}
	return nil
}

// withSavepoint sends the savepoint and the statement in one pipeline and
// reads the savepoint's result; the statement's is the caller's to read,
// and the results' to close.
func (s *Savepoint) withSavepoint(ctx context.Context, sql string, args []any) (pgx.BatchResults, error) {
	batch := &pgx.Batch{}
	batch.Queue("SAVEPOINT " + s.name)
	batch.Queue(sql, args...)
	results := s.tx.SendBatch(ctx, batch)
	if _, err := results.Exec(); err != nil {
		return nil, errors.Join(fmt.Errorf("savepoint: %w", err), results.Close())
	}
	s.created = true
	return results, nil
}

// pipelinedRow is a statement's row read from a pipeline, which it closes
// once scanned.
type pipelinedRow struct {
	row     pgx.Row
	results pgx.BatchResults
}

func (r pipelinedRow) Scan(dest ...any) error {
	err := r.row.Scan(dest...)
	if closeErr := r.results.Close(); err == nil {
		err = closeErr
	}
	return err
}

// errRow is a row that failed before it was read.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
