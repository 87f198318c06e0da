package bench

import (
	"fmt"
	"io"
	"time"
)

// every writes line(elapsed) to w once a second until the returned function
// is called; that function returns once the last line is written, so w is
// the caller's again.
func every(w io.Writer, line func(elapsed time.Duration) string) (stop func()) {
	start := time.Now()
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case now := <-tick.C:
				fmt.Fprintln(w, line(now.Sub(start)))
			}
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}

// setupProgress is the setup's progress line: resources created so far.
func setupProgress(c *Client) func(time.Duration) string {
	return func(elapsed time.Duration) string {
		return fmt.Sprintf("%6.1fs setup    %8d created", elapsed.Seconds(), c.created.Load())
	}
}

// loadProgress is the load's progress line: phase, requests so far, the
// last second's rate, errors and the writes whose events are still expected.
func loadProgress(l *load) func(time.Duration) string {
	var last int64
	return func(elapsed time.Duration) string {
		phase := "measure"
		if time.Now().Before(l.measure) {
			phase = "warm-up"
		}
		sent := l.sent.Load()
		rate := sent - last
		last = sent
		return fmt.Sprintf("%6.1fs %-7s  requests %8d  rate %7d/s  errors %6d  events pending %6d",
			elapsed.Seconds(), phase, sent, rate, l.failed.Load(), l.tracker.Pending())
	}
}
