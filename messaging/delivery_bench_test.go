package messaging_test

// BenchmarkDelivery measures how long an event takes from the commit of the
// transaction that emitted it to its consumer, at a steady rate of emitting
// transactions, through the whole path: the emitter writes each event to the
// outbox in its own committed transaction, Forward moves it to the pub/sub
// and Consume hands it to a consumer (with its inbox, writing to the event
// log as the built-in event_log consumer does).
//
//	go test -run '^$' -bench Delivery -benchtime 1x ./messaging/
//
// Settings (environment):
//
//	AURA_BENCH_DELIVERY_RATE      committed transactions (one event each) per second; default 200
//	AURA_BENCH_DELIVERY_DURATION  how long each b.N iteration emits at that rate; default 5s
//	AURA_BENCH_TRACE              a file to append the forwarder's and the consumer's logs to,
//	                              down to watermill's trace level (each query, each back-off)
//
// There is one sub-benchmark per pub/sub: postgres, nats and amqp (the last
// two on a stream or exchange of their own, against the servers the tests
// use). Results and analysis: docs/BENCHMARKS.md.
//
// Metrics: p50-ms, p95-ms, p99-ms and max-ms of commit-to-consumer latency,
// events and ev/s (the rate achieved); for the postgres pub/sub also
// fwd-p50-ms and fwd-p99-ms, commit to the event's row in the topic table
// (the forwarder's share). The latency is measured from the moment Commit
// returned to the emitter to the moment the consumer's Handle is called.
//
// The benchmark ends by itself: it emits for the duration, then waits at
// most deliveryDrain for the last events and fails if any is missing.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
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
	"github.com/nats-io/nats.go"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/aura-clinic/aura/messaging"
	"github.com/aura-clinic/aura/schema/dbtest"
	"github.com/aura-clinic/aura/schema/store"
)

const (
	// deliveryClinics is how many clinics the events are spread over (each
	// clinic's sequence row serialises its emitting transactions).
	deliveryClinics = 8
	// deliveryWorkers is how many transactions may be emitting at once, so
	// that a slow commit does not lower the rate.
	deliveryWorkers = 8
	// deliveryDrain bounds the wait for the last events once emission ends
	// (and for the warm-up events).
	deliveryDrain = 30 * time.Second
)

// BenchmarkDelivery is the commit-to-consumer latency benchmark described at
// the top of this file.
func BenchmarkDelivery(b *testing.B) {
	b.Run("postgres", func(b *testing.B) {
		pool, logger := dbtest.Pool(b), benchLogger(b)
		ps, err := messaging.NewPostgres(pool, logger)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = ps.Close() })
		benchmarkDelivery(b, pool, ps, uniqueName("bench"), logger, true)
	})
	b.Run("nats", func(b *testing.B) {
		u, js := natsServer(b)
		topic := uniqueName("aura_bench")
		b.Cleanup(func() {
			if err := js.DeleteStream(topic); err != nil && !errors.Is(err, nats.ErrStreamNotFound) {
				b.Errorf("delete stream %s: %v", topic, err)
			}
		})
		logger := benchLogger(b)
		ps, err := messaging.NewNATSWithOptions(u, logger, messaging.NATSOptions{Topic: topic})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = ps.Close() })
		benchmarkDelivery(b, dbtest.Pool(b), renamedPubSub{PubSub: ps, topic: topic}, uniqueName("bench"), logger, false)
	})
	b.Run("amqp", func(b *testing.B) {
		u, conn := amqpServer(b)
		topic, consumer := uniqueName("aura_bench"), uniqueName("bench")
		b.Cleanup(func() {
			ch, err := conn.Channel()
			if err != nil {
				b.Errorf("cleanup channel: %v", err)
				return
			}
			defer func(ch *amqp.Channel) { _ = ch.Close() }(ch)
			if _, err := ch.QueueDelete(messaging.AMQPQueueName(topic, consumer), false, false, false); err != nil {
				b.Errorf("delete queue of %s: %v", consumer, err)
			}
			if err := ch.ExchangeDelete(topic, false, false); err != nil {
				b.Errorf("delete exchange %s: %v", topic, err)
			}
		})
		// The group's queue is declared now, as production declares the
		// built-in consumers' (a fanout exchange drops what no queue takes).
		logger := benchLogger(b)
		ps, err := messaging.NewAMQPWithOptions(u, logger, messaging.AMQPOptions{Topic: topic, Groups: []string{consumer}})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = ps.Close() })
		benchmarkDelivery(b, dbtest.Pool(b), renamedPubSub{PubSub: ps, topic: topic}, consumer, logger, false)
	})
}

// renamedPubSub is a pub/sub whose EventsTopic is another topic, so that a
// benchmark on a shared NATS or RabbitMQ server publishes to a stream or
// exchange of its own (deleted afterwards), through the unchanged Forward
// and Consume.
type renamedPubSub struct {
	messaging.PubSub
	topic string
}

func (p renamedPubSub) rename(topic string) string {
	if topic == messaging.EventsTopic {
		return p.topic
	}
	return topic
}

func (p renamedPubSub) Publisher() message.Publisher {
	return renamedPublisher{p.PubSub.Publisher(), p}
}

func (p renamedPubSub) Subscriber(group string) (message.Subscriber, error) {
	sub, err := p.PubSub.Subscriber(group)
	if err != nil {
		return nil, err
	}
	return renamedSubscriber{sub, p}, nil
}

type renamedPublisher struct {
	message.Publisher
	ps renamedPubSub
}

func (p renamedPublisher) Publish(topic string, msgs ...*message.Message) error {
	return p.Publisher.Publish(p.ps.rename(topic), msgs...)
}

type renamedSubscriber struct {
	message.Subscriber
	ps renamedPubSub
}

func (s renamedSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	return s.Subscriber.Subscribe(ctx, s.ps.rename(topic))
}

// deliveryRun is one run of the benchmark: its clinics, and per event (by
// index) when its transaction committed and when the consumer got it.
type deliveryRun struct {
	pool    *pgxpool.Pool
	prefix  string // of the request ids of this run's events
	userID  uuid.UUID
	clinics []uuid.UUID
	emitter *messaging.Emitter

	committed []atomic.Int64 // unix ns when Commit returned
	received  []atomic.Int64 // unix ns when the consumer got it first
	got       atomic.Int64   // events received (first deliveries)
	warm      atomic.Int64   // warm-up events received
	repeated  atomic.Int64   // deliveries after the first (should stay 0)
}

// envSetting reads a setting from the environment, def when unset.
func envSetting[T any](b *testing.B, name string, def T, parse func(string) (T, error)) T {
	b.Helper()
	raw := os.Getenv(name)
	if raw == "" {
		return def
	}
	v, err := parse(raw)
	if err != nil {
		b.Fatalf("%s=%q: %v", name, raw, err)
	}
	return v
}

// benchmarkDelivery runs the benchmark on ps with consumer as the consumer's
// name (its group), the forwarder and the consumer logging to logger;
// postgres adds the forwarder's share of the latency.
func benchmarkDelivery(b *testing.B, pool *pgxpool.Pool, ps messaging.PubSub, consumer string, logger watermill.LoggerAdapter, postgres bool) {
	rate := envSetting(b, "AURA_BENCH_DELIVERY_RATE", 200, func(s string) (int, error) {
		n, err := strconv.Atoi(s)
		if err == nil && n <= 0 {
			err = errors.New("not positive")
		}
		return n, err
	})
	duration := envSetting(b, "AURA_BENCH_DELIVERY_DURATION", 5*time.Second, func(s string) (time.Duration, error) {
		d, err := time.ParseDuration(s)
		if err == nil && d <= 0 {
			err = errors.New("not positive")
		}
		return d, err
	})
	total := int(float64(rate)*duration.Seconds()) * b.N
	if total < 1 {
		b.Fatalf("rate %d/s for %v emits nothing", rate, duration)
	}
	ctx := context.Background()
	run := &deliveryRun{
		pool: pool, prefix: "bench-" + uuid.NewString()[:8] + "-", userID: uuid.Must(uuid.NewV7()),
		emitter:   messaging.NewEmitter(slog.New(slog.NewTextHandler(io.Discard, nil))),
		committed: make([]atomic.Int64, total), received: make([]atomic.Int64, total),
	}
	if _, err := pool.Exec(ctx, `INSERT INTO users (id, email, name) VALUES ($1, $2, 'Bench')`,
		run.userID, run.userID.String()+"@example.com"); err != nil {
		b.Fatal(err)
	}
	for range deliveryClinics {
		id := uuid.Must(uuid.NewV7())
		if _, err := pool.Exec(ctx, `INSERT INTO clinics (id, name, currency, timezone) VALUES ($1, 'Bench clinic', 'EUR', 'Europe/Madrid')`, id); err != nil {
			b.Fatal(err)
		}
		run.clinics = append(run.clinics, id)
	}

	stopConsumer := runInBackground(b, context.Background(), "consumers", func(ctx context.Context) error {
		return messaging.Consume(ctx, pool, ps, logger, run.consumer(consumer))
	})
	stopForwarder := runInBackground(b, context.Background(), "forwarder", func(ctx context.Context) error {
		return messaging.Forward(ctx, pool, ps, logger)
	})
	defer stopConsumer()
	defer stopForwarder()

	// Warm-up: one event per clinic, through the whole path.
	for i, clinicID := range run.clinics {
		if _, err := run.emit(ctx, clinicID, run.prefix+"w"+strconv.Itoa(i)); err != nil {
			b.Fatal(err)
		}
	}
	pollUntil(b, "the warm-up events", func() bool { return run.warm.Load() == deliveryClinics })

	// Long transactions elsewhere on the server hold delivery back: watch
	// for them while the benchmark runs.
	var foreignMax atomic.Int64
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			var age float64
			err := pool.QueryRow(watchCtx, `SELECT coalesce(max(extract(epoch FROM clock_timestamp() - xact_start)), 0)::float8
				FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND datname IS DISTINCT FROM current_database()`).Scan(&age)
			if err == nil && int64(age*1e3) > foreignMax.Load() {
				foreignMax.Store(int64(age * 1e3))
			}
			select {
			case <-watchCtx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()

	b.ResetTimer()
	jobs := make(chan int, total)
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	go func() {
		defer close(jobs)
		for i := range total {
			if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
				time.Sleep(d)
			}
			jobs <- i
		}
	}()
	var wg sync.WaitGroup
	var emitErr atomic.Pointer[error]
	for range deliveryWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if emitErr.Load() != nil {
					continue
				}
				at, err := run.emit(ctx, run.clinics[i%deliveryClinics], run.prefix+strconv.Itoa(i))
				if err != nil {
					emitErr.CompareAndSwap(nil, &err)
					continue
				}
				run.committed[i].Store(at.UnixNano())
			}
		}()
	}
	wg.Wait()
	emitted := time.Since(start)
	if p := emitErr.Load(); p != nil {
		b.Fatalf("emit: %v", *p)
	}
	deadline := time.Now().Add(deliveryDrain)
	for run.got.Load() < int64(total) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d events delivered within %v of the end of emission", run.got.Load(), total, deliveryDrain)
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.StopTimer()
	stopWatch()
	<-watched

	latencies := make([]time.Duration, total)
	for i := range total {
		latencies[i] = time.Duration(run.received[i].Load() - run.committed[i].Load())
	}
	sorted := slices.Clone(latencies)
	slices.Sort(sorted)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(0, "ns/op") // meaningless here
	b.ReportMetric(ms(percentile(sorted, 0.50)), "p50-ms")
	b.ReportMetric(ms(percentile(sorted, 0.95)), "p95-ms")
	b.ReportMetric(ms(percentile(sorted, 0.99)), "p99-ms")
	b.ReportMetric(ms(sorted[total-1]), "max-ms")
	b.ReportMetric(float64(total), "events")
	b.ReportMetric(float64(total)/emitted.Seconds(), "ev/s")
	summary := fmt.Sprintf("%d events in %v (%.1f/s): commit to consumer p50 %.1f ms, p95 %.1f ms, p99 %.1f ms, max %.1f ms",
		total, emitted.Round(time.Millisecond), float64(total)/emitted.Seconds(),
		ms(percentile(sorted, 0.50)), ms(percentile(sorted, 0.95)), ms(percentile(sorted, 0.99)), ms(sorted[total-1]))
	if postgres {
		fwd := run.forwardLatencies(b)
		b.ReportMetric(ms(percentile(fwd, 0.50)), "fwd-p50-ms")
		b.ReportMetric(ms(percentile(fwd, 0.99)), "fwd-p99-ms")
		summary += fmt.Sprintf("; commit to topic row (forwarder) p50 %.1f ms, p99 %.1f ms",
			ms(percentile(fwd, 0.50)), ms(percentile(fwd, 0.99)))
	}
	summary += fmt.Sprintf("; longest transaction seen elsewhere on the server %d ms; %d repeated deliveries",
		foreignMax.Load(), run.repeated.Load())
	b.Log(summary)
	// When the slowest events came: spikes in a cluster point to a stall
	// (a long transaction, a checkpoint), scattered ones to polling.
	worst := make([]int, total)
	for i := range worst {
		worst[i] = i
	}
	slices.SortFunc(worst, func(x, y int) int { return int(latencies[y] - latencies[x]) })
	var parts []string
	for _, i := range worst[:min(5, total)] {
		at := time.Duration(run.committed[i].Load() - start.UnixNano())
		parts = append(parts, fmt.Sprintf("%.0f ms at +%v", ms(latencies[i]), at.Round(time.Millisecond)))
	}
	b.Logf("slowest: %s", strings.Join(parts, ", "))
	// p99 and max per second of emission: a backlog grows, a stall is a
	// spike.
	perSecond := map[int][]time.Duration{}
	for i := range total {
		s := int(time.Duration(run.committed[i].Load()-start.UnixNano()) / time.Second)
		perSecond[s] = append(perSecond[s], latencies[i])
	}
	parts = parts[:0]
	for s := 0; len(perSecond[s]) > 0; s++ {
		slices.Sort(perSecond[s])
		parts = append(parts, fmt.Sprintf("%.0f/%.0f", ms(percentile(perSecond[s], 0.99)), ms(perSecond[s][len(perSecond[s])-1])))
	}
	b.Logf("p99/max ms per second: %s", strings.Join(parts, " "))

	// Stop the forwarder only once its outbox offset is past every event,
	// so that the next run does not forward them again.
	pollUntil(b, "the outbox forwarded", func() bool {
		s, err := messaging.Status(ctx, pool)
		return err == nil && s.Pending == 0
	})
}

// emit commits one event of the clinic in a transaction of its own, as an
// API write does, and returns when Commit returned.
func (r *deliveryRun) emit(ctx context.Context, clinicID uuid.UUID, requestID string) (time.Time, error) {
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return time.Time{}, err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	events := []messaging.Pending{{ClinicID: clinicID, Event: messaging.PatientCreated{PatientID: uuid.Must(uuid.NewV7())},
		Metadata: messaging.Metadata{RequestID: requestID, UserID: r.userID}}}
	if err := r.emitter.Emit(ctx, tx, events, store.New(tx).NextEventSequences); err != nil {
		return time.Time{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return time.Time{}, err
	}
	return time.Now(), nil
}

// consumer records when each of the run's events arrives, then writes it to
// the event log as the event_log consumer does.
func (r *deliveryRun) consumer(name string) messaging.Consumer {
	eventLog := messaging.EventLog()
	return messaging.Consumer{Name: name, Handle: func(ctx context.Context, tx pgx.Tx, env messaging.Envelope) error {
		now := time.Now().UnixNano()
		rest, ok := strings.CutPrefix(env.RequestID, r.prefix)
		if !ok {
			return nil // another run's event
		}
		if w, warm := strings.CutPrefix(rest, "w"); warm {
			if _, err := strconv.Atoi(w); err == nil {
				r.warm.Add(1)
			}
		} else if i, err := strconv.Atoi(rest); err == nil && i >= 0 && i < len(r.received) {
			if r.received[i].CompareAndSwap(0, now) {
				r.got.Add(1)
			} else {
				r.repeated.Add(1)
			}
		}
		return eventLog.Handle(ctx, tx, env)
	}}
}

// forwardLatencies returns, sorted, how long after its commit each of the
// run's events got its row in the postgres pub/sub's topic table
// (created_at: the start of the forwarder's publishing transaction).
func (r *deliveryRun) forwardLatencies(b *testing.B) []time.Duration {
	b.Helper()
	rows, err := r.pool.Query(context.Background(), `
		SELECT payload->>'request_id', min(created_at AT TIME ZONE current_setting('TimeZone'))
		FROM watermill_aura_events WHERE payload->>'request_id' LIKE $1 || '%'
		GROUP BY 1`, r.prefix)
	if err != nil {
		b.Fatal(err)
	}
	var out []time.Duration
	for rows.Next() {
		var id string
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			b.Fatal(err)
		}
		i, err := strconv.Atoi(strings.TrimPrefix(id, r.prefix))
		if err != nil || i < 0 || i >= len(r.committed) {
			continue // a warm-up event
		}
		out = append(out, time.Duration(at.UnixNano()-r.committed[i].Load()))
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	if len(out) != len(r.committed) {
		b.Fatalf("%d of the run's %d events in the topic table", len(out), len(r.committed))
	}
	slices.Sort(out)
	return out
}

// benchLogger is silent, unless AURA_BENCH_TRACE names a file: then every
// log entry of the forwarder and the consumers, down to the trace level (each
// query of the PostgreSQL subscribers, each back-off), is appended to it with
// its time, to see where an event waited.
func benchLogger(b *testing.B) watermill.LoggerAdapter {
	path := os.Getenv("AURA_BENCH_TRACE")
	if path == "" {
		return watermill.NopLogger{}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = f.Close() })
	h := slog.NewJSONHandler(f, &slog.HandlerOptions{Level: watermill.LevelTrace})
	return watermill.NewSlogLogger(slog.New(h))
}

// percentile is the q-quantile (nearest rank) of sorted.
func percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(float64(len(sorted))*q+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// runInBackground runs fn under a context derived from parent until the
// returned stop is called (at the latest when the test or benchmark ends);
// stop waits, bounded, for fn to return and fails tb on an error.
func runInBackground(tb testing.TB, parent context.Context, what string, fn func(ctx context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(parent)
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					tb.Errorf("%s: %v", what, err)
				}
			case <-time.After(15 * time.Second):
				tb.Errorf("%s did not stop within 15s", what)
			}
		})
	}
	tb.Cleanup(stop)
	return stop
}

// pollUntil polls cond until it holds, failing after deliveryDrain.
func pollUntil(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(deliveryDrain)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within %v", what, deliveryDrain)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
