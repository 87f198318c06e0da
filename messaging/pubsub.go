package messaging

import (
	"context"
	"fmt"
	"strings"
	"sync"
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

// Polling of the PostgreSQL subscribers: the forwarder's on the outbox and
// the consumers' on the postgres pub/sub. A subscriber that finds messages
// queries again at once; after a query that found none it waits, first
// MinPollInterval, then twice as long after each further empty query, up to
// PollInterval.
//
// Short waits matter while events flow: a subscriber reads only rows whose
// transaction id is below the oldest transaction id still running on the
// server, and the forwarder's and the consumers' own batches hold one (the
// lock on the group's offset row, held until the batch is handled, gives
// each batch transaction an id). A query made while another stage's batch
// runs therefore finds nothing new although events are waiting; waiting the
// full PollInterval after it would add up to PollInterval to each event at
// each stage. With these waits an idle subscriber still polls only every
// PollInterval: each empty poll costs a transaction id and a commit. See
// docs/BENCHMARKS.md for the measurements.
const (
	// PollInterval is the longest wait after a query that found no new
	// message; it bounds delivery latency while idle.
	PollInterval = 50 * time.Millisecond
	// MinPollInterval is the wait after the first empty query following one
	// that found messages.
	MinPollInterval = 5 * time.Millisecond
	// pollRetryInterval is the wait after a failed query (the library's
	// default).
	pollRetryInterval = time.Second
)

// pollBackoff is the PostgreSQL subscribers' BackoffManager: doubling waits
// from MinPollInterval to PollInterval while queries find nothing, reset by
// a query that finds messages; the library's handling of errors otherwise (a
// lock conflict between members of a group is retried at once, any other
// error after pollRetryInterval).
type pollBackoff struct {
	mu   sync.Mutex
	next time.Duration
}

// HandleError implements sql.BackoffManager.
func (b *pollBackoff) HandleError(logger watermill.LoggerAdapter, noMsg bool, err error) time.Duration {
	if err != nil {
		msg := strings.ToLower(err.Error())
		if strings.Contains(msg, "concurrent update") || strings.Contains(msg, "deadlock") {
			logger.Debug("Lock conflict querying messages, trying again", watermill.LogFields{"err": err.Error()})
			return 0
		}
		logger.Error("Error querying for messages", err, watermill.LogFields{"wait_time": pollRetryInterval})
		return pollRetryInterval
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !noMsg {
		b.next = MinPollInterval
		return 0
	}
	wait := max(b.next, MinPollInterval)
	b.next = min(2*wait, PollInterval)
	return wait
}

// PostgresPoolConns sizes the postgres pub/sub's own pool: each subscriber
// holds a connection for its batch while its handler (a forwarder's publish,
// a consumer's transaction) takes another, whatever AURA_DATABASE_URL's pool
// size.
const PostgresPoolConns = 8

// Postgres is the "postgres" pub/sub: watermill-sql topics in Aura's own
// database, with durable consumer groups and nothing else to run.
type Postgres struct {
	pool   *pgxpool.Pool
	logger watermill.LoggerAdapter
	pub    message.Publisher
}

// NewPostgres returns the pub/sub in the database of pool. It opens a pool
// of its own to that database (PostgresPoolConns connections), whose commits
// do not wait for the disk (synchronous_commit off), and closes it on Close.
// The forwarder's writes to the topic, the consumer groups' offsets and the
// transactions of consumers on this pub/sub (see Consume) run on it.
//
// That loses nothing a crash could not already undo. A forwarded event's
// outbox offset is acknowledged afterwards in a transaction that does wait
// for the disk, which makes the event durable too (PostgreSQL's log is
// written in order, and flushing one commit flushes every earlier one). A
// consumer's lost commit loses its offset too, so the event is delivered
// again. It makes forwarding and consuming, one message at a time, bound by
// the CPU instead of by a disk flush per message.
func NewPostgres(pool *pgxpool.Pool, logger watermill.LoggerAdapter) (*Postgres, error) {
	cfg := pool.Config()
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	cfg.MaxConns = PostgresPoolConns
	own, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres pub/sub pool: %w", err)
	}
	pub, err := sql.NewPublisher(sql.BeginnerFromPgx(own), sql.PublisherConfig{SchemaAdapter: sql.DefaultPostgreSQLSchema{}}, logger)
	if err != nil {
		own.Close()
		return nil, fmt.Errorf("postgres publisher: %w", err)
	}
	return &Postgres{pool: own, logger: logger, pub: pub}, nil
}

// Publisher implements PubSub.
func (p *Postgres) Publisher() message.Publisher { return p.pub }

// Close implements PubSub.
func (p *Postgres) Close() error {
	err := p.pub.Close()
	p.pool.Close()
	return err
}

// Subscriber implements PubSub.
func (p *Postgres) Subscriber(group string) (message.Subscriber, error) {
	return newSQLSubscriber(p.pool, group, p.logger)
}

// subscribeBatchSize is how many messages a subscriber reads at once. A
// consumer handles each in a savepoint of the batch's transaction, and
// PostgreSQL tracks up to 64 of a transaction's subtransactions in shared
// memory; beyond that, every other session's snapshots get slower.
const subscribeBatchSize = 50

// newSQLSubscriber reads a watermill-sql topic as a consumer group.
func newSQLSubscriber(pool *pgxpool.Pool, group string, logger watermill.LoggerAdapter) (message.Subscriber, error) {
	sub, err := sql.NewSubscriber(sql.BeginnerFromPgx(pool), sql.SubscriberConfig{
		ConsumerGroup:  group,
		PollInterval:   PollInterval,
		RetryInterval:  pollRetryInterval,
		BackoffManager: &pollBackoff{next: PollInterval},
		ResendInterval: 100 * time.Millisecond,
		SchemaAdapter:  sql.DefaultPostgreSQLSchema{SubscribeBatchSize: subscribeBatchSize},
		OffsetsAdapter: sql.DefaultPostgreSQLOffsetsAdapter{},
	}, logger)
	if err != nil {
		return nil, fmt.Errorf("postgres subscriber %s: %w", group, err)
	}
	return sub, nil
}
