package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aura-clinic/aura/messaging"
)

// cleanupBatch is how many rows one cleanup statement deletes.
const cleanupBatch = 1000

const outboxUsage = "usage: aura outbox forward | status | cleanup | retry [--consumer C]"

// outboxCommand runs `aura outbox ...`: the forwarder on its own, the
// outbox's status, its cleanup, or the re-delivery of failed events.
func outboxCommand(ctx context.Context, cfg config, logger *slog.Logger, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(outboxUsage)
	}
	flags := flag.NewFlagSet("outbox "+args[0], flag.ContinueOnError)
	flags.SetOutput(stderr)
	consumer := flags.String("consumer", "", "retry: only this consumer's failed events (default: every consumer)")
	if err := flags.Parse(args[1:]); err != nil {
		return err
	}
	if flags.NArg() > 0 || (args[0] != "retry" && *consumer != "") {
		return errors.New(outboxUsage)
	}
	pool, err := openDatabase(ctx, cfg, logger, cfg.AutoMigrate)
	if err != nil {
		return err
	}
	defer pool.Close()
	wlog := watermill.NewSlogLogger(logger)
	switch args[0] {
	case "forward":
		events, err := openPubSub(cfg, pool, wlog)
		if err != nil {
			return err
		}
		defer events.Close()
		logger.Info("forwarding the outbox", "pubsub", cfg.PubSub)
		return messaging.Forward(ctx, pool, events, wlog)
	case "status":
		s, err := messaging.Status(ctx, pool)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "pending %d\nprocessed %d\nfailed %d\noldest_pending %s\n",
			s.Pending, s.Processed, s.Failed, s.OldestPending.Round(time.Millisecond))
		return nil
	case "cleanup":
		n, err := messaging.Cleanup(ctx, pool, cfg.OutboxTTL, cleanupBatch)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted %d rows older than %s\n", n, cfg.OutboxTTL)
		return nil
	case "retry":
		n, err := messaging.RetryFailed(ctx, pool, *consumer, wlog)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "re-delivered %d failed events\n", n)
		return nil
	default:
		return errors.New(outboxUsage)
	}
}

// openPubSub opens the pub/sub named by AURA_PUBSUB.
func openPubSub(cfg config, pool *pgxpool.Pool, logger watermill.LoggerAdapter) (messaging.PubSub, error) {
	switch cfg.PubSub {
	case "postgres":
		return messaging.NewPostgres(pool, logger)
	case "nats":
		return messaging.NewNATS(cfg.NATSURL, logger)
	case "amqp":
		// The built-in consumers' queues exist before anything is forwarded,
		// so the fanout exchange never drops an event they should get.
		return messaging.NewAMQPWithOptions(cfg.AMQPURL, logger, messaging.AMQPOptions{Groups: builtInConsumers})
	default:
		return nil, fmt.Errorf("AURA_PUBSUB: unknown pub/sub %q", cfg.PubSub)
	}
}

// builtInConsumers are the consumer groups `aura serve` runs.
var builtInConsumers = []string{messaging.EventLog().Name}

// cleanOutbox deletes old outbox, pub/sub and inbox rows every interval
// until ctx is done.
func cleanOutbox(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger, ttl, interval time.Duration) {
	periodically(ctx, logger, interval, "outbox cleanup", func(ctx context.Context) (int64, error) {
		return messaging.Cleanup(ctx, pool, ttl, cleanupBatch)
	})
}
