package handlers

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/aura-clinic/aura/actors/fault"
	"github.com/aura-clinic/aura/actors/ratelimit"
)

// errRateLimited refuses a request over a rate limit.
var errRateLimited = fault.Define("rate_limited", fault.RateLimited, "Too many requests")

// Rate-limit headers, in the syntax of draft-ietf-httpapi-ratelimit-headers-10.
const (
	RateLimitHeader       = "RateLimit"
	RateLimitPolicyHeader = "RateLimit-Policy"
)

// classOf is a route's rate class: read for GET and HEAD, write otherwise,
// unless the route says payments.
func classOf(method string) ratelimit.Class {
	if method == http.MethodGet || method == http.MethodHead {
		return ratelimit.ClassRead
	}
	return ratelimit.ClassWrite
}

// limitEdge counts the request against the buckets the edge keeps: the
// client IP's (before authentication) or, for a signed-in user on a route
// outside any clinic, the user's. It records the decision for the headers
// and returns errRateLimited when the request must wait.
func (s *Server) limitEdge(r *http.Request, scope ratelimit.Scope, key string, class ratelimit.Class) error {
	p, ok := s.cfg.Limits.Policy(scope, class)
	if !ok {
		return nil
	}
	d := s.edgeBuckets.Allow(time.Now(), []string{string(scope) + "|" + string(class) + "|" + key}, []ratelimit.Policy{p})
	return record(r, d)
}

// record adds a decision to the request's rate state; a refusal is an error.
func record(r *http.Request, d ratelimit.Decision) error {
	info := infoFrom(r.Context())
	info.limits = ratelimit.Merge(info.limits, d)
	if !d.Allowed {
		return errRateLimited.Errorf("Too many %s requests; retry after the time in Retry-After.", d.Statuses[0].Policy.Class)
	}
	return nil
}

// writeRateHeaders reports the most restrictive policy the request was
// counted against, and on a refusal when to retry.
func writeRateHeaders(h http.Header, d ratelimit.Decision) {
	s, ok := d.MostRestrictive()
	if !ok {
		return
	}
	name := s.Policy.Name()
	h.Set(RateLimitPolicyHeader, fmt.Sprintf("%q;q=%d;w=%d", name, s.Policy.Quota, ratelimit.Seconds(s.Policy.Window)))
	h.Set(RateLimitHeader, fmt.Sprintf("%q;r=%d;t=%d", name, s.Remaining, ratelimit.Seconds(s.Reset)))
	if !d.Allowed {
		h.Set("Retry-After", fmt.Sprint(ratelimit.Seconds(d.RetryAfter())))
	}
}

// ParseTrustedProxies reads a comma-separated list of CIDR prefixes (a bare
// address is a single-host prefix).
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var prefixes []netip.Prefix
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if !strings.Contains(item, "/") {
			addr, err := netip.ParseAddr(item)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q is not an address or CIDR prefix", item)
			}
			prefixes = append(prefixes, netip.PrefixFrom(addr, addr.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(item)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q is not an address or CIDR prefix", item)
		}
		prefixes = append(prefixes, p.Masked())
	}
	return prefixes, nil
}

// clientIP is the address the ip buckets count: the TCP peer, or, when the
// peer is a trusted proxy, the right-most X-Forwarded-For address that is not
// itself a trusted proxy (addresses further left are the client's to forge).
func (s *Server) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	peer = peer.Unmap()
	if !s.trusted(peer) {
		return peer.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		addr, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a malformed hop: trust nothing beyond it
		}
		addr = addr.Unmap()
		if !s.trusted(addr) {
			return addr.String()
		}
		peer = addr
	}
	return peer.String()
}

func (s *Server) trusted(addr netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
