package ratelimit

import (
	"sync"
	"time"
)

// DefaultMaxKeys bounds a Keyed limiter's memory: about 100 bytes a key.
const DefaultMaxKeys = 200_000

// Keyed holds buckets by key (an IP address, a user id) for concurrent use.
// Buckets that are full again are forgotten, which changes no decision, so
// memory follows the keys active within a window; beyond maxKeys even active
// buckets are dropped (their keys start over with a full quota), so memory
// stays bounded whatever the number of distinct keys.
type Keyed struct {
	mu        sync.Mutex
	buckets   map[string]*Bucket
	maxKeys   int
	lastSweep time.Time
}

// sweepEvery is how often Allow forgets the buckets that are full again.
const sweepEvery = time.Minute

// NewKeyed returns an empty limiter holding at most maxKeys buckets
// (DefaultMaxKeys when maxKeys <= 0).
func NewKeyed(maxKeys int) *Keyed {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	return &Keyed{buckets: make(map[string]*Bucket), maxKeys: maxKeys}
}

// Allow counts one request against the buckets of keys[i] under
// policies[i], as Allow does.
func (k *Keyed) Allow(now time.Time, keys []string, policies []Policy) Decision {
	k.mu.Lock()
	defer k.mu.Unlock()
	if now.Sub(k.lastSweep) >= sweepEvery {
		k.sweep(now)
	}
	buckets := make([]*Bucket, len(keys))
	for i, key := range keys {
		b, ok := k.buckets[key]
		if !ok {
			if len(k.buckets) >= k.maxKeys {
				k.evict(now)
			}
			b = &Bucket{}
			k.buckets[key] = b
		}
		buckets[i] = b
	}
	return Allow(now, buckets, policies)
}

// Sweep forgets the buckets that are full again at now.
func (k *Keyed) Sweep(now time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.sweep(now)
}

func (k *Keyed) sweep(now time.Time) {
	k.lastSweep = now
	for key, b := range k.buckets {
		if b.Idle(now) {
			delete(k.buckets, key)
		}
	}
}

// evict makes room for a new key: idle buckets first, then, if the limiter
// is still full, a tenth of the rest (map order: effectively random).
func (k *Keyed) evict(now time.Time) {
	k.sweep(now)
	excess := len(k.buckets) - k.maxKeys*9/10
	for key := range k.buckets {
		if excess <= 0 {
			return
		}
		delete(k.buckets, key)
		excess--
	}
}

// Len is the number of buckets held.
func (k *Keyed) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.buckets)
}
