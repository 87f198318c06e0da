package messaging

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// MaxAttempts is how many times a consumer handles an event before it gives
// up, records the failure and acknowledges the event so the stream goes on.
const MaxAttempts = 5

// Consumer handles events; an error asks for another attempt.
type Consumer struct {
	// Name is the consumer's group on the pub/sub and its key in the inbox
	// and failures tables.
	Name string
	// Handle applies one event. It runs in tx, the transaction that also
	// records the event in the consumer's inbox: its writes commit with the
	// inbox row or not at all, so every attempt is all or nothing and a
	// redelivered event is skipped.
	Handle func(ctx context.Context, tx pgx.Tx, env Envelope) error
}

// MetadataRetryFor marks a re-delivered failed event: only the consumer it
// names handles it; the others acknowledge it untouched.
const MetadataRetryFor = "retry_for"

// Consume runs the consumers on a Watermill router over the pub/sub until
// ctx is done. Each event gets at most MaxAttempts attempts with backoff;
// then the failure is recorded in consumer_failures and the event acked.
func Consume(ctx context.Context, pool *pgxpool.Pool, in PubSub, logger watermill.LoggerAdapter, consumers ...Consumer) error {
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, logger)
	if err != nil {
		return fmt.Errorf("consumer router: %w", err)
	}
	// On the postgres pub/sub an event is acknowledged by a write to the same
	// database, after the handler's commit: a crash that lost the handler's
	// commit loses the acknowledgement too (the log is written in order), and
	// the event is delivered again. The handler's commit need not wait for the
	// disk then, and runs on the pub/sub's own pool, which does not wait.
	// Elsewhere (NATS, RabbitMQ) the acknowledgement is not in the database's
	// log, and the commit must wait.
	handlerPool := pool
	if p, ok := in.(*Postgres); ok {
		handlerPool = p.pool
	}
	for _, c := range consumers {
		sub, err := in.Subscriber(c.Name)
		if err != nil {
			return err
		}
		handler := router.AddConsumerHandler(c.Name, EventsTopic, sub, func(msg *message.Message) error {
			if target := msg.Metadata.Get(MetadataRetryFor); target != "" && target != c.Name {
				return nil
			}
			env, err := Decode(msg)
			if err != nil {
				return err
			}
			return handleOnce(msg.Context(), handlerPool, c, env)
		})
		handler.AddMiddleware(
			recordFailure(pool, c.Name),
			middleware.Retry{
				MaxRetries:      MaxAttempts - 1,
				InitialInterval: 50 * time.Millisecond,
				MaxInterval:     time.Second,
				Multiplier:      2,
				Logger:          logger,
			}.Middleware,
			middleware.Recoverer, // a panic is a failed attempt
		)
	}
	if err := router.Run(ctx); err != nil {
		return fmt.Errorf("consumers: %w", err)
	}
	return nil
}

// handleOnce runs the consumer in a transaction with its inbox row; an
// event already in the inbox is not handled again. A retried failure that
// now succeeds is no longer failed: its failure row goes in the same
// statement, and comes back if the handler fails again (a rollback).
func handleOnce(ctx context.Context, pool *pgxpool.Pool, c Consumer, env Envelope) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
			WITH recovered AS (DELETE FROM consumer_failures WHERE consumer = $1 AND event_id = $2)
			INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, c.Name, env.EventID)
		if err != nil {
			return fmt.Errorf("inbox: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return nil // handled before: a redelivery
		}
		return c.Handle(ctx, tx, env)
	})
}

// recordFailure acknowledges an event whose attempts all failed, after
// recording it in consumer_failures with the last error.
func recordFailure(pool *pgxpool.Pool, consumer string) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			out, err := h(msg)
			if err == nil {
				return out, nil
			}
			envelope := json.RawMessage(msg.Payload)
			if !json.Valid(envelope) {
				envelope, _ = json.Marshal(map[string]string{"undecodable": string(msg.Payload)})
			}
			// The event's own id, not the message's: a retry travels in a
			// message with a new id.
			eventID := msg.UUID
			if env, decErr := Decode(msg); decErr == nil && env.EventID != uuid.Nil {
				eventID = env.EventID.String()
			}
			_, dbErr := pool.Exec(context.Background(), `
				INSERT INTO consumer_failures (consumer, event_id, envelope, error, attempts)
				VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT (consumer, event_id) DO UPDATE
					SET error = excluded.error, attempts = consumer_failures.attempts + excluded.attempts, failed_at = now()`,
				consumer, eventID, envelope, err.Error(), MaxAttempts)
			if dbErr != nil {
				// Not recorded: nack, so the event is delivered again.
				return nil, errors.Join(err, fmt.Errorf("record failure: %w", dbErr))
			}
			return nil, nil
		}
	}
}

// EventLog is the consumer that keeps each clinic's events for the API's
// event log (GET /v1/clinics/{clinic_id}/events) and live stream.
func EventLog() Consumer {
	return Consumer{Name: "event_log", Handle: func(ctx context.Context, tx pgx.Tx, env Envelope) error {
		raw, err := json.Marshal(env)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO clinic_events (event_id, clinic_id, sequence, event, occurred_at, envelope)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (event_id) DO NOTHING`,
			env.EventID, env.ClinicID, env.Sequence, env.Event, env.OccurredAt, raw)
		if err != nil {
			return fmt.Errorf("event log: %w", err)
		}
		return nil
	}}
}
