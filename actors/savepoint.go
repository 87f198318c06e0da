package actors

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// savepointName names every command's savepoint. Names may repeat: a
// rollback goes to the latest savepoint of the name, the running command's,
// since the batch runs its commands one after the other and never releases
// their savepoints (each nests in the previous one).
const savepointName = "command"

// savepoint is what a command of a batch writes through (a store.DBTX): the
// batch's transaction, inside a savepoint that is created together with the
// command's first statement, in one round trip (a pipeline of two), rather
// than in a round trip of its own. A command that runs no statement creates
// no savepoint.
type savepoint struct {
	tx      pgx.Tx
	created bool
}

// Exec implements store.DBTX.
func (s *savepoint) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
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

// QueryRow implements store.DBTX.
func (s *savepoint) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if s.created {
		return s.tx.QueryRow(ctx, sql, args...)
	}
	results, err := s.withSavepoint(ctx, sql, args)
	if err != nil {
		return errRow{err}
	}
	return pipelinedRow{row: results.QueryRow(), results: results}
}

// Query implements store.DBTX. Rows are read after Query returns, so the
// savepoint, if it is still to be created, takes a round trip of its own.
func (s *savepoint) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if !s.created {
		if _, err := s.tx.Exec(ctx, "SAVEPOINT "+savepointName); err != nil {
			return nil, fmt.Errorf("savepoint: %w", err)
		}
		s.created = true
	}
	return s.tx.Query(ctx, sql, args...)
}

// withSavepoint sends the savepoint and the statement in one pipeline and
// reads the savepoint's result; the statement's is the caller's to read,
// and the results' to close.
func (s *savepoint) withSavepoint(ctx context.Context, sql string, args []any) (pgx.BatchResults, error) {
	batch := &pgx.Batch{}
	batch.Queue("SAVEPOINT " + savepointName)
	batch.Queue(sql, args...)
	results := s.tx.SendBatch(ctx, batch)
	if _, err := results.Exec(); err != nil {
		return nil, errors.Join(fmt.Errorf("savepoint: %w", err), results.Close())
	}
	s.created = true
	return results, nil
}

// rollback undoes the command's statements, if it ran any.
func (s *savepoint) rollback(ctx context.Context) error {
	if !s.created {
		return nil
	}
	if _, err := s.tx.Exec(ctx, "ROLLBACK TO SAVEPOINT "+savepointName); err != nil {
		return fmt.Errorf("roll back to savepoint: %w", err)
	}
	return nil
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
