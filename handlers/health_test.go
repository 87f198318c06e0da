package handlers_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aura-clinic/aura/actors"
	"github.com/aura-clinic/aura/handlers"
)

// /healthz and /readyz need no credentials and answer 200 while the
// database is reachable.
func TestHealthAndReadiness(t *testing.T) {
	a := newAPI(t)
	for path, status := range map[string]string{"/healthz": "ok", "/readyz": "ready"} {
		r := a.call("GET", path, "", nil).want(t, http.StatusOK)
		if r.str("status") != status || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %s %s", path, r.Header.Get("Content-Type"), r.raw)
		}
		// A bad key does not matter on public routes.
		a.call("GET", path, "aura_wrong", nil).want(t, http.StatusOK)
	}
}

// With the database unreachable /readyz is 503 not_ready with Retry-After and
// no driver message, while /healthz still says the process is alive.
func TestNotReadyWithoutDatabase(t *testing.T) {
	pool, err := pgxpool.New(context.Background(), "postgres://postgres@127.0.0.1:1/aura?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	exec := actors.NewExecutor(pool, logger)
	clinics := actors.NewRegistry(exec, logger, actors.Config{})
	defer func() { _ = clinics.Stop(context.Background()) }()
	srv, err := handlers.New(handlers.Config{}, logger, pool, exec, clinics)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	a := &api{t: t, url: ts.URL, clinics: clinics}

	r := a.call("GET", "/readyz", "", nil).wantProblem(t, http.StatusServiceUnavailable, "not_ready")
	if r.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	a.call("GET", "/healthz", "", nil).want(t, http.StatusOK)
	// Authenticated routes cannot reach the database either: a 503 problem
	// without internals, not a hang, a 500 or a stack trace.
	a.call("GET", "/v1/clinics", "aura_anything", nil).
		wantProblem(t, http.StatusServiceUnavailable, "database_unavailable")
}
