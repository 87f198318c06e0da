// Command aura-events-example is a downstream consumer of Aura's domain
// events, as docs/EVENTS.md describes: it subscribes with Watermill to the
// aura_events topic of the postgres pub/sub under its own consumer group, and
// prints each event's name, clinic, sequence and id.
//
// Delivery is at least once, so it drops events whose id it has seen (in
// memory, for the demo: a real consumer keeps an inbox table), and it warns
// when a clinic's sequence skips numbers (events missing or late).
//
// Usage:
//
//	AURA_DATABASE_URL=postgres://... go run ./cmd/aura-events-example [-group example]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aura-clinic/aura/messaging"
)

func main() {
	databaseURL := flag.String("database-url", os.Getenv("AURA_DATABASE_URL"), "Aura's PostgreSQL URL (default $AURA_DATABASE_URL)")
	group := flag.String("group", "example", "consumer group: each group gets every event once")
	flag.Parse()
	if *databaseURL == "" {
		fmt.Fprintln(os.Stderr, "set AURA_DATABASE_URL or -database-url")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *databaseURL, *group); err != nil {
		fmt.Fprintln(os.Stderr, "aura-events-example:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, databaseURL, group string) error {
	pool, err := pgxpool.New(ctx, databaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()

	// Watermill logs only warnings and errors here; events go to stdout.
	logger := watermill.NewSlogLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	pubsub, err := messaging.NewPostgres(pool, logger)
	if err != nil {
		return err
	}
	defer pubsub.Close()
	subscriber, err := pubsub.Subscriber(group)
	if err != nil {
		return err
	}
	defer subscriber.Close()
	messages, err := subscriber.Subscribe(ctx, messaging.EventsTopic)
	if err != nil {
		return err
	}

	c := consumer{seen: map[uuid.UUID]bool{}, last: map[uuid.UUID]int64{}}
	for msg := range messages { // closed when ctx is done
		env, err := messaging.Decode(msg)
		if err != nil {
			slog.Warn("skipping an undecodable message", "uuid", msg.UUID, "error", err)
		} else {
			c.handle(env)
		}
		msg.Ack() // the group's offset moves on only after the ack
	}
	return nil
}

// consumer is the demo's state: event ids seen, and each clinic's last
// sequence.
type consumer struct {
	seen map[uuid.UUID]bool
	last map[uuid.UUID]int64
}

func (c *consumer) handle(env messaging.Envelope) {
	if c.seen[env.EventID] {
		slog.Info("duplicate skipped", "event_id", env.EventID, "event", env.Event)
		return
	}
	c.seen[env.EventID] = true

	last, known := c.last[env.ClinicID]
	switch {
	case known && env.Sequence > last+1:
		slog.Warn("sequence gap: events missing or late", "clinic_id", env.ClinicID,
			"missing_from", last+1, "missing_to", env.Sequence-1)
	case known && env.Sequence <= last:
		slog.Warn("late event: arrived after a later one", "clinic_id", env.ClinicID,
			"sequence", env.Sequence, "last", last)
	}
	c.last[env.ClinicID] = max(last, env.Sequence)

	fmt.Printf("%s %s clinic=%s seq=%d event_id=%s\n",
		env.OccurredAt.Format(time.RFC3339), env.Event, env.ClinicID, env.Sequence, env.EventID)

	// Payloads decode into the shared Go types.
	if env.Event == messaging.InvoicePaidName {
		var paid messaging.InvoicePaid
		if err := json.Unmarshal(env.Payload, &paid); err == nil {
			fmt.Printf("  invoice %s paid: %d %s (minor units)\n", paid.InvoiceID, paid.Total, paid.Currency)
		}
	}
}
