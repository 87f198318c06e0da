package bench

import (
	"context"
	"fmt"
	"io"
	"time"
)

// Run runs the benchmark cfg describes against a running server and returns
// its report; progress goes to progress, once a second.
func Run(ctx context.Context, cfg Config, progress io.Writer) (Report, error) {
	if err := cfg.validate(); err != nil {
		return Report{}, err
	}
	progress = &syncWriter{w: progress}
	scenario, err := newScenario(cfg.Scenario)
	if err != nil {
		return Report{}, err
	}
	client, err := NewClient(cfg.URL, cfg.APIKey, cfg.Concurrency)
	if err != nil {
		return Report{}, err
	}
	defer client.Close()
	if _, err := client.get(ctx, "/healthz"); err != nil {
		return Report{}, fmt.Errorf("no server at %s: %w", cfg.URL, err)
	}
	rep := Report{Scenario: cfg.Scenario, Concurrency: cfg.Concurrency, Clinics: cfg.Clinics, TargetRPS: cfg.Rate}
	rep.RSSStartBytes = rss(ctx, client, &rep)

	clinics, err := setUp(ctx, client, scenario, cfg, &rep.Setup, progress)
	if err != nil {
		return Report{}, err
	}

	tracker, err := watch(ctx, client, clinics[:min(cfg.Streams, len(clinics))])
	if err != nil {
		return Report{}, fmt.Errorf("follow the event streams: %w", err)
	}
	defer tracker.Stop()

	l := plan(client, scenario, tracker, cfg)
	fmt.Fprintf(progress, "following %d event streams; %s\n", tracker.streams, describe(l, cfg))
	stop := every(progress, progressInterval, loadProgress(l))
	measured, window := l.run(ctx, cfg.Concurrency)
	stop()
	if ctx.Err() != nil {
		return Report{}, fmt.Errorf("interrupted: %w", ctx.Err())
	}
	pendingAtStop := tracker.Pending()
	fmt.Fprintf(progress, "waiting up to %v for %d events ...\n", cfg.Drain, pendingAtStop)
	drained := tracker.drain(ctx, cfg.Drain)

	rep.DurationS, rep.WarmupS = seconds(window), seconds(l.measure.Sub(l.start))
	rep.fill(measured, window)
	rep.Events = tracker.stats(pendingAtStop, drained)
	rep.RSSBytes = rss(ctx, client, &rep)
	rep.warn(client.limited.Load())
	return rep, nil
}

// setUp creates the clinics and prepares the scenario in them, timing both
// into stats; it returns the clinics' ids.
func setUp(ctx context.Context, client *Client, scenario Scenario, cfg Config, stats *SetupStats, progress io.Writer) ([]string, error) {
	stop := every(progress, progressInterval, setupProgress(client))
	defer stop()
	fmt.Fprintf(progress, "creating %d clinics ...\n", cfg.Clinics)
	started := time.Now()
	clinics, err := createClinics(ctx, client, cfg.Clinics, cfg.Concurrency)
	if err != nil {
		return nil, err
	}
	took := time.Since(started)
	stats.ClinicsS, stats.ClinicsPerS = seconds(took), perSecond(cfg.Clinics, took)
	fmt.Fprintf(progress, "preparing the %s scenario ...\n", cfg.Scenario)
	started = time.Now()
	if err := scenario.Prepare(ctx, &Env{Client: client, Clinics: clinics, Workers: cfg.Concurrency}); err != nil {
		return nil, fmt.Errorf("prepare %s: %w", cfg.Scenario, err)
	}
	stats.PrepareS = seconds(time.Since(started))
	return clinics, nil
}

// plan lays out the load's phases from now on.
func plan(client *Client, scenario Scenario, tracker *Tracker, cfg Config) *load {
	l := &load{client: client, scenario: scenario, tracker: tracker, rate: cfg.Rate, start: time.Now()}
	if _, ok := scenario.(bounded); ok {
		l.measure = l.start
		return l
	}
	l.measure = l.start.Add(cfg.Warmup)
	l.end = l.measure.Add(cfg.Duration)
	return l
}

// describe says what the load will do.
func describe(l *load, cfg Config) string {
	loop := "closed loop"
	if cfg.Rate > 0 {
		loop = fmt.Sprintf("open loop at %g req/s", cfg.Rate)
	}
	if l.end.IsZero() {
		return fmt.Sprintf("one write per clinic, %d workers, %s", cfg.Concurrency, loop)
	}
	return fmt.Sprintf("%v warm-up, then %v measured, %d workers, %s", cfg.Warmup, cfg.Duration, cfg.Concurrency, loop)
}

// rss is the server's resident memory; a failure becomes a warning.
func rss(ctx context.Context, c *Client, rep *Report) int64 {
	n, err := serverRSS(ctx, c)
	if err != nil {
		rep.Warnings = append(rep.Warnings, "no server memory figure: "+err.Error())
	}
	return n
}

// fill sets the request figures from what the window measured: the rates
// count what happened within it, the latencies every measured request.
func (r *Report) fill(t *tally, window time.Duration) {
	r.Answered = len(t.latencies)
	r.Requests = r.Answered + t.transportErrors
	r.Late = t.late
	r.SendRPS = perSecond(r.Requests-t.sentLate, window)
	r.ThroughputRPS = perSecond(r.Answered-t.late, window)
	r.OKRPS = perSecond(t.ok-t.lateOK, window)
	r.LatencyMs = Summarize(t.latencies)
	r.Statuses = t.statuses
	r.TransportErrors, r.TransportErrorSample = t.transportErrors, t.transportSample
	r.RateLimited = countStatus(t.statuses, "429")
}

// warn adds a warning for each figure that makes the run doubtful;
// limited says whether the server sent rate-limit headers.
func (r *Report) warn(limited bool) {
	add := func(format string, args ...any) { r.Warnings = append(r.Warnings, fmt.Sprintf(format, args...)) }
	switch {
	case r.RateLimited > 0:
		add("%d requests were refused with 429 rate_limited: run the server with AURA_RATE_LIMITS=off", r.RateLimited)
	case limited:
		add("the server enforces rate limits (RateLimit-Policy headers): run it with AURA_RATE_LIMITS=off")
	}
	if n := countStatus(r.Statuses, "5"); n > 0 {
		add("%d answers were server errors (5xx)", n)
	}
	if r.TransportErrors > 0 {
		add("%d requests got no answer, e.g. %s", r.TransportErrors, r.TransportErrorSample)
	}
	if r.TargetRPS > 0 && r.SendRPS < 0.95*r.TargetRPS {
		add("the target rate %g req/s was not reached (%.1f sent per second of the window): add --concurrency or lower --rate; latencies include the wait",
			r.TargetRPS, r.SendRPS)
	}
	if e := r.Events; e.Pending > 0 {
		add("%d of %d acknowledged writes showed no event within the %.1f s drain", e.Pending, e.Expected, e.DrainS)
	}
	if r.Events.Duplicates > 0 {
		add("%d events arrived more than once", r.Events.Duplicates)
	}
}
