package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// registrySweeper is the goroutine every clinic-actor registry runs until it
// is stopped.
const registrySweeper = "actors.(*Registry).sweep"

// freeAddr returns a local address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// syncBuffer is a bytes.Buffer safe to write from the server's goroutines
// while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// server is `aura serve` running in the background.
type server struct {
	base   string
	cancel context.CancelFunc
	done   chan struct{} // closed when run has returned
	err    error         // run's result, once done is closed
	logs   *syncBuffer
}

// startServe runs `aura serve` on a free port with the environment as set,
// and waits until GET /healthz answers 200.
func startServe(t *testing.T) *server {
	t.Helper()
	addr := freeAddr(t)
	t.Setenv("AURA_HTTP_ADDR", addr)
	t.Setenv("AURA_SHUTDOWN_TIMEOUT", "5s")
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{base: "http://" + addr, cancel: cancel, done: make(chan struct{}), logs: &syncBuffer{}}
	go func() {
		defer close(s.done)
		s.err = run(ctx, []string{"serve"}, &syncBuffer{}, s.logs)
	}()
	t.Cleanup(func() { // in case the test failed before stopping it
		cancel()
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
		}
	})

	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-s.done:
			t.Fatalf("serve returned before it was ready: %v\n%s", s.err, s.logs)
		default:
		}
		if status, _ := s.get(t, "/healthz"); status == http.StatusOK {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /healthz did not answer 200 within 10s\n%s", s.logs)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// get does a GET and returns the status and body; status 0 when the request
// failed.
func (s *server) get(t *testing.T, path string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	return resp.StatusCode, body.String()
}

// stop cancels serve's context, as SIGINT does, and returns run's result; it
// fails the test if serve does not return within 10s.
func (s *server) stop(t *testing.T) error {
	t.Helper()
	s.cancel()
	select {
	case <-s.done:
		return s.err
	case <-time.After(10 * time.Second):
		t.Fatalf("serve did not return within 10s of cancellation\n%s", s.logs)
		return nil
	}
}

// TestServe proves `aura serve` end to end: it creates and migrates a
// database that does not exist yet, answers /healthz and /readyz, accepts a
// key made by `aura user create`, and on cancellation shuts down gracefully
// (returns nil, stops listening, stops the clinic actors).
func TestServe(t *testing.T) {
	name, databaseURL := freshDatabase(t)
	t.Setenv("AURA_DATABASE_URL", databaseURL)
	t.Setenv("AURA_AUTO_MIGRATE", "true") // whatever the developer's shell says
	s := startServe(t)

	if !databaseExists(t, name) {
		t.Fatalf("serve did not create database %s", name)
	}
	assertMigrated(t, databaseURL)
	if status, body := s.get(t, "/readyz"); status != http.StatusOK {
		t.Errorf("GET /readyz = %d %s, want 200", status, body)
	}

	out, _, err := cli(t, "user", "create", "--email", "serve@example.com", "--name", "Serve")
	if err != nil {
		t.Fatalf("user create: %v", err)
	}
	key := lastLine(t, out)
	if status, body := s.get(t, "/v1/clinics", "Authorization", "Bearer "+key); status != http.StatusOK {
		t.Errorf("GET /v1/clinics with the CLI's key = %d %s, want 200", status, body)
	}
	if status, _ := s.get(t, "/v1/clinics", "Authorization", "Bearer aura_unknown"); status != http.StatusUnauthorized {
		t.Errorf("GET /v1/clinics with an unknown key = %d, want 401", status)
	}

	if err := s.stop(t); err != nil {
		t.Fatalf("serve returned %v after cancellation, want nil\n%s", err, s.logs)
	}
	if status, _ := s.get(t, "/healthz"); status != 0 {
		t.Errorf("GET /healthz after shutdown = %d, want no answer", status)
	}
	if logs := s.logs.String(); !strings.Contains(logs, "database created") || !strings.Contains(logs, "stopped") {
		t.Errorf("logs lack the database creation or the final stop:\n%s", logs)
	}
	waitNoGoroutine(t, registrySweeper)
}

// TestServeAddressInUse proves serve fails with an error naming the address
// when it cannot listen, and leaves no clinic-actor machinery running.
func TestServeAddressInUse(t *testing.T) {
	useTestDatabase(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	t.Setenv("AURA_HTTP_ADDR", busy.Addr().String())

	_, _, err = cli(t, "serve")
	if err == nil || !strings.Contains(err.Error(), busy.Addr().String()) {
		t.Fatalf("serve on a busy address: err = %v, want one naming %s", err, busy.Addr())
	}
	waitNoGoroutine(t, registrySweeper)
}

// With AURA_DEBUG_ADDR set, the profiler answers on its own address, and
// the API's address does not serve it.
func TestServeProfiler(t *testing.T) {
	useTestDatabase(t)
	debugAddr := freeAddr(t)
	t.Setenv("AURA_DEBUG_ADDR", debugAddr)
	s := startServe(t)
	debug := &server{base: "http://" + debugAddr}
	var status int
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(25 * time.Millisecond) {
		if status, _ = debug.get(t, "/debug/pprof/"); status == http.StatusOK {
			break
		}
	}
	if status != http.StatusOK {
		t.Errorf("GET /debug/pprof/ on AURA_DEBUG_ADDR = %d, want 200", status)
	}
	if status, _ := s.get(t, "/debug/pprof/"); status != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/ on the API = %d, want 404", status)
	}
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	if status, _ := debug.get(t, "/debug/pprof/"); status != 0 {
		t.Errorf("the profiler still answers %d after shutdown", status)
	}
}
