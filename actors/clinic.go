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
	exec    *Executor
	stopped chan struct{} // closed once the actor has stopped
}

// Receive implements actor.Actor.
func (a *clinicActor) Receive(c actor.Context) {
	switch msg := c.Message().(type) {
	case *request:
		value, err := a.exec.run(msg.ctx, msg.meta, msg.job)
		msg.reply <- result{value: value, err: err}
	case *actor.Stopped:
		close(a.stopped)
	}
}
