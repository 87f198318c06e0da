package bench

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Latency is a summary of latencies in milliseconds.
type Latency struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// Summarize returns the nearest-rank percentiles of samples in milliseconds:
// the p-th percentile is the smallest sample that at least p % of the samples
// do not exceed. It sorts samples in place; no samples give zeros.
func Summarize(samples []time.Duration) Latency {
	if len(samples) == 0 {
		return Latency{}
	}
	slices.Sort(samples)
	return Latency{
		P50: millis(percentile(samples, 50)),
		P95: millis(percentile(samples, 95)),
		P99: millis(percentile(samples, 99)),
		Max: millis(samples[len(samples)-1]),
	}
}

// percentile returns the nearest-rank p-th percentile of sorted samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// millis is d in milliseconds, rounded to microseconds.
func millis(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}

// tally is what one worker measured; workers keep their own and the runner
// merges them at the end, so recording needs no lock.
type tally struct {
	latencies       []time.Duration // of answered requests, late ones too
	statuses        map[string]int  // "201", "409 appointment_conflict", ...
	ok              int             // 2xx answers
	late            int             // answers that arrived after the window ended
	lateOK          int             // 2xx ones among them
	sentLate        int             // requests sent after the window ended (open loop behind schedule)
	transportErrors int
	transportSample string // the first transport error's text
}

func newTally() *tally { return &tally{statuses: make(map[string]int)} }

// record records a request's outcome after d: its answer, or err when it
// got none. sentLate and late say whether it was sent, and answered, after
// the measured window ended.
func (t *tally) record(resp Response, err error, d time.Duration, sentLate, late bool) {
	if sentLate {
		t.sentLate++
	}
	if err != nil {
		t.failed(err)
		return
	}
	t.answered(resp.Status, resp.Code, d, late)
}

// answered records a request the server answered with status (and, for a
// problem, its code) after d; late says the answer arrived after the
// measured window ended: its latency counts, but not in the throughput.
func (t *tally) answered(status int, code string, d time.Duration, late bool) {
	t.latencies = append(t.latencies, d)
	t.statuses[statusKey(status, code)]++
	ok := isOK(status)
	if ok {
		t.ok++
	}
	if late {
		t.late++
		if ok {
			t.lateOK++
		}
	}
}

// failed records a request that got no answer.
func (t *tally) failed(err error) {
	if t.transportErrors == 0 {
		t.transportSample = err.Error()
	}
	t.transportErrors++
}

// merge adds o's figures to t.
func (t *tally) merge(o *tally) {
	t.latencies = append(t.latencies, o.latencies...)
	for k, n := range o.statuses {
		t.statuses[k] += n
	}
	t.ok += o.ok
	t.late += o.late
	t.lateOK += o.lateOK
	t.sentLate += o.sentLate
	if t.transportErrors == 0 {
		t.transportSample = o.transportSample
	}
	t.transportErrors += o.transportErrors
}

// statusKey names an answer in the status counts: the status alone for a
// success, the status and the problem's code otherwise.
func statusKey(status int, code string) string {
	key := strconv.Itoa(status)
	if !isOK(status) && code != "" {
		key += " " + code
	}
	return key
}

func isOK(status int) bool { return status >= 200 && status < 300 }

// countStatus counts the answers among statuses whose key starts with
// prefix: "429" for rate-limited ones, "5" for server errors (keys start
// with a three-digit status).
func countStatus(statuses map[string]int, prefix string) int {
	n := 0
	for k, c := range statuses {
		if strings.HasPrefix(k, prefix) {
			n += c
		}
	}
	return n
}
