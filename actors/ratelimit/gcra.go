package ratelimit

import (
	"math"
	"time"
)

// Bucket is one key's GCRA state: its theoretical arrival time (TAT), in
// Unix nanoseconds. The zero Bucket is full.
type Bucket struct {
	tat int64
}

// Idle reports whether the bucket is full again at now, so forgetting it
// changes nothing.
func (b Bucket) Idle(now time.Time) bool { return b.tat <= now.UnixNano() }

// Status is one policy's state after a decision, for the RateLimit headers.
type Status struct {
	Policy    Policy
	Remaining int           // requests that may still be made now
	Reset     time.Duration // until the quota is whole again
	// RetryAfter is, for a request that was refused, how long until it
	// would pass; zero when it was allowed.
	RetryAfter time.Duration
}

// Exhausted reports whether the policy refused the request.
func (s Status) Exhausted() bool { return s.RetryAfter > 0 }

// check is GCRA for one more request at now: its status and, if allowed,
// the bucket's next TAT.
func (b Bucket) check(now int64, p Policy) (Status, int64) {
	t := p.interval()
	window := int64(p.Window)
	tat := max(b.tat, now)
	next := tat + t
	if allowAt := next - window; now < allowAt {
		return Status{
			Policy:     p,
			Remaining:  0,
			Reset:      time.Duration(tat - now),
			RetryAfter: time.Duration(allowAt - now),
		}, b.tat
	}
	return Status{
		Policy:    p,
		Remaining: int((window - (next - now)) / t),
		Reset:     time.Duration(next - now),
	}, next
}

// Decision is the outcome of counting one request against its buckets.
type Decision struct {
	Allowed  bool
	Statuses []Status // one per policy, in the order they were checked
}

// Allow counts one request against every bucket under its policy (buckets[i]
// under policies[i]). The request passes only if every bucket has room; a
// refused request consumes nothing.
func Allow(now time.Time, buckets []*Bucket, policies []Policy) Decision {
	ns := now.UnixNano()
	d := Decision{Allowed: true, Statuses: make([]Status, len(buckets))}
	next := make([]int64, len(buckets))
	for i, b := range buckets {
		d.Statuses[i], next[i] = b.check(ns, policies[i])
		if d.Statuses[i].Exhausted() {
			d.Allowed = false
		}
	}
	if d.Allowed {
		for i, b := range buckets {
			b.tat = next[i]
		}
	}
	return d
}

// Merge combines decisions taken at several places (the edge, the clinic
// actor) about one request.
func Merge(ds ...Decision) Decision {
	out := Decision{Allowed: true}
	for _, d := range ds {
		out.Allowed = out.Allowed && d.Allowed
		out.Statuses = append(out.Statuses, d.Statuses...)
	}
	return out
}

// MostRestrictive is the status the RateLimit headers report: an exhausted
// policy first (the one that frees last), else the one with the fewest
// requests left relative to its quota.
func (d Decision) MostRestrictive() (Status, bool) {
	var best Status
	found := false
	for _, s := range d.Statuses {
		if !found || tighter(s, best) {
			best, found = s, true
		}
	}
	return best, found
}

func tighter(a, b Status) bool {
	if a.Exhausted() != b.Exhausted() {
		return a.Exhausted()
	}
	if a.Exhausted() {
		return a.RetryAfter > b.RetryAfter
	}
	ra := float64(a.Remaining) / float64(a.Policy.Quota)
	rb := float64(b.Remaining) / float64(b.Policy.Quota)
	if ra != rb {
		return ra < rb
	}
	return a.Remaining < b.Remaining
}

// RetryAfter is how long a refused request must wait: until every exhausted
// policy lets it through.
func (d Decision) RetryAfter() time.Duration {
	var wait time.Duration
	for _, s := range d.Statuses {
		wait = max(wait, s.RetryAfter)
	}
	return wait
}

// Violated names the exhausted policies.
func (d Decision) Violated() []string {
	var names []string
	for _, s := range d.Statuses {
		if s.Exhausted() {
			names = append(names, s.Policy.Name())
		}
	}
	return names
}

// Seconds rounds a duration up to whole seconds, as headers carry it: never
// earlier than the moment it stands for.
func Seconds(d time.Duration) int64 {
	return int64(math.Ceil(d.Seconds()))
}

// Classes holds one bucket per class, for one key.
type Classes struct {
	read, write, payments Bucket
}

// Bucket returns the bucket of class c.
func (cs *Classes) Bucket(c Class) *Bucket {
	switch c {
	case ClassRead:
		return &cs.read
	case ClassPayments:
		return &cs.payments
	default:
		return &cs.write
	}
}

// Idle reports whether every bucket is full again at now.
func (cs *Classes) Idle(now time.Time) bool {
	return cs.read.Idle(now) && cs.write.Idle(now) && cs.payments.Idle(now)
}
