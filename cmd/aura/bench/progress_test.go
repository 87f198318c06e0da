package bench

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestEvery checks that progress lines come on time and that stop waits for
// the printer, so the run and the ticker can share one writer (run with
// -race).
func TestEvery(t *testing.T) {
	var buf bytes.Buffer
	w := &syncWriter{w: &buf}
	stop := every(w, 5*time.Millisecond, func(elapsed time.Duration) string {
		if elapsed <= 0 {
			return "elapsed not positive"
		}
		return "tick"
	})
	for i := range 20 {
		fmt.Fprintf(w, "run %d\n", i)
		time.Sleep(2 * time.Millisecond)
	}
	stop()
	out := buf.String() // no writer is left: reading unlocked is safe
	if n := strings.Count(out, "tick\n"); n < 2 || strings.Contains(out, "not positive") {
		t.Errorf("%d ticks in 40 ms of 5 ms ticks:\n%s", n, out)
	}
	if strings.Count(out, "run ") != 20 {
		t.Errorf("the run's own lines are lost:\n%s", out)
	}
}
