package messaging

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/jackc/pgx/v5/pgxpool"
)

// forwarderGroup is the outbox consumer group of every forwarder: several
// processes may run one; the group's offset row lets one move each event.
const forwarderGroup = "forwarder"

// Forward moves events from the outbox to the pub/sub until ctx is done. A
// message is acknowledged in the outbox only after the pub/sub accepted it,
// so a stop mid-stream loses nothing.
func Forward(ctx context.Context, pool *pgxpool.Pool, out PubSub, logger watermill.LoggerAdapter) error {
	outbox, err := newSQLSubscriber(pool, forwarderGroup, logger)
	if err != nil {
		return err
	}
	fwd, err := forwarder.NewForwarder(outbox, out.Publisher(), logger, forwarder.Config{
		ForwarderTopic: OutboxTopic,
		CloseTimeout:   10 * time.Second,
	})
	if err != nil {
		return fmt.Errorf("forwarder: %w", err)
	}
	if err := fwd.Run(ctx); err != nil {
		return fmt.Errorf("forwarder: %w", err)
	}
	return nil
}
