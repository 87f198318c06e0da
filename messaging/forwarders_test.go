package messaging_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aura-clinic/aura/messaging"
	"github.com/aura-clinic/aura/schema/store"
)

// TestConcurrentForwarders proves that forwarders running at once on the
// same outbox, as in several server processes, forward every event exactly
// once, and that stopping one of them mid-stream loses nothing.
//
// Phase 1: two forwarders run while 300 events are emitted by 60 concurrent
// transactions, in 6 clinics. The events topic (watermill_aura_events) ends
// up with each event_id exactly once, counted by the event_id in the
// forwarded payload (the envelope's JSON). The consumer handles each event
// exactly once, and each clinic's sequences are 1..50.
//
// Phase 2: 300 more events, in 6 other clinics. The forwarder that publishes
// the 50th of them is held inside that publish and stopped there: its context
// is cancelled while it is in the middle of a batch, holding the group's
// offset. The other forwarder then moves the rest. Every event reaches the
// topic and is handled exactly once. An event may be in the topic twice:
// the stopped forwarder may publish it without recording that it did, and
// then the other one publishes it again. The consumer's inbox absorbs that
// duplicate.
func TestConcurrentForwarders(t *testing.T) {
	const (
		clinics   = 6
		writers   = 2 // concurrent transactions per clinic
		txs       = 5 // transactions per writer
		perTx     = 5 // events per transaction
		perClinic = writers * txs * perTx
		perPhase  = clinics * perClinic
		killAt    = 50 // the phase-2 event whose forwarder is stopped
	)
	r := newOutboxRig(t)
	phase1, phase2 := make([]uuid.UUID, clinics), make([]uuid.UUID, clinics)
	for i := range clinics {
		phase1[i], phase2[i] = r.newClinic(), r.newClinic()
	}
	p := r.newProbe("forwarders", append(slices.Clone(phase1), phase2...)...)
	r.consume(p.consumer())

	tracker := &forwardTracker{watched: map[string]bool{}, killAt: killAt, reached: make(chan string, 1),
		counts: map[string]*atomic.Int64{"A": {}, "B": {}}}
	for _, id := range phase2 {
		tracker.watched[id.String()] = true
	}
	stop := map[string]func(){}
	for _, name := range []string{"A", "B"} {
		stop[name] = r.background("forwarder "+name, func(ctx context.Context) error {
			out := trackedPubSub{PubSub: r.ps, name: name, tracker: tracker, stopping: ctx.Done()}
			return messaging.Forward(ctx, r.pool, out, watermill.NopLogger{})
		})
	}

	// Phase 1: both forwarders run throughout.
	if err := emitConcurrently(r, phase1, writers, txs, perTx).wait(); err != nil {
		t.Fatal(err)
	}
	r.waitUntil("every phase-1 event handled", func() bool { return p.handled(phase1) == perPhase })
	rows, distinct := r.topicEvents(phase1)
	if rows != perPhase || distinct != perPhase {
		t.Errorf("phase 1: the topic holds %d messages with %d distinct event ids, want each of the %d events once",
			rows, distinct, perPhase)
	}
	if dups := r.repeatedEvents(phase1); len(dups) > 0 {
		t.Errorf("phase 1: events in the topic more than once: %v", dups)
	}
	p.requireExactlyOnce(phase1, perClinic)
	t.Logf("phase 1: forwarder A published %d events, B %d", tracker.counts["A"].Load(), tracker.counts["B"].Load())

	// Phase 2: stop the forwarder caught publishing the killAt-th event.
	emitting := emitConcurrently(r, phase2, writers, txs, perTx)
	var victim string
	r.waitUntil(fmt.Sprintf("a forwarder publishing phase-2 event %d", killAt), func() bool {
		select {
		case victim = <-tracker.reached:
			return true
		default:
			return false
		}
	})
	stop[victim]() // returns once that forwarder has stopped
	survivor := map[string]string{"A": "B", "B": "A"}[victim]
	t.Logf("phase 2: forwarder %s stopped in the middle of publishing an event; %s goes on", victim, survivor)
	if err := emitting.wait(); err != nil {
		t.Fatal(err)
	}
	r.waitUntil("every phase-2 event handled", func() bool { return p.handled(phase2) == perPhase })
	r.waitUntil("the outbox forwarded", func() bool { return r.status().Pending == 0 })
	rows, distinct = r.topicEvents(phase2)
	if distinct != perPhase {
		t.Errorf("phase 2: the topic holds %d distinct event ids, want all %d events", distinct, perPhase)
	}
	if rows > distinct {
		t.Logf("phase 2: %d events were published twice (the stopped forwarder's last ones); the inbox absorbed them", rows-distinct)
	}
	p.requireExactlyOnce(phase2, perClinic)
	if n := r.count(`SELECT count(*) FROM probe_effects WHERE consumer = $1`, p.name); n != 2*perPhase {
		t.Errorf("the consumer has %d effect rows, want %d: one per event", n, 2*perPhase)
	}
	t.Logf("in all: forwarder A published %d events, B %d", tracker.counts["A"].Load(), tracker.counts["B"].Load())
}

// forwardTracker counts what each forwarder publishes, and holds the one
// that publishes the killAt-th watched event (by clinic) inside that publish
// until it is stopped, reporting its name on reached.
type forwardTracker struct {
	watched map[string]bool // clinic ids
	killAt  int64
	reached chan string

	counts map[string]*atomic.Int64 // events published, by forwarder
	watchN atomic.Int64
}

// trackedPubSub is the pub/sub as one forwarder sees it.
type trackedPubSub struct {
	messaging.PubSub
	name     string
	tracker  *forwardTracker
	stopping <-chan struct{} // the forwarder's context's Done
}

func (p trackedPubSub) Publisher() message.Publisher {
	return trackedPublisher{p.PubSub.Publisher(), p}
}

type trackedPublisher struct {
	message.Publisher
	ps trackedPubSub
}

func (p trackedPublisher) Publish(topic string, msgs ...*message.Message) error {
	tr := p.ps.tracker
	for _, msg := range msgs {
		if tr.watched[msg.Metadata.Get(messaging.MetadataClinicID)] && tr.watchN.Add(1) == tr.killAt {
			tr.reached <- p.ps.name
			<-p.ps.stopping
		}
	}
	if err := p.Publisher.Publish(topic, msgs...); err != nil {
		return err
	}
	tr.counts[p.ps.name].Add(int64(len(msgs)))
	return nil
}

// emission is events being emitted by concurrent transactions.
type emission struct {
	wg   sync.WaitGroup
	mu   sync.Mutex
	errs []error
}

// emitConcurrently starts, for each clinic, writers goroutines that each
// commit txs transactions of perTx events of the clinic.
func emitConcurrently(r *outboxRig, clinics []uuid.UUID, writers, txs, perTx int) *emission {
	e := &emission{}
	for _, clinicID := range clinics {
		for w := range writers {
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				for i := range txs {
					requestID := fmt.Sprintf("req-%s-%d-%d", clinicID.String()[:8], w, i)
					if err := emitCommitted(r.ctx, r.pool, r.userID, clinicID, requestID, perTx); err != nil {
						e.mu.Lock()
						e.errs = append(e.errs, err)
						e.mu.Unlock()
						return
					}
				}
			}()
		}
	}
	return e
}

// wait waits for the transactions and returns the first error.
func (e *emission) wait() error {
	e.wg.Wait()
	if len(e.errs) > 0 {
		return e.errs[0]
	}
	return nil
}

// emitCommitted is outboxRig.emit for any goroutine: n events of the clinic
// in a committed transaction of their own, as the executor emits them.
func emitCommitted(ctx context.Context, pool *pgxpool.Pool, userID, clinicID uuid.UUID, requestID string, n int) error {
	events := make([]messaging.Pending, n)
	for i := range events {
		events[i] = messaging.Pending{ClinicID: clinicID, Event: messaging.PatientCreated{PatientID: uuid.Must(uuid.NewV7())},
			Metadata: messaging.Metadata{RequestID: requestID, UserID: userID}}
	}
	emitter := messaging.NewEmitter(slog.New(slog.NewTextHandler(io.Discard, nil)))
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		return emitter.Emit(ctx, tx, events, store.New(tx).NextEventSequences)
	})
}

// topicEvents counts the clinics' messages in the events topic, and the
// distinct event ids in their payloads (the envelopes).
func (r *outboxRig) topicEvents(clinics []uuid.UUID) (rows, distinct int) {
	r.t.Helper()
	err := r.pool.QueryRow(r.ctx, `SELECT count(*), count(DISTINCT payload->>'event_id') FROM watermill_aura_events
		WHERE metadata->>'clinic_id' = ANY($1)`, uuidStrings(clinics)).Scan(&rows, &distinct)
	if err != nil {
		r.t.Fatal(err)
	}
	return rows, distinct
}

// repeatedEvents returns the clinics' event ids that are in the events topic
// more than once, with their counts.
func (r *outboxRig) repeatedEvents(clinics []uuid.UUID) map[string]int {
	r.t.Helper()
	rows, err := r.pool.Query(r.ctx, `SELECT payload->>'event_id', count(*) FROM watermill_aura_events
		WHERE metadata->>'clinic_id' = ANY($1) GROUP BY 1 HAVING count(*) > 1`, uuidStrings(clinics))
	if err != nil {
		r.t.Fatal(err)
	}
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			r.t.Fatal(err)
		}
		out[id] = n
	}
	if err := rows.Err(); err != nil {
		r.t.Fatal(err)
	}
	return out
}

func uuidStrings(ids []uuid.UUID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}

// handled counts the distinct events of the clinics the probe has seen.
func (p *probe) handled(clinics []uuid.UUID) int {
	n := 0
	for _, id := range clinics {
		n += len(p.seenOf(id))
	}
	return n
}

// requireExactlyOnce fails unless the probe handled each clinic's events
// 1..perClinic exactly once, each with one committed effect.
func (p *probe) requireExactlyOnce(clinics []uuid.UUID, perClinic int) {
	t := p.rig.t
	t.Helper()
	for _, clinicID := range clinics {
		seen := p.seenOf(clinicID)
		seqs := make([]int64, 0, len(seen))
		for _, env := range seen {
			seqs = append(seqs, env.Sequence)
			if n := p.attemptsOf(env.EventID); n != 1 {
				t.Errorf("clinic %s: event %d handled %d times, want once", clinicID, env.Sequence, n)
			}
		}
		slices.Sort(seqs)
		distinctSeqs := len(slices.Compact(slices.Clone(seqs)))
		if len(seqs) != perClinic || distinctSeqs != perClinic || seqs[0] != 1 || seqs[len(seqs)-1] != int64(perClinic) {
			t.Errorf("clinic %s: handled %d events with sequences %v, want 1..%d once each", clinicID, len(seen), seqs, perClinic)
		}
		var effects, distinct int
		err := p.rig.pool.QueryRow(p.rig.ctx, `SELECT count(*), count(DISTINCT event_id) FROM probe_effects
			WHERE consumer = $1 AND event_id = ANY($2)`, p.name, eventIDs(seen)).Scan(&effects, &distinct)
		if err != nil {
			t.Fatal(err)
		}
		if effects != perClinic || distinct != perClinic {
			t.Errorf("clinic %s: %d effect rows for %d events, want %d, one each", clinicID, effects, distinct, perClinic)
		}
	}
}

func eventIDs(envs []messaging.Envelope) []uuid.UUID {
	out := make([]uuid.UUID, len(envs))
	for i, env := range envs {
		out[i] = env.EventID
	}
	return out
}
