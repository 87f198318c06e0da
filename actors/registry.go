package actors

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/aura-clinic/aura/actors/fault"
	"github.com/aura-clinic/aura/actors/ratelimit"
)

// DefaultMaxBatch is the default cap on a group commit's size.
const DefaultMaxBatch = 64

// Config tunes the registry of clinic actors.
type Config struct {
	// IdleTimeout is how long a clinic's actor may go unused before it is
	// passivated (stopped and forgotten; the next write spawns a fresh one).
	IdleTimeout time.Duration
	// SweepInterval is how often idle actors are looked for. Default: a
	// quarter of IdleTimeout, at least 10 ms.
	SweepInterval time.Duration
	// IdempotencyCacheSize is how many recently used idempotency keys each
	// clinic actor keeps in memory. Default 1024.
	IdempotencyCacheSize int
	// MaxBatch is the most writes a clinic actor commits in one transaction
	// (group commit). 1 commits each write on its own. Default 64: each
	// write is a subtransaction (its savepoint), and PostgreSQL tracks up to
	// 64 of a transaction's subtransactions in shared memory; beyond that,
	// every other session's snapshots get slower while it runs.
	MaxBatch int
	// Limits are the rate limits whose user and clinic buckets each clinic
	// actor keeps. The zero value limits nothing.
	Limits ratelimit.Limits
}

func (c Config) withDefaults() Config {
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 5 * time.Minute
	}
	if c.IdempotencyCacheSize <= 0 {
		c.IdempotencyCacheSize = 1024
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.SweepInterval <= 0 {
		c.SweepInterval = max(c.IdleTimeout/4, 10*time.Millisecond)
	}
	return c
}

// Registry finds or spawns each clinic's actor and passivates idle ones. It
// keeps its own map (not protoactor's names) so that a message is never sent
// to an actor that is stopping: an actor is forgotten, under the lock, only
// when no request is in flight to it.
type Registry struct {
	system *actor.ActorSystem
	exec   *Executor
	logger *slog.Logger
	cfg    Config

	mu     sync.Mutex
	actors map[uuid.UUID]*entry
	closed bool

	stopSweep chan struct{}
	swept     chan struct{}
}

type entry struct {
	pid      *actor.PID
	stopped  chan struct{} // closed once the actor has stopped
	rates    *rateState    // the clinic's rate buckets, read and written beside its mailbox
	inflight int
	lastUsed time.Time
}

// NewRegistry starts an actor system whose logs go to logger, and the sweeper
// that passivates idle actors. Stop it with Stop.
func NewRegistry(exec *Executor, logger *slog.Logger, cfg Config) *Registry {
	r := &Registry{
		system: actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
			return logger.With("component", "protoactor")
		})),
		exec:      exec,
		logger:    logger,
		cfg:       cfg.withDefaults(),
		actors:    make(map[uuid.UUID]*entry),
		stopSweep: make(chan struct{}),
		swept:     make(chan struct{}),
	}
	go r.sweep()
	return r
}

// Len is the number of live clinic actors.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.actors)
}

func (r *Registry) dispatch(ctx context.Context, m Meta, j job) result {
	if m.ClinicID == uuid.Nil {
		return result{err: fault.ErrInternal.Wrap(errors.New("registry: command without a clinic"), "The server could not complete the request.")}
	}
	req := &request{ctx: ctx, meta: m, job: j, reply: make(chan result, 1)}
	if err := r.send(m.ClinicID, req); err != nil {
		return result{err: err}
	}
	res, err := await(ctx, r, m.ClinicID, req.reply)
	if err != nil {
		return result{err: err}
	}
	return res
}

// await waits for the clinic actor's answer on reply, or for ctx.
func await[T any](ctx context.Context, r *Registry, clinicID uuid.UUID, reply <-chan T) (T, error) {
	select {
	case v := <-reply:
		r.release(clinicID)
		return v, nil
	case <-ctx.Done():
		// The message stays in flight until the actor answers it: an actor
		// still executing it must not be passivated, or the clinic's next
		// command would run beside it on a fresh actor.
		go func() {
			<-reply
			r.release(clinicID)
		}()
		var zero T
		return zero, timeoutError(ctx)
	}
}

// send delivers msg to the clinic's actor, spawning it if needed. Sending
// under the lock orders every send before a passivation or Stop's poison.
func (r *Registry) send(clinicID uuid.UUID, msg any) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, err := r.acquireLocked(clinicID)
	if err != nil {
		return err
	}
	r.system.Root.Send(e.pid, msg)
	return nil
}

// acquire returns the clinic's entry, spawning its actor if needed, and
// counts one more request in flight to it; release undoes the count.
func (r *Registry) acquire(clinicID uuid.UUID) (*entry, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.acquireLocked(clinicID)
}

func (r *Registry) acquireLocked(clinicID uuid.UUID) (*entry, error) {
	if r.closed {
		return nil, fault.ErrShutdown.New("The server is shutting down; retry on another instance.")
	}
	e, ok := r.actors[clinicID]
	if !ok {
		stopped := make(chan struct{})
		props := actor.PropsFromProducer(func() actor.Actor { return newClinicActor(r.exec, r.cfg, stopped) })
		e = &entry{
			pid:     r.system.Root.SpawnPrefix(props, "clinic-"+clinicID.String()),
			stopped: stopped,
			rates:   newRateState(r.cfg.Limits),
		}
		r.actors[clinicID] = e
	}
	e.inflight++
	return e, nil
}

func (r *Registry) release(clinicID uuid.UUID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.actors[clinicID]; ok {
		e.inflight--
		e.lastUsed = time.Now()
	}
}

// sweep passivates actors idle for longer than the idle timeout.
func (r *Registry) sweep() {
	defer close(r.swept)
	t := time.NewTicker(r.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-r.stopSweep:
			return
		case now := <-t.C:
			for _, pid := range r.takeIdle(now) {
				r.system.Root.Poison(pid)
			}
		}
	}
}

// takeIdle forgets and returns the idle actors.
func (r *Registry) takeIdle(now time.Time) []*actor.PID {
	r.mu.Lock()
	defer r.mu.Unlock()
	// An actor is not passivated before its rate buckets are whole again,
	// so forgetting them never lets more through than the quota.
	after := max(r.cfg.IdleTimeout, r.cfg.Limits.MaxWindow())
	var idle []*actor.PID
	for id, e := range r.actors {
		if e.inflight == 0 && now.Sub(e.lastUsed) >= after {
			idle = append(idle, e.pid)
			delete(r.actors, id)
		}
	}
	return idle
}

// Stop refuses new commands, lets every actor finish the commands already in
// its mailbox, stops the actors and shuts the actor system down. It returns
// ctx's error if the actors have not stopped by then.
func (r *Registry) Stop(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	entries := make([]*entry, 0, len(r.actors))
	for id, e := range r.actors {
		entries = append(entries, e)
		delete(r.actors, id)
	}
	r.mu.Unlock()
	close(r.stopSweep)
	<-r.swept

	// A poison message queues behind the commands already sent. Wait for
	// the actors themselves, not PoisonFuture: its future gives up after a
	// fixed 10 s, however long the mailbox still is.
	for _, e := range entries {
		r.system.Root.Poison(e.pid)
	}
	for _, e := range entries {
		select {
		case <-e.stopped:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.system.Shutdown()
	return nil
}
