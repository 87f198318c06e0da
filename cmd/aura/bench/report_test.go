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
		t.answered(201, "", time.Duration(i+1)*time.Millisecond, false)
	}
	for range 5 {
		t.answered(409, "appointment_conflict", 3*time.Millisecond, false)
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

// TestReportLateAnswer checks that an answer arriving after the measured
// window (a straggler still in flight when it ended) counts in the
// latencies but changes neither the window nor the throughput.
func TestReportLateAnswer(t *testing.T) {
	want := sampleReport()
	tl := newTally()
	for i := range 95 {
		tl.answered(201, "", time.Duration(i+1)*time.Millisecond, false)
	}
	for range 5 {
		tl.answered(409, "appointment_conflict", 3*time.Millisecond, false)
	}
	tl.record(Response{Status: 201}, nil, 2*time.Second, false, true) // sent in the window, answered 2 s later
	r := Report{Scenario: "booking", WarmupS: 1, Concurrency: 4, Clinics: 2}
	r.DurationS = seconds(2 * time.Second)
	r.fill(tl, 2*time.Second)
	if r.ThroughputRPS != want.ThroughputRPS || r.OKRPS != want.OKRPS || r.DurationS != want.DurationS {
		t.Errorf("throughput %v, 2xx %v, duration %v with one late answer; want %v, %v, %v as without it",
			r.ThroughputRPS, r.OKRPS, r.DurationS, want.ThroughputRPS, want.OKRPS, want.DurationS)
	}
	if r.Requests != 101 || r.Answered != 101 || r.Late != 1 || r.SendRPS != 50.5 {
		t.Errorf("requests %d, answered %d, late %d, sent %v/s; want 101, 101, 1, 50.5", r.Requests, r.Answered, r.Late, r.SendRPS)
	}
	if r.LatencyMs.Max != 2000 {
		t.Errorf("latency max %v, want 2000: the late answer's latency counts", r.LatencyMs.Max)
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
		"answered", "late", "send_rps", "throughput_rps", "ok_rps", "latency_ms", "statuses", "transport_errors", "rate_limited", "events",
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
	r.TargetRPS = 100 // 50 sent per second
	r.Warnings = nil
	r.warn(false)
	if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "target rate 100") {
		t.Errorf("warnings = %q, want one about the target rate", r.Warnings)
	}
}

// TestReportRateReachedDespiteLateAnswers checks that the open-loop warning
// looks at the rate requests were sent, not answered: at 50 req/s for 2 s,
// 100 requests sent on time of which 10 were answered after the window is
// the target reached; 10 of them sent after the window (the workers fell
// behind) is not.
func TestReportRateReachedDespiteLateAnswers(t *testing.T) {
	for _, tc := range []struct {
		sentLate int
		warn     bool
	}{{0, false}, {10, true}} {
		tl := newTally()
		for i := range 100 {
			tl.record(Response{Status: 201}, nil, time.Millisecond, i < tc.sentLate, i >= 90)
		}
		r := Report{TargetRPS: 50}
		r.fill(tl, 2*time.Second)
		r.warn(false)
		if r.ThroughputRPS != 45 {
			t.Errorf("throughput %v, want 45 (90 answers in 2 s)", r.ThroughputRPS)
		}
		if warned := len(r.Warnings) > 0; warned != tc.warn || (warned && !strings.Contains(r.Warnings[0], "target rate 50")) {
			t.Errorf("%d sent late: send rate %v, warnings %q; want a target-rate warning: %v", tc.sentLate, r.SendRPS, r.Warnings, tc.warn)
		}
	}
}

// TestReportEventLabel checks that the text says what the event latency
// measures: from the server writing the event, on its clock, to the client.
func TestReportEventLabel(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	if text := buf.String(); !strings.Contains(text, "event written (server clock) → stream client") || strings.Contains(text, "commit") {
		t.Errorf("the event latency is not labelled as written (server clock) to stream client:\n%s", text)
	}
}
