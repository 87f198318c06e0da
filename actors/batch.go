package actors

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aura-clinic/aura/actors/fault"
	"github.com/aura-clinic/aura/schema/store"
)

// runBatch runs the requests, all of one clinic, in one transaction (group
// commit), each in its own savepoint: a request that fails is rolled back to
// its savepoint and answered with its error, and the others still commit.
// Results are in the order of reqs and are final only once runBatch returns,
// after the commit, so callers are answered only then.
//
// ctx bounds the transaction's statements. A request's own context is checked
// before its command runs and again after: a request whose caller has given
// up is rolled back and answered ErrTimeout, so what its caller was told (a
// timeout, to be retried) stays true.
func (e *Executor) runBatch(ctx context.Context, reqs []*request) []result {
	results := make([]result, len(reqs))
	live := make([]int, 0, len(reqs)) // the requests whose callers still wait
	for i, req := range reqs {
		if req.ctx.Err() != nil { // the caller gave up while the request queued
			results[i] = result{err: timeoutError(req.ctx)}
			continue
		}
		live = append(live, i)
	}
	if len(live) == 0 {
		return results
	}
	tx, err := e.pool.Begin(ctx)
	if err == nil {
		err = e.runInTx(ctx, tx, reqs, results, live)
	}
	if err != nil {
		if tx != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx)) // the connection is released either way
		}
		failBatch(ctx, reqs, results, live, err)
	}
	return results
}

// runInTx runs the live requests in tx and commits it. Each takes its
// idempotency key first, then the batch takes the clinic's lock, then each
// runs in its savepoint. Its error means nothing was committed.
func (e *Executor) runInTx(ctx context.Context, tx pgx.Tx, reqs []*request, results []result, live []int) error {
	claimed, err := claimKeys(ctx, tx, reqs, results, live)
	if err != nil {
		return err
	}
	if len(claimed) > 0 {
		if err := lockClinic(ctx, tx, reqs[claimed[0]].meta.ClinicID); err != nil {
			return err
		}
	}
	for n, i := range claimed {
		if results[i], err = e.runInSavepoint(ctx, tx, reqs[i]); err != nil {
			return fmt.Errorf("command %d of %d: %w", n+1, len(claimed), err)
		}
	}
	return tx.Commit(ctx)
}

// claimKeys claims the idempotency keys of the live requests (see claimKey)
// and returns those it could claim; the others are answered ErrKeyInFlight.
// Its error means tx can no longer be used.
func claimKeys(ctx context.Context, tx pgx.Tx, reqs []*request, results []result, live []int) ([]int, error) {
	claimed := make([]int, 0, len(live))
	for _, i := range live {
		if reqs[i].meta.Idempotency == nil {
			claimed = append(claimed, i)
			continue
		}
		switch err := claimKey(ctx, tx, reqs[i].meta); {
		case err == nil:
			claimed = append(claimed, i)
		case isFault(err):
			results[i] = result{err: err}
		default:
			return nil, fmt.Errorf("claim idempotency key: %w", err)
		}
	}
	return claimed, nil
}

// failBatch answers every live request with err: the transaction that held
// their work did not commit.
func failBatch(ctx context.Context, reqs []*request, results []result, live []int, err error) {
	for _, i := range live {
		switch {
		case reqs[i].ctx.Err() != nil:
			results[i] = result{err: timeoutError(reqs[i].ctx)}
		case ctx.Err() != nil && !isFault(err):
			results[i] = result{err: timeoutError(ctx)}
		case isFault(err):
			results[i] = result{err: err}
		default:
			results[i] = result{err: fmt.Errorf("group commit: %w", err)}
		}
	}
}

// runInSavepoint runs one request in a savepoint of tx and releases it, or
// rolls back to it when the request fails (its error is then the result). It
// returns an error only when tx itself can no longer be used.
func (e *Executor) runInSavepoint(ctx context.Context, tx pgx.Tx, req *request) (res result, fatal error) {
	savepoint, err := tx.Begin(ctx)
	if err != nil {
		return result{}, fmt.Errorf("savepoint: %w", err)
	}
	res = e.runCommand(ctx, savepoint, req)
	if req.ctx.Err() != nil { // its caller was told it timed out: undo it
		res = result{err: timeoutError(req.ctx)}
	}
	// A failed command is undone, unless its outcome was stored under its
	// idempotency key (a domain error to replay): then the record commits.
	if res.err != nil && res.record == nil {
		if err := savepoint.Rollback(ctx); err != nil {
			return result{}, fmt.Errorf("roll back to savepoint: %w", err)
		}
		if ctx.Err() != nil && !isFault(res.err) {
			res.err = timeoutError(ctx)
		}
		return res, nil
	}
	if err := savepoint.Commit(ctx); err != nil {
		return result{}, fmt.Errorf("release savepoint: %w", err)
	}
	return res, nil
}

// runCommand runs the request's job in tx (a savepoint), through its
// idempotency key when it has one, and emits the events it produced. A
// panicking job is answered with an internal error, never left unanswered.
func (e *Executor) runCommand(ctx context.Context, tx pgx.Tx, req *request) (res result) {
	m := req.meta
	defer func() {
		if p := recover(); p != nil {
			e.logger.Error("command panicked", "request_id", m.RequestID, "clinic_id", m.ClinicID,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			res = result{err: fault.ErrInternal.New("The server could not complete the request.")}
		}
	}()
	if m.Idempotency != nil {
		res, err := e.runIdempotent(ctx, tx, m, req.job)
		if err != nil {
			return result{err: err}
		}
		return res
	}
	q := store.New(tx)
	value, err := req.job(ctx, q)
	if err != nil {
		return result{err: err}
	}
	if err := e.emit(ctx, tx, m, q); err != nil {
		return result{err: err}
	}
	return result{value: value}
}

// batchContext bounds a batch's transaction by the latest deadline among its
// requests (none when one of them has none), without being cancelled when one
// caller gives up: a cancelled statement would break the connection, and so
// the transaction, of every request in the batch.
func batchContext(reqs []*request) (context.Context, context.CancelFunc) {
	base := context.WithoutCancel(reqs[0].ctx)
	var latest time.Time
	for _, req := range reqs {
		deadline, ok := req.ctx.Deadline()
		if !ok {
			return context.WithCancel(base)
		}
		if deadline.After(latest) {
			latest = deadline
		}
	}
	return context.WithDeadline(base, latest)
}
