package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aura-clinic/aura/actors/fault"
	"github.com/aura-clinic/aura/schema/store"
)

// Executor runs each job in its own PostgreSQL transaction. A panicking job
// is rolled back and answered with an internal error, never left unanswered.
type Executor struct {
	pool   *pgxpool.Pool
	logger *slog.Logger
}

// NewExecutor returns an Executor writing to pool.
func NewExecutor(pool *pgxpool.Pool, logger *slog.Logger) *Executor {
	return &Executor{pool: pool, logger: logger}
}

func (e *Executor) dispatch(ctx context.Context, m Meta, j job) (any, error) {
	return e.run(ctx, m, j)
}

// run executes j in a transaction and commits when it succeeds.
func (e *Executor) run(ctx context.Context, m Meta, j job) (result any, err error) {
	if ctx.Err() != nil { // the caller gave up while the job waited
		return nil, timeoutError(ctx)
	}
	defer func() {
		if p := recover(); p != nil {
			e.logger.Error("command panicked", "request_id", m.RequestID, "clinic_id", m.ClinicID,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			result, err = nil, fault.ErrInternal.New("The server could not complete the request.")
		}
	}()
	err = pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
		var err error
		result, err = j(ctx, store.New(tx))
		return err
	})
	if err != nil && ctx.Err() != nil && !isFault(err) {
		return nil, timeoutError(ctx)
	}
	return result, err
}

func isFault(err error) bool {
	var f *fault.Error
	return errors.As(err, &f)
}

// timeoutError is the answer when ctx ended before the job did.
func timeoutError(ctx context.Context) error {
	return fault.ErrTimeout.Wrap(ctx.Err(), "The request did not complete in time; it may be retried.")
}
