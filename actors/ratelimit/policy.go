// Package ratelimit decides whether a request may proceed under Aura's rate
// limits: GCRA (the generic cell rate algorithm, a token bucket without a
// refill loop) over one "theoretical arrival time" per bucket, so each key
// costs O(1) memory and a full window's quota may be spent as a burst.
//
// Policies are per scope (ip, user, clinic) and class (read, write,
// payments). The edge keeps the ip buckets (and user buckets of routes
// outside a clinic) in a Keyed limiter; each clinic actor keeps its user and
// clinic buckets as plain Buckets, touched only by that actor.
package ratelimit

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Scope is who a bucket counts.
type Scope string

// The scopes every request is counted against.
const (
	ScopeIP     Scope = "ip"
	ScopeUser   Scope = "user"
	ScopeClinic Scope = "clinic"
)

// Class is the kind of request a bucket counts.
type Class string

// The classes of request.
const (
	ClassRead     Class = "read"     // GET, HEAD
	ClassWrite    Class = "write"    // every other method
	ClassPayments Class = "payments" // creating payments and refunds
)

var (
	scopes  = []Scope{ScopeIP, ScopeUser, ScopeClinic}
	classes = []Class{ClassRead, ClassWrite, ClassPayments}
)

// Policy is a quota of requests per window for one scope and class.
type Policy struct {
	Scope  Scope
	Class  Class
	Quota  int
	Window time.Duration
}

// Name is the policy's name in headers, e.g. "user-write".
func (p Policy) Name() string { return string(p.Scope) + "-" + string(p.Class) }

// interval is the time one request "costs": Window / Quota.
func (p Policy) interval() int64 { return int64(p.Window) / int64(p.Quota) }

// Limits are the policies in force. The zero value limits nothing.
type Limits struct {
	policies map[Scope]map[Class]Policy
}

// Enabled reports whether any policy is in force.
func (l Limits) Enabled() bool { return len(l.policies) > 0 }

// Policy returns the policy of scope and class.
func (l Limits) Policy(s Scope, c Class) (Policy, bool) {
	p, ok := l.policies[s][c]
	return p, ok
}

// MaxWindow is the longest window of any policy (0 when none): after that
// long unused, every bucket is whole again.
func (l Limits) MaxWindow() time.Duration {
	var w time.Duration
	for _, byClass := range l.policies {
		for _, p := range byClass {
			w = max(w, p.Window)
		}
	}
	return w
}

// Default is Aura's default limits, per minute: ip 1200 read, 300 write,
// 60 payments; user 600, 120, 30; clinic 3000, 600, 120.
func Default() Limits {
	quotas := map[Scope][3]int{
		ScopeIP:     {1200, 300, 60},
		ScopeUser:   {600, 120, 30},
		ScopeClinic: {3000, 600, 120},
	}
	l := Limits{policies: map[Scope]map[Class]Policy{}}
	for s, q := range quotas {
		l.policies[s] = map[Class]Policy{}
		for i, c := range classes {
			l.policies[s][c] = Policy{Scope: s, Class: c, Quota: q[i], Window: time.Minute}
		}
	}
	return l
}

// Parse reads AURA_RATE_LIMITS: "" means the defaults, "off" disables
// limiting, otherwise a comma-separated list of scope.class=N/unit (unit s,
// m or h) overriding the defaults, e.g. "ip.read=100/s,user.payments=10/m".
func Parse(s string) (Limits, error) {
	s = strings.TrimSpace(s)
	if s == "off" {
		return Limits{}, nil
	}
	l := Default()
	if s == "" {
		return l, nil
	}
	for _, item := range strings.Split(s, ",") {
		p, err := parsePolicy(strings.TrimSpace(item))
		if err != nil {
			return Limits{}, err
		}
		l.policies[p.Scope][p.Class] = p
	}
	return l, nil
}

func parsePolicy(item string) (Policy, error) {
	bad := func(why string) (Policy, error) {
		return Policy{}, fmt.Errorf("rate limit %q: %s (want scope.class=N/unit, e.g. user.write=120/m)", item, why)
	}
	name, rate, ok := strings.Cut(item, "=")
	if !ok {
		return bad("no '='")
	}
	scope, class, ok := strings.Cut(name, ".")
	if !ok || !contains(scopes, Scope(scope)) {
		return bad("scope must be ip, user or clinic")
	}
	if !contains(classes, Class(class)) {
		return bad("class must be read, write or payments")
	}
	count, unit, ok := strings.Cut(rate, "/")
	n, err := strconv.Atoi(count)
	if !ok || err != nil || n < 1 || n > 1_000_000_000 {
		return bad("N must be a whole number from 1")
	}
	windows := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}
	w, ok := windows[unit]
	if !ok {
		return bad("unit must be s, m or h")
	}
	return Policy{Scope: Scope(scope), Class: Class(class), Quota: n, Window: w}, nil
}

func contains[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
