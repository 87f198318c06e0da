package actors

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/aura-clinic/aura/actors/ratelimit"
)

// admission asks a clinic actor to count a request against its buckets.
type admission struct {
	user  uuid.UUID
	class ratelimit.Class
	reply chan ratelimit.Decision // buffered
}

// Admit counts one request of user, of class, against the clinic's user and
// clinic buckets, held by the clinic's actor. It consumes nothing when the
// request is refused. With no limits configured it allows everything
// without asking the actor.
func (r *Registry) Admit(ctx context.Context, clinicID, user uuid.UUID, class ratelimit.Class) (ratelimit.Decision, error) {
	if !r.cfg.Limits.Enabled() {
		return ratelimit.Decision{Allowed: true}, nil
	}
	msg := &admission{user: user, class: class, reply: make(chan ratelimit.Decision, 1)}
	if err := r.send(clinicID, msg); err != nil {
		return ratelimit.Decision{}, err
	}
	return await(ctx, r, clinicID, msg.reply)
}

// maxIdleUsers is how many users' buckets a clinic actor keeps before it
// forgets those that are full again.
const maxIdleUsers = 1024

// rateState is a clinic actor's buckets: one set per user, one for the
// clinic. Only the actor touches it, so it needs no lock.
type rateState struct {
	limits ratelimit.Limits
	clinic ratelimit.Classes
	users  map[uuid.UUID]*ratelimit.Classes
}

func newRateState(limits ratelimit.Limits) rateState {
	return rateState{limits: limits, users: make(map[uuid.UUID]*ratelimit.Classes)}
}

func (s *rateState) admit(now time.Time, user uuid.UUID, class ratelimit.Class) ratelimit.Decision {
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
