package messaging

import (
	"fmt"

	"github.com/ThreeDotsLabs/watermill"
	wmamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
)

// Settings of the "amqp" pub/sub.
const (
	// AMQPPrefetch is how many unacknowledged messages RabbitMQ hands a
	// member of a consumer group at once; the others go to other members.
	AMQPPrefetch = 16
	// amqpPublishChannels is the size of the publisher's pool of channels
	// (each in confirm mode), so a publish does not open a channel.
	amqpPublishChannels = 4
)

// AMQPOptions tune the "amqp" pub/sub; the zero value is production's.
type AMQPOptions struct {
	// Topic is the topic whose exchange (and the queues of Groups) are
	// declared when the pub/sub opens, and whose queue Subscriber declares
	// for its group; EventsTopic when empty.
	Topic string
	// Groups are consumer groups whose queues are declared when the pub/sub
	// opens, so they keep the events published before their first member
	// subscribes (see AMQP).
	Groups []string
}

// AMQP is the "amqp" pub/sub: RabbitMQ through watermill-amqp/v3.
//
// Mapping. A Watermill topic T is the durable fanout exchange T (Aura's
// events: "aura_events"). A consumer group G is the durable queue "T.G"
// (AMQPQueueName) bound to that exchange: every group's queue gets a copy of
// every message, and the members of a group (Subscriber(G) in any number of
// processes) compete for the messages of its queue, RabbitMQ handing each to
// one member (at most AMQPPrefetch unacknowledged at a time). A queue keeps
// its messages while no member runs.
//
// A fanout exchange drops a message no queue is bound to yet: a group gets
// the events published after its queue was first declared, not earlier ones.
// The queue is declared by Subscriber(G) (before any Subscribe) and, for the
// groups in AMQPOptions.Groups, when the pub/sub opens; a deployment that
// forwards events before its consumers first start must list them there.
//
// Delivery. Messages are persistent (delivery mode 2) and the publisher uses
// publisher confirms: Publish returns only after RabbitMQ took each message
// (written to the durable queues), and fails otherwise, so the forwarder
// leaves the event in the outbox. A handler's ack acknowledges the delivery;
// a nack, or a subscriber closing before the handler answered, requeues it
// for the group. RabbitMQ has no deduplication: consumers deduplicate by
// event id (the inbox).
type AMQP struct {
	url    string
	opts   AMQPOptions
	logger watermill.LoggerAdapter
	pub    *wmamqp.Publisher
}

// NewAMQP connects to RabbitMQ at url (amqp://user:password@host:5672/vhost)
// and declares EventsTopic's exchange.
func NewAMQP(url string, logger watermill.LoggerAdapter) (*AMQP, error) {
	return NewAMQPWithOptions(url, logger, AMQPOptions{})
}

// NewAMQPWithOptions is NewAMQP with options (tests use their own topic).
func NewAMQPWithOptions(url string, logger watermill.LoggerAdapter, opts AMQPOptions) (*AMQP, error) {
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	if opts.Topic == "" {
		opts.Topic = EventsTopic
	}
	for _, g := range opts.Groups {
		if g == "" {
			return nil, fmt.Errorf("amqp: empty consumer group")
		}
	}
	a := &AMQP{url: url, opts: opts, logger: logger}
	cfg := amqpConfig(url, "")
	cfg.Publish.ConfirmDelivery = true
	cfg.Publish.ChannelPoolSize = amqpPublishChannels
	pub, err := wmamqp.NewPublisher(cfg, logger)
	if err != nil {
		return nil, fmt.Errorf("amqp: publisher on %s: %w", redactURL(url), err)
	}
	a.pub = pub
	if err := a.declare(); err != nil {
		_ = pub.Close()
		return nil, err
	}
	return a, nil
}

// declare declares the topic's exchange and the queues of opts.Groups, with
// the library's topology builder (so their properties match what its
// publisher and subscribers declare).
func (a *AMQP) declare() error {
	ch, err := a.pub.Connection().Channel()
	if err != nil {
		return fmt.Errorf("amqp: channel: %w", err)
	}
	defer ch.Close()
	topic := a.opts.Topic
	cfg := amqpConfig(a.url, "")
	if err := cfg.TopologyBuilder.ExchangeDeclare(ch, cfg.Exchange.GenerateName(topic), cfg); err != nil {
		return fmt.Errorf("amqp: declare exchange %s: %w", topic, err)
	}
	for _, group := range a.opts.Groups {
		cfg := amqpConfig(a.url, group)
		err := cfg.TopologyBuilder.BuildTopology(ch, wmamqp.BuildTopologyParams{
			Topic:        topic,
			QueueName:    cfg.Queue.GenerateName(topic),
			ExchangeName: cfg.Exchange.GenerateName(topic),
			RoutingKey:   cfg.QueueBind.GenerateRoutingKey(topic),
		}, cfg, a.logger)
		if err != nil {
			return fmt.Errorf("amqp: declare queue of %s: %w", group, err)
		}
	}
	return nil
}

// Publisher implements PubSub.
func (a *AMQP) Publisher() message.Publisher { return a.pub }

// Close implements PubSub: it closes the publisher's connection. Subscribers
// have their own and are closed by whoever subscribed.
func (a *AMQP) Close() error { return a.pub.Close() }

// Subscriber implements PubSub: a member of the consumer group on its own
// connection. The group's queue on the pub/sub's topic is declared now.
func (a *AMQP) Subscriber(group string) (message.Subscriber, error) {
	if group == "" {
		return nil, fmt.Errorf("amqp: empty consumer group")
	}
	sub, err := wmamqp.NewSubscriber(amqpConfig(a.url, group), a.logger)
	if err != nil {
		return nil, fmt.Errorf("amqp: subscriber %s on %s: %w", group, redactURL(a.url), err)
	}
	if err := sub.SubscribeInitialize(a.opts.Topic); err != nil {
		_ = sub.Close()
		return nil, fmt.Errorf("amqp: subscriber %s: %w", group, err)
	}
	return sub, nil
}

// AMQPQueueName is the queue of consumer group on topic.
func AMQPQueueName(topic, group string) string { return topic + "." + group }

// amqpConfig is watermill-amqp's durable pub/sub configuration (durable
// fanout exchange named after the topic, durable queue per group bound with
// an empty routing key, persistent messages) for group ("" for the
// publisher).
func amqpConfig(url, group string) wmamqp.Config {
	var queueName wmamqp.QueueNameGenerator
	if group != "" {
		queueName = func(topic string) string { return AMQPQueueName(topic, group) }
	}
	cfg := wmamqp.NewDurablePubSubConfig(url, queueName)
	cfg.Consume.Qos.PrefetchCount = AMQPPrefetch
	return cfg
}
