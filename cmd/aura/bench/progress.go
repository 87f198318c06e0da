package bench

import (
	"fmt"
	"io"
	"time"
)

// showProgress prints a line to w every second until stop is closed:
// elapsed time and phase, requests so far, the last second's rate, errors
// and the events still expected.
func showProgress(w io.Writer, l *load, stop <-chan struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last int64
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			phase := "measure"
			if now.Before(l.measure) {
				phase = "warm-up"
			}
			sent := l.sent.Load()
			fmt.Fprintf(w, "%6.1fs %-7s  requests %8d  rate %7d/s  errors %6d  events pending %6d\n",
				now.Sub(l.start).Seconds(), phase, sent, sent-last, l.failed.Load(), l.tracker.Pending())
			last = sent
		}
	}
}
