package messaging_test

// Integration tests of the outbox, the forwarder and the consumers over the
// "postgres" pub/sub, in the package's database: events are emitted in real
// transactions, as the executor does, and handled by test consumers.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aura-clinic/aura/messaging"
	"github.com/aura-clinic/aura/schema/dbtest"
	"github.com/aura-clinic/aura/schema/store"
)

// rigWait bounds every wait for events to move. Delivery is usually a matter
// of milliseconds, but watermill-sql reads only rows older than the oldest
// transaction running anywhere on the PostgreSQL server, so other test
// packages' long transactions can hold it back for seconds.
const rigWait = 20 * time.Second

// outboxRig is one test's clinic (with its user) in the package's database,
// the postgres pub/sub, and the forwarders and consumers the test starts,
// all stopped when the test ends.
type outboxRig struct {
	t        *testing.T
	ctx      context.Context
	pool     *pgxpool.Pool
	ps       *messaging.Postgres
	userID   uuid.UUID
	clinicID uuid.UUID
}

// rigEffectsOnce creates the table where probes record their effects.
var rigEffectsOnce sync.Once

func newOutboxRig(t *testing.T) *outboxRig {
	t.Helper()
	pool := dbtest.Pool(t)
	ps, err := messaging.NewPostgres(pool, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ps.Close() })
	r := &outboxRig{t: t, ctx: context.Background(), pool: pool, ps: ps, userID: uuid.Must(uuid.NewV7())}
	rigEffectsOnce.Do(func() {
		r.exec(`CREATE TABLE IF NOT EXISTS probe_effects (consumer text NOT NULL, event_id uuid NOT NULL, sequence bigint NOT NULL)`)
	})
	r.exec(`INSERT INTO users (id, email, name) VALUES ($1, $2, 'Rig')`, r.userID, r.userID.String()+"@example.com")
	r.clinicID = r.newClinic()
	return r
}

// newClinic inserts another clinic.
func (r *outboxRig) newClinic() uuid.UUID {
	r.t.Helper()
	id := uuid.Must(uuid.NewV7())
	r.exec(`INSERT INTO clinics (id, name, currency, timezone) VALUES ($1, 'Rig clinic', 'EUR', 'Europe/Madrid')`, id)
	return id
}

func (r *outboxRig) exec(sql string, args ...any) {
	r.t.Helper()
	if _, err := r.pool.Exec(r.ctx, sql, args...); err != nil {
		r.t.Fatalf("%s: %v", sql, err)
	}
}

func (r *outboxRig) count(sql string, args ...any) int {
	r.t.Helper()
	var n int
	if err := r.pool.QueryRow(r.ctx, sql, args...).Scan(&n); err != nil {
		r.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// emitIn emits n events of the clinic in tx, as the executor does before
// commit, with requestID as the request's id.
func (r *outboxRig) emitIn(tx pgx.Tx, clinicID uuid.UUID, requestID string, n int) {
	r.t.Helper()
	events := make([]messaging.Pending, n)
	for i := range events {
		events[i] = messaging.Pending{ClinicID: clinicID, Event: messaging.PatientCreated{PatientID: uuid.Must(uuid.NewV7())},
			Metadata: messaging.Metadata{RequestID: requestID, UserID: r.userID}}
	}
	emitter := messaging.NewEmitter(slog.New(slog.NewTextHandler(io.Discard, nil)))
	err := emitter.Emit(r.ctx, tx, events, store.New(tx).NextEventSequences)
	if err != nil {
		r.t.Fatalf("emit: %v", err)
	}
}

// emit emits n events of the rig's clinic in a transaction of their own.
func (r *outboxRig) emit(requestID string, n int) {
	r.t.Helper()
	tx := r.begin()
	r.emitIn(tx, r.clinicID, requestID, n)
	if err := tx.Commit(r.ctx); err != nil {
		r.t.Fatal(err)
	}
}

func (r *outboxRig) begin() pgx.Tx {
	r.t.Helper()
	tx, err := r.pool.Begin(r.ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	return tx
}

// background runs fn until the returned stop is called (at the latest when
// the test ends); stop waits for fn to return and fails the test on an error.
func (r *outboxRig) background(what string, fn func(ctx context.Context) error) (stop func()) {
	return runInBackground(r.t, r.ctx, what, fn)
}

// forward runs the forwarder.
func (r *outboxRig) forward() (stop func()) {
	return r.background("forwarder", func(ctx context.Context) error {
		return messaging.Forward(ctx, r.pool, r.ps, watermill.NopLogger{})
	})
}

// consume runs the consumers on a router.
func (r *outboxRig) consume(consumers ...messaging.Consumer) (stop func()) {
	return r.background("consumers", func(ctx context.Context) error {
		return messaging.Consume(ctx, r.pool, r.ps, watermill.NopLogger{}, consumers...)
	})
}

// waitUntil polls cond until it holds, failing the test after rigWait.
func (r *outboxRig) waitUntil(what string, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(rigWait)
	for !cond() {
		if time.Now().After(deadline) {
			r.t.Fatalf("%s: not within %v", what, rigWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// status reads the outbox status.
func (r *outboxRig) status() messaging.OutboxStatus {
	r.t.Helper()
	s, err := messaging.Status(r.ctx, r.pool)
	if err != nil {
		r.t.Fatal(err)
	}
	return s
}

// outboxRows counts the clinic's events in the outbox, forwarded or not.
func (r *outboxRig) outboxRows(clinicID uuid.UUID) int {
	r.t.Helper()
	return r.count(`SELECT count(*) FROM watermill_aura_outbox WHERE payload->'metadata'->>'clinic_id' = $1`, clinicID.String())
}

// topicRows counts the clinic's messages in the postgres pub/sub's topic,
// and how many of them repeat another's id.
func (r *outboxRig) topicRows(clinicID uuid.UUID) (rows, repeats int) {
	r.t.Helper()
	err := r.pool.QueryRow(r.ctx, `SELECT count(*), count(*) - count(DISTINCT uuid) FROM watermill_aura_events
		WHERE metadata->>'clinic_id' = $1`, clinicID.String()).Scan(&rows, &repeats)
	if err != nil {
		r.t.Fatal(err)
	}
	return rows, repeats
}

// probe is a test consumer of the rig's clinics' events (it acknowledges
// others untouched). Each attempt counts, writes an effect row in the
// consumer's transaction, then fails when failing says so.
type probe struct {
	name    string
	rig     *outboxRig
	clinics map[uuid.UUID]bool

	mu       sync.Mutex
	attempts map[uuid.UUID]int                  // Handle calls per event id
	seen     map[uuid.UUID]messaging.Envelope   // by event id
	failing  func(env messaging.Envelope) error // nil: never fails
}

// newProbe returns a consumer with a name of its own: a new consumer group
// on the pub/sub, and new keys in the inbox and failures tables.
func (r *outboxRig) newProbe(role string, clinics ...uuid.UUID) *probe {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	p := &probe{name: "probe_" + role + "_" + hex.EncodeToString(b), rig: r, clinics: map[uuid.UUID]bool{r.clinicID: true},
		attempts: map[uuid.UUID]int{}, seen: map[uuid.UUID]messaging.Envelope{}}
	for _, id := range clinics {
		p.clinics[id] = true
	}
	return p
}

// failWith makes the probe's attempts fail when f returns an error.
func (p *probe) failWith(f func(env messaging.Envelope) error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failing = f
}

func (p *probe) consumer() messaging.Consumer {
	return messaging.Consumer{Name: p.name, Handle: func(ctx context.Context, tx pgx.Tx, env messaging.Envelope) error {
		if !p.clinics[env.ClinicID] {
			return nil
		}
		p.mu.Lock()
		p.attempts[env.EventID]++
		p.seen[env.EventID] = env
		failing := p.failing
		p.mu.Unlock()
		if _, err := tx.Exec(ctx, `INSERT INTO probe_effects (consumer, event_id, sequence) VALUES ($1, $2, $3)`,
			p.name, env.EventID, env.Sequence); err != nil {
			return err
		}
		if failing != nil {
			return failing(env)
		}
		return nil
	}}
}

// attemptsOf returns how many times the probe handled the event.
func (p *probe) attemptsOf(id uuid.UUID) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.attempts[id]
}

// event returns the envelope of the clinic's event with this sequence the
// probe has seen, if any.
func (p *probe) event(clinicID uuid.UUID, seq int64) (messaging.Envelope, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, env := range p.seen {
		if env.ClinicID == clinicID && env.Sequence == seq {
			return env, true
		}
	}
	return messaging.Envelope{}, false
}

// seenOf returns every event of the clinic the probe has seen.
func (p *probe) seenOf(clinicID uuid.UUID) []messaging.Envelope {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []messaging.Envelope
	for _, env := range p.seen {
		if env.ClinicID == clinicID {
			out = append(out, env)
		}
	}
	return out
}

// effects counts the committed effect rows of the event.
func (p *probe) effects(id uuid.UUID) int {
	return p.rig.count(`SELECT count(*) FROM probe_effects WHERE consumer = $1 AND event_id = $2`, p.name, id)
}

// inInbox reports whether the probe's inbox holds the event.
func (p *probe) inInbox(id uuid.UUID) bool {
	return p.rig.count(`SELECT count(*) FROM inbox WHERE consumer = $1 AND event_id = $2`, p.name, id) == 1
}

// failure is a consumer_failures row.
type failure struct {
	eventID  uuid.UUID
	envelope []byte
	err      string
	attempts int
	failedAt time.Time
}

// failures returns the probe's consumer_failures rows.
func (p *probe) failures() []failure {
	p.rig.t.Helper()
	rows, err := p.rig.pool.Query(p.rig.ctx, `SELECT event_id, envelope, error, attempts, failed_at FROM consumer_failures WHERE consumer = $1`, p.name)
	if err != nil {
		p.rig.t.Fatal(err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (failure, error) {
		var f failure
		return f, row.Scan(&f.eventID, &f.envelope, &f.err, &f.attempts, &f.failedAt)
	})
	if err != nil {
		p.rig.t.Fatal(err)
	}
	return list
}

// mustEvent waits until the probe has seen the clinic's event seq and
// returns it.
func (p *probe) mustEvent(clinicID uuid.UUID, seq int64) messaging.Envelope {
	p.rig.t.Helper()
	var env messaging.Envelope
	p.rig.waitUntil("probe "+p.name+" sees event "+strconv.FormatInt(seq, 10), func() bool {
		var ok bool
		env, ok = p.event(clinicID, seq)
		return ok
	})
	return env
}

// errProbe is the error of a failing probe's attempts.
var errProbe = errors.New("probe refuses the event")

// TestConsumerRetriesThenRecordsFailure proves a consumer that fails on an
// event is attempted exactly MaxAttempts (5) times, each attempt's writes
// rolled back (no effect, no inbox row), then the event is recorded in
// consumer_failures (consumer, event id, envelope, error, 5 attempts, time)
// and acknowledged: the next event is handled, and another consumer is not
// held up. RetryFailed then re-delivers it to that consumer only (the other
// consumer does not handle it a second time); once handled, the failure row
// is gone and the event has exactly one effect.
func TestConsumerRetriesThenRecordsFailure(t *testing.T) {
	r := newOutboxRig(t)
	failing := r.newProbe("failing")
	failing.failWith(func(env messaging.Envelope) error {
		if env.Sequence == 1 {
			return errProbe
		}
		return nil
	})
	bystander := r.newProbe("bystander")
	r.emit("req-first", 1)
	r.emit("req-second", 1)
	r.forward()
	r.consume(failing.consumer(), bystander.consumer())

	second := failing.mustEvent(r.clinicID, 2)
	r.waitUntil("the second event's effect", func() bool { return failing.effects(second.EventID) == 1 })
	first, _ := failing.event(r.clinicID, 1)
	r.waitUntil("the failure record", func() bool { return len(failing.failures()) == 1 })

	if n := failing.attemptsOf(first.EventID); n != messaging.MaxAttempts {
		t.Errorf("the failing event was attempted %d times, want %d", n, messaging.MaxAttempts)
	}
	if n := failing.effects(first.EventID); n != 0 {
		t.Errorf("%d effect rows of the failed attempts survive, want 0", n)
	}
	if failing.inInbox(first.EventID) {
		t.Error("the failed event is in the consumer's inbox")
	}
	f := failing.failures()[0]
	if f.eventID != first.EventID || f.attempts != messaging.MaxAttempts || !strings.Contains(f.err, errProbe.Error()) ||
		time.Since(f.failedAt) > time.Minute || time.Since(f.failedAt) < 0 {
		t.Errorf("failure row {event %s, attempts %d, error %q, at %v}, want {event %s, attempts %d, error %q, just now}",
			f.eventID, f.attempts, f.err, f.failedAt, first.EventID, messaging.MaxAttempts, errProbe)
	}
	var recorded messaging.Envelope
	if err := json.Unmarshal(f.envelope, &recorded); err != nil || recorded.EventID != first.EventID || recorded.RequestID != "req-first" {
		t.Errorf("recorded envelope %s (%v), want the event's", f.envelope, err)
	}
	if s := r.status(); s.Failed != int64(r.count(`SELECT count(*) FROM consumer_failures`)) || s.Failed < 1 {
		t.Errorf("status reports %d failed events", s.Failed)
	}
	r.waitUntil("the bystander's second effect", func() bool { return bystander.effects(second.EventID) == 1 })
	for _, env := range []messaging.Envelope{first, second} {
		if n := bystander.effects(env.EventID); n != 1 {
			t.Errorf("bystander: %d effects of event %d, want 1", n, env.Sequence)
		}
	}

	// Retry it, now that the consumer would succeed.
	failing.failWith(nil)
	n, err := messaging.RetryFailed(r.ctx, r.pool, failing.name, watermill.NopLogger{})
	if err != nil || n != 1 {
		t.Fatalf("RetryFailed = %d, %v; want 1 event re-delivered", n, err)
	}
	r.emit("req-third", 1) // behind the retry on every consumer's stream
	r.waitUntil("the retried event's effect", func() bool { return failing.effects(first.EventID) == 1 })
	third := bystander.mustEvent(r.clinicID, 3)
	r.waitUntil("the bystander's third effect", func() bool { return bystander.effects(third.EventID) == 1 })
	if got := failing.failures(); len(got) != 0 {
		t.Errorf("%d failure rows left after a successful retry", len(got))
	}
	if n := failing.attemptsOf(first.EventID); n != messaging.MaxAttempts+1 {
		t.Errorf("the retried event was attempted %d times in all, want %d", n, messaging.MaxAttempts+1)
	}
	if !failing.inInbox(first.EventID) {
		t.Error("the retried event is not in the consumer's inbox")
	}
	if n := bystander.attemptsOf(first.EventID); n != 1 {
		t.Errorf("the bystander handled the retried event %d times, want 1", n)
	}
	if n := bystander.effects(first.EventID); n != 1 {
		t.Errorf("the bystander has %d effects of the retried event, want 1", n)
	}
	if n, err := messaging.RetryFailed(r.ctx, r.pool, failing.name, watermill.NopLogger{}); err != nil || n != 0 {
		t.Errorf("a second RetryFailed = %d, %v; want nothing to re-deliver", n, err)
	}
}

// TestRetriedFailureKeepsEventID proves an event that fails again after
// RetryFailed is recorded under its own event id (and envelope) again, so
// that the failure can be found, retried and cleared by event id like the
// first one.
func TestRetriedFailureKeepsEventID(t *testing.T) {
	r := newOutboxRig(t)
	failing := r.newProbe("failing_twice")
	failing.failWith(func(messaging.Envelope) error { return errProbe })
	r.emit("req-doomed", 1)
	r.forward()
	r.consume(failing.consumer())

	first := failing.mustEvent(r.clinicID, 1)
	r.waitUntil("the first failure record", func() bool { return len(failing.failures()) == 1 })
	if n, err := messaging.RetryFailed(r.ctx, r.pool, failing.name, watermill.NopLogger{}); err != nil || n != 1 {
		t.Fatalf("RetryFailed = %d, %v; want 1", n, err)
	}
	r.waitUntil("the second round of attempts", func() bool { return failing.attemptsOf(first.EventID) == 2*messaging.MaxAttempts })
	r.waitUntil("the second failure record", func() bool { return len(failing.failures()) == 1 })
	f := failing.failures()[0]
	var recorded messaging.Envelope
	_ = json.Unmarshal(f.envelope, &recorded)
	if f.eventID != first.EventID || recorded.EventID != first.EventID {
		t.Errorf("after a failed retry the failure is recorded under event_id %s (envelope's %s), want the event's id %s",
			f.eventID, recorded.EventID, first.EventID)
	}
}

// rigMessage is the envelope as the emitter puts it on the pub/sub: the
// message's UUID is the event id, its payload the envelope's JSON.
func rigMessage(t *testing.T, env messaging.Envelope) *message.Message {
	t.Helper()
	raw, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	msg := message.NewMessage(env.EventID.String(), raw)
	msg.Metadata.Set(messaging.MetadataEvent, env.Event)
	msg.Metadata.Set(messaging.MetadataClinicID, env.ClinicID.String())
	msg.Metadata.Set(messaging.MetadataSequence, strconv.FormatInt(env.Sequence, 10))
	return msg
}

// TestRedeliveredEventHasOneEffect proves the inbox: the same event published
// twice to the events topic (as an at-least-once pub/sub may deliver it) is
// handled once; the second delivery is acknowledged without calling the
// consumer, so its effect exists once.
func TestRedeliveredEventHasOneEffect(t *testing.T) {
	r := newOutboxRig(t)
	p := r.newProbe("dedup")
	meta := messaging.Metadata{RequestID: "req-dup", UserID: r.userID}
	dup, err := messaging.NewEnvelope(meta, r.clinicID, 1, messaging.PatientCreated{PatientID: uuid.New()}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	marker, err := messaging.NewEnvelope(meta, r.clinicID, 2, messaging.PatientCreated{PatientID: uuid.New()}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, env := range []messaging.Envelope{dup, dup, marker} {
		if err := r.ps.Publisher().Publish(messaging.EventsTopic, rigMessage(t, env)); err != nil {
			t.Fatal(err)
		}
	}
	if rows, repeats := r.topicRows(r.clinicID); rows != 3 || repeats != 1 {
		t.Fatalf("topic holds %d messages (%d repeated), want 3 with 1 repeated", rows, repeats)
	}
	r.consume(p.consumer())
	p.mustEvent(r.clinicID, 2) // after both deliveries of the first
	r.waitUntil("the marker's effect", func() bool { return p.effects(marker.EventID) == 1 })
	if n := p.attemptsOf(dup.EventID); n != 1 {
		t.Errorf("the redelivered event was handled %d times, want 1", n)
	}
	if n := p.effects(dup.EventID); n != 1 {
		t.Errorf("the redelivered event has %d effects, want 1", n)
	}
	if !p.inInbox(dup.EventID) {
		t.Error("the event is not in the inbox")
	}
}

// TestForwarderRestart proves stopping the forwarder mid-stream and starting
// it again loses no event and has no event take effect twice: of 200 events,
// a consumer handles each event id exactly once in all (its sequences are
// 1..200 once each), whether or not the interrupted batch was re-forwarded.
func TestForwarderRestart(t *testing.T) {
	r := newOutboxRig(t)
	p := r.newProbe("restart")
	const total = 200
	for i := range total / 5 {
		r.emit("req-"+strconv.Itoa(i), 5)
	}
	if n := r.outboxRows(r.clinicID); n != total {
		t.Fatalf("%d events in the outbox, want %d", n, total)
	}
	r.consume(p.consumer())

	stop := r.forward()
	r.waitUntil("the first events forwarded", func() bool {
		rows, _ := r.topicRows(r.clinicID)
		return rows >= 10
	})
	stop()
	atStop, _ := r.topicRows(r.clinicID)
	t.Logf("forwarder stopped after forwarding %d of %d events", atStop, total)

	r.forward()
	r.waitUntil("every event handled", func() bool {
		return r.count(`SELECT count(DISTINCT event_id) FROM probe_effects WHERE consumer = $1`, p.name) == total
	})
	var rows, distinct, minSeq, maxSeq int
	err := r.pool.QueryRow(r.ctx, `SELECT count(*), count(DISTINCT sequence), min(sequence), max(sequence)
		FROM probe_effects WHERE consumer = $1`, p.name).Scan(&rows, &distinct, &minSeq, &maxSeq)
	if err != nil {
		t.Fatal(err)
	}
	if rows != total || distinct != total || minSeq != 1 || maxSeq != total {
		t.Errorf("effects: %d rows, %d distinct sequences in %d..%d; want %d, once each, 1..%d", rows, distinct, minSeq, maxSeq, total, total)
	}
	seen := p.seenOf(r.clinicID)
	if len(seen) != total {
		t.Errorf("the consumer saw %d distinct events, want %d", len(seen), total)
	}
	for _, env := range seen {
		if n := p.attemptsOf(env.EventID); n != 1 {
			t.Errorf("event %d was handled %d times, want 1", env.Sequence, n)
		}
	}
	forwarded, repeats := r.topicRows(r.clinicID)
	if forwarded-repeats != total {
		t.Errorf("%d distinct events forwarded, want %d", forwarded-repeats, total)
	}
	if repeats > 0 {
		t.Logf("the interrupted batch was forwarded again: %d events are twice in the topic (deduplicated by the inbox)", repeats)
	}
}

// TestUncommittedEventsNotDelivered proves no event leaves the outbox
// before its transaction commits, and a rolled-back transaction's events
// never reach the outbox or a consumer: while a transaction that emitted
// events is open, an event committed meanwhile (by a transaction that began
// earlier) is forwarded and they are not; once rolled back, their sequence
// numbers are taken back, and the clinic's next committed event gets 1.
func TestUncommittedEventsNotDelivered(t *testing.T) {
	r := newOutboxRig(t)
	other := r.newClinic()
	p := r.newProbe("uncommitted", other)
	r.forward()
	r.consume(p.consumer())

	earlier := r.begin()
	if _, err := earlier.Exec(r.ctx, `SELECT pg_current_xact_id()`); err != nil {
		t.Fatal(err)
	}
	open := r.begin()
	r.emitIn(open, r.clinicID, "req-rolled-back", 2)
	r.emitIn(earlier, other, "req-marker", 1)
	if err := earlier.Commit(r.ctx); err != nil {
		t.Fatal(err)
	}
	// Consumers see nothing newer than the oldest open transaction, so look
	// at what the forwarder published.
	r.waitUntil("the committed event forwarded", func() bool {
		rows, _ := r.topicRows(other)
		return rows == 1
	})
	if rows, _ := r.topicRows(r.clinicID); rows != 0 {
		t.Fatalf("%d events of an open transaction were forwarded", rows)
	}
	if got := p.seenOf(r.clinicID); len(got) != 0 {
		t.Fatalf("a consumer saw %d events of an open transaction", len(got))
	}
	if err := open.Rollback(r.ctx); err != nil {
		t.Fatal(err)
	}
	if n := r.outboxRows(r.clinicID); n != 0 {
		t.Errorf("%d events of the rolled-back transaction in the outbox", n)
	}

	r.emit("req-committed", 1)
	env := p.mustEvent(r.clinicID, 1)
	if env.RequestID != "req-committed" {
		t.Errorf("sequence 1 is the event of %q, want the committed one", env.RequestID)
	}
	p.mustEvent(other, 1)
	p.emitMarker(other, 2) // everything before it has been handled
	for _, env := range p.seenOf(r.clinicID) {
		if env.RequestID != "req-committed" {
			t.Errorf("the consumer saw an event of %q (sequence %d)", env.RequestID, env.Sequence)
		}
	}
	if n := r.outboxRows(r.clinicID); n != 1 {
		t.Errorf("%d events of the clinic in the outbox, want 1", n)
	}
}

// emitMarker commits one event of the clinic and waits until the probe sees
// it (sequence seq): everything emitted before it has been handled too.
func (p *probe) emitMarker(clinicID uuid.UUID, seq int64) {
	p.rig.t.Helper()
	tx := p.rig.begin()
	p.rig.emitIn(tx, clinicID, "req-marker", 1)
	if err := tx.Commit(p.rig.ctx); err != nil {
		p.rig.t.Fatal(err)
	}
	p.mustEvent(clinicID, seq)
}

// tableRows counts the rows of the tables Cleanup deletes from.
func (r *outboxRig) tableRows() (outbox, topic, inbox int) {
	r.t.Helper()
	return r.count(`SELECT count(*) FROM watermill_aura_outbox`), r.count(`SELECT count(*) FROM watermill_aura_events`),
		r.count(`SELECT count(*) FROM inbox`)
}

// TestOutboxStatusAndCleanup proves Status counts emitted events as pending
// (with the age of the oldest) until the forwarder moves them, then as
// processed; and Cleanup with a TTL of 0 deletes, in batches, every forwarded
// outbox row and every inbox row but no pending event, and returns how many
// rows it deleted, while a TTL longer than the rows' age deletes nothing.
func TestOutboxStatusAndCleanup(t *testing.T) {
	r := newOutboxRig(t)
	before := r.status()
	r.emit("req-status", 3)
	pending := r.status()
	if pending.Pending != before.Pending+3 || pending.Processed != before.Processed {
		t.Errorf("after emitting 3: %+v, before %+v; want 3 more pending", pending, before)
	}
	if pending.OldestPending <= 0 || pending.OldestPending > time.Minute {
		t.Errorf("oldest pending %v, want a small positive age", pending.OldestPending)
	}

	stop := r.forward()
	r.waitUntil("the outbox forwarded", func() bool { return r.status().Pending == 0 })
	stop()
	forwarded := r.status()
	if want := before.Processed + before.Pending + 3; forwarded.Processed != want || forwarded.OldestPending != 0 {
		t.Errorf("after forwarding: %+v; want %d processed, no pending age", forwarded, want)
	}
	if rows, _ := r.topicRows(r.clinicID); rows != 3 {
		t.Errorf("%d events of the clinic forwarded, want 3", rows)
	}

	// Inbox rows to clean up.
	p := r.newProbe("cleanup")
	stopConsumer := r.consume(p.consumer())
	p.mustEvent(r.clinicID, 3)
	r.waitUntil("the inbox rows", func() bool { return r.count(`SELECT count(*) FROM inbox WHERE consumer = $1`, p.name) > 0 })
	stopConsumer()

	r.emit("req-pending", 2) // pending: the forwarder is stopped
	if n, err := messaging.Cleanup(r.ctx, r.pool, time.Hour, 100); err != nil || n != 0 {
		t.Errorf("Cleanup with a TTL of an hour = %d, %v; want nothing deleted", n, err)
	}
	outbox0, topic0, inbox0 := r.tableRows()
	n, err := messaging.Cleanup(r.ctx, r.pool, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	outbox1, topic1, inbox1 := r.tableRows()
	if want := int64(outbox0 - outbox1 + topic0 - topic1 + inbox0 - inbox1); n != want {
		t.Errorf("Cleanup reported %d rows, deleted %d", n, want)
	}
	if outbox1 != 2 || inbox1 != 0 {
		t.Errorf("after cleanup: %d outbox rows (want the 2 pending), %d inbox rows (want 0)", outbox1, inbox1)
	}
	if s := r.status(); s.Pending != 2 || s.Processed != 0 {
		t.Errorf("status after cleanup %+v, want 2 pending, 0 processed", s)
	}
	if _, err := messaging.Cleanup(r.ctx, r.pool, 0, 0); err == nil {
		t.Error("Cleanup with batch 0 succeeded")
	}

	// The pending events survived the cleanup and are forwarded.
	inTopic, _ := r.topicRows(r.clinicID)
	r.forward()
	r.waitUntil("the pending events forwarded", func() bool { return r.status().Pending == 0 })
	if rows, _ := r.topicRows(r.clinicID); rows != inTopic+2 {
		t.Errorf("%d events of the clinic in the topic after forwarding the 2 pending, want %d", rows, inTopic+2)
	}
}

// TestPanickingAttemptIsRolledBack proves an attempt that panics after
// writing is a failed attempt like an error: its writes are rolled back,
// and the next attempt's are the event's only effect.
func TestPanickingAttemptIsRolledBack(t *testing.T) {
	r := newOutboxRig(t)
	p := r.newProbe("panicky")
	var panicked atomic.Bool
	p.failWith(func(messaging.Envelope) error {
		if panicked.CompareAndSwap(false, true) {
			panic("the first attempt panics")
		}
		return nil
	})
	r.emit("req-panic", 1)
	r.forward()
	r.consume(p.consumer())

	env := p.mustEvent(r.clinicID, 1)
	r.waitUntil("the event in the inbox", func() bool { return p.inInbox(env.EventID) })
	if n := p.attemptsOf(env.EventID); n != 2 {
		t.Errorf("%d attempts, want 2 (one panicked)", n)
	}
	if n := p.effects(env.EventID); n != 1 {
		t.Errorf("%d effect rows, want 1: the panicked attempt's write survived", n)
	}
}
