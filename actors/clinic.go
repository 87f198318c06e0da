package actors

import (
	"context"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/aura-clinic/aura/schema/store"
)

// request asks a clinic actor to run a job and answer on reply.
type request struct {
	ctx   context.Context
	meta  Meta
	job   job
	reply chan result // buffered: the actor never blocks on a caller that left
}

// clinicActor executes one clinic's writes one at a time, in mailbox order.
// It holds the clinic's recently used idempotency keys,
// so that a replay needs no database round trip (the database row stays
// authoritative: the cache only holds committed records, which never change
// until they expire).
type clinicActor struct {
	exec    *Executor
	keys    *lru.Cache[scopeOf, store.IdempotencyRecord]
	stopped chan struct{} // closed once the actor has stopped
}

func newClinicActor(exec *Executor, cfg Config, stopped chan struct{}) *clinicActor {
	keys, err := lru.New[scopeOf, store.IdempotencyRecord](cfg.IdempotencyCacheSize)
	if err != nil {
		panic(err) // unreachable: the registry's config makes the size positive
	}
	return &clinicActor{exec: exec, keys: keys, stopped: stopped}
}

// Receive implements actor.Actor.
func (a *clinicActor) Receive(c actor.Context) {
	switch msg := c.Message().(type) {
	case *request:
		msg.reply <- a.handle(msg)
	case *actor.Stopped:
		close(a.stopped)
	}
}

// handle answers a request from the key cache when it can, else runs it.
func (a *clinicActor) handle(req *request) result {
	key := req.meta.Idempotency
	if key == nil {
		return a.exec.run(req.ctx, req.meta, req.job)
	}
	scope := scopeOf{user: req.meta.UserID, key: key.Key}
	if rec, ok := a.keys.Get(scope); ok && time.Now().Before(rec.ExpiresAt) {
		return replay(rec, key)
	}
	res := a.exec.run(req.ctx, req.meta, req.job)
	if res.record != nil {
		// The record's expiry is the database's clock; never cache past this
		// host's own view of the TTL, in case the clocks differ.
		rec := *res.record
		if local := time.Now().Add(a.exec.idempotencyTTL); local.Before(rec.ExpiresAt) {
			rec.ExpiresAt = local
		}
		a.keys.Add(scope, rec)
	}
	return res
}
