package actors

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aura-clinic/aura/actors/fault"
	"github.com/aura-clinic/aura/messaging"
)

// DefaultIdempotencyTTL is how long a stored outcome is replayed.
const DefaultIdempotencyTTL = 24 * time.Hour

// Executor runs jobs in PostgreSQL transactions, with the request's
// idempotency key when it has one: each job alone when called directly, or a
// clinic actor's queued jobs together (group commit). A panicking job is
// rolled back and answered with an internal error, never left unanswered.
type Executor struct {
	pool           *pgxpool.Pool
	logger         *slog.Logger
	idempotencyTTL time.Duration
	keys           keyLocks // for jobs run outside a clinic actor
	emitter        *messaging.Emitter
}

// ExecutorOption configures an Executor.
type ExecutorOption func(*Executor)

// MinIdempotencyTTL is the shortest TTL PostgreSQL's intervals can hold
// faithfully enough to expire keys.
const MinIdempotencyTTL = time.Millisecond

// WithIdempotencyTTL sets how long stored outcomes are replayed (default
// 24h); a TTL under MinIdempotencyTTL is ignored.
func WithIdempotencyTTL(ttl time.Duration) ExecutorOption {
	return func(e *Executor) {
		if ttl >= MinIdempotencyTTL {
			e.idempotencyTTL = ttl
		}
	}
}

// NewExecutor returns an Executor writing to pool.
func NewExecutor(pool *pgxpool.Pool, logger *slog.Logger, opts ...ExecutorOption) *Executor {
	e := &Executor{pool: pool, logger: logger, idempotencyTTL: DefaultIdempotencyTTL, emitter: messaging.NewEmitter(logger)}
	for _, opt := range opts {
		opt(e)
	}
	return e
}

// dispatch runs j on the caller's goroutine. Requests with the same key wait
// for each other here, as a clinic actor's mailbox makes them do.
func (e *Executor) dispatch(ctx context.Context, m Meta, j job) result {
	if m.Idempotency != nil {
		unlock, err := e.keys.lock(ctx, m.Idempotency.lockID(m))
		if err != nil {
			return result{err: err}
		}
		defer unlock()
	}
	return e.run(ctx, m, j)
}

// run executes j in a transaction of its own and commits when it succeeds
// (or when it fails with an outcome worth storing under its idempotency key).
func (e *Executor) run(ctx context.Context, m Meta, j job) result {
	return e.runBatch(ctx, []*request{{ctx: ctx, meta: m, job: j}})[0]
}

// clinicLockSpace is the first key of the clinics' advisory locks ("AURA").
const clinicLockSpace = 0x41555241

// lockClinic serialises the clinic's write transactions across processes,
// should two briefly host its actor (one process's actor already runs them
// one at a time): invariants checked by reading, such as "no overlapping
// booking", then hold without deadlocks between the processes. It runs before
// the transaction's first write, so transaction ids, which order the outbox,
// follow the clinic's event sequence; an advisory lock needs no transaction id.
func lockClinic(ctx context.Context, tx pgx.Tx, clinicID uuid.UUID) error {
	if clinicID == uuid.Nil {
		return nil
	}
	key := int32(binary.BigEndian.Uint32(clinicID[12:]))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, int32(clinicLockSpace), key); err != nil {
		return fmt.Errorf("lock clinic: %w", err)
	}
	return nil
}

func isFault(err error) bool {
	var f *fault.Error
	return errors.As(err, &f)
}

// timeoutError is the answer when ctx ended before the job did.
func timeoutError(ctx context.Context) error {
	return fault.ErrTimeout.Wrap(ctx.Err(), "The request did not complete in time; it may be retried.")
}
