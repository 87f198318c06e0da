package actors

import (
	"context"

	"github.com/asynkron/protoactor-go/actor"
)

// request asks a clinic actor to run a job and answer on reply.
type request struct {
	ctx   context.Context
	meta  Meta
	job   job
	reply chan result // buffered: the actor never blocks on a caller that left
}

type result struct {
	value any
	err   error
}

// clinicActor executes one clinic's writes one at a time, in mailbox order.
// It is the home of the clinic's in-memory state (idempotency cache, rate
// buckets, group commit queue) as later features add it.
type clinicActor struct {
	exec *Executor
}

// Receive implements actor.Actor.
func (a *clinicActor) Receive(c actor.Context) {
	if req, ok := c.Message().(*request); ok {
		value, err := a.exec.run(req.ctx, req.meta, req.job)
		req.reply <- result{value: value, err: err}
	}
}
