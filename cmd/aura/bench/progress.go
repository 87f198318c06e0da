package bench

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// syncWriter lets the progress ticker and the run write to one writer.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// progressInterval is how often progress lines are written.
const progressInterval = time.Second

// every writes line(elapsed) to w every interval until the returned function
// is called; that function returns once the last line is written.
func every(w io.Writer, interval time.Duration, line func(elapsed time.Duration) string) (stop func()) {
	start := time.Now()
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(interval)
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
