package messaging

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
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
	fwd, err := forwarder.NewForwarder(graceful{outbox}, out.Publisher(), logger, forwarder.Config{
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

// graceful lets a subscriber finish its batch when asked to stop: the
// subscription's context is not cancelled (which would also cancel the
// offset update of the batch in progress, so the whole batch would be
// forwarded again on restart); the subscriber is closed instead.
type graceful struct{ message.Subscriber }

// Subscribe implements message.Subscriber.
func (s graceful) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	msgs, err := s.Subscriber.Subscribe(context.WithoutCancel(ctx), topic)
	if err != nil {
		return nil, err
	}
	go func() {
		<-ctx.Done()
		_ = s.Subscriber.Close()
	}()
	return msgs, nil
}
