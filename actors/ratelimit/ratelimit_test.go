package ratelimit_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aura-clinic/aura/actors/ratelimit"
)

var t0 = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

func policy(quota int, window time.Duration) ratelimit.Policy {
	return ratelimit.Policy{Scope: ratelimit.ScopeUser, Class: ratelimit.ClassWrite, Quota: quota, Window: window}
}

func allow(b *ratelimit.Bucket, now time.Time, p ratelimit.Policy) ratelimit.Decision {
	return ratelimit.Allow(now, []*ratelimit.Bucket{b}, []ratelimit.Policy{p})
}

// A full window's quota passes as a burst, the next request is refused with
// the wait until one request's worth of quota is back, and after that wait
// exactly one more passes.
func TestBurstThenRefill(t *testing.T) {
	p := policy(5, time.Minute) // one request every 12 s
	var b ratelimit.Bucket
	for i := 0; i < 5; i++ {
		d := allow(&b, t0, p)
		if !d.Allowed {
			t.Fatalf("request %d refused within the quota", i+1)
		}
		if got, want := d.Statuses[0].Remaining, 4-i; got != want {
			t.Errorf("request %d: remaining %d, want %d", i+1, got, want)
		}
	}
	d := allow(&b, t0, p)
	if d.Allowed {
		t.Fatal("request over the quota allowed")
	}
	if got := d.RetryAfter(); got != 12*time.Second {
		t.Errorf("retry after %v, want 12s", got)
	}
	if got := d.Violated(); len(got) != 1 || got[0] != "user-write" {
		t.Errorf("violated %v", got)
	}
	if d := allow(&b, t0.Add(12*time.Second-time.Nanosecond), p); d.Allowed {
		t.Error("allowed before Retry-After elapsed")
	}
	if d := allow(&b, t0.Add(12*time.Second), p); !d.Allowed {
		t.Error("refused after Retry-After elapsed")
	}
	if d := allow(&b, t0.Add(12*time.Second), p); d.Allowed {
		t.Error("a second request passed on one interval's refill")
	}
}

// Reset is the time until the whole quota is back; a bucket left alone that
// long is idle, and forgetting it changes nothing.
func TestResetAndIdle(t *testing.T) {
	p := policy(10, 10*time.Second)
	var b ratelimit.Bucket
	allow(&b, t0, p)
	d := allow(&b, t0, p)
	if got := d.Statuses[0].Reset; got != 2*time.Second {
		t.Errorf("reset %v, want 2s", got)
	}
	if b.Idle(t0.Add(time.Second)) {
		t.Error("idle while quota is still spent")
	}
	if !b.Idle(t0.Add(2 * time.Second)) {
		t.Error("not idle once the quota is whole")
	}
}

// A request refused by one bucket consumes nothing from the others.
func TestAllowIsAllOrNothing(t *testing.T) {
	user, clinic := policy(1, time.Minute), policy(10, time.Minute)
	clinic.Scope = ratelimit.ScopeClinic
	var ub, cb ratelimit.Bucket
	both := func() ratelimit.Decision {
		return ratelimit.Allow(t0, []*ratelimit.Bucket{&ub, &cb}, []ratelimit.Policy{user, clinic})
	}
	if !both().Allowed {
		t.Fatal("first request refused")
	}
	for i := 0; i < 5; i++ {
		if both().Allowed {
			t.Fatal("allowed over the user quota")
		}
	}
	var other ratelimit.Bucket
	d := ratelimit.Allow(t0, []*ratelimit.Bucket{&other, &cb}, []ratelimit.Policy{user, clinic})
	if got := d.Statuses[1].Remaining; got != 8 {
		t.Errorf("clinic remaining %d after 2 allowed requests, want 8 (refused ones consumed)", got)
	}
}

// The most restrictive status is an exhausted one if any, else the one with
// the smallest share of its quota left.
func TestMostRestrictive(t *testing.T) {
	ip := ratelimit.Policy{Scope: ratelimit.ScopeIP, Class: ratelimit.ClassRead, Quota: 100, Window: time.Minute}
	user := ratelimit.Policy{Scope: ratelimit.ScopeUser, Class: ratelimit.ClassRead, Quota: 4, Window: time.Minute}
	var ib, ub ratelimit.Bucket
	d := ratelimit.Allow(t0, []*ratelimit.Bucket{&ib, &ub}, []ratelimit.Policy{ip, user})
	s, ok := d.MostRestrictive()
	if !ok || s.Policy.Name() != "user-read" || s.Remaining != 3 {
		t.Errorf("most restrictive %+v", s)
	}
	if _, ok := (ratelimit.Decision{Allowed: true}).MostRestrictive(); ok {
		t.Error("a decision with no policies has a most restrictive one")
	}
}

// Seconds rounds up, so Retry-After is never earlier than the moment a
// request passes.
func TestSecondsRoundsUp(t *testing.T) {
	for d, want := range map[time.Duration]int64{0: 0, time.Nanosecond: 1, time.Second: 1, 1001 * time.Millisecond: 2, time.Minute: 60} {
		if got := ratelimit.Seconds(d); got != want {
			t.Errorf("Seconds(%v) = %d, want %d", d, got, want)
		}
	}
}

// Parse: empty is the defaults, "off" limits nothing, items override
// defaults, malformed items are errors naming the item.
func TestParse(t *testing.T) {
	l, err := ratelimit.Parse("")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"ip-read": 1200, "ip-write": 300, "ip-payments": 60, "user-read": 600, "user-write": 120,
		"user-payments": 30, "clinic-read": 3000, "clinic-write": 600, "clinic-payments": 120}
	for _, s := range []ratelimit.Scope{ratelimit.ScopeIP, ratelimit.ScopeUser, ratelimit.ScopeClinic} {
		for _, c := range []ratelimit.Class{ratelimit.ClassRead, ratelimit.ClassWrite, ratelimit.ClassPayments} {
			p, ok := l.Policy(s, c)
			if !ok || p.Quota != want[p.Name()] || p.Window != time.Minute {
				t.Errorf("default %s.%s = %+v", s, c, p)
			}
		}
	}
	if off, err := ratelimit.Parse("off"); err != nil || off.Enabled() {
		t.Errorf("off: %v, enabled %v", err, off.Enabled())
	}
	l, err = ratelimit.Parse(" ip.read=5/s , user.payments=2/h")
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := l.Policy(ratelimit.ScopeIP, ratelimit.ClassRead); p.Quota != 5 || p.Window != time.Second {
		t.Errorf("ip.read = %+v", p)
	}
	if p, _ := l.Policy(ratelimit.ScopeUser, ratelimit.ClassPayments); p.Quota != 2 || p.Window != time.Hour {
		t.Errorf("user.payments = %+v", p)
	}
	if p, _ := l.Policy(ratelimit.ScopeClinic, ratelimit.ClassWrite); p.Quota != 600 {
		t.Errorf("untouched default clinic.write = %+v", p)
	}
	for _, bad := range []string{"ip.read", "ip.read=5", "ip.read=5/d", "ip.read=0/s", "ip.read=-1/s", "ip.read=x/s",
		"ipv6.read=5/s", "ip.delete=5/s", "ip=5/s", "ip.read=5/s,", "Off", "ip.read=5/s;user.read=1/s"} {
		if _, err := ratelimit.Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		} else if !strings.Contains(err.Error(), "want scope.class=N/unit") {
			t.Errorf("Parse(%q) error %q does not say the syntax", bad, err)
		}
	}
}

// Parallel requests on one key never let more through than the quota.
func TestKeyedParallel(t *testing.T) {
	k := ratelimit.NewKeyed(0)
	p := policy(50, time.Hour)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if k.Allow(t0, []string{"u"}, []ratelimit.Policy{p}).Allowed {
				mu.Lock()
				allowed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if allowed != 50 {
		t.Errorf("%d requests allowed, want exactly 50", allowed)
	}
}

// 100k distinct keys never hold more than maxKeys buckets, and buckets that
// are full again are forgotten.
func TestKeyedEvictionBoundsMemory(t *testing.T) {
	const maxKeys = 10_000
	k := ratelimit.NewKeyed(maxKeys)
	p := policy(10, time.Minute)
	for i := 0; i < 100_000; i++ {
		k.Allow(t0, []string{fmt.Sprintf("203.0.%d.%d", i/256, i%256)}, []ratelimit.Policy{p})
		if n := k.Len(); n > maxKeys {
			t.Fatalf("%d buckets after %d keys, above the bound %d", n, i+1, maxKeys)
		}
	}
	k.Sweep(t0.Add(time.Minute))
	if n := k.Len(); n != 0 {
		t.Errorf("%d buckets left after every bucket refilled", n)
	}
	// Idle buckets also go on their own as requests keep coming.
	k.Allow(t0, []string{"a"}, []ratelimit.Policy{p})
	k.Allow(t0.Add(2*time.Minute), []string{"b"}, []ratelimit.Policy{p})
	if n := k.Len(); n != 1 {
		t.Errorf("%d buckets, want only the fresh one", n)
	}
}
