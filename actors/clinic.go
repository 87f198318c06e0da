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

// flush asks a clinic actor to run the requests it has queued.
type flush struct{}

// clinicActor executes one clinic's writes in mailbox order, committing the
// writes that queued while a transaction ran together in the next one (group
// commit): a request is queued, and the first to find no flush pending sends
// the actor a flush message, which arrives after every request already in the
// mailbox. Each caller is answered after the commit.
//
// It holds the clinic's recently used idempotency keys, so that a replay
// needs no database round trip (the database row stays authoritative: the
// cache only holds committed records, which never change until they expire).
type clinicActor struct {
	exec     *Executor
	maxBatch int
	keys     *lru.Cache[scopeOf, store.IdempotencyRecord]
	queue    []*request
	flushing bool          // a flush message is in the mailbox
	stopped  chan struct{} // closed once the actor has stopped
}

func newClinicActor(exec *Executor, cfg Config, stopped chan struct{}) *clinicActor {
	keys, err := lru.New[scopeOf, store.IdempotencyRecord](cfg.IdempotencyCacheSize)
	if err != nil {
		panic(err) // unreachable: the registry's config makes the size positive
	}
	return &clinicActor{exec: exec, maxBatch: cfg.MaxBatch, keys: keys, stopped: stopped}
}

// Receive implements actor.Actor.
func (a *clinicActor) Receive(c actor.Context) {
	switch msg := c.Message().(type) {
	case *request:
		if res, ok := a.cached(msg); ok {
			msg.reply <- res
			return
		}
		a.queue = append(a.queue, msg)
		a.scheduleFlush(c)
	case flush:
		a.flushing = false
		a.runBatch()
		if len(a.queue) > 0 { // more than one batch queued
			a.scheduleFlush(c)
		}
	case *actor.Stopping: // a stopping actor gets no more flush messages
		for len(a.queue) > 0 {
			a.runBatch()
		}
	case *actor.Stopped:
		close(a.stopped)
	}
}

func (a *clinicActor) scheduleFlush(c actor.Context) {
	if !a.flushing {
		a.flushing = true
		c.Send(c.Self(), flush{})
	}
}

// cached answers a request from the key cache, when its key is there.
func (a *clinicActor) cached(req *request) (result, bool) {
	key := req.meta.Idempotency
	if key == nil {
		return result{}, false
	}
	rec, ok := a.keys.Get(scopeOf{user: req.meta.UserID, key: key.Key})
	if !ok || !time.Now().Before(rec.ExpiresAt) {
		return result{}, false
	}
	return replay(rec, key), true
}

// runBatch runs up to maxBatch queued requests in one transaction, caches
// the idempotency records it committed, and answers the callers.
func (a *clinicActor) runBatch() {
	n := min(len(a.queue), a.maxBatch)
	batch := a.queue[:n:n]
	a.queue = a.queue[n:]
	if len(a.queue) == 0 {
		a.queue = nil // let the backing array go
	}
	ctx, cancel := batchContext(batch)
	defer cancel()
	results := a.exec.runBatch(ctx, batch)
	for i, req := range batch {
		if rec := results[i].record; rec != nil {
			a.remember(req, *rec)
		}
		req.reply <- results[i]
	}
}

// remember caches a committed idempotency record. The record's expiry is the
// database's clock; it is never cached past this host's own view of the TTL,
// in case the clocks differ.
func (a *clinicActor) remember(req *request, rec store.IdempotencyRecord) {
	if local := time.Now().Add(a.exec.idempotencyTTL); local.Before(rec.ExpiresAt) {
		rec.ExpiresAt = local
	}
	a.keys.Add(scopeOf{user: req.meta.UserID, key: req.meta.Idempotency.Key}, rec)
}
