package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aura-clinic/aura/actors"
	"github.com/aura-clinic/aura/actors/ratelimit"
	"github.com/aura-clinic/aura/handlers"
)

// env returns a getenv over a fixed map.
func env(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

// TestLoadConfigDefaults proves every variable has the documented default
// when the environment is empty.
func TestLoadConfigDefaults(t *testing.T) {
	got, err := loadConfig(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := config{
		DatabaseURL:     "postgres://postgres@127.0.0.1:5432/aura?sslmode=disable",
		HTTPAddr:        ":8080",
		AutoMigrate:     true,
		LogLevel:        slog.LevelInfo,
		LogFormat:       "json",
		ShutdownTimeout: 20 * time.Second,
		HTTP: handlers.Config{
			RequestTimeout: 10 * time.Second,
			MaxBodyBytes:   1 << 20,
			ProblemBaseURL: handlers.DefaultProblemBaseURL,
			Limits:         ratelimit.Default(),
		},
		Actors:                     actors.Config{IdleTimeout: 5 * time.Minute, IdempotencyCacheSize: 1024, MaxBatch: actors.DefaultMaxBatch, Limits: ratelimit.Default()},
		IdempotencyTTL:             24 * time.Hour,
		IdempotencyCleanupInterval: 10 * time.Minute,
		PubSub:                     "postgres",
		NATSURL:                    "nats://127.0.0.1:4222",
		AMQPURL:                    "amqp://guest:guest@127.0.0.1:5672/",
		OutboxTTL:                  7 * 24 * time.Hour,
		OutboxCleanupInterval:      10 * time.Minute,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", got, want)
	}
}

// TestLoadConfigOverrides proves each variable is read into its field.
func TestLoadConfigOverrides(t *testing.T) {
	got, err := loadConfig(env(map[string]string{
		"AURA_DATABASE_URL":                 "postgres://aura:secret@db:5433/prod?sslmode=require",
		"AURA_HTTP_ADDR":                    "127.0.0.1:9090",
		"AURA_DEBUG_ADDR":                   "127.0.0.1:6060",
		"AURA_AUTO_MIGRATE":                 "false",
		"AURA_LOG_LEVEL":                    "DEBUG",
		"AURA_LOG_FORMAT":                   "text",
		"AURA_SHUTDOWN_TIMEOUT":             "3s",
		"AURA_REQUEST_TIMEOUT":              "1500ms",
		"AURA_MAX_BODY_BYTES":               "4096",
		"AURA_PROBLEM_BASE_URL":             "https://errors.example.org/p/",
		"AURA_ACTOR_IDLE_TIMEOUT":           "1m",
		"AURA_IDEMPOTENCY_TTL":              "2h",
		"AURA_IDEMPOTENCY_CACHE_SIZE":       "64",
		"AURA_GROUP_COMMIT_MAX":             "8",
		"AURA_IDEMPOTENCY_CLEANUP_INTERVAL": "30s",
		"AURA_RATE_LIMITS":                  "off",
		"AURA_OUTBOX_TTL":                   "48h",
		"AURA_PUBSUB":                       "nats",
		"AURA_NATS_URL":                     "nats://nats:4222",
		"AURA_OUTBOX_CLEANUP_INTERVAL":      "1m",
		"AURA_TRUSTED_PROXIES":              "10.0.0.0/8, 192.168.1.7",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := config{
		DatabaseURL:     "postgres://aura:secret@db:5433/prod?sslmode=require",
		HTTPAddr:        "127.0.0.1:9090",
		DebugAddr:       "127.0.0.1:6060",
		AutoMigrate:     false,
		LogLevel:        slog.LevelDebug,
		LogFormat:       "text",
		ShutdownTimeout: 3 * time.Second,
		HTTP: handlers.Config{
			RequestTimeout: 1500 * time.Millisecond,
			MaxBodyBytes:   4096,
			ProblemBaseURL: "https://errors.example.org/p/",
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32")},
		},
		Actors:                     actors.Config{IdleTimeout: time.Minute, IdempotencyCacheSize: 64, MaxBatch: 8},
		IdempotencyTTL:             2 * time.Hour,
		IdempotencyCleanupInterval: 30 * time.Second,
		PubSub:                     "nats",
		NATSURL:                    "nats://nats:4222",
		AMQPURL:                    "amqp://guest:guest@127.0.0.1:5672/",
		OutboxTTL:                  48 * time.Hour,
		OutboxCleanupInterval:      time.Minute,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("overrides:\n got %+v\nwant %+v", got, want)
	}
}

// TestLoadConfigErrors proves a malformed value is an error that names the
// variable, and that the database URL's value (which may hold a password)
// is not echoed.
func TestLoadConfigErrors(t *testing.T) {
	tests := []struct{ name, value string }{
		{"AURA_REQUEST_TIMEOUT", "abc"},
		{"AURA_REQUEST_TIMEOUT", "10"}, // no unit
		{"AURA_SHUTDOWN_TIMEOUT", "-1s"},
		{"AURA_ACTOR_IDLE_TIMEOUT", "0s"},
		{"AURA_LOG_LEVEL", "loud"},
		{"AURA_LOG_FORMAT", "xml"},
		{"AURA_AUTO_MIGRATE", "maybe"},
		{"AURA_MAX_BODY_BYTES", "1MiB"},
		{"AURA_MAX_BODY_BYTES", "0"},
		{"AURA_GROUP_COMMIT_MAX", "0"},
		{"AURA_HTTP_ADDR", "8080"},
		{"AURA_PROBLEM_BASE_URL", "/problems/"},
		{"AURA_DATABASE_URL", "postgres://aura:s3cret@db:notaport/aura"},
		{"AURA_IDEMPOTENCY_TTL", "500ns"},
		{"AURA_PUBSUB", "kafka"},
		{"AURA_OUTBOX_TTL", "7d"},
		{"AURA_RATE_LIMITS", "user.write=120"},
		{"AURA_RATE_LIMITS", "users.write=120/m"},
		{"AURA_RATE_LIMITS", "user.delete=120/m"},
		{"AURA_RATE_LIMITS", "user.write=0/m"},
		{"AURA_RATE_LIMITS", "user.write=10/d"},
		{"AURA_RATE_LIMITS", "user.write=10/m,,"},
		{"AURA_RATE_LIMITS", "OFF"},
		{"AURA_TRUSTED_PROXIES", "10.0.0.0/33"},
		{"AURA_TRUSTED_PROXIES", "proxy.local"},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			_, err := loadConfig(env(map[string]string{tt.name: tt.value}))
			if err == nil {
				t.Fatalf("%s=%q accepted", tt.name, tt.value)
			}
			if !strings.Contains(err.Error(), tt.name) {
				t.Errorf("error %q does not name %s", err, tt.name)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q echoes a password", err)
			}
		})
	}
}

// TestLoadConfigReportsEveryError proves several malformed variables are all
// reported at once, so an operator fixes them in one go.
func TestLoadConfigReportsEveryError(t *testing.T) {
	_, err := loadConfig(env(map[string]string{
		"AURA_REQUEST_TIMEOUT": "abc",
		"AURA_LOG_LEVEL":       "loud",
		"AURA_AUTO_MIGRATE":    "maybe",
	}))
	if err == nil {
		t.Fatal("malformed configuration accepted")
	}
	for _, name := range []string{"AURA_REQUEST_TIMEOUT", "AURA_LOG_LEVEL", "AURA_AUTO_MIGRATE"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}

// TestNewLogger proves the logger writes the configured format and drops
// records below the configured level.
func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	logger := newLogger(config{LogFormat: "json", LogLevel: slog.LevelWarn}, &buf)
	logger.Info("hidden")
	logger.Warn("shown", "request_id", "r1")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("json log line %q: %v", buf.String(), err)
	}
	if rec["msg"] != "shown" || rec["request_id"] != "r1" {
		t.Errorf("record = %v", rec)
	}

	buf.Reset()
	newLogger(config{LogFormat: "text", LogLevel: slog.LevelInfo}, &buf).Info("hello", "k", "v")
	if got := buf.String(); !strings.Contains(got, "msg=hello") || !strings.Contains(got, "k=v") {
		t.Errorf("text log line = %q", got)
	}
}
