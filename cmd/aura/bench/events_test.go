package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// TestTrackerResumesStream checks the tracker against a stream that ends
// after its first event: it reconnects with Last-Event-ID, matches events
// with acknowledged writes by request id, skips setup events and counts a
// repeated event once.
func TestTrackerResumesStream(t *testing.T) {
	client, err := NewClient("http://unused", "key", 1)
	if err != nil {
		t.Fatal(err)
	}
	setup, first, second := client.nextID(phaseSetup), client.nextID(phaseMeasure), client.nextID(phaseMeasure)
	event := func(seq int, requestID string) string {
		occurred := time.Now().Add(-20 * time.Millisecond).UTC().Format(time.RFC3339Nano)
		return fmt.Sprintf("id: %d\nevent: crm.patient.created\ndata: {\"event_id\":\"e%d\",\"request_id\":%q,\"occurred_at\":%q}\n\n",
			seq, seq, requestID, occurred)
	}
	var mu sync.Mutex
	var lastIDs []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/clinics/c1/events/stream" || r.Header.Get("Authorization") != "Bearer key" {
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		mu.Lock()
		lastIDs = append(lastIDs, r.Header.Get("Last-Event-ID"))
		n := len(lastIDs)
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		if n == 1 { // the first connection ends after two events
			fmt.Fprint(w, event(1, setup)+event(2, first))
			return
		}
		fmt.Fprint(w, event(2, first)+event(3, second)) // event 2 again, as a resend would
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	client.base = srv.URL

	tracker, err := watch(context.Background(), client, []string{"c1"})
	if err != nil {
		t.Fatal(err)
	}
	defer tracker.Stop()
	tracker.ack(first)
	tracker.ack(second)
	tracker.drain(context.Background(), 5*time.Second)
	s := tracker.stats(2, 0)
	if s.Expected != 2 || s.Delivered != 2 || s.Pending != 0 || s.Received != 2 || s.Duplicates != 1 || s.Reconnects != 1 {
		t.Errorf("stats %+v: want 2 expected, delivered and received, 0 pending, 1 duplicate, 1 reconnect", s)
	}
	if s.P50Ms < 20 || s.MaxMs > 5000 {
		t.Errorf("latency p50 %v max %v ms, want about 20 ms and more", s.P50Ms, s.MaxMs)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lastIDs) != 2 || lastIDs[0] != "" || lastIDs[1] != "2" {
		t.Errorf("Last-Event-ID of each connection = %q, want none then 2", lastIDs)
	}
}
