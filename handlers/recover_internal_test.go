package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The recover middleware is unexported and no route panics on purpose, so
// this internal test wraps a panicking handler in the server's real
// middleware chain (Server.middleware, the one New puts around the router).

// panicServer returns the middleware chain around a handler that panics with
// a message full of internals, and the buffer the server logs to.
func panicServer(t *testing.T, value any) (http.Handler, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	s, err := New(Config{}, slog.New(slog.NewJSONHandler(&logs, nil)), nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s.middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(value) })), &logs
}

// A panic is answered 500 internal_error as a problem whose request_id is the
// X-Request-Id header, without the panic value or a stack trace; the stack
// goes to the log with the request id, and the access log records the 500.
func TestPanicIsInternalError(t *testing.T) {
	const secret = "SELECT * FROM patients WHERE id = $1: pgx SQLSTATE 42P01"
	h, logs := panicServer(t, secret)
	for _, inbound := range []string{"", "req-abc.1"} {
		logs.Reset()
		req := httptest.NewRequest("GET", "/anything", nil)
		if inbound != "" {
			req.Header.Set(RequestIDHeader, inbound)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		if rec.Code != http.StatusInternalServerError {
			t.Fatalf("status %d, want 500; body %s", rec.Code, rec.Body)
		}
		if ct := rec.Header().Get("Content-Type"); ct != ProblemContentType {
			t.Errorf("Content-Type %q", ct)
		}
		var p Problem
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
			t.Fatalf("body is not a problem: %v: %s", err, rec.Body)
		}
		id := rec.Header().Get(RequestIDHeader)
		if id == "" || p.RequestID != id || (inbound != "" && id != inbound) {
			t.Errorf("request_id %q, X-Request-Id %q, inbound %q", p.RequestID, id, inbound)
		}
		if p.Code != "internal_error" || p.Status != 500 || p.Type != DefaultProblemBaseURL+"internal_error" || p.Title == "" {
			t.Errorf("problem %+v", p)
		}
		for _, leak := range []string{"SELECT", "pgx", "SQLSTATE", "goroutine", "panic", ".go:"} {
			if strings.Contains(rec.Body.String(), leak) {
				t.Errorf("body leaks %q: %s", leak, rec.Body)
			}
		}

		var panicked, accessed bool
		dec := json.NewDecoder(logs)
		for {
			var line map[string]any
			if err := dec.Decode(&line); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("log: %v", err)
			}
			switch line["msg"] {
			case "handler panicked":
				panicked = true
				if line["request_id"] != id || line["panic"] != secret || !strings.Contains(line["stack"].(string), "goroutine") {
					t.Errorf("panic log line %v", line)
				}
			case "request":
				accessed = true
				if line["request_id"] != id || line["status"] != float64(500) || line["code"] != "internal_error" {
					t.Errorf("access log line %v", line)
				}
			}
		}
		if !panicked || !accessed {
			t.Errorf("logged panic %v, access line %v:\n%s", panicked, accessed, logs)
		}
	}
}

// http.ErrAbortHandler is net/http's way to abort a response on purpose: the
// middleware lets it through instead of answering 500.
func TestAbortHandlerPanicPassesThrough(t *testing.T) {
	h, _ := panicServer(t, http.ErrAbortHandler)
	defer func() {
		if p := recover(); p == nil || !errors.Is(p.(error), http.ErrAbortHandler) {
			t.Errorf("recovered %v, want http.ErrAbortHandler", p)
		}
	}()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	t.Error("ErrAbortHandler was swallowed")
}
