package messaging

import (
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PubSub is where the forwarder publishes events and consumers subscribe.
type PubSub interface {
	// Publisher publishes to the pub/sub.
	Publisher() message.Publisher
	// Subscriber subscribes as a durable consumer group: each group gets
	// every event, and one member of a group handles each event.
	Subscriber(group string) (message.Subscriber, error)
	// Close releases the pub/sub's connections.
	Close() error
}

// PollInterval is how long the PostgreSQL subscribers wait after finding no
// new message: each empty poll costs a transaction id, and it bounds delivery
// latency while idle.
const PollInterval = 50 * time.Millisecond

// Postgres is the "postgres" pub/sub: watermill-sql topics in Aura's own
// database, with durable consumer groups and nothing else to run.
type Postgres struct {
	pool   *pgxpool.Pool
	logger watermill.LoggerAdapter
	pub    message.Publisher
}

// NewPostgres returns the pub/sub over pool.
func NewPostgres(pool *pgxpool.Pool, logger watermill.LoggerAdapter) (*Postgres, error) {
	pub, err := sql.NewPublisher(sql.BeginnerFromPgx(pool), sql.PublisherConfig{SchemaAdapter: sql.DefaultPostgreSQLSchema{}}, logger)
	if err != nil {
		return nil, fmt.Errorf("postgres publisher: %w", err)
	}
	return &Postgres{pool: pool, logger: logger, pub: pub}, nil
}

// Publisher implements PubSub.
func (p *Postgres) Publisher() message.Publisher { return p.pub }

// Close implements PubSub; the pool is the caller's to close.
func (p *Postgres) Close() error { return p.pub.Close() }

// Subscriber implements PubSub.
func (p *Postgres) Subscriber(group string) (message.Subscriber, error) {
	return newSQLSubscriber(p.pool, group, p.logger)
}

// newSQLSubscriber reads a watermill-sql topic as a consumer group.
func newSQLSubscriber(pool *pgxpool.Pool, group string, logger watermill.LoggerAdapter) (message.Subscriber, error) {
	sub, err := sql.NewSubscriber(sql.BeginnerFromPgx(pool), sql.SubscriberConfig{
		ConsumerGroup:  group,
		PollInterval:   PollInterval,
		ResendInterval: 100 * time.Millisecond,
		SchemaAdapter:  sql.DefaultPostgreSQLSchema{},
		OffsetsAdapter: sql.DefaultPostgreSQLOffsetsAdapter{},
	}, logger)
	if err != nil {
		return nil, fmt.Errorf("postgres subscriber %s: %w", group, err)
	}
	return sub, nil
}
