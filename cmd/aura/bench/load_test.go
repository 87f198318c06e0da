package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeAPI answers every POST that carries its request id as Idempotency-Key
// with 201 and counts them; anything else is a 400.
func fakeAPI(t *testing.T) (*Client, *atomic.Int64) {
	t.Helper()
	var posts atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Idempotency-Key") == "" || r.Header.Get("Idempotency-Key") != r.Header.Get("X-Request-Id") {
			http.Error(w, `{"code":"unexpected"}`, http.StatusBadRequest)
			return
		}
		posts.Add(1)
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"id":"x"}`))
	}))
	t.Cleanup(srv.Close)
	client, err := NewClient(srv.URL, "key", 4)
	if err != nil {
		t.Fatal(err)
	}
	return client, &posts
}

// TestLoadOpenLoop checks the open-loop schedule: at 400 requests/s, a
// 100 ms warm-up and a 250 ms window send about 140 requests of which about
// 100 are measured.
func TestLoadOpenLoop(t *testing.T) {
	client, posts := fakeAPI(t)
	s := &writeScenario{clinics: []string{"a", "b"}}
	tracker, err := watch(context.Background(), client, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := plan(client, s, tracker, Config{Rate: 400, Warmup: 100 * time.Millisecond, Duration: 250 * time.Millisecond})
	measured, window := l.run(context.Background(), 4)
	if n := posts.Load(); n != 140 {
		t.Errorf("%d requests sent, want 140 (400/s for 350 ms)", n)
	}
	if n := len(measured.latencies); n != 100 || measured.statuses["201"] != 100 {
		t.Errorf("%d measured (%v), want 100 answered 201", n, measured.statuses)
	}
	if window != 250*time.Millisecond {
		t.Errorf("window %v, want the configured 250 ms", window)
	}
	if measured.sentLate != 0 || measured.late != 0 {
		t.Errorf("%d sent and %d answered after the window; want none from a fast server", measured.sentLate, measured.late)
	}
}

// TestLoadLateAnswer checks that a straggler answered long after the
// measured window ended lengthens neither the window nor the throughput's
// denominator: the window is the configured one, the straggler is counted
// late, in the latencies but not in the throughput.
func TestLoadLateAnswer(t *testing.T) {
	const slow = 600 * time.Millisecond
	var posts, stragglers atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		// The first measured request is the straggler.
		if strings.Contains(r.Header.Get("X-Request-Id"), "-"+phaseMeasure+"-") && stragglers.Add(1) == 1 {
			time.Sleep(slow)
		}
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"id":"x"}`))
	}))
	t.Cleanup(srv.Close)
	client, err := NewClient(srv.URL, "key", 4)
	if err != nil {
		t.Fatal(err)
	}
	tracker, err := watch(context.Background(), client, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &writeScenario{clinics: []string{"a", "b"}}
	const duration = 200 * time.Millisecond
	l := plan(client, s, tracker, Config{Warmup: 50 * time.Millisecond, Duration: duration})
	measured, window := l.run(context.Background(), 2)
	if window != duration {
		t.Errorf("window %v, want the configured %v, not stretched to the straggler's answer", window, duration)
	}
	// The straggler, and perhaps the other worker's last request, in flight
	// when the window ended.
	if measured.late < 1 || measured.late > 2 || measured.lateOK != measured.late {
		t.Errorf("%d late answers (%d 2xx), want the straggler and at most one more", measured.late, measured.lateOK)
	}
	var r Report
	r.fill(measured, window)
	if want := perSecond(r.Answered-measured.late, duration); r.ThroughputRPS != want || r.ThroughputRPS == 0 {
		t.Errorf("throughput %v req/s, want %v: the answers within the %v window (%d answered, %d late)",
			r.ThroughputRPS, want, duration, r.Answered, measured.late)
	}
	if r.LatencyMs.Max < millis(slow) {
		t.Errorf("latency max %v ms, want at least %v: the straggler's latency counts", r.LatencyMs.Max, millis(slow))
	}
}

// TestLoadBounded checks that a bounded scenario runs until it is done,
// measured from the start, whatever the duration.
func TestLoadBounded(t *testing.T) {
	client, posts := fakeAPI(t)
	s := &clinicsScenario{clinics: make([]string, 50)}
	tracker, err := watch(context.Background(), client, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := plan(client, s, tracker, Config{Warmup: time.Hour, Duration: time.Nanosecond})
	measured, _ := l.run(context.Background(), 4)
	if posts.Load() != 50 || measured.statuses["201"] != 50 {
		t.Errorf("%d sent, %v measured; want one write to each of 50 clinics, all measured", posts.Load(), measured.statuses)
	}
}
