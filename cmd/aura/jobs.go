package main

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// job is a background task of `aura serve`, running until its context ends.
type job struct {
	name string
	run  func(ctx context.Context) error
}

// jobs are running background tasks.
type jobs struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startJobs runs each job on its own goroutine. A job that fails is logged;
// the server goes on serving.
func startJobs(logger *slog.Logger, list ...job) *jobs {
	ctx, cancel := context.WithCancel(context.Background())
	js := &jobs{cancel: cancel}
	for _, j := range list {
		js.wg.Add(1)
		go func() {
			defer js.wg.Done()
			if err := j.run(ctx); err != nil && ctx.Err() == nil {
				logger.Error("background job stopped", "job", j.name, "error", err)
			}
		}()
	}
	return js
}

// stop cancels every job and waits for them to return.
func (js *jobs) stop() {
	js.cancel()
	js.wg.Wait()
}

// periodically runs purge every interval until ctx is done, logging how
// many rows it deleted; a failed round is logged and retried at the next tick.
func periodically(ctx context.Context, logger *slog.Logger, interval time.Duration, name string, purge func(context.Context) (int64, error)) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			n, err := purge(ctx)
			switch {
			case err != nil && ctx.Err() == nil:
				logger.Error(name+" failed", "error", err)
			case n > 0:
				logger.Info(name, "deleted", n)
			}
		}
	}
}
