package messaging

import (
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
)

// The PostgreSQL subscribers' back-off: waits doubling from MinPollInterval
// to PollInterval while queries find nothing, back to the start after a
// query that found messages (which is followed by another at once); a lock
// conflict between members of a group is retried at once, any other error
// after pollRetryInterval.
func TestPollBackoff(t *testing.T) {
	b := &pollBackoff{next: PollInterval}
	logger := watermill.NopLogger{}
	empty := func() time.Duration { return b.HandleError(logger, true, nil) }
	if got := empty(); got != PollInterval {
		t.Errorf("idle: waits %v, want %v", got, PollInterval)
	}
	if got := b.HandleError(logger, false, nil); got != 0 {
		t.Errorf("after messages: waits %v, want 0", got)
	}
	want := []time.Duration{MinPollInterval, 2 * MinPollInterval, 4 * MinPollInterval, 8 * MinPollInterval, PollInterval, PollInterval}
	for i, w := range want {
		if got := empty(); got != min(w, PollInterval) {
			t.Errorf("empty query %d after messages: waits %v, want %v", i+1, got, min(w, PollInterval))
		}
	}
	conflict := errors.New("could not query message: ERROR: could not serialize access due to concurrent update (SQLSTATE 40001)")
	if got := b.HandleError(logger, false, conflict); got != 0 {
		t.Errorf("lock conflict: waits %v, want 0", got)
	}
	if got := b.HandleError(logger, false, errors.New("connection refused")); got != pollRetryInterval {
		t.Errorf("error: waits %v, want %v", got, pollRetryInterval)
	}
	if got := empty(); got != PollInterval {
		t.Errorf("errors change the empty-query wait: %v, want %v", got, PollInterval)
	}
}
