package messaging_test

import (
	"testing"
	"time"

	wmamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/aura-clinic/aura/messaging"
)

const amqpHowToStart = `start RabbitMQ first:
  rabbitmq-server -detached`

// amqpServer returns the test server's URL and an admin connection, failing
// the test when RabbitMQ is down.
func amqpServer(t testing.TB) (string, *amqp.Connection) {
	t.Helper()
	u := serverURL(t, "RabbitMQ", "AURA_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/", "5672", amqpHowToStart)
	conn, err := amqp.Dial(u)
	if err != nil {
		t.Fatalf("RabbitMQ at %s: %v\n%s", u, err, amqpHowToStart)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return u, conn
}

// adminChannel opens a channel on conn, closed at the end of the test.
func adminChannel(t *testing.T, conn *amqp.Connection) *amqp.Channel {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ch.Close() })
	return ch
}

// openAMQP opens the pub/sub on an exchange of this test only; the exchange
// and the queues of groups are deleted at the end.
func openAMQP(t *testing.T, opts messaging.AMQPOptions, groups ...string) (*messaging.AMQP, *amqp.Connection, string) {
	t.Helper()
	u, conn := amqpServer(t)
	topic := uniqueName("aura_test")
	opts.Topic = topic
	t.Cleanup(func() {
		ch, err := conn.Channel()
		if err != nil {
			t.Errorf("cleanup channel: %v", err)
			return
		}
		defer ch.Close()
		for _, g := range append(groups, opts.Groups...) {
			if _, err := ch.QueueDelete(messaging.AMQPQueueName(topic, g), false, false, false); err != nil {
				t.Errorf("delete queue of %s: %v", g, err)
			}
		}
		if err := ch.ExchangeDelete(topic, false, false); err != nil {
			t.Errorf("delete exchange %s: %v", topic, err)
		}
	})
	ps, err := messaging.NewAMQPWithOptions(u, testLogger(), opts)
	if err != nil {
		t.Fatalf("NewAMQP: %v", err)
	}
	t.Cleanup(func() {
		if err := ps.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return ps, conn, topic
}

// The exchange is a durable fanout, the group queues are durable, and a
// group listed in the options keeps messages published before any member
// subscribed, as persistent messages.
func TestAMQPTopology(t *testing.T) {
	ps, conn, topic := openAMQP(t, messaging.AMQPOptions{Groups: []string{"early"}})
	msg := event(1)
	publish(t, ps, topic, msg)

	ch := adminChannel(t, conn)
	// Redeclaring with other properties closes the channel with
	// PRECONDITION_FAILED: these succeed only if the properties match.
	if err := ch.ExchangeDeclare(topic, "fanout", true, false, false, false, nil); err != nil {
		t.Fatalf("exchange %s is not a durable fanout: %v", topic, err)
	}
	queue := messaging.AMQPQueueName(topic, "early")
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		t.Fatalf("queue %s is not durable: %v", queue, err)
	}
	var got amqp.Delivery
	deadline := time.Now().Add(waitFor)
	for {
		d, ok, err := ch.Get(queue, false)
		if err != nil {
			t.Fatalf("get from %s: %v", queue, err)
		}
		if ok {
			got = d
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing in %s after %s", queue, waitFor)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := got.Ack(false); err != nil {
		t.Fatal(err)
	}
	if got.DeliveryMode != amqp.Persistent {
		t.Errorf("delivery mode %d, want persistent (%d)", got.DeliveryMode, amqp.Persistent)
	}
	if id := got.Headers[wmamqp.DefaultMessageUUIDHeaderKey]; id != msg.UUID {
		t.Errorf("message id %v, want %s", id, msg.UUID)
	}
	if ev := got.Headers[messaging.MetadataEvent]; ev != msg.Metadata.Get(messaging.MetadataEvent) {
		t.Errorf("event header %v, want %s", ev, msg.Metadata.Get(messaging.MetadataEvent))
	}
}

func TestAMQPConsumerGroups(t *testing.T) {
	ps, _, topic := openAMQP(t, messaging.AMQPOptions{}, "audit", "log")
	testGroups(t, ps, topic)
}

func TestAMQPNackRedelivers(t *testing.T) {
	ps, _, topic := openAMQP(t, messaging.AMQPOptions{}, "retrying")
	testNack(t, ps, topic)
}

func TestAMQPDurableAcrossRestart(t *testing.T) {
	ps, conn, topic := openAMQP(t, messaging.AMQPOptions{}, "durable")
	testRestart(t, ps, topic, func() {
		// The queue outlives its last consumer; the held barrier went back
		// to it.
		ch := adminChannel(t, conn)
		deadline := time.Now().Add(waitFor)
		for {
			q, err := ch.QueueDeclarePassive(messaging.AMQPQueueName(topic, "durable"), true, false, false, false, nil)
			if err != nil {
				t.Fatalf("queue of group durable after its member stopped: %v", err)
			}
			if q.Consumers == 0 && q.Messages == 1 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("queue of group durable: %d consumers, %d ready messages; want 0 and 1 (the barrier)", q.Consumers, q.Messages)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// Publisher confirms: a message RabbitMQ refuses makes Publish fail (without
// confirms it would return nil and the forwarder would drop the event).
func TestAMQPPublishConfirmed(t *testing.T) {
	ps, conn, topic := openAMQP(t, messaging.AMQPOptions{})
	publish(t, ps, topic, event(1))
	ch := adminChannel(t, conn)
	if err := ch.ExchangeDelete(topic, false, false); err != nil {
		t.Fatal(err)
	}
	if err := ps.Publisher().Publish(topic, event(2)); err == nil {
		t.Fatal("publish to a deleted exchange succeeded; want an error")
	}
}

func TestAMQPForwarder(t *testing.T) {
	ps, _, topic := openAMQP(t, messaging.AMQPOptions{}, "forwarded")
	testForward(t, ps, topic)
}
