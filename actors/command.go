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
	dispatch(ctx context.Context, m Meta, j job) (any, error)
}

// Exec runs cmd through d and returns its result. It waits at most until
// ctx is done, then answers fault.ErrTimeout.
func Exec[T any](ctx context.Context, d Dispatcher, m Meta, cmd Command[T]) (T, error) {
	var zero T
	v, err := d.dispatch(ctx, m, func(ctx context.Context, q *store.Queries) (any, error) {
		return cmd.Execute(ctx, q, m)
	})
	if err != nil {
		return zero, err
	}
	if v == nil { // a nil interface T: v.(T) would fail on it
		return zero, nil
	}
	t, ok := v.(T)
	if !ok {
		return zero, fault.ErrInternal.Wrap(fmt.Errorf("command %T returned %T", cmd, v), "The server could not complete the request.")
	}
	return t, nil
}
