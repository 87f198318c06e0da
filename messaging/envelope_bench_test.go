package messaging_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/aura-clinic/aura/messaging"
)

// BenchmarkEnvelopeEncoding measures an event's trip through JSON with a
// typical event, crm.appointment.booked:
//
//   - encode is the producer's side: messaging.NewEnvelope (the payload's
//     JSON and a UUIDv7 event id) plus json.Marshal of the envelope, the
//     outbox message's body;
//   - decode is a consumer's side: messaging.Decode of the Watermill message
//     plus json.Unmarshal of the payload into its event type.
//
// SetBytes is the envelope's size, so MB/s is JSON throughput.
func BenchmarkEnvelopeEncoding(b *testing.B) {
	meta := messaging.Metadata{RequestID: "0f8fad5b-d9cb-469f-a165-70867728950e", UserID: uuid.New()}
	clinicID := uuid.New()
	startsAt := time.Date(2026, 12, 3, 9, 30, 0, 0, time.UTC)
	event := messaging.AppointmentBooked{
		AppointmentID: uuid.New(), PatientID: uuid.New(), PractitionerID: uuid.New(),
		StartsAt: startsAt, EndsAt: startsAt.Add(30 * time.Minute),
	}
	const sequence = 42
	encode := func() ([]byte, error) {
		env, err := messaging.NewEnvelope(meta, clinicID, sequence, event, time.Now())
		if err != nil {
			return nil, err
		}
		return json.Marshal(env)
	}
	raw, err := encode()
	if err != nil {
		b.Fatal(err)
	}

	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			if raw, err := encode(); err != nil || len(raw) == 0 {
				b.Fatalf("encode: %q, %v", raw, err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		msg := message.NewMessage(uuid.NewString(), raw)
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			env, err := messaging.Decode(msg)
			if err != nil {
				b.Fatal(err)
			}
			var got messaging.AppointmentBooked
			if err := json.Unmarshal(env.Payload, &got); err != nil {
				b.Fatal(err)
			}
			if env.Event != messaging.AppointmentBookedName || env.Sequence != sequence || got.AppointmentID != event.AppointmentID {
				b.Fatalf("decoded %+v with payload %+v", env, got)
			}
		}
	})
}
