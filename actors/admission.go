package actors

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/aura-clinic/aura/actors/ratelimit"
)

// Admit counts one request of user, of class, against the clinic's user and
// clinic buckets. They are the clinic actor's state but are read and written
// beside its mailbox, under their own lock, so a read never waits behind the
// clinic's writes. A refused request consumes nothing. With no limits
// configured it allows everything without touching the registry.
func (r *Registry) Admit(_ context.Context, clinicID, user uuid.UUID, class ratelimit.Class) (ratelimit.Decision, error) {
	if !r.cfg.Limits.Enabled() {
		return ratelimit.Decision{Allowed: true}, nil
	}
	e, err := r.acquire(clinicID)
	if err != nil {
		return ratelimit.Decision{}, err
	}
	defer r.release(clinicID)
	return e.rates.admit(time.Now(), user, class), nil
}

// maxIdleUsers is how many users' buckets a clinic actor keeps before it
// forgets those that are full again.
const maxIdleUsers = 1024

// rateState is a clinic's buckets: one set per user, one for the clinic.
type rateState struct {
	mu     sync.Mutex
	limits ratelimit.Limits
	clinic ratelimit.Classes
	users  map[uuid.UUID]*ratelimit.Classes
}

func newRateState(limits ratelimit.Limits) *rateState {
	return &rateState{limits: limits, users: make(map[uuid.UUID]*ratelimit.Classes)}
}

func (s *rateState) admit(now time.Time, user uuid.UUID, class ratelimit.Class) ratelimit.Decision {
	s.mu.Lock()
	defer s.mu.Unlock()
	var buckets []*ratelimit.Bucket
	var policies []ratelimit.Policy
	if p, ok := s.limits.Policy(ratelimit.ScopeUser, class); ok {
		buckets = append(buckets, s.userBuckets(now, user).Bucket(class))
		policies = append(policies, p)
	}
	if p, ok := s.limits.Policy(ratelimit.ScopeClinic, class); ok {
		buckets = append(buckets, s.clinic.Bucket(class))
		policies = append(policies, p)
	}
	return ratelimit.Allow(now, buckets, policies)
}

func (s *rateState) userBuckets(now time.Time, user uuid.UUID) *ratelimit.Classes {
	if b, ok := s.users[user]; ok {
		return b
	}
	if len(s.users) >= maxIdleUsers {
		for id, b := range s.users {
			if b.Idle(now) {
				delete(s.users, id)
			}
		}
	}
	b := &ratelimit.Classes{}
	s.users[user] = b
	return b
}
