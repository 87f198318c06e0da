package ratelimit_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aura-clinic/aura/actors/ratelimit"
)

// benchKeys is how many distinct keys the many-keys variants cycle through.
const benchKeys = 10_000

// BenchmarkDecision measures one GCRA decision on the real clock
// (time.Now), as the edge and the clinic actors take it:
//
//   - bucket/allowed and bucket/refused: ratelimit.Allow on one plain Bucket
//     (a clinic actor's bucket), under a quota too high to reach and under
//     one already spent;
//   - keyed/one-key and keyed/many-keys: Keyed.Allow, the edge's ip buckets,
//     on one key or cycling through 10,000, serial and parallel (one shared
//     lock).
//
// Each decision is checked, so a wrong answer fails the benchmark.
func BenchmarkDecision(b *testing.B) {
	// open is never exhausted at these rates: every request must pass.
	open := []ratelimit.Policy{{Scope: ratelimit.ScopeIP, Class: ratelimit.ClassRead, Quota: 1_000_000_000, Window: time.Second}}

	b.Run("bucket/allowed", func(b *testing.B) {
		bucket := []*ratelimit.Bucket{new(ratelimit.Bucket)}
		b.ReportAllocs()
		for b.Loop() {
			if d := ratelimit.Allow(time.Now(), bucket, open); !d.Allowed {
				b.Fatalf("refused: %+v", d)
			}
		}
	})
	b.Run("bucket/refused", func(b *testing.B) {
		spent := []ratelimit.Policy{{Scope: ratelimit.ScopeUser, Class: ratelimit.ClassWrite, Quota: 1, Window: time.Hour}}
		bucket := []*ratelimit.Bucket{new(ratelimit.Bucket)}
		if d := ratelimit.Allow(time.Now(), bucket, spent); !d.Allowed {
			b.Fatal("first request refused")
		}
		b.ReportAllocs()
		for b.Loop() {
			if d := ratelimit.Allow(time.Now(), bucket, spent); d.Allowed || d.RetryAfter() <= 0 {
				b.Fatalf("allowed over the quota: %+v", d)
			}
		}
	})

	keys := make([][]string, benchKeys)
	for i := range keys {
		keys[i] = []string{fmt.Sprintf("ip|read|10.%d.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff)}
	}
	allow := func(k *ratelimit.Keyed, key []string) error {
		if d := k.Allow(time.Now(), key, open); !d.Allowed {
			return fmt.Errorf("%s refused: %+v", key[0], d)
		}
		return nil
	}
	for _, c := range []struct {
		name string
		keys int
	}{{"keyed/one-key", 1}, {"keyed/many-keys", benchKeys}} {
		b.Run(c.name+"/serial", func(b *testing.B) {
			k := ratelimit.NewKeyed(0)
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				if err := allow(k, keys[i%c.keys]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run(c.name+"/parallel", func(b *testing.B) {
			k := ratelimit.NewKeyed(0)
			var offset atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := int(offset.Add(997)) // each goroutine starts elsewhere
				for pb.Next() {
					if err := allow(k, keys[i%c.keys]); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
		})
	}
}
