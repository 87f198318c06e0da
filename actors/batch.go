package actors

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/aura-clinic/aura/actors/fault"
	"github.com/aura-clinic/aura/messaging"
	"github.com/aura-clinic/aura/schema/savepoint"
	"github.com/aura-clinic/aura/schema/store"
)

// slot is one request of a batch and what became of it.
type slot struct {
	req      *request
	res      result
	answered bool // res is final before the request ran (or instead of running)
	repeats  int  // the index of an earlier request of the batch with the same key, or -1
	// Of a request that ran: the events it emitted, and its encoded outcome
	// when that is to be stored under its key.
	events  []messaging.Pending
	outcome []byte
}

func (s *slot) answer(res result) {
	s.res, s.answered = res, true
}

// runBatch runs the requests, all of one clinic, in one transaction (group
// commit), each command in its own savepoint: a command that fails is rolled
// back to its savepoint and answered with its error, and the others still
// commit. The results are in the order of reqs and are final only once
// runBatch returns, after the commit, so callers are answered only then.
//
// ctx bounds the transaction's statements. A request's own context is checked
// before its command runs and again after: a request whose caller has given
// up is rolled back and answered ErrTimeout. (A deadline that passes between
// that check and the commit still leaves a committed write answered with a
// timeout; a retry with the same Idempotency-Key then replays its outcome.)
func (e *Executor) runBatch(ctx context.Context, reqs []*request) []result {
	slots := make([]slot, len(reqs))
	live := make([]int, 0, len(reqs)) // the requests whose callers still wait
	for i, req := range reqs {
		slots[i] = slot{req: req, repeats: -1}
		if req.ctx.Err() != nil { // the caller gave up while the request queued
			slots[i].answer(result{err: timeoutError(req.ctx)})
			continue
		}
		live = append(live, i)
	}
	if len(live) > 0 {
		if err := e.transact(ctx, slots, live); err != nil {
			if len(live) > 1 && ctx.Err() == nil && !errors.Is(err, errCommitUnknown) {
				e.runAlone(ctx, slots, live, err)
			} else {
				failBatch(ctx, slots, live, err)
			}
		}
	}
	results := make([]result, len(slots))
	for i := range slots {
		results[i] = slots[i].res
	}
	return results
}

// errCommitUnknown marks a COMMIT the server did not answer: the batch may
// or may not have been committed, so its writes must not run again.
var errCommitUnknown = errors.New("commit outcome unknown")

// rollbackTimeout bounds the rollback of a failed batch, so that a broken
// connection cannot hold up the clinic.
const rollbackTimeout = 5 * time.Second

// transact runs the live requests in a transaction, rolled back unless it
// committed. A panic outside the commands (which recover their own) is
// recovered here and returned as an error: the batch's callers are still
// answered.
func (e *Executor) transact(ctx context.Context, slots []slot, live []int) (err error) {
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			e.logger.Error("group commit panicked", "clinic_id", slots[live[0]].req.meta.ClinicID,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fault.ErrInternal.New("The server could not complete the request.")
		}
		if err != nil {
			rollbackCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
			defer cancel()
			_ = tx.Rollback(rollbackCtx) // after a failed commit, a no-op
		}
	}()
	return e.runInTx(ctx, tx, slots, live)
}

// runAlone runs each live request in a transaction of its own, after their
// shared one failed before its commit (a statement of the batch's own, such
// as the one storing every outcome, failed, or the connection broke): nothing
// of it was committed, so each runs again from the start, and a failure fails
// only its own request, as it would have without group commit.
func (e *Executor) runAlone(ctx context.Context, slots []slot, live []int, cause error) {
	e.logger.Warn("group commit failed; running its writes one by one",
		"clinic_id", slots[live[0]].req.meta.ClinicID, "writes", len(live), "error", cause)
	for _, i := range live {
		slots[i] = slot{req: slots[i].req, res: e.runBatch(ctx, []*request{slots[i].req})[0], repeats: -1}
	}
}

// runInTx runs the live requests in tx and commits it: it claims their
// idempotency keys, takes the clinic's lock, answers those whose key already
// has an outcome, runs each other command in its savepoint, then writes the
// events and the outcomes of all of them. Apart from the commands' own
// statements, each step is one statement for the whole batch. Its error
// means nothing was committed, unless it is errCommitUnknown.
func (e *Executor) runInTx(ctx context.Context, tx pgx.Tx, slots []slot, live []int) error {
	q := store.New(tx)
	clinicID := slots[live[0]].req.meta.ClinicID
	if err := claimKeys(ctx, q, slots, live); err != nil {
		return err
	}
	if !waiting(slots, live) { // every key was in flight: nothing to lock for
		return commit(ctx, tx)
	}
	if err := lockClinic(ctx, tx, clinicID); err != nil {
		return err
	}
	if err := findRecords(ctx, q, clinicID, slots, live); err != nil {
		return err
	}
	var events []messaging.Pending
	for n, i := range live {
		s := &slots[i]
		if s.answered || s.repeats >= 0 {
			continue
		}
		if s.req.ctx.Err() != nil { // its caller gave up while the batch ran
			s.answer(result{err: timeoutError(s.req.ctx)})
			continue
		}
		if err := e.runInSavepoint(ctx, tx, s); err != nil {
			return fmt.Errorf("command %d of %d: %w", n+1, len(live), err)
		}
		events = append(events, s.events...)
	}
	if err := e.emitter.Emit(ctx, tx, events, q.NextEventSequences); err != nil {
		return err
	}
	if err := e.saveOutcomes(ctx, q, slots, live); err != nil {
		return err
	}
	answerRepeats(slots, live)
	return commit(ctx, tx)
}

// commit commits tx. An error the server answered means the transaction was
// rolled back; any other leaves its outcome unknown (errCommitUnknown).
func commit(ctx context.Context, tx pgx.Tx) error {
	err := tx.Commit(ctx)
	var pgErr *pgconn.PgError
	if err == nil || errors.As(err, &pgErr) || errors.Is(err, pgx.ErrTxCommitRollback) {
		return err
	}
	return fmt.Errorf("%w: %w", errCommitUnknown, err)
}

// waiting reports whether a live request still waits for its answer.
func waiting(slots []slot, live []int) bool {
	for _, i := range live {
		if !slots[i].answered {
			return true
		}
	}
	return false
}

// runInSavepoint runs one request's command in a savepoint of tx, and rolls
// back to it when the command fails (its error is then the result). It
// returns an error only when tx can no longer be used.
func (e *Executor) runInSavepoint(ctx context.Context, tx pgx.Tx, s *slot) error {
	sp := savepoint.New(tx, "command")
	q := store.New(sp)
	res := e.runJob(ctx, q, s.req)
	if s.req.ctx.Err() != nil { // its caller was told it timed out: undo it
		res = result{err: timeoutError(s.req.ctx)}
	}
	if key := s.req.meta.Idempotency; key != nil && (res.err == nil || storable(res.err)) {
		var err error
		if s.outcome, err = encodeOutcome(res.value, res.err); err != nil {
			res = result{err: fault.ErrInternal.Wrap(err, "The server could not complete the request.")}
		}
	}
	s.res = res
	if res.err != nil { // a stored error is still the command's failure: undo its writes
		if err := sp.Rollback(ctx); err != nil {
			return err
		}
		if ctx.Err() != nil && !isFault(res.err) {
			s.res.err = timeoutError(ctx)
		}
		return nil
	}
	// The savepoint is not released: the next command's nests inside it,
	// and rolling back to that one keeps this one's work. A release would be
	// one more round trip per write for nothing.
	m := messaging.Metadata{RequestID: s.req.meta.RequestID, UserID: s.req.meta.UserID}
	for _, p := range q.Emitted() {
		p.Metadata = m
		s.events = append(s.events, p)
	}
	return nil
}

// runJob runs the request's job on q. A panicking job is answered with an
// internal error, never left unanswered.
func (e *Executor) runJob(ctx context.Context, q *store.Queries, req *request) (res result) {
	defer func() {
		if p := recover(); p != nil {
			e.logger.Error("command panicked", "request_id", req.meta.RequestID, "clinic_id", req.meta.ClinicID,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			res = result{err: fault.ErrInternal.New("The server could not complete the request.")}
		}
	}()
	value, err := req.job(ctx, q)
	return result{value: value, err: err}
}

// failBatch answers every live request with err: the transaction that held
// their work did not commit.
func failBatch(ctx context.Context, slots []slot, live []int, err error) {
	for _, i := range live {
		s := &slots[i]
		switch {
		case s.req.ctx.Err() != nil:
			s.res = result{err: timeoutError(s.req.ctx)}
		case ctx.Err() != nil && !isFault(err):
			s.res = result{err: timeoutError(ctx)}
		case isFault(err):
			s.res = result{err: err}
		default:
			s.res = result{err: fmt.Errorf("group commit: %w", err)}
		}
	}
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
