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
	"github.com/jackc/pgx/v5/pgxpool"
)

// MaxAttempts is how many times a consumer handles an event before it gives
// up, records the failure and acknowledges the event so the stream goes on.
const MaxAttempts = 5

// Consumer handles events; an error asks for another attempt.
type Consumer struct {
	// Name is the consumer's group on the pub/sub and its key in the
	// failures table.
	Name   string
	Handle func(ctx context.Context, env Envelope) error
}

// Consume runs the consumers on a Watermill router over the pub/sub until
// ctx is done. Each event gets at most MaxAttempts attempts with backoff;
// then the failure is recorded in consumer_failures and the event acked.
func Consume(ctx context.Context, pool *pgxpool.Pool, in PubSub, logger watermill.LoggerAdapter, consumers ...Consumer) error {
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, logger)
	if err != nil {
		return fmt.Errorf("consumer router: %w", err)
	}
	for _, c := range consumers {
		sub, err := in.Subscriber(c.Name)
		if err != nil {
			return err
		}
		handler := router.AddConsumerHandler(c.Name, EventsTopic, sub, func(msg *message.Message) error {
			env, err := Decode(msg)
			if err != nil {
				return err
			}
			return c.Handle(msg.Context(), env)
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
			_, dbErr := pool.Exec(context.Background(), `
				INSERT INTO consumer_failures (consumer, event_id, envelope, error, attempts)
				VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT (consumer, event_id) DO UPDATE
					SET error = excluded.error, attempts = consumer_failures.attempts + excluded.attempts, failed_at = now()`,
				consumer, msg.UUID, envelope, err.Error(), MaxAttempts)
			if dbErr != nil {
				// Not recorded: nack, so the event is delivered again.
				return nil, errors.Join(err, fmt.Errorf("record failure: %w", dbErr))
			}
			return nil, nil
		}
	}
}

// EventLog is the consumer that keeps each clinic's events for
// GET /v1/clinics/{clinic_id}/events. The table's primary key (the event
// id) is its inbox: a redelivered event is stored once.
func EventLog(pool *pgxpool.Pool) Consumer {
	return Consumer{Name: "event_log", Handle: func(ctx context.Context, env Envelope) error {
		raw, err := json.Marshal(env)
		if err != nil {
			return err
		}
		_, err = pool.Exec(ctx, `
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
