package messaging

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
)

// Settings of the "nats" pub/sub's JetStream streams and consumers.
const (
	// NATSStreamMaxAge is how long a stream keeps a message: a consumer
	// group may be down, or be created, this long and still get every event
	// (a new group starts at the oldest message kept). It matches
	// DefaultOutboxTTL, how long the outbox keeps forwarded events.
	NATSStreamMaxAge = 7 * 24 * time.Hour
	// NATSDuplicateWindow is how long JetStream remembers a message id
	// (Nats-Msg-Id): a message published again within it, with the same
	// Watermill UUID, is acknowledged but not stored again.
	NATSDuplicateWindow = 10 * time.Minute
	// NATSAckWait is how long a consumer has to acknowledge a message before
	// JetStream delivers it again (to any member of the group).
	NATSAckWait = 30 * time.Second
	// NATSMaxAckPending bounds the messages of a consumer group delivered
	// and not yet acknowledged, so that none waits in a member's buffer long
	// enough to exceed NATSAckWait.
	NATSMaxAckPending = 64
	// natsNakDelay is how long JetStream waits before it delivers a nacked
	// message again: a consumer that keeps failing does not spin.
	natsNakDelay = 250 * time.Millisecond
)

// NATSOptions tune the "nats" pub/sub; the zero value is production's.
type NATSOptions struct {
	// Topic is the topic whose stream is created (if missing) when the
	// pub/sub opens, so that a server without JetStream fails at once;
	// EventsTopic when empty. Other topics get theirs on first use.
	Topic string
	// AckWait overrides NATSAckWait for the consumers this pub/sub creates.
	AckWait time.Duration
}

// NATS is the "nats" pub/sub: NATS JetStream through watermill-nats/v2
// (pkg/nats with JetStream enabled, the library's production API).
//
// Mapping. A Watermill topic T is the JetStream subject T, stored in the
// stream named T (subjects [T], file storage, limits retention with
// NATSStreamMaxAge, duplicate window NATSDuplicateWindow). Aura's events are
// therefore the subject and stream "aura_events". Streams are provisioned by
// this package, not by the library's AutoProvision (which would create them
// with a 2-minute duplicate window and no age limit): the stream of
// NATSOptions.Topic when the pub/sub opens, any other topic's on the first
// Publish or Subscribe to it. An existing stream is used as it is.
//
// A consumer group G is the durable push consumer named G on the topic's
// stream, delivered to the queue group G (DeliverGroup) on the subject
// "_aura_deliver.T.G", with explicit acks, NATSAckWait and unlimited
// deliveries. Each group therefore gets every message of the stream, the
// members of a group (Subscriber(G) in any number of processes) share its
// messages, and a group's position survives every member stopping. The
// consumer is created by this package before the library subscribes: a
// consumer the library creates itself is deleted when its subscription
// closes, which would reset the group. A new group starts with the oldest
// message the stream keeps.
//
// Delivery. A message is acknowledged (synchronously) when its handler acks
// it; a nack makes JetStream deliver it again after natsNakDelay; a message
// neither acked nor nacked (handler too slow, subscriber closed meanwhile)
// comes again after the ack wait. Subscriptions use manual acks, so a message
// discarded on close is never acknowledged by the client library behind the
// handler's back.
//
// Duplicates. The publisher sends every message with the Nats-Msg-Id header
// set to its Watermill UUID (the event id): when the forwarder publishes an
// event again after a crash, within NATSDuplicateWindow, the stream stores it
// once. Consumers still deduplicate by event id (the inbox), since
// redeliveries happen.
type NATS struct {
	url    string
	opts   NATSOptions
	logger watermill.LoggerAdapter
	pub    *natsPublisher
}

// NewNATS connects to the NATS server at url and makes sure the stream of
// EventsTopic exists.
func NewNATS(url string, logger watermill.LoggerAdapter) (*NATS, error) {
	return NewNATSWithOptions(url, logger, NATSOptions{})
}

// NewNATSWithOptions is NewNATS with options (tests use their own topic).
func NewNATSWithOptions(url string, logger watermill.LoggerAdapter, opts NATSOptions) (*NATS, error) {
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	if opts.Topic == "" {
		opts.Topic = EventsTopic
	}
	if opts.AckWait <= 0 {
		opts.AckWait = NATSAckWait
	}
	if err := checkNATSName("topic", opts.Topic); err != nil {
		return nil, err
	}
	n := &NATS{url: url, opts: opts, logger: logger}
	conn, js, err := n.connect("publisher")
	if err != nil {
		return nil, err
	}
	jsCfg := n.jetStreamConfig("")
	pub, err := wmnats.NewPublisherWithNatsConn(conn, wmnats.PublisherPublishConfig{
		Marshaler:         &wmnats.NATSMarshaler{},
		SubjectCalculator: wmnats.DefaultSubjectCalculator,
		JetStream:         jsCfg,
	}, logger)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("nats publisher: %w", err)
	}
	n.pub = &natsPublisher{streams: newNATSStreams(js), pub: pub}
	if err := n.pub.streams.ensure(opts.Topic); err != nil {
		conn.Close()
		return nil, err
	}
	return n, nil
}

// Publisher implements PubSub.
func (n *NATS) Publisher() message.Publisher { return n.pub }

// Close implements PubSub: it closes the publisher's connection. Subscribers
// have their own and are closed by whoever subscribed.
func (n *NATS) Close() error { return n.pub.Close() }

// Subscriber implements PubSub: a member of the consumer group, on its own
// connection. Its Subscribe creates the group's durable consumer if missing.
func (n *NATS) Subscriber(group string) (message.Subscriber, error) {
	if err := checkNATSName("consumer group", group); err != nil {
		return nil, err
	}
	conn, js, err := n.connect("subscriber " + group)
	if err != nil {
		return nil, err
	}
	sub, err := wmnats.NewSubscriberWithNatsConn(conn, wmnats.SubscriberSubscriptionConfig{
		Unmarshaler:       &wmnats.NATSMarshaler{},
		SubscribersCount:  1,
		AckWaitTimeout:    n.opts.AckWait,
		CloseTimeout:      10 * time.Second,
		SubscribeTimeout:  10 * time.Second,
		SubjectCalculator: wmnats.DefaultSubjectCalculator,
		NakDelay:          wmnats.NewStaticDelay(natsNakDelay),
		JetStream:         n.jetStreamConfig(group),
		QueueGroupPrefix:  group,
	}, n.logger)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("nats subscriber %s: %w", group, err)
	}
	return &natsSubscriber{group: group, ackWait: n.opts.AckWait, streams: newNATSStreams(js), sub: sub}, nil
}

// connect opens a connection that reconnects for ever once established.
func (n *NATS) connect(role string) (*nats.Conn, nats.JetStreamContext, error) {
	logger := n.logger
	conn, err := nats.Connect(n.url,
		nats.Name("aura "+role),
		nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Error("NATS disconnected", err, watermill.LogFields{"role": role})
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			logger.Info("NATS reconnected", watermill.LogFields{"role": role, "url": c.ConnectedUrlRedacted()})
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			logger.Error("NATS error", err, watermill.LogFields{"role": role})
		}),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("nats: connect to %s: %w", redactURL(n.url), err)
	}
	js, err := conn.JetStream()
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("nats: jetstream: %w", err)
	}
	return conn, js, nil
}

// jetStreamConfig is the library's JetStream configuration for a publisher
// (group "") or a member of group.
func (n *NATS) jetStreamConfig(group string) wmnats.JetStreamConfig {
	return wmnats.JetStreamConfig{
		// Streams and consumers are provisioned by natsStreams.
		AutoProvision: false,
		// Nats-Msg-Id = the Watermill UUID: JetStream drops a republished
		// message within the stream's duplicate window.
		TrackMsgId: true,
		// Wait for the server to confirm each ack.
		AckAsync: false,
		// The durable name of the group's consumer (the library passes it
		// with nats.Durable; the consumer already exists by then).
		DurablePrefix: group,
		// Without ManualAck, nats.go acks every message once the library's
		// callback returns, including one the library discarded unhandled
		// because the subscriber was closing: it would be lost.
		SubscribeOptions: []nats.SubOpt{nats.ManualAck()},
	}
}

// natsPublisher provisions a topic's stream before its first publish.
type natsPublisher struct {
	streams *natsStreams
	pub     *wmnats.Publisher
}

// Publish implements message.Publisher: it returns once JetStream stored
// (or recognised as a duplicate) every message.
func (p *natsPublisher) Publish(topic string, messages ...*message.Message) error {
	if err := p.streams.ensure(topic); err != nil {
		return err
	}
	return p.pub.Publish(topic, messages...)
}

// Close implements message.Publisher.
func (p *natsPublisher) Close() error { return p.pub.Close() }

// natsSubscriber is a member of a consumer group.
type natsSubscriber struct {
	group   string
	ackWait time.Duration
	streams *natsStreams
	sub     *wmnats.Subscriber
}

// Subscribe implements message.Subscriber.
func (s *natsSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if err := s.SubscribeInitialize(topic); err != nil {
		return nil, err
	}
	return s.sub.Subscribe(ctx, topic)
}

// SubscribeInitialize implements message.SubscribeInitializer: it creates the
// topic's stream and the group's durable consumer if they are missing.
func (s *natsSubscriber) SubscribeInitialize(topic string) error {
	if err := s.streams.ensure(topic); err != nil {
		return err
	}
	return s.streams.ensureConsumer(topic, s.group, s.ackWait)
}

// Close implements message.Subscriber: it ends the subscriptions (the group's
// consumer stays) and drains the connection.
func (s *natsSubscriber) Close() error { return s.sub.Close() }

// natsStreams creates streams and consumers, remembering the streams known
// to exist.
type natsStreams struct {
	js nats.JetStreamManager

	mu    sync.Mutex
	known map[string]bool
}

func newNATSStreams(js nats.JetStreamManager) *natsStreams {
	return &natsStreams{js: js, known: map[string]bool{}}
}

// ensure creates the stream of topic unless it exists.
func (s *natsStreams) ensure(topic string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.known[topic] {
		return nil
	}
	if err := checkNATSName("topic", topic); err != nil {
		return err
	}
	_, err := s.js.StreamInfo(topic)
	if errors.Is(err, nats.ErrStreamNotFound) {
		_, err = s.js.AddStream(&nats.StreamConfig{
			Name:        topic,
			Description: "Aura events (watermill topic " + topic + ")",
			Subjects:    []string{topic},
			Retention:   nats.LimitsPolicy,
			Discard:     nats.DiscardOld,
			MaxAge:      NATSStreamMaxAge,
			MaxMsgs:     -1,
			MaxBytes:    -1,
			Storage:     nats.FileStorage,
			Replicas:    1,
			Duplicates:  NATSDuplicateWindow,
		})
		if errors.Is(err, nats.ErrStreamNameAlreadyInUse) {
			err = nil // created meanwhile by another process
		}
	}
	if err != nil {
		return fmt.Errorf("nats: stream %s: %w", topic, err)
	}
	s.known[topic] = true
	return nil
}

// ensureConsumer creates group's durable consumer on topic's stream unless it
// exists. Its configuration is the same in every process (a fixed deliver
// subject), so members creating it at once get the same consumer.
func (s *natsStreams) ensureConsumer(topic, group string, ackWait time.Duration) error {
	_, err := s.js.ConsumerInfo(topic, group)
	if errors.Is(err, nats.ErrConsumerNotFound) {
		_, err = s.js.AddConsumer(topic, &nats.ConsumerConfig{
			Durable:        group,
			Description:    "Aura consumer group " + group,
			DeliverPolicy:  nats.DeliverAllPolicy,
			AckPolicy:      nats.AckExplicitPolicy,
			AckWait:        ackWait,
			MaxDeliver:     -1,
			FilterSubject:  topic,
			ReplayPolicy:   nats.ReplayInstantPolicy,
			MaxAckPending:  NATSMaxAckPending,
			DeliverSubject: NATSDeliverSubject(topic, group),
			DeliverGroup:   group,
		})
		if err != nil {
			// Created meanwhile by another member?
			if _, infoErr := s.js.ConsumerInfo(topic, group); infoErr == nil {
				err = nil
			}
		}
	}
	if err != nil {
		return fmt.Errorf("nats: consumer %s on stream %s: %w", group, topic, err)
	}
	return nil
}

// NATSDeliverSubject is the subject JetStream pushes group's messages of
// topic to; the group's members subscribe to it in queue group group.
func NATSDeliverSubject(topic, group string) string {
	return "_aura_deliver." + topic + "." + group
}

// checkNATSName refuses a stream or consumer name JetStream rejects.
func checkNATSName(what, name string) error {
	if name == "" {
		return fmt.Errorf("nats: empty %s", what)
	}
	if strings.ContainsAny(name, ".*>/\\ \t\r\n") {
		return fmt.Errorf("nats: %s %q: may not contain '.', '*', '>', '/', '\\' or white space", what, name)
	}
	return nil
}

var passwordInURL = regexp.MustCompile(`://([^:/@]*):[^@/]*@`)

// redactURL hides the password of a server URL (nats://u:p@h, amqp://u:p@h).
func redactURL(u string) string { return passwordInURL.ReplaceAllString(u, "://$1:***@") }
