package actors

import (
	"context"
	"fmt"
	"runtime/debug"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aura-clinic/aura/actors/fault"
	"github.com/aura-clinic/aura/messaging"
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
// up is rolled back and answered ErrTimeout, so what its caller was told (a
// timeout, to be retried) stays true.
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
	results := make([]result, len(slots))
	if len(live) > 0 {
		tx, err := e.pool.Begin(ctx)
		if err == nil {
			err = e.runInTx(ctx, tx, slots, live)
		}
		if err != nil {
			if tx != nil {
				_ = tx.Rollback(context.WithoutCancel(ctx)) // the connection is released either way
			}
			if len(live) > 1 && ctx.Err() == nil {
				return e.runAlone(ctx, reqs, results, live, err)
			}
			failBatch(ctx, slots, live, err)
		}
	}
	for i := range slots {
		results[i] = slots[i].res
	}
	return results
}

// runAlone runs each live request in a transaction of its own, after their
// shared one failed as a whole (a statement of the batch's own, such as the
// one storing every outcome, failed, or the connection broke): nothing of it
// was committed, so each runs again from the start, and a failure fails only
// its own request, as it would have without group commit.
func (e *Executor) runAlone(ctx context.Context, reqs []*request, results []result, live []int, cause error) []result {
	e.logger.Warn("group commit failed; running its writes one by one",
		"clinic_id", reqs[live[0]].meta.ClinicID, "writes", len(live), "error", cause)
	for _, i := range live {
		results[i] = e.runBatch(ctx, reqs[i:i+1])[0]
	}
	for i, req := range reqs { // the ones answered before the transaction
		if !slices.Contains(live, i) {
			results[i] = result{err: timeoutError(req.ctx)}
		}
	}
	return results
}

// runInTx runs the live requests in tx and commits it: it claims their
// idempotency keys, takes the clinic's lock, answers those whose key already
// has an outcome, runs each other command in its savepoint, then writes the
// events and the outcomes of all of them. Apart from the commands' own
// statements, each step is one statement for the whole batch. Its error
// means nothing was committed.
func (e *Executor) runInTx(ctx context.Context, tx pgx.Tx, slots []slot, live []int) error {
	q := store.New(tx)
	clinicID := slots[live[0]].req.meta.ClinicID
	if err := claimKeys(ctx, q, slots, live); err != nil {
		return err
	}
	if !waiting(slots, live) { // every key was in flight: nothing to lock for
		return tx.Commit(ctx)
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
	return tx.Commit(ctx)
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
	sp := &savepoint{tx: tx}
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
		if err := sp.rollback(ctx); err != nil {
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
