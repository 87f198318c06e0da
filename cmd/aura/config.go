package main

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aura-clinic/aura/actors"
	"github.com/aura-clinic/aura/actors/ratelimit"
	"github.com/aura-clinic/aura/handlers"
	"github.com/aura-clinic/aura/messaging"
)

// config is the process's configuration, read from AURA_* variables.
type config struct {
	DatabaseURL     string        // AURA_DATABASE_URL
	HTTPAddr        string        // AURA_HTTP_ADDR
	DebugAddr       string        // AURA_DEBUG_ADDR: the profiler's listener, off when empty
	AutoMigrate     bool          // AURA_AUTO_MIGRATE
	LogLevel        slog.Level    // AURA_LOG_LEVEL
	LogFormat       string        // AURA_LOG_FORMAT: json or text
	ShutdownTimeout time.Duration // AURA_SHUTDOWN_TIMEOUT
	HTTP            handlers.Config
	Actors          actors.Config
	// IdempotencyTTL is how long a stored outcome is replayed.
	IdempotencyTTL time.Duration // AURA_IDEMPOTENCY_TTL
	// IdempotencyCleanupInterval is how often serve deletes expired keys.
	IdempotencyCleanupInterval time.Duration // AURA_IDEMPOTENCY_CLEANUP_INTERVAL
	// PubSub is where events are forwarded: postgres, nats or amqp.
	PubSub  string // AURA_PUBSUB
	NATSURL string // AURA_NATS_URL
	AMQPURL string // AURA_AMQP_URL
	// OutboxTTL is how long forwarded events and inbox rows are kept.
	OutboxTTL time.Duration // AURA_OUTBOX_TTL
	// OutboxCleanupInterval is how often serve deletes them after that.
	OutboxCleanupInterval time.Duration // AURA_OUTBOX_CLEANUP_INTERVAL
}

// loadConfig reads the configuration through getenv; a malformed value is an
// error naming the variable.
func loadConfig(getenv func(string) string) (config, error) {
	r := envReader{getenv: getenv}
	cfg := config{
		DatabaseURL:     r.str("AURA_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/aura?sslmode=disable"),
		HTTPAddr:        r.str("AURA_HTTP_ADDR", ":8080"),
		DebugAddr:       r.str("AURA_DEBUG_ADDR", ""),
		AutoMigrate:     r.boolean("AURA_AUTO_MIGRATE", true),
		LogFormat:       r.str("AURA_LOG_FORMAT", "json"),
		ShutdownTimeout: r.duration("AURA_SHUTDOWN_TIMEOUT", 20*time.Second),
		HTTP: handlers.Config{
			RequestTimeout: r.duration("AURA_REQUEST_TIMEOUT", 10*time.Second),
			MaxBodyBytes:   r.integer("AURA_MAX_BODY_BYTES", 1<<20),
			ProblemBaseURL: r.str("AURA_PROBLEM_BASE_URL", handlers.DefaultProblemBaseURL),
		},
		Actors: actors.Config{
			IdleTimeout:          r.duration("AURA_ACTOR_IDLE_TIMEOUT", 5*time.Minute),
			IdempotencyCacheSize: int(r.integer("AURA_IDEMPOTENCY_CACHE_SIZE", 1024)),
			MaxBatch:             int(r.integer("AURA_GROUP_COMMIT_MAX", actors.DefaultMaxBatch)),
		},
		IdempotencyTTL:             r.duration("AURA_IDEMPOTENCY_TTL", actors.DefaultIdempotencyTTL),
		IdempotencyCleanupInterval: r.duration("AURA_IDEMPOTENCY_CLEANUP_INTERVAL", 10*time.Minute),
		PubSub:                     r.str("AURA_PUBSUB", "postgres"),
		NATSURL:                    r.str("AURA_NATS_URL", "nats://127.0.0.1:4222"),
		AMQPURL:                    r.str("AURA_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"),
		OutboxTTL:                  r.duration("AURA_OUTBOX_TTL", messaging.DefaultOutboxTTL),
		OutboxCleanupInterval:      r.duration("AURA_OUTBOX_CLEANUP_INTERVAL", 10*time.Minute),
	}
	if cfg.PubSub != "postgres" && cfg.PubSub != "nats" && cfg.PubSub != "amqp" {
		r.errs = append(r.errs, fmt.Sprintf("AURA_PUBSUB: %q is not postgres, nats or amqp", cfg.PubSub))
	}
	if cfg.IdempotencyTTL < actors.MinIdempotencyTTL {
		r.errs = append(r.errs, fmt.Sprintf("AURA_IDEMPOTENCY_TTL: %v is shorter than %v", cfg.IdempotencyTTL, actors.MinIdempotencyTTL))
	}
	limits, err := ratelimit.Parse(getenv("AURA_RATE_LIMITS"))
	if err != nil {
		r.errs = append(r.errs, "AURA_RATE_LIMITS: "+err.Error())
	}
	cfg.HTTP.Limits, cfg.Actors.Limits = limits, limits
	if cfg.HTTP.TrustedProxies, err = handlers.ParseTrustedProxies(getenv("AURA_TRUSTED_PROXIES")); err != nil {
		r.errs = append(r.errs, "AURA_TRUSTED_PROXIES: "+err.Error())
	}
	if err := cfg.LogLevel.UnmarshalText([]byte(r.str("AURA_LOG_LEVEL", "info"))); err != nil {
		r.errs = append(r.errs, fmt.Sprintf("AURA_LOG_LEVEL: %v", err))
	}
	if _, err := pgx.ParseConfig(cfg.DatabaseURL); err != nil {
		r.errs = append(r.errs, "AURA_DATABASE_URL: not a PostgreSQL connection URL") // the value may hold a password
	}
	if _, _, err := net.SplitHostPort(cfg.HTTPAddr); err != nil {
		r.errs = append(r.errs, fmt.Sprintf("AURA_HTTP_ADDR: %q is not host:port such as :8080", cfg.HTTPAddr))
	}
	if u, err := url.Parse(cfg.HTTP.ProblemBaseURL); err != nil || !u.IsAbs() {
		r.errs = append(r.errs, fmt.Sprintf("AURA_PROBLEM_BASE_URL: %q is not an absolute URI", cfg.HTTP.ProblemBaseURL))
	}
	if cfg.LogFormat != "json" && cfg.LogFormat != "text" {
		r.errs = append(r.errs, fmt.Sprintf("AURA_LOG_FORMAT: %q is neither json nor text", cfg.LogFormat))
	}
	if len(r.errs) > 0 {
		return cfg, fmt.Errorf("configuration: %s", strings.Join(r.errs, "; "))
	}
	return cfg, nil
}

// envReader reads typed variables and collects every malformed one.
type envReader struct {
	getenv func(string) string
	errs   []string
}

func (r *envReader) str(name, def string) string {
	if v := r.getenv(name); v != "" {
		return v
	}
	return def
}

func (r *envReader) duration(name string, def time.Duration) time.Duration {
	v := r.getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		r.errs = append(r.errs, fmt.Sprintf("%s: %q is not a positive Go duration such as 30s", name, v))
		return def
	}
	return d
}

func (r *envReader) integer(name string, def int64) int64 {
	v := r.getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		r.errs = append(r.errs, fmt.Sprintf("%s: %q is not a positive integer", name, v))
		return def
	}
	return n
}

func (r *envReader) boolean(name string, def bool) bool {
	v := r.getenv(name)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.errs = append(r.errs, fmt.Sprintf("%s: %q is not true or false", name, v))
		return def
	}
	return b
}

// newLogger returns the process's structured logger, writing to w.
func newLogger(cfg config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
