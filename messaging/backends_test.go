package messaging_test

// Scenarios shared by the end-to-end tests of the pub/sub backends
// (nats_test.go, amqp_test.go): each runs against a real server on a topic of
// its own, so runs and tests never see each other's messages.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/aura-clinic/aura/messaging"
	"github.com/aura-clinic/aura/schema/dbtest"
)

const (
	// waitFor bounds every wait for a delivery.
	waitFor = 20 * time.Second
	// quiet is how long a test watches for a delivery that must not come,
	// after everything expected arrived.
	quiet = 400 * time.Millisecond
)

// testLogger is silent unless AURA_TEST_LOG is set.
func testLogger() watermill.LoggerAdapter {
	if os.Getenv("AURA_TEST_LOG") != "" {
		return watermill.NewSlogLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})))
	}
	return watermill.NopLogger{}
}

// uniqueName is prefix with a random suffix: a topic, stream or queue of this
// run only.
func uniqueName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}

// serverURL reads the server's URL from env (default def) and fails the test,
// with how to start the server, when nothing answers on its port.
func serverURL(t testing.TB, server, env, def, defaultPort, howToStart string) string {
	t.Helper()
	raw := os.Getenv(env)
	if raw == "" {
		raw = def
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("%s: %v", env, err)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), defaultPort)
	}
	conn, err := net.DialTimeout("tcp", host, 3*time.Second)
	if err != nil {
		t.Fatalf("%s is unreachable at %s (%v).\n%s\nor point %s at a running server.", server, host, err, howToStart, env)
	}
	_ = conn.Close()
	return raw
}

// event is a test message shaped like the forwarder's: UUID = event id, the
// event, clinic and sequence in metadata.
func event(seq int) *message.Message {
	id := uuid.Must(uuid.NewV7()).String()
	msg := message.NewMessage(id, []byte(fmt.Sprintf(`{"event_id":%q,"sequence":%d}`, id, seq)))
	msg.Metadata.Set(messaging.MetadataEvent, "crm.patient.created")
	msg.Metadata.Set(messaging.MetadataClinicID, "0190d5b2-6a3c-7000-8000-000000000001")
	msg.Metadata.Set(messaging.MetadataSequence, strconv.Itoa(seq))
	return msg
}

func events(n, firstSeq int) []*message.Message {
	msgs := make([]*message.Message, n)
	for i := range msgs {
		msgs[i] = event(firstSeq + i)
	}
	return msgs
}

// copyMessage is msg as a new message object (a republish of the same event).
func copyMessage(msg *message.Message) *message.Message {
	c := message.NewMessage(msg.UUID, append([]byte(nil), msg.Payload...))
	for k, v := range msg.Metadata {
		c.Metadata.Set(k, v)
	}
	return c
}

func publish(t *testing.T, ps messaging.PubSub, topic string, msgs ...*message.Message) {
	t.Helper()
	for _, m := range msgs {
		if err := ps.Publisher().Publish(topic, m); err != nil {
			t.Fatalf("publish %s to %s: %v", m.UUID, topic, err)
		}
	}
}

// delivery is one message a member received.
type delivery struct {
	member string
	msg    *message.Message
}

// recorder keeps every delivery of a test.
type recorder struct {
	mu         sync.Mutex
	deliveries []delivery
}

func (r *recorder) add(member string, msg *message.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.deliveries = append(r.deliveries, delivery{member: member, msg: msg})
}

func (r *recorder) snapshot() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.deliveries...)
}

// count is how many deliveries members (all when none) received, per UUID.
func (r *recorder) count(members ...string) map[string]int {
	n := map[string]int{}
	for _, d := range r.snapshot() {
		if len(members) == 0 || contains(members, d.member) {
			n[d.msg.UUID]++
		}
	}
	return n
}

// wait polls until cond holds, failing the test after waitFor.
func (r *recorder) wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; deliveries: %s", waitFor, what, r)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *recorder) String() string {
	per := map[string]int{}
	for _, d := range r.snapshot() {
		per[d.member]++
	}
	keys := make([]string, 0, len(per))
	for k := range per {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, per[k])
	}
	return strings.Join(parts, " ")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// exactlyOnce reports whether counts has each of msgs once and nothing else.
func exactlyOnce(counts map[string]int, msgs []*message.Message) bool {
	if len(counts) != len(msgs) {
		return false
	}
	for _, m := range msgs {
		if counts[m.UUID] != 1 {
			return false
		}
	}
	return true
}

// requireExactlyOnce fails unless counts has each of msgs once and nothing
// else.
func requireExactlyOnce(t *testing.T, who string, counts map[string]int, msgs []*message.Message) {
	t.Helper()
	want := map[string]bool{}
	for _, m := range msgs {
		want[m.UUID] = true
		if counts[m.UUID] != 1 {
			t.Errorf("%s: message %s delivered %d times, want once", who, m.UUID, counts[m.UUID])
		}
	}
	for id, n := range counts {
		if !want[id] {
			t.Errorf("%s: unexpected message %s delivered %d times", who, id, n)
		}
	}
}

// requireSameMessages fails unless every delivery carries the payload and the
// metadata of the message published with its UUID.
func requireSameMessages(t *testing.T, r *recorder, published []*message.Message) {
	t.Helper()
	byID := map[string]*message.Message{}
	for _, m := range published {
		byID[m.UUID] = m
	}
	for _, d := range r.snapshot() {
		want, ok := byID[d.msg.UUID]
		if !ok {
			continue
		}
		if string(d.msg.Payload) != string(want.Payload) {
			t.Errorf("message %s: payload %s, want %s", d.msg.UUID, d.msg.Payload, want.Payload)
		}
		for _, k := range []string{messaging.MetadataEvent, messaging.MetadataClinicID, messaging.MetadataSequence} {
			if got := d.msg.Metadata.Get(k); got != want.Metadata.Get(k) {
				t.Errorf("message %s: metadata %s = %q, want %q", d.msg.UUID, k, got, want.Metadata.Get(k))
			}
		}
	}
}

// verdict is what a member's handler does with a message.
type verdict int

const (
	ack  verdict = iota
	nack         // ask for redelivery
	hold         // answer neither (the subscriber closes meanwhile)
)

// member is one subscriber of a consumer group, handling messages in a
// goroutine: it records each delivery, then acks, nacks or holds it as
// handle says (ack when handle is nil).
type member struct {
	name string
	sub  message.Subscriber
	done chan struct{}
}

func startMember(t *testing.T, ps messaging.PubSub, group, topic, name string, r *recorder, handle func(*message.Message) verdict) *member {
	t.Helper()
	sub, err := ps.Subscriber(group)
	if err != nil {
		t.Fatalf("subscriber %s: %v", group, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := sub.Subscribe(ctx, topic)
	if err != nil {
		cancel()
		_ = sub.Close()
		t.Fatalf("subscribe %s to %s: %v", group, topic, err)
	}
	m := &member{name: name, sub: sub, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for msg := range ch {
			r.add(name, msg)
			v := ack
			if handle != nil {
				v = handle(msg)
			}
			switch v {
			case ack:
				msg.Ack()
			case nack:
				msg.Nack()
			}
		}
	}()
	t.Cleanup(func() {
		m.stop(t)
		cancel()
	})
	return m
}

// stop closes the member's subscriber and waits for its channel to close.
func (m *member) stop(t *testing.T) {
	t.Helper()
	select {
	case <-m.done:
		return
	default:
	}
	if err := m.sub.Close(); err != nil {
		t.Errorf("close %s: %v", m.name, err)
	}
	select {
	case <-m.done:
	case <-time.After(waitFor):
		t.Fatalf("%s: messages channel still open %s after Close", m.name, waitFor)
	}
}

// testGroups: two consumer groups each receive every message once; the two
// members of one group share the messages, each handled by one of them.
func testGroups(t *testing.T, ps messaging.PubSub, topic string) {
	const n = 40
	r := &recorder{}
	startMember(t, ps, "audit", topic, "audit", r, nil)
	// Each member of "log" holds its first message until both members
	// received one: the test fails unless the group's messages reach both.
	bothGot := func() bool {
		c := map[string]bool{}
		for _, d := range r.snapshot() {
			c[d.member] = true
		}
		return c["log-1"] && c["log-2"]
	}
	gate := func(*message.Message) verdict {
		deadline := time.Now().Add(waitFor)
		for !bothGot() && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		return ack
	}
	startMember(t, ps, "log", topic, "log-1", r, gate)
	startMember(t, ps, "log", topic, "log-2", r, gate)

	msgs := events(n, 1)
	publish(t, ps, topic, msgs...)

	r.wait(t, "every message in both groups", func() bool {
		return exactlyOnce(r.count("audit"), msgs) && exactlyOnce(r.count("log-1", "log-2"), msgs)
	})
	time.Sleep(quiet)
	requireExactlyOnce(t, "group audit", r.count("audit"), msgs)
	requireExactlyOnce(t, "group log", r.count("log-1", "log-2"), msgs)
	one, two := len(r.count("log-1")), len(r.count("log-2"))
	if one == 0 || two == 0 {
		t.Errorf("group log: members got %d and %d messages; both should get some", one, two)
	}
	requireSameMessages(t, r, msgs)
	t.Logf("group log split %d messages %d/%d", n, one, two)
}

// testNack: a nacked message is delivered again; acked ones are not.
func testNack(t *testing.T, ps messaging.PubSub, topic string) {
	r := &recorder{}
	msgs := events(3, 1)
	target := msgs[1].UUID
	var mu sync.Mutex
	nacked := false
	startMember(t, ps, "retrying", topic, "retrying", r, func(msg *message.Message) verdict {
		mu.Lock()
		defer mu.Unlock()
		if msg.UUID == target && !nacked {
			nacked = true
			return nack
		}
		return ack
	})
	publish(t, ps, topic, msgs...)
	r.wait(t, "the nacked message again", func() bool {
		c := r.count()
		return c[msgs[0].UUID] == 1 && c[target] == 2 && c[msgs[2].UUID] == 1
	})
	time.Sleep(quiet)
	c := r.count()
	if len(c) != 3 || c[msgs[0].UUID] != 1 || c[target] != 2 || c[msgs[2].UUID] != 1 {
		t.Errorf("deliveries per message %v; want 1, 2 (nacked once) and 1", c)
	}
	requireSameMessages(t, r, msgs)
}

// testRestart: a group's messages wait for it while no member runs. The
// first member acks a batch and holds one more message (the barrier) when it
// stops; a new member then gets the barrier and what was published meanwhile,
// and nothing of the acked batch. The barrier also proves the acks were
// sent: a member handles its messages in order, so it got the barrier only
// after it had acked the batch.
func testRestart(t *testing.T, ps messaging.PubSub, topic string, afterStop func()) {
	r := &recorder{}
	batch1 := events(5, 1)
	barrier := event(6)
	batch2 := events(5, 7)

	first := startMember(t, ps, "durable", topic, "first", r, func(msg *message.Message) verdict {
		if msg.UUID == barrier.UUID {
			return hold
		}
		return ack
	})
	publish(t, ps, topic, batch1...)
	r.wait(t, "the first batch", func() bool { return exactlyOnce(r.count("first"), batch1) })
	publish(t, ps, topic, barrier)
	r.wait(t, "the barrier", func() bool { return r.count("first")[barrier.UUID] == 1 })
	first.stop(t)
	if afterStop != nil {
		afterStop()
	}

	publish(t, ps, topic, batch2...)
	startMember(t, ps, "durable", topic, "second", r, nil)
	want := append([]*message.Message{barrier}, batch2...)
	r.wait(t, "the barrier and the second batch after the restart", func() bool {
		return exactlyOnce(r.count("second"), want)
	})
	time.Sleep(quiet)
	requireExactlyOnce(t, "after the restart", r.count("second"), want)
	requireSameMessages(t, r, append(append(batch1, barrier), batch2...))
}

// testForward: events written to the outbox in a transaction, as the
// emitter does, reach a consumer group through messaging.Forward.
func testForward(t *testing.T, ps messaging.PubSub, topic string) {
	pool := dbtest.Pool(t)
	ctx := context.Background()
	r := &recorder{}
	startMember(t, ps, "forwarded", topic, "forwarded", r, nil)

	msgs := events(5, 1)
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	pub, err := sql.NewPublisher(sql.TxFromPgx(tx), sql.PublisherConfig{SchemaAdapter: sql.DefaultPostgreSQLSchema{}}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	outbox := forwarder.NewPublisher(pub, forwarder.PublisherConfig{ForwarderTopic: messaging.OutboxTopic})
	if err := outbox.Publish(topic, msgs...); err != nil {
		t.Fatalf("write to the outbox: %v", err)
	}
	var xid string
	if err := tx.QueryRow(ctx, `SELECT pg_current_xact_id()::text`).Scan(&xid); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	fctx, stop := context.WithCancel(ctx)
	forwarded := make(chan error, 1)
	go func() { forwarded <- messaging.Forward(fctx, pool, ps, testLogger()) }()
	defer func() {
		stop()
		select {
		case err := <-forwarded:
			if err != nil {
				t.Errorf("Forward: %v", err)
			}
		case <-time.After(waitFor):
			t.Errorf("Forward still running %s after its context ended", waitFor)
		}
	}()

	r.wait(t, "the forwarded events", func() bool { return exactlyOnce(r.count(), msgs) })
	requireSameMessages(t, r, msgs)
	// Stop only once the forwarder acknowledged the events in the outbox
	// (its group's offset passed them): stopped earlier, it rolls back the
	// batch's offset and the next forwarder, in another test, would forward
	// them again to this test's topic.
	r.wait(t, "the forwarder's outbox offset past the events", func() bool {
		var pending int
		err := pool.QueryRow(ctx, `
			WITH g AS (SELECT
				coalesce((SELECT last_processed_transaction_id FROM "watermill_offsets_aura_outbox" WHERE consumer_group = 'forwarder'), '0'::xid8)
					AS last_processed_transaction_id,
				coalesce((SELECT offset_acked FROM "watermill_offsets_aura_outbox" WHERE consumer_group = 'forwarder'), 0)
					AS offset_acked)
			SELECT count(*) FROM "watermill_aura_outbox" m, g
			WHERE m.transaction_id = $1::xid8
			  AND NOT (m.transaction_id < g.last_processed_transaction_id
			       OR (m.transaction_id = g.last_processed_transaction_id AND m."offset" <= g.offset_acked))`, xid).Scan(&pending)
		if err != nil {
			t.Fatalf("outbox offset: %v", err)
		}
		return pending == 0
	})
}
