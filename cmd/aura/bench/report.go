package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// Report is the result of a run. Its JSON form is the --json output.
type Report struct {
	Scenario string `json:"scenario"`
	// DurationS is the measured window as configured (a bounded scenario's
	// lasts until its last answer); answers still in flight at its end do
	// not lengthen it.
	DurationS   float64 `json:"duration_s"`
	WarmupS     float64 `json:"warmup_s"`
	Concurrency int     `json:"concurrency"`
	Clinics     int     `json:"clinics"`
	// TargetRPS is the open-loop request rate asked for; 0 is closed loop.
	TargetRPS float64 `json:"target_rps"`
	// Requests counts the measured requests: those due in the measured
	// window (in closed loop, sent in it; in open loop, scheduled in it,
	// even if sent after it because the workers fell behind), answered or
	// not. Answered counts those the server answered, whatever the status;
	// Late those of them whose answer arrived after the window ended.
	Requests int `json:"requests"`
	Answered int `json:"answered"`
	Late     int `json:"late"`
	// SendRPS is the measured requests sent within the window per second:
	// in open loop, what TargetRPS is compared with.
	SendRPS float64 `json:"send_rps"`
	// ThroughputRPS is the answers that arrived within the window per second;
	// OKRPS the 2xx ones. Late answers are not counted.
	ThroughputRPS float64 `json:"throughput_rps"`
	OKRPS         float64 `json:"ok_rps"`
	// LatencyMs is over every answered measured request, late ones too; in
	// open loop it counts from the moment the request was due, so a server
	// that falls behind shows.
	LatencyMs Latency `json:"latency_ms"`
	// Statuses counts answers by status, and by status and problem code for
	// non-2xx ones: {"201": 950, "409 appointment_conflict": 50}.
	Statuses             map[string]int `json:"statuses"`
	TransportErrors      int            `json:"transport_errors"`
	TransportErrorSample string         `json:"transport_error_sample,omitempty"`
	RateLimited          int            `json:"rate_limited"` // 429 answers
	Events               EventStats     `json:"events"`
	Setup                SetupStats     `json:"setup"`
	// RSSStartBytes and RSSBytes are the server's resident memory before
	// the clinics were created and at the end (0 when /metrics failed).
	RSSStartBytes int64    `json:"rss_start_bytes"`
	RSSBytes      int64    `json:"rss_bytes"`
	Warnings      []string `json:"warnings"`
}

// SetupStats is how long the setup took.
type SetupStats struct {
	ClinicsS    float64 `json:"clinics_s"` // creating the clinics
	ClinicsPerS float64 `json:"clinics_per_s"`
	PrepareS    float64 `json:"prepare_s"` // the scenario's own setup
}

// WriteJSON writes r as one JSON object and a newline.
func (r Report) WriteJSON(w io.Writer) error {
	if r.Statuses == nil {
		r.Statuses = map[string]int{}
	}
	if r.Warnings == nil {
		r.Warnings = []string{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write the report: %w", err)
	}
	return nil
}

// WriteText writes r for people.
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	loop := "closed loop"
	if r.TargetRPS > 0 {
		loop = fmt.Sprintf("open loop at %g req/s", r.TargetRPS)
	}
	fmt.Fprintf(&b, "aura bench %s: %.1f s measured after %.1f s warm-up; %d workers, %d clinics, %s\n",
		r.Scenario, r.DurationS, r.WarmupS, r.Concurrency, r.Clinics, loop)
	fmt.Fprintf(&b, "  setup        %d clinics in %.2f s (%.0f/s), scenario setup %.2f s\n",
		r.Clinics, r.Setup.ClinicsS, r.Setup.ClinicsPerS, r.Setup.PrepareS)
	fmt.Fprintf(&b, "  requests     %d measured, sent at %.1f/s; %d answered (%d after the window): %.1f req/s, %.1f 2xx/s in the window\n",
		r.Requests, r.SendRPS, r.Answered, r.Late, r.ThroughputRPS, r.OKRPS)
	fmt.Fprintf(&b, "  latency ms   p50 %.2f  p95 %.2f  p99 %.2f  max %.2f\n", r.LatencyMs.P50, r.LatencyMs.P95, r.LatencyMs.P99, r.LatencyMs.Max)
	fmt.Fprintf(&b, "  statuses    ")
	for _, k := range slices.Sorted(maps.Keys(r.Statuses)) {
		fmt.Fprintf(&b, " %s: %d;", k, r.Statuses[k])
	}
	fmt.Fprintf(&b, " transport errors: %d\n", r.TransportErrors)
	e := r.Events
	fmt.Fprintf(&b, "  events       %d received from %d streams; %d of %d acknowledged writes delivered (%d pending at stop, %d after %.1f s drain)\n",
		e.Received, e.Streams, e.Delivered, e.Expected, e.PendingAtStop, e.Pending, e.DrainS)
	fmt.Fprintf(&b, "  event ms     p50 %.2f  p95 %.2f  p99 %.2f  max %.2f  (event written (server clock) → stream client; %d duplicates, %d reconnects)\n",
		e.P50Ms, e.P95Ms, e.P99Ms, e.MaxMs, e.Duplicates, e.Reconnects)
	fmt.Fprintf(&b, "  server RSS   %.1f MiB at start, %.1f MiB at end\n", mib(r.RSSStartBytes), mib(r.RSSBytes))
	for _, warning := range r.Warnings {
		fmt.Fprintf(&b, "  WARNING      %s\n", warning)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write the report: %w", err)
	}
	return nil
}

func mib(bytes int64) float64 { return float64(bytes) / (1 << 20) }

// seconds is d in seconds, rounded to milliseconds.
func seconds(d time.Duration) float64 { return math.Round(d.Seconds()*1000) / 1000 }

// perSecond is n per d, rounded to a tenth; 0 for an empty d.
func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return math.Round(float64(n)/d.Seconds()*10) / 10
}
