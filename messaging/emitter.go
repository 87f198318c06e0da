package messaging

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Topics of Aura's events.
const (
	// OutboxTopic is the outbox table the emitter writes to and the
	// forwarder reads from (watermill_aura_outbox).
	OutboxTopic = "aura_outbox"
	// EventsTopic is where the forwarder publishes every event.
	EventsTopic = "aura_events"
)

// Message metadata keys set on every event's Watermill message.
const (
	MetadataEvent    = "event"
	MetadataClinicID = "clinic_id"
	MetadataSequence = "sequence"
)

// Pending is an event a command produced, waiting to be emitted with its
// clinic's next sequence number.
type Pending struct {
	ClinicID uuid.UUID
	Event    Event
	Metadata Metadata // of the request that produced it
}

// Emitter writes events to the outbox inside the emitting transaction, with
// watermill-sql's publisher on that pgx transaction wrapped by Watermill's
// forwarder publisher: a rolled-back change emits nothing, and a committed
// change's events are in the outbox.
type Emitter struct {
	logger watermill.LoggerAdapter
}

// NewEmitter returns an Emitter logging to logger.
func NewEmitter(logger *slog.Logger) *Emitter {
	return &Emitter{logger: watermill.NewSlogLogger(logger)}
}

// Emit wraps each pending event in an envelope with its request's metadata
// and its clinic's next sequence number, and writes them all to the outbox on
// tx in one statement. nextSequences reserves n sequence numbers of a clinic
// in tx and returns the first.
func (e *Emitter) Emit(ctx context.Context, tx pgx.Tx, events []Pending,
	nextSequences func(ctx context.Context, clinicID uuid.UUID, n int) (int64, error)) error {
	if len(events) == 0 {
		return nil
	}
	now := time.Now()
	counts := map[uuid.UUID]int{}
	for _, p := range events {
		counts[p.ClinicID]++
	}
	next := map[uuid.UUID]int64{}
	for clinicID, n := range counts {
		first, err := nextSequences(ctx, clinicID, n)
		if err != nil {
			return err
		}
		next[clinicID] = first
	}
	msgs := make([]*message.Message, 0, len(events))
	for _, p := range events {
		env, err := NewEnvelope(p.Metadata, p.ClinicID, next[p.ClinicID], p.Event, now)
		if err != nil {
			return err
		}
		next[p.ClinicID]++
		msg, err := env.message()
		if err != nil {
			return err
		}
		msg.SetContext(ctx)
		msgs = append(msgs, msg)
	}
	publisher, err := sql.NewPublisher(sql.TxFromPgx(tx), sql.PublisherConfig{SchemaAdapter: sql.DefaultPostgreSQLSchema{}}, e.logger)
	if err != nil {
		return fmt.Errorf("outbox publisher: %w", err)
	}
	outbox := forwarder.NewPublisher(publisher, forwarder.PublisherConfig{ForwarderTopic: OutboxTopic})
	if err := outbox.Publish(EventsTopic, msgs...); err != nil {
		return fmt.Errorf("write events to the outbox: %w", err)
	}
	return nil
}

// message is the envelope as a Watermill message: its UUID is the event id,
// its payload the envelope's JSON.
func (env Envelope) message() (*message.Message, error) {
	raw, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("encode envelope: %w", err)
	}
	msg := message.NewMessage(env.EventID.String(), raw)
	msg.Metadata.Set(MetadataEvent, env.Event)
	msg.Metadata.Set(MetadataClinicID, env.ClinicID.String())
	msg.Metadata.Set(MetadataSequence, strconv.FormatInt(env.Sequence, 10))
	return msg, nil
}

// Decode reads an event's envelope from a Watermill message.
func Decode(msg *message.Message) (Envelope, error) {
	var env Envelope
	if err := json.Unmarshal(msg.Payload, &env); err != nil {
		return env, fmt.Errorf("decode envelope of message %s: %w", msg.UUID, err)
	}
	return env, nil
}
