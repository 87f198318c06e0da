package bench

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// sampleReport is a report as a booking run fills it.
func sampleReport() Report {
	t := newTally()
	for i := range 95 {
		t.answered(201, "", time.Duration(i+1)*time.Millisecond)
	}
	for range 5 {
		t.answered(409, "appointment_conflict", 3*time.Millisecond)
	}
	r := Report{Scenario: "booking", WarmupS: 1, Concurrency: 4, Clinics: 2, TargetRPS: 0}
	r.DurationS = seconds(2 * time.Second)
	r.fill(t, 2*time.Second)
	r.Events = EventStats{Streams: 2, Received: 95, Expected: 95, Delivered: 95, P99Ms: 40}
	r.warn(false)
	return r
}

func TestReportFill(t *testing.T) {
	r := sampleReport()
	if r.Requests != 100 || r.Answered != 100 || r.ThroughputRPS != 50 || r.OKRPS != 47.5 {
		t.Errorf("requests %d answered %d throughput %v ok %v; want 100 100 50 47.5", r.Requests, r.Answered, r.ThroughputRPS, r.OKRPS)
	}
	if r.LatencyMs.P50 != 45 || r.LatencyMs.P99 != 94 || r.LatencyMs.Max != 95 { // 1..95 ms and five more at 3 ms
		t.Errorf("latency %+v, want p50 45, p99 94 and max 95", r.LatencyMs)
	}
	if len(r.Warnings) != 0 {
		t.Errorf("warnings %q for a clean run", r.Warnings)
	}
}

// TestReportJSON pins the JSON field names scripts read.
func TestReportJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, buf.String())
	}
	for _, field := range []string{"scenario", "duration_s", "warmup_s", "concurrency", "clinics", "target_rps", "requests",
		"answered", "throughput_rps", "ok_rps", "latency_ms", "statuses", "transport_errors", "rate_limited", "events",
		"setup", "rss_start_bytes", "rss_bytes", "warnings"} {
		if _, ok := got[field]; !ok {
			t.Errorf("no top-level %q in %s", field, buf.String())
		}
	}
	if got["throughput_rps"] != 50.0 {
		t.Errorf("throughput_rps = %v, want 50", got["throughput_rps"])
	}
	statuses, _ := got["statuses"].(map[string]any)
	if statuses["409 appointment_conflict"] != 5.0 || statuses["201"] != 95.0 {
		t.Errorf("statuses = %v", statuses)
	}
	latency, _ := got["latency_ms"].(map[string]any)
	for _, p := range []string{"p50", "p95", "p99", "max"} {
		if _, ok := latency[p]; !ok {
			t.Errorf("latency_ms lacks %s: %v", p, latency)
		}
	}
	events, _ := got["events"].(map[string]any)
	for _, f := range []string{"received", "expected", "delivered", "pending", "pending_at_stop", "p50_ms", "p99_ms", "max_ms"} {
		if _, ok := events[f]; !ok {
			t.Errorf("events lacks %s: %v", f, events)
		}
	}
	if w, ok := got["warnings"].([]any); !ok || len(w) != 0 {
		t.Errorf("warnings = %v, want []", got["warnings"])
	}
}

func TestReportText(t *testing.T) {
	r := sampleReport()
	r.Statuses["429 rate_limited"] = 3
	r.RateLimited = 3
	r.Events.Pending = 2
	r.Warnings = nil
	r.warn(true)
	var buf bytes.Buffer
	if err := r.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	text := buf.String()
	for _, want := range []string{
		"aura bench booking: 2.0 s measured after 1.0 s warm-up; 4 workers, 2 clinics, closed loop",
		"50.0 req/s", "p50 45.00", " 201: 95; 409 appointment_conflict: 5; 429 rate_limited: 3; transport errors: 0",
		"AURA_RATE_LIMITS=off", "2 of 95 acknowledged writes showed no event",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "RateLimit-Policy") {
		t.Errorf("both rate-limit warnings given; the 429 one suffices:\n%s", text)
	}
}

func TestReportWarnsOfMissedRate(t *testing.T) {
	r := sampleReport()
	r.TargetRPS = 100 // 50 reached
	r.Warnings = nil
	r.warn(false)
	if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "target rate 100") {
		t.Errorf("warnings = %q, want one about the target rate", r.Warnings)
	}
}
