package messaging

import (
	"context"
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aura-clinic/aura/schema/savepoint"
)

// inboxInsert records that a consumer handled an event; it affects no row
// for an event handled before. A retried failure that now succeeds is no
// longer failed: its failure row goes in the same statement, and comes back
// if the handler fails (a rollback).
const inboxInsert = `
	WITH recovered AS (DELETE FROM consumer_failures WHERE consumer = $1 AND event_id = $2)
	INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`

// handleOnce runs the consumer with its inbox row, so that an event already
// in the inbox is not handled again and every attempt is all or nothing.
//
// On the postgres pub/sub it runs in the transaction in which the
// subscriber reads the event and acknowledges it, in a savepoint: the
// handler's writes, the inbox row and the acknowledgement commit together,
// one commit for a whole batch of events. Elsewhere (NATS, RabbitMQ) it runs
// in a transaction of its own on pool.
func handleOnce(ctx context.Context, pool *pgxpool.Pool, c Consumer, env Envelope) error {
	if tx, ok := subscriberTx(ctx); ok {
		return handleInSavepoint(ctx, tx, c, env)
	}
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, inboxInsert, c.Name, env.EventID)
		if err != nil {
			return fmt.Errorf("inbox: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return nil // handled before: a redelivery
		}
		return c.Handle(ctx, tx, env)
	})
}

// subscriberTx is the postgres subscriber's transaction that delivered the
// message whose context ctx is.
func subscriberTx(ctx context.Context) (pgx.Tx, bool) {
	tx, ok := sql.TxFromContext(ctx)
	if !ok {
		return nil, false
	}
	pgxTx, ok := tx.(*sql.PgxTx)
	if !ok {
		return nil, false
	}
	return pgxTx.Tx, true
}

// handleInSavepoint runs one attempt in a savepoint of the subscriber's
// transaction, created with the inbox row, and rolls back to it when the
// attempt fails or panics.
func handleInSavepoint(ctx context.Context, tx pgx.Tx, c Consumer, env Envelope) (err error) {
	sp := savepoint.New(tx, "consume")
	defer func() {
		if p := recover(); p != nil { // a failed attempt too (see Consume)
			_ = sp.Rollback(context.WithoutCancel(ctx))
			panic(p)
		}
		if err != nil {
			if rbErr := sp.Rollback(ctx); rbErr != nil {
				err = errors.Join(err, fmt.Errorf("roll back the attempt: %w", rbErr))
			}
		}
	}()
	tag, err := sp.Exec(ctx, inboxInsert, c.Name, env.EventID)
	switch {
	case err != nil:
		return fmt.Errorf("inbox: %w", err)
	case tag.RowsAffected() == 0:
		return nil // handled before: a redelivery
	}
	return c.Handle(ctx, tx, env) // its statements run inside the savepoint too
}
