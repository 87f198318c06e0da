package messaging_test

import (
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"

	"github.com/aura-clinic/aura/messaging"
)

const natsHowToStart = `start NATS with JetStream first:
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log`

// natsServer returns the test server's URL and a JetStream admin connection,
// failing the test when the server is down or has no JetStream.
func natsServer(t testing.TB) (string, nats.JetStreamContext) {
	t.Helper()
	u := serverURL(t, "NATS", "AURA_TEST_NATS_URL", "nats://127.0.0.1:4222", "4222", natsHowToStart)
	conn, err := nats.Connect(u, nats.Name("aura tests"))
	if err != nil {
		t.Fatalf("NATS at %s: %v\n%s", u, err, natsHowToStart)
	}
	t.Cleanup(conn.Close)
	js, err := conn.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AccountInfo(); err != nil {
		t.Fatalf("NATS at %s has no JetStream (%v): run nats-server with -js.\n%s", u, err, natsHowToStart)
	}
	return u, js
}

// openNATS opens the pub/sub on a topic (and stream) of this test only, which
// is deleted at the end.
func openNATS(t *testing.T, opts messaging.NATSOptions) (*messaging.NATS, nats.JetStreamContext, string) {
	t.Helper()
	u, js := natsServer(t)
	topic := uniqueName("aura_test")
	opts.Topic = topic
	t.Cleanup(func() {
		if err := js.DeleteStream(topic); err != nil && !errors.Is(err, nats.ErrStreamNotFound) {
			t.Errorf("delete stream %s: %v", topic, err)
		}
	})
	ps, err := messaging.NewNATSWithOptions(u, testLogger(), opts)
	if err != nil {
		t.Fatalf("NewNATS: %v", err)
	}
	t.Cleanup(func() {
		if err := ps.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return ps, js, topic
}

// The stream exists once the pub/sub is open, with the settings the doc
// promises.
func TestNATSProvisionsStream(t *testing.T) {
	_, js, topic := openNATS(t, messaging.NATSOptions{})
	info, err := js.StreamInfo(topic)
	if err != nil {
		t.Fatalf("stream %s: %v", topic, err)
	}
	c := info.Config
	if len(c.Subjects) != 1 || c.Subjects[0] != topic {
		t.Errorf("subjects %v, want [%s]", c.Subjects, topic)
	}
	if c.Duplicates != messaging.NATSDuplicateWindow || c.MaxAge != messaging.NATSStreamMaxAge || c.Storage != nats.FileStorage {
		t.Errorf("duplicate window %s, max age %s, storage %s; want %s, %s, file",
			c.Duplicates, c.MaxAge, c.Storage, messaging.NATSDuplicateWindow, messaging.NATSStreamMaxAge)
	}
}

func TestNATSConsumerGroups(t *testing.T) {
	ps, js, topic := openNATS(t, messaging.NATSOptions{})
	testGroups(t, ps, topic)
	for _, group := range []string{"audit", "log"} {
		info, err := js.ConsumerInfo(topic, group)
		if err != nil {
			t.Fatalf("consumer %s: %v", group, err)
		}
		if info.Config.Durable != group || info.Config.DeliverGroup != group {
			t.Errorf("consumer %s: durable %q, deliver group %q", group, info.Config.Durable, info.Config.DeliverGroup)
		}
	}
}

func TestNATSNackRedelivers(t *testing.T) {
	ps, _, topic := openNATS(t, messaging.NATSOptions{})
	testNack(t, ps, topic)
}

// The barrier the first member held is redelivered after the ack wait, kept
// short here.
func TestNATSDurableAcrossRestart(t *testing.T) {
	ps, js, topic := openNATS(t, messaging.NATSOptions{AckWait: time.Second})
	testRestart(t, ps, topic, func() {
		// The group's consumer outlives its last member.
		if _, err := js.ConsumerInfo(topic, "durable"); err != nil {
			t.Fatalf("consumer of group durable after its member stopped: %v", err)
		}
	})
}

// A message published twice with the same UUID (the forwarder publishing an
// event again after a crash) is stored and delivered once.
func TestNATSDuplicateSuppressed(t *testing.T) {
	ps, js, topic := openNATS(t, messaging.NATSOptions{})
	r := &recorder{}
	startMember(t, ps, "dedup", topic, "dedup", r, nil)
	msg, after := event(1), event(2)
	publish(t, ps, topic, msg)
	publish(t, ps, topic, copyMessage(msg))
	publish(t, ps, topic, after)
	// One member gets the stream in order: once the later message is in,
	// a stored duplicate would have been delivered before it.
	r.wait(t, "the message after the duplicate", func() bool { return r.count()[after.UUID] == 1 })
	if n := r.count()[msg.UUID]; n != 1 {
		t.Errorf("message published twice delivered %d times, want once", n)
	}
	info, err := js.StreamInfo(topic)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Errorf("stream holds %d messages, want 2", info.State.Msgs)
	}
	requireSameMessages(t, r, []*message.Message{msg, after})
}

func TestNATSForwarder(t *testing.T) {
	ps, _, topic := openNATS(t, messaging.NATSOptions{})
	testForward(t, ps, topic)
}

func TestNATSRejectsInvalidNames(t *testing.T) {
	ps, _, _ := openNATS(t, messaging.NATSOptions{})
	for _, group := range []string{"", "a.b", "a b", "a*", "a>"} {
		if sub, err := ps.Subscriber(group); err == nil {
			_ = sub.Close()
			t.Errorf("Subscriber(%q) accepted", group)
		}
	}
	if _, err := messaging.NewNATSWithOptions("nats://127.0.0.1:1", nil, messaging.NATSOptions{Topic: "x.y"}); err == nil {
		t.Error("topic x.y accepted")
	}
}
