// Package actors runs Aura's writes. Every write under a clinic is executed by
// that clinic's actor (protoactor-go), which serialises the clinic's writes
// and is where per-clinic state (idempotency, rate limits, group commit)
// lives. Writes outside any clinic run on the Executor directly.
//
// A write is a Command: a plain value the edge builds from a validated
// request, executed in one PostgreSQL transaction. PostgreSQL stays the final
// arbiter: the actor is the fast path, and constraints and transactions keep
// the data right even when two processes briefly host one clinic's actor.
package actors

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"

	"github.com/aura-clinic/aura/actors/fault"
	"github.com/aura-clinic/aura/schema/store"
)

// Meta says who asked for a command, in which request and for which clinic.
type Meta struct {
	RequestID string
	UserID    uuid.UUID
	ClinicID  uuid.UUID // uuid.Nil for writes outside any clinic
	// Idempotency is the request's Idempotency-Key, nil when it has none.
	Idempotency *Idempotency
}

// Command is a write that yields a T. Execute runs inside a transaction: it
// applies the domain's rules and writes through q; an error rolls it all back.
type Command[T any] interface {
	Execute(ctx context.Context, q *store.Queries, m Meta) (T, error)
}

// job is a command with its result type erased, as actors carry it.
type job func(ctx context.Context, q *store.Queries) (any, error)

// Dispatcher runs jobs: the Registry in the clinic's actor, the Executor
// in the caller's goroutine.
type Dispatcher interface {
	dispatch(ctx context.Context, m Meta, j job) result
}

// result is what running a job gives: its value, or the stored value of an
// earlier request with the same idempotency key, or an error.
type result struct {
	value    any
	replay   json.RawMessage // the stored value, when replayed
	replayed bool            // the outcome (value or error) is a stored one
	err      error
	record   *store.IdempotencyRecord // the key's record, stored or found
}

// Exec runs cmd through d and returns its result. It waits at most until
// ctx is done, then answers fault.ErrTimeout. When m carries an idempotency
// key whose outcome is already stored, cmd does not run: Exec returns the
// stored value or error and replayed is true.
func Exec[T any](ctx context.Context, d Dispatcher, m Meta, cmd Command[T]) (value T, replayed bool, err error) {
	var zero T
	res := d.dispatch(ctx, m, func(ctx context.Context, q *store.Queries) (any, error) {
		return cmd.Execute(ctx, q, m)
	})
	switch {
	case res.err != nil:
		return zero, res.replayed, res.err
	case res.replayed:
		if err := json.Unmarshal(res.replay, &value); err != nil {
			return zero, true, fault.ErrInternal.Wrap(fmt.Errorf("replay %T: %w", cmd, err), "The server could not complete the request.")
		}
		return value, true, nil
	case res.value == nil: // a nil interface T: res.value.(T) would fail on it
		return zero, false, nil
	}
	t, ok := res.value.(T)
	if !ok {
		return zero, false, fault.ErrInternal.Wrap(fmt.Errorf("command %T returned %T", cmd, res.value), "The server could not complete the request.")
	}
	return t, false, nil
}
