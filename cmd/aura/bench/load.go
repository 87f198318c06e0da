package bench

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// load sends a scenario's requests from concurrent workers and measures
// those due in the measured window.
type load struct {
	client   *Client
	scenario Scenario
	tracker  *Tracker
	rate     float64   // open-loop requests per second; 0 is closed loop
	start    time.Time // the first request is due
	measure  time.Time // requests due from here on are measured
	end      time.Time // no request is due from here on; zero: until the scenario is done

	slots atomic.Int64 // open-loop slots handed out
	// Live counts of every phase, for the progress line.
	sent   atomic.Int64
	failed atomic.Int64 // non-2xx answers and transport errors
}

// run runs workers until the end (or the scenario is done, or ctx ends) and
// returns their merged measurements and the measured window's length. The
// window is the configured one, from measure to end, however long the
// answers still in flight at its end take; a bounded scenario's lasts until
// its last answer.
func (l *load) run(ctx context.Context, workers int) (*tally, time.Duration) {
	tallies := make([]*tally, workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tallies[i] = l.worker(ctx, rand.New(rand.NewPCG(rand.Uint64(), uint64(i))))
		}()
	}
	wg.Wait()
	window := l.end.Sub(l.measure)
	if l.end.IsZero() {
		window = time.Since(l.measure)
	}
	total := newTally()
	for _, t := range tallies {
		total.merge(t)
	}
	return total, window
}

// worker sends requests until there is no more to send.
func (l *load) worker(ctx context.Context, r *rand.Rand) *tally {
	t := newTally()
	for {
		due, ok := l.due(ctx)
		if !ok {
			return t
		}
		op, ok := l.scenario.Next(r)
		if !ok {
			return t
		}
		measured := !due.Before(l.measure)
		phase := phaseWarmup
		if measured {
			phase = phaseMeasure
		}
		id := l.client.nextID(phase)
		sentLate := l.over(time.Now())
		resp, err := l.client.Do(ctx, op.Method, op.Path, op.Body, id)
		answered := time.Now()
		if ctx.Err() != nil {
			return t // interrupted: not the server's failure
		}
		l.sent.Add(1)
		if measured { // in open loop, the latency counts from when it was due
			t.record(resp, err, answered.Sub(due), sentLate, l.over(answered))
		}
		if err != nil || !resp.OK() {
			l.failed.Add(1)
			continue
		}
		if measured && op.write() && op.Clinic < l.tracker.streams {
			l.tracker.ack(id)
		}
		if op.Done != nil {
			op.Done(resp.Body)
		}
	}
}

// over reports whether the measured window had ended at t; a bounded
// scenario's window lasts until its last answer.
func (l *load) over(t time.Time) bool { return !l.end.IsZero() && !t.Before(l.end) }

// due returns when the worker's next request is due, waiting for that moment
// in open loop; false when no more requests are due.
func (l *load) due(ctx context.Context) (time.Time, bool) {
	due := time.Now()
	if l.rate > 0 {
		slot := l.slots.Add(1) - 1
		due = l.start.Add(time.Duration(float64(slot) * float64(time.Second) / l.rate))
	}
	if !l.end.IsZero() && !due.Before(l.end) {
		return time.Time{}, false
	}
	if wait := time.Until(due); wait > 0 {
		timer := time.NewTimer(wait)
		defer timer.Stop()
		select {
		case <-ctx.Done():
			return time.Time{}, false
		case <-timer.C:
		}
	}
	return due, ctx.Err() == nil
}
