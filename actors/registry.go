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
)

// Config tunes the registry of clinic actors.
type Config struct {
	// IdleTimeout is how long a clinic's actor may go unused before it is
	// passivated (stopped and forgotten; the next write spawns a fresh one).
	IdleTimeout time.Duration
	// SweepInterval is how often idle actors are looked for. Default: a
	// quarter of IdleTimeout, at least 10 ms.
	SweepInterval time.Duration
}

func (c Config) withDefaults() Config {
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 5 * time.Minute
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

func (r *Registry) dispatch(ctx context.Context, m Meta, j job) (any, error) {
	if m.ClinicID == uuid.Nil {
		return nil, fault.ErrInternal.Wrap(errors.New("registry: command without a clinic"), "The server could not complete the request.")
	}
	req := &request{ctx: ctx, meta: m, job: j, reply: make(chan result, 1)}
	if err := r.send(m.ClinicID, req); err != nil {
		return nil, err
	}
	defer r.release(m.ClinicID)
	select {
	case res := <-req.reply:
		return res.value, res.err
	case <-ctx.Done():
		return nil, timeoutError(ctx)
	}
}

// send delivers req to the clinic's actor, spawning it if needed. Sending
// under the lock orders every send before a passivation or Stop's poison.
func (r *Registry) send(clinicID uuid.UUID, req *request) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fault.ErrShutdown.New("The server is shutting down; retry on another instance.")
	}
	e, ok := r.actors[clinicID]
	if !ok {
		props := actor.PropsFromProducer(func() actor.Actor { return &clinicActor{exec: r.exec} })
		e = &entry{pid: r.system.Root.SpawnPrefix(props, "clinic-"+clinicID.String())}
		r.actors[clinicID] = e
	}
	e.inflight++
	r.system.Root.Send(e.pid, req)
	return nil
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
	var idle []*actor.PID
	for id, e := range r.actors {
		if e.inflight == 0 && now.Sub(e.lastUsed) >= r.cfg.IdleTimeout {
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
	pids := make([]*actor.PID, 0, len(r.actors))
	for id, e := range r.actors {
		pids = append(pids, e.pid)
		delete(r.actors, id)
	}
	r.mu.Unlock()
	close(r.stopSweep)
	<-r.swept

	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for _, pid := range pids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// A poison message queues behind the commands already sent.
				_ = r.system.Root.PoisonFuture(pid).Wait()
			}()
		}
		wg.Wait()
	}()
	select {
	case <-done:
		r.system.Shutdown()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
