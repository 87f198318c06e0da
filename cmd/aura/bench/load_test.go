package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
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
	if window < 240*time.Millisecond || window > time.Second {
		t.Errorf("window %v, want about 250 ms", window)
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
