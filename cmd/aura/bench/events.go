package bench

import (
	"context"
	"encoding/json"
	"io"
	"sync"
	"time"
)

// EventStats is what the event streams showed of the measured writes.
type EventStats struct {
	// Streams is how many clinics' streams were followed.
	Streams int `json:"streams"`
	// Received counts the events of measured writes that arrived (a payment
	// that pays an invoice off has two).
	Received int `json:"received"`
	// Expected counts the measured writes the API acknowledged (2xx) in the
	// followed clinics: each must emit at least one event.
	Expected int `json:"expected"`
	// Delivered counts those whose events arrived.
	Delivered int `json:"delivered"`
	// PendingAtStop is Expected - Delivered when the load stopped: the
	// backlog the run built up.
	PendingAtStop int `json:"pending_at_stop"`
	// Pending is Expected - Delivered after the drain wait: events that did
	// not arrive at all.
	Pending int `json:"pending"`
	// DrainS is how long the drain waited for the backlog.
	DrainS float64 `json:"drain_s"`
	// Duplicates counts events received more than once.
	Duplicates int `json:"duplicates"`
	// Reconnects counts streams that ended and were resumed.
	Reconnects int `json:"reconnects"`
	// Event latency in milliseconds: from the event's occurred_at, which the
	// server stamps on its own clock when it writes the event (before the
	// transaction commits), to the event's arrival at the bench's stream
	// client, on the bench's clock. It includes the commit, the delivery
	// and the stream; when the bench runs on another host than the server,
	// the clock skew between the two hosts adds to it (or subtracts).
	P50Ms float64 `json:"p50_ms"`
	P95Ms float64 `json:"p95_ms"`
	P99Ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
}

// write states in the tracker.
const (
	writeAcked = 1 << iota // the API answered 2xx
	writeSeen              // an event of it arrived
)

// streamOpeners is how many event streams are opened at once.
const streamOpeners = 32

// Tracker follows the event streams of some clinics and matches their
// events, by request id, with the writes the API acknowledged.
type Tracker struct {
	client  *Client
	streams int
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu         sync.Mutex
	writes     map[string]uint8 // by request id
	acked      int
	delivered  int
	received   int
	duplicates int
	reconnects int
	eventIDs   map[string]struct{}
	latencies  []time.Duration
}

// watch opens the event stream of each of clinics and follows them until
// Stop. It returns once every stream is open, so that every later event
// reaches the tracker.
func watch(ctx context.Context, c *Client, clinics []string) (*Tracker, error) {
	t := &Tracker{client: c, streams: len(clinics), writes: make(map[string]uint8), eventIDs: make(map[string]struct{})}
	ctx, t.cancel = context.WithCancel(ctx)
	bodies := make([]io.ReadCloser, len(clinics))
	err := forEach(ctx, len(clinics), streamOpeners, func(_ context.Context, i int) error {
		var err error // the stream outlives forEach's context: it lasts until Stop
		bodies[i], err = c.openStream(ctx, clinics[i], "")
		return err
	})
	if err != nil {
		t.cancel()
		for _, b := range bodies {
			if b != nil {
				b.Close()
			}
		}
		return nil, err
	}
	for i, body := range bodies {
		t.wg.Add(1)
		go t.follow(ctx, clinics[i], body)
	}
	return t, nil
}

// follow reads a clinic's stream, resuming it after the last event seen
// whenever it ends, until ctx is done. Before any event arrived it resumes
// from the clinic's first event: observe skips those of the setup and any
// already seen.
func (t *Tracker) follow(ctx context.Context, clinic string, body io.ReadCloser) {
	defer t.wg.Done()
	last := "0"
	for {
		_ = readEvents(body, func(e sseEvent) {
			last = e.ID
			t.observe(e.Data, time.Now())
		})
		body.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(streamReconnectDelay):
			}
			var err error
			if body, err = t.client.openStream(ctx, clinic, last); err == nil {
				break
			}
		}
		t.mu.Lock()
		t.reconnects++
		t.mu.Unlock()
	}
}

// observe records an event's envelope that arrived at now (the bench's
// clock; occurred_at is the server's).
func (t *Tracker) observe(data []byte, now time.Time) {
	var env struct {
		EventID    string    `json:"event_id"`
		RequestID  string    `json:"request_id"`
		OccurredAt time.Time `json:"occurred_at"`
	}
	if json.Unmarshal(data, &env) != nil || !t.client.measured(env.RequestID) {
		return // setup and warm-up events are not counted
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, dup := t.eventIDs[env.EventID]; dup {
		t.duplicates++
		return
	}
	t.eventIDs[env.EventID] = struct{}{}
	t.received++
	t.latencies = append(t.latencies, now.Sub(env.OccurredAt))
	t.mark(env.RequestID, writeSeen)
}

// ack records that the API acknowledged the measured write requestID.
func (t *Tracker) ack(requestID string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mark(requestID, writeAcked)
}

// mark adds state to the write's and counts it delivered once it is both
// acknowledged and seen. The caller holds t.mu.
func (t *Tracker) mark(requestID string, state uint8) {
	old := t.writes[requestID]
	now := old | state
	if now == old {
		return
	}
	t.writes[requestID] = now
	if state == writeAcked {
		t.acked++
	}
	if now == writeAcked|writeSeen {
		t.delivered++
	}
}

// Pending is how many acknowledged writes have not shown an event yet.
func (t *Tracker) Pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.acked - t.delivered
}

// drain waits until no acknowledged write is pending, at most timeout, and
// returns how long it waited.
func (t *Tracker) drain(ctx context.Context, timeout time.Duration) time.Duration {
	start := time.Now()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for t.Pending() > 0 {
		select {
		case <-ctx.Done():
			return time.Since(start)
		case <-deadline.C:
			return time.Since(start)
		case <-tick.C:
		}
	}
	return time.Since(start)
}

// Stop closes the streams and waits for their readers to end.
func (t *Tracker) Stop() {
	t.cancel()
	t.wg.Wait()
}

// stats summarises what arrived; pendingAtStop and drained come from the
// runner.
func (t *Tracker) stats(pendingAtStop int, drained time.Duration) EventStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := Summarize(t.latencies)
	return EventStats{
		Streams: t.streams, Received: t.received, Expected: t.acked, Delivered: t.delivered,
		PendingAtStop: pendingAtStop, Pending: t.acked - t.delivered, DrainS: seconds(drained),
		Duplicates: t.duplicates, Reconnects: t.reconnects,
		P50Ms: l.P50, P95Ms: l.P95, P99Ms: l.P99, MaxMs: l.Max,
	}
}
