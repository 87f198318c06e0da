package main

import (
	"encoding/json"
	"flag"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aura-clinic/aura/cmd/aura/bench"
	"github.com/aura-clinic/aura/schema/dbtest"
)

// TestBench runs every scenario of `aura bench` for a moment against a real
// `aura serve` (rate limits off) and checks the report: requests were
// answered with the statuses the scenario aims at, and the events of the
// writes came back on the event streams with a latency.
func TestBench(t *testing.T) {
	useTestDatabase(t)
	t.Setenv("AURA_RATE_LIMITS", "off")
	s := startServe(t)
	defer func() {
		if err := s.stop(t); err != nil {
			t.Errorf("serve: %v", err)
		}
	}()

	activeKeys := benchKeys(t)
	for _, tc := range []struct {
		scenario string
		args     []string
		// statuses the answers may have; want lists those that must occur.
		allowed, want []string
	}{
		{"write", nil, []string{"201"}, []string{"201"}},
		{"mixed", []string{"--rate", "150"}, []string{"200", "201"}, []string{"200", "201"}},
		{"booking", nil, []string{"201", "409 appointment_conflict"}, []string{"201", "409 appointment_conflict"}},
		{"payments", nil, []string{"201"}, []string{"201"}},
		{"clinics", []string{"--clinics", "20"}, []string{"201"}, []string{"201"}},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			args := append([]string{"bench", tc.scenario, "--url", s.base, "--json", "--duration", "1500ms",
				"--warmup", "300ms", "--concurrency", "4", "--clinics", "3", "--drain", "10s"}, tc.args...)
			stdout, stderr, err := cli(t, args...)
			if err != nil {
				t.Fatalf("aura %s: %v\n%s", strings.Join(args, " "), err, stderr)
			}
			var rep bench.Report
			if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
				t.Fatalf("stdout is not one JSON report: %v\n%s", err, stdout)
			}
			checkReport(t, rep, tc.allowed, tc.want)
			if tc.scenario == "clinics" && (rep.Requests != 20 || rep.Clinics != 20 || rep.RSSBytes <= 0) {
				t.Errorf("clinics: %d requests over %d clinics, RSS %d; want 20, 20 and the server's RSS", rep.Requests, rep.Clinics, rep.RSSBytes)
			}
			if !strings.Contains(stderr, "requests") && tc.scenario != "clinics" {
				t.Errorf("no progress line on stderr:\n%s", stderr)
			}
			if n := benchKeys(t); n != activeKeys || strings.Contains(stderr, "not revoked") {
				t.Errorf("%d active API keys of %s after the run, %d before: the key the run made was not revoked\n%s", n, benchEmail, activeKeys, stderr)
			}
		})
	}
}

// benchKeys counts the bench user's API keys that are not revoked.
func benchKeys(t *testing.T) int {
	t.Helper()
	var n int
	err := dbtest.Pool(t).QueryRow(t.Context(), `SELECT count(*) FROM api_keys k JOIN users u ON u.id = k.user_id
		WHERE u.email = $1 AND k.revoked_at IS NULL`, benchEmail).Scan(&n)
	if err != nil {
		t.Fatalf("count the bench user's keys: %v", err)
	}
	return n
}

// checkReport checks what every scenario's report must show.
func checkReport(t *testing.T, rep bench.Report, allowed, want []string) {
	t.Helper()
	if rep.Requests == 0 || rep.ThroughputRPS <= 0 || rep.LatencyMs.P50 <= 0 || rep.LatencyMs.Max < rep.LatencyMs.P99 {
		t.Errorf("requests %d, throughput %v, latency %+v: want requests answered with a latency", rep.Requests, rep.ThroughputRPS, rep.LatencyMs)
	}
	if rep.TransportErrors != 0 || rep.RateLimited != 0 {
		t.Errorf("%d transport errors (%s), %d rate limited; want none", rep.TransportErrors, rep.TransportErrorSample, rep.RateLimited)
	}
	for status := range rep.Statuses {
		if !slices.Contains(allowed, status) {
			t.Errorf("answers %v include %q; want only %v", rep.Statuses, status, allowed)
		}
	}
	for _, status := range want {
		if rep.Statuses[status] == 0 {
			t.Errorf("answers %v lack %q", rep.Statuses, status)
		}
	}
	e := rep.Events
	if e.Received == 0 || e.Delivered == 0 || e.P50Ms <= 0 || e.P99Ms < e.P50Ms {
		t.Errorf("events %+v: want events of the writes received with a latency "+
			"(a long transaction elsewhere on the PostgreSQL server holds delivery back: see docs/EVENTS.md)", e)
	}
	if e.Pending != 0 || e.Delivered != e.Expected {
		t.Errorf("%d of %d acknowledged writes showed no event within the %.1f s drain (%d delivered): events were lost, "+
			"or a long-running transaction elsewhere on the PostgreSQL server holds event delivery back (see docs/EVENTS.md)",
			e.Pending, e.Expected, e.DrainS, e.Delivered)
	}
	if len(rep.Warnings) > 0 {
		t.Logf("warnings: %q; statuses %v", rep.Warnings, slices.Sorted(maps.Keys(rep.Statuses)))
	}
}

// TestBenchArguments checks that the scenario may come before or after the
// flags, and that mistakes are errors naming the problem.
func TestBenchArguments(t *testing.T) {
	for _, args := range [][]string{
		{"write", "--duration", "5s", "--json"},
		{"--duration", "5s", "write", "--json"},
		{"--duration", "5s", "--json", "write"},
	} {
		flags := flag.NewFlagSet("bench", flag.ContinueOnError)
		flags.SetOutput(io.Discard)
		duration := flags.Duration("duration", 0, "")
		asJSON := flags.Bool("json", false, "")
		var scenario string
		if err := parseWithCommand(flags, args, &scenario); err != nil || scenario != "write" || *duration != 5*time.Second || !*asJSON {
			t.Errorf("parse %q: scenario %q, duration %v, json %v, err %v; want write, 5s, true, nil", args, scenario, *duration, *asJSON, err)
		}
	}
	useTestDatabase(t)
	activeKeys := benchKeys(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bench"}, "no scenario given"},
		{[]string{"bench", "write", "extra"}, `unexpected arguments ["extra"]`},
		{[]string{"bench", "reads", "--api-key", "k"}, `unknown scenario "reads"`},
		{[]string{"bench", "write", "--api-key", "k", "--concurrency", "0"}, "--concurrency"},
		{[]string{"bench", "write", "--api-key", "k", "--url", "http://127.0.0.1:1"}, "no server at http://127.0.0.1:1"},
		{[]string{"bench", "write", "--concurrency", "0"}, "--concurrency"}, // checked before a key is made
	} {
		_, _, err := cli(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("aura %s: err %v, want one saying %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
	if n := benchKeys(t); n != activeKeys {
		t.Errorf("%d active API keys of %s after runs with bad flags, %d before: want none made", n, benchEmail, activeKeys)
	}

	// A failed run still revokes its key; when the server is gone, it says so.
	_, stderr, err := cli(t, "bench", "write", "--url", "http://127.0.0.1:1")
	if err == nil || !strings.Contains(err.Error(), "no server") {
		t.Errorf("aura bench without a server: err %v, want one saying no server", err)
	}
	if n := benchKeys(t); n != activeKeys+1 || !strings.Contains(stderr, "warning: the bench API key") || !strings.Contains(stderr, "not revoked") {
		t.Errorf("%d active keys of %s (%d before), stderr %q: want one more, and a warning that it was not revoked", n, benchEmail, activeKeys, stderr)
	}
}
