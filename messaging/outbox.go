package messaging

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultOutboxTTL is how long forwarded outbox rows, consumed pub/sub rows
// and inbox rows are kept.
const DefaultOutboxTTL = 7 * 24 * time.Hour

// OutboxStatus is the state of the outbox and the consumers.
type OutboxStatus struct {
	Pending       int64         `json:"pending"`   // in the outbox, not yet forwarded
	Processed     int64         `json:"processed"` // forwarded, not yet cleaned up
	Failed        int64         `json:"failed"`    // given up by a consumer after its retries
	OldestPending time.Duration `json:"oldest_pending"`
}

// forwardedBy is the SQL condition "row m of an outbox-like table was
// acknowledged by consumer group g" in watermill-sql's default schema:
// rows are read in (transaction_id, offset) order.
const forwardedBy = `(m.transaction_id < g.last_processed_transaction_id
	OR (m.transaction_id = g.last_processed_transaction_id AND m."offset" <= g.offset_acked))`

// Status reads the outbox's counts: pending and processed rows, failed
// events, and the age of the oldest pending event.
func Status(ctx context.Context, pool *pgxpool.Pool) (OutboxStatus, error) {
	var s OutboxStatus
	var oldestSeconds *float64
	// created_at is a timestamp without time zone in the session's zone,
	// hence localtimestamp.
	err := pool.QueryRow(ctx, `
		WITH g AS (SELECT
			coalesce((SELECT last_processed_transaction_id FROM "watermill_offsets_aura_outbox" WHERE consumer_group = $1), '0'::xid8)
				AS last_processed_transaction_id,
			coalesce((SELECT offset_acked FROM "watermill_offsets_aura_outbox" WHERE consumer_group = $1), 0)
				AS offset_acked)
		SELECT count(*) FILTER (WHERE NOT `+forwardedBy+`),
		       count(*) FILTER (WHERE `+forwardedBy+`),
		       extract(epoch FROM localtimestamp - min(m.created_at) FILTER (WHERE NOT `+forwardedBy+`))::float8,
		       (SELECT count(*) FROM consumer_failures)
		FROM "watermill_aura_outbox" m, g`, forwarderGroup).Scan(&s.Pending, &s.Processed, &oldestSeconds, &s.Failed)
	if err != nil {
		return s, fmt.Errorf("outbox status: %w", err)
	}
	if oldestSeconds != nil {
		s.OldestPending = max(time.Duration(*oldestSeconds*float64(time.Second)), 0)
	}
	return s, nil
}

// Cleanup deletes, batch rows per statement, what is older than ttl and no
// longer needed: outbox rows the forwarder has moved, rows of the postgres
// pub/sub's topic that every consumer group has read, and inbox rows. It
// returns how many rows it deleted.
func Cleanup(ctx context.Context, pool *pgxpool.Pool, ttl time.Duration, batch int) (int64, error) {
	if batch <= 0 {
		return 0, fmt.Errorf("outbox cleanup: batch %d is not positive", batch)
	}
	statements := []string{
		`DELETE FROM "watermill_aura_outbox" WHERE ctid IN (
			SELECT m.ctid FROM "watermill_aura_outbox" m
			JOIN "watermill_offsets_aura_outbox" g ON g.consumer_group = '` + forwarderGroup + `'
			WHERE m.created_at < localtimestamp - $1::interval AND ` + forwardedBy + ` LIMIT $2)`,
		`DELETE FROM "watermill_aura_events" WHERE ctid IN (
			SELECT m.ctid FROM "watermill_aura_events" m
			WHERE m.created_at < localtimestamp - $1::interval
			AND EXISTS (SELECT 1 FROM "watermill_offsets_aura_events")
			AND NOT EXISTS (SELECT 1 FROM "watermill_offsets_aura_events" g WHERE NOT ` + forwardedBy + `)
			LIMIT $2)`,
		`DELETE FROM inbox WHERE ctid IN (
			SELECT ctid FROM inbox WHERE processed_at < now() - $1::interval LIMIT $2)`,
	}
	var total int64
	for _, stmt := range statements {
		for {
			tag, err := pool.Exec(ctx, stmt, ttl, batch)
			if err != nil {
				return total, fmt.Errorf("outbox cleanup: %w", err)
			}
			total += tag.RowsAffected()
			if tag.RowsAffected() < int64(batch) {
				break
			}
		}
	}
	return total, nil
}

// RetryFailed delivers again the events that consumer (every consumer when
// empty) gave up on: each goes back through the outbox, marked so that only
// its consumer handles it, and its failure record is removed. It returns how
// many events it re-delivered.
func RetryFailed(ctx context.Context, pool *pgxpool.Pool, consumer string, logger watermill.LoggerAdapter) (int, error) {
	n := 0
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `DELETE FROM consumer_failures WHERE $1 = '' OR consumer = $1
			RETURNING consumer, envelope`, consumer)
		if err != nil {
			return err
		}
		type failure struct {
			consumer string
			envelope json.RawMessage
		}
		failures, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (failure, error) {
			var f failure
			return f, row.Scan(&f.consumer, &f.envelope)
		})
		if err != nil || len(failures) == 0 {
			return err
		}
		msgs := make([]*message.Message, len(failures))
		for i, f := range failures {
			// A new message id: the event keeps its event_id inside the
			// envelope, but pub/subs that drop repeated message ids must not
			// take the retry for a duplicate.
			msgs[i] = message.NewMessage(watermill.NewUUID(), message.Payload(f.envelope))
			msgs[i].Metadata.Set(MetadataRetryFor, f.consumer)
			msgs[i].SetContext(ctx)
		}
		publisher, err := sql.NewPublisher(sql.TxFromPgx(tx), sql.PublisherConfig{SchemaAdapter: sql.DefaultPostgreSQLSchema{}}, logger)
		if err != nil {
			return err
		}
		n = len(msgs)
		return forwarder.NewPublisher(publisher, forwarder.PublisherConfig{ForwarderTopic: OutboxTopic}).Publish(EventsTopic, msgs...)
	})
	if err != nil {
		return 0, fmt.Errorf("retry failed events: %w", err)
	}
	return n, nil
}
