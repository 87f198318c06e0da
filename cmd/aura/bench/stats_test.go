package bench

import (
	"errors"
	"testing"
	"time"
)

func TestSummarizeNearestRank(t *testing.T) {
	samples := make([]time.Duration, 0, 100)
	for i := 100; i >= 1; i-- { // unsorted on purpose
		samples = append(samples, time.Duration(i)*time.Millisecond)
	}
	got := Summarize(samples)
	want := Latency{P50: 50, P95: 95, P99: 99, Max: 100}
	if got != want {
		t.Errorf("Summarize(1..100 ms) = %+v, want %+v", got, want)
	}
}

func TestSummarizeSmallSets(t *testing.T) {
	for _, tc := range []struct {
		name    string
		samples []time.Duration
		want    Latency
	}{
		{"none", nil, Latency{}},
		{"one", []time.Duration{1500 * time.Microsecond}, Latency{P50: 1.5, P95: 1.5, P99: 1.5, Max: 1.5}},
		{"two", []time.Duration{2 * time.Millisecond, time.Millisecond}, Latency{P50: 1, P95: 2, P99: 2, Max: 2}},
		{"ten", msList(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), Latency{P50: 5, P95: 10, P99: 10, Max: 10}},
		{"sub-microsecond rounding", []time.Duration{1234567 * time.Nanosecond}, Latency{P50: 1.235, P95: 1.235, P99: 1.235, Max: 1.235}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Summarize(tc.samples); got != tc.want {
				t.Errorf("Summarize = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestSummarizeTail checks that one slow request in a hundred is the p99's
// neighbour, not the p99: nearest rank takes the 99th smallest.
func TestSummarizeTail(t *testing.T) {
	samples := make([]time.Duration, 100)
	for i := range samples {
		samples[i] = time.Millisecond
	}
	samples[42] = time.Second
	got := Summarize(samples)
	if got.P99 != 1 || got.Max != 1000 {
		t.Errorf("p99 %v max %v, want 1 and 1000", got.P99, got.Max)
	}
	samples = append(samples, time.Second) // 2 of 101: now above the 99th rank
	if got := Summarize(samples); got.P99 != 1000 {
		t.Errorf("p99 with 2 slow of 101 = %v, want 1000", got.P99)
	}
}

func msList(ms ...int) []time.Duration {
	out := make([]time.Duration, len(ms))
	for i, m := range ms {
		out[i] = time.Duration(m) * time.Millisecond
	}
	return out
}

func TestTallyMerge(t *testing.T) {
	a, b := newTally(), newTally()
	a.answered(201, "", time.Millisecond, false)
	a.answered(409, "appointment_conflict", 2*time.Millisecond, false)
	b.answered(201, "ignored for a success", 3*time.Millisecond, true) // after the window
	b.answered(429, "rate_limited", 4*time.Millisecond, false)
	b.answered(502, "", 5*time.Millisecond, true) // not a problem body; after the window
	b.failed(errors.New("connection refused"))
	b.record(Response{}, errors.New("timeout"), time.Second, true, true)
	a.merge(b)

	want := map[string]int{"201": 2, "409 appointment_conflict": 1, "429 rate_limited": 1, "502": 1}
	if len(a.statuses) != len(want) {
		t.Errorf("statuses = %v, want %v", a.statuses, want)
	}
	for k, n := range want {
		if a.statuses[k] != n {
			t.Errorf("statuses[%q] = %d, want %d (all: %v)", k, a.statuses[k], n, a.statuses)
		}
	}
	if a.ok != 2 || len(a.latencies) != 5 || a.transportErrors != 2 || a.transportSample != "connection refused" {
		t.Errorf("ok %d, latencies %d, transport %d %q; want 2, 5, 2 \"connection refused\"",
			a.ok, len(a.latencies), a.transportErrors, a.transportSample)
	}
	if a.late != 2 || a.lateOK != 1 || a.sentLate != 1 {
		t.Errorf("late %d (%d 2xx), sent late %d; want 2 (1), 1", a.late, a.lateOK, a.sentLate)
	}
	if n := countStatus(a.statuses, "429"); n != 1 {
		t.Errorf("429s = %d, want 1", n)
	}
	if n := countStatus(a.statuses, "5"); n != 1 {
		t.Errorf("5xx = %d, want 1", n)
	}
}
