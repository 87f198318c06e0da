package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/aura-clinic/aura/actors"
	"github.com/aura-clinic/aura/handlers"
	"github.com/aura-clinic/aura/messaging"
	"github.com/aura-clinic/aura/schema"
)

// serve runs the HTTP API until ctx is cancelled (SIGINT/SIGTERM), then shuts
// down in reverse order: stop accepting and drain in-flight requests, stop
// the clinic actors, close the pool.
func serve(ctx context.Context, cfg config, logger *slog.Logger, args []string, stderr io.Writer) error {
	flags := flag.NewFlagSet("serve", flag.ContinueOnError)
	flags.SetOutput(stderr)
	noMigrate := flags.Bool("no-migrate", false, "do not apply pending migrations on start (also AURA_AUTO_MIGRATE=false)")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if !cfg.HTTP.Limits.Enabled() {
		logger.Warn("rate limiting is off (AURA_RATE_LIMITS=off)")
	}
	pool, err := openDatabase(ctx, cfg, logger, cfg.AutoMigrate && !*noMigrate)
	if err != nil {
		return err
	}
	defer pool.Close()

	events, err := openPubSub(cfg, pool, watermill.NewSlogLogger(logger))
	if err != nil {
		return err
	}
	defer events.Close()

	// Listen before starting the actors, so that a busy address leaves
	// nothing running behind.
	listener, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	exec := actors.NewExecutor(pool, logger, actors.WithIdempotencyTTL(cfg.IdempotencyTTL))
	clinics := actors.NewRegistry(exec, logger, cfg.Actors)
	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		messaging.NewStatusCollector(pool))
	httpCfg := cfg.HTTP
	httpCfg.Metrics = promhttp.HandlerFor(metrics, promhttp.HandlerOpts{})
	api, err := handlers.New(httpCfg, logger, pool, exec, clinics)
	if err != nil {
		_ = listener.Close()
		_ = clinics.Stop(context.Background()) // no actor has been spawned yet
		return err
	}
	srv := &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(listener) }()
	logger.Info("aura serving", "addr", listener.Addr().String())
	jobs := []job{
		{"idempotency cleanup", func(ctx context.Context) error {
			cleanIdempotencyKeys(ctx, pool, logger, cfg.IdempotencyCleanupInterval)
			return nil
		}},
		{"outbox cleanup", func(ctx context.Context) error {
			cleanOutbox(ctx, pool, logger, cfg.OutboxTTL, cfg.OutboxCleanupInterval)
			return nil
		}},
		{"outbox forwarder", func(ctx context.Context) error {
			return messaging.Forward(ctx, pool, events, watermill.NewSlogLogger(logger))
		}},
		{"event consumers", func(ctx context.Context) error {
			return messaging.Consume(ctx, pool, events, watermill.NewSlogLogger(logger), messaging.EventLog())
		}},
	}
	if cfg.DebugAddr != "" {
		jobs = append(jobs, job{"profiler", func(ctx context.Context) error { return serveDebug(ctx, cfg.DebugAddr, logger) }})
	}
	background := startJobs(logger, jobs...)
	defer background.stop()

	select {
	case err := <-served:
		_ = clinics.Stop(context.Background())
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		logger.Error("draining requests", "error", err)
	}
	if err := clinics.Stop(shutdownCtx); err != nil {
		logger.Error("stopping clinic actors", "error", err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http server: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// defaultPoolConns sizes the connection pool when AURA_DATABASE_URL has no
// pool_max_conns.
const defaultPoolConns = 16

// openDatabase creates the database if it is missing (and the role may),
// opens the pool, and applies pending migrations when migrate is set.
func openDatabase(ctx context.Context, cfg config, logger *slog.Logger, migrate bool) (*pgxpool.Pool, error) {
	created, err := schema.EnsureDatabase(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	if created {
		logger.Info("database created")
	}
	poolCfg, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("parse database URL: %w", err)
	}
	// pgx's own default, the larger of 4 and the CPU count, starves a server
	// whose clinic actors each hold a connection while they commit.
	if !strings.Contains(cfg.DatabaseURL, "pool_max_conns") {
		poolCfg.MaxConns = defaultPoolConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	if migrate {
		if _, err := schema.Migrate(ctx, pool, logger); err != nil {
			pool.Close()
			return nil, err
		}
	}
	return pool, nil
}

// migrate applies pending migrations and exits.
func migrate(ctx context.Context, cfg config, logger *slog.Logger) error {
	pool, err := openDatabase(ctx, cfg, logger, true)
	if err != nil {
		return err
	}
	pool.Close()
	return nil
}
