package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aura-clinic/aura/actors"
	"github.com/aura-clinic/aura/actors/commands"
	"github.com/aura-clinic/aura/handlers"
	"github.com/aura-clinic/aura/schema/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// api is a running Aura API over the package's test database.
type api struct {
	t       *testing.T
	url     string
	clinics *actors.Registry
}

// newAPI starts the API on a test server; tune adjusts the HTTP config.
func newAPI(t *testing.T, tune ...func(*handlers.Config)) *api {
	t.Helper()
	pool := dbtest.Pool(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	exec := actors.NewExecutor(pool, logger)
	clinics := actors.NewRegistry(exec, logger, actors.Config{})
	var cfg handlers.Config
	for _, f := range tune {
		f(&cfg)
	}
	srv, err := handlers.New(cfg, logger, pool, exec, clinics)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ts.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := clinics.Stop(ctx); err != nil {
			t.Errorf("stop actors: %v", err)
		}
	})
	return &api{t: t, url: ts.URL, clinics: clinics}
}

// newUser creates a user with a fresh API key, as `aura user create` does,
// and returns the key.
func (a *api) newUser(email string) string {
	a.t.Helper()
	res, err := actors.Exec(context.Background(), actors.NewExecutor(dbtest.Pool(a.t), slog.Default()), actors.Meta{},
		commands.CreateUser{Email: email, Name: "Test " + email})
	if err != nil {
		a.t.Fatalf("create user %s: %v", email, err)
	}
	return res.Key.Key
}

// response is an answer with its body decoded as a JSON object (when it is one).
type response struct {
	*http.Response
	raw  []byte
	body map[string]any
}

// call sends a request with key as bearer token (none when empty). body is
// marshalled to JSON unless it is a string or []byte, sent as is.
func (a *api) call(method, path, key string, body any, headers ...string) response {
	a.t.Helper()
	var reader io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		reader = strings.NewReader(b)
	case []byte:
		reader = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			a.t.Fatal(err)
		}
		reader = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, a.url+path, reader)
	if err != nil {
		a.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	r := response{Response: resp, raw: raw}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

// want fails the test unless the response has the status.
func (r response) want(t *testing.T, status int) response {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d; body %s", r.Request.Method, r.Request.URL.Path, r.StatusCode, status, r.raw)
	}
	return r
}

// wantProblem checks the RFC 9457 shape of an error response: status,
// content type, code, type URI, title, and a request_id equal to the header.
func (r response) wantProblem(t *testing.T, status int, code string) response {
	t.Helper()
	r.want(t, status)
	if ct := r.Header.Get("Content-Type"); ct != handlers.ProblemContentType {
		t.Errorf("Content-Type %q, want %q", ct, handlers.ProblemContentType)
	}
	if got := r.body["code"]; got != code {
		t.Errorf("code %v, want %q; body %s", got, code, r.raw)
	}
	if got := r.body["status"]; got != float64(status) {
		t.Errorf("status member %v, want %d", got, status)
	}
	if got := r.body["type"]; got != handlers.DefaultProblemBaseURL+code {
		t.Errorf("type %v, want %q", got, handlers.DefaultProblemBaseURL+code)
	}
	if title, _ := r.body["title"].(string); title == "" {
		t.Errorf("problem has no title: %s", r.raw)
	}
	id := r.Header.Get("X-Request-Id")
	if id == "" || r.body["request_id"] != id {
		t.Errorf("request_id %v does not equal X-Request-Id %q", r.body["request_id"], id)
	}
	return r
}

// str returns the string member name of the body.
func (r response) str(name string) string {
	s, _ := r.body[name].(string)
	return s
}

// newClinic creates a clinic owned by key's user and returns its id.
func (a *api) newClinic(key string) string {
	a.t.Helper()
	r := a.call("POST", "/v1/clinics", key, map[string]any{"name": "Clínica Sol", "currency": "EUR", "timezone": "Europe/Madrid"})
	return r.want(a.t, http.StatusCreated).str("id")
}
