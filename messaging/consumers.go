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
	// redelivered event is skipped. It must not commit or roll back tx
	// (on the postgres pub/sub, tx also carries other events of the batch).
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
	// On the postgres pub/sub each consumer's handler runs in its
	// subscriber's transaction (see handleOnce); elsewhere in its own, on the
	// main pool.
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
			return handleOnce(msg.Context(), pool, c, env)
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
