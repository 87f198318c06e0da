// Package messaging is Aura's event contract and plumbing: the envelope and
// the ten domain events (one Go type each, shared by producers and
// consumers), the emitter that writes them to Watermill's SQL outbox inside
// the emitting transaction, and the forwarder and consumers that move them on.
package messaging

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Envelope is the standard wrapper of every event.
type Envelope struct {
	EventID    uuid.UUID       `json:"event_id"` // UUIDv7
	Event      string          `json:"event"`    // domain.entity.action
	Version    int             `json:"version"`  // of the payload's schema
	OccurredAt time.Time       `json:"occurred_at"`
	RequestID  string          `json:"request_id"`
	UserID     uuid.UUID       `json:"user_id"`
	ClinicID   uuid.UUID       `json:"clinic_id"`
	Sequence   int64           `json:"sequence"` // per clinic, from 1, no gaps
	Payload    json.RawMessage `json:"payload"`
}

// Event is a domain event's payload. Payloads carry ids, statuses, amounts
// and times, never health data.
type Event interface {
	// EventName is the event's domain.entity.action name.
	EventName() string
}

// PayloadVersion is the schema version of every payload today.
const PayloadVersion = 1

// Metadata is what the emitter takes from the request, so that no handler
// builds an envelope by hand.
type Metadata struct {
	RequestID string
	UserID    uuid.UUID
}

// NewEnvelope wraps one event of a clinic.
func NewEnvelope(m Metadata, clinicID uuid.UUID, sequence int64, e Event, now time.Time) (Envelope, error) {
	payload, err := json.Marshal(e)
	if err != nil {
		return Envelope{}, fmt.Errorf("encode %s: %w", e.EventName(), err)
	}
	return Envelope{
		EventID: uuid.Must(uuid.NewV7()), Event: e.EventName(), Version: PayloadVersion,
		OccurredAt: now.UTC(), RequestID: m.RequestID, UserID: m.UserID, ClinicID: clinicID,
		Sequence: sequence, Payload: payload,
	}, nil
}
