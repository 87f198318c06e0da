package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/aura-clinic/aura/actors"
	"github.com/aura-clinic/aura/actors/commands"
	"github.com/aura-clinic/aura/actors/ratelimit"
	"github.com/aura-clinic/aura/handlers"
	"github.com/aura-clinic/aura/schema/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// api is a running Aura API over the package's test database.
type api struct {
	t       *testing.T
	url     string
	srv     *handlers.Server
	clinics *actors.Registry
	// stop closes the server and stops its actors, as a process's shutdown
	// does; it runs once, at the latest when the test ends.
	stop func()
}

// newAPI starts the API on a test server; tune adjusts the HTTP config.
func newAPI(t *testing.T, tune ...func(*handlers.Config)) *api {
	t.Helper()
	var cfg handlers.Config
	for _, f := range tune {
		f(&cfg)
	}
	return newAPIWith(t, cfg)
}

// newAPIWith starts the API with the HTTP config cfg and the executor's
// options (such as actors.WithIdempotencyTTL). Each call is an instance of
// its own (server, executor, actor registry) over the package's database,
// as another process would be.
func newAPIWith(t *testing.T, cfg handlers.Config, opts ...actors.ExecutorOption) *api {
	t.Helper()
	return startAPI(t, cfg, actors.Config{}, opts...)
}

// newLimitedAPI starts the API with limits in force wherever buckets are
// kept: at the edge (ip, and user outside a clinic) and in the clinic actors
// (user and clinic). proxies are the trusted proxies.
func newLimitedAPI(t *testing.T, limits ratelimit.Limits, proxies ...netip.Prefix) *api {
	t.Helper()
	return startAPI(t, handlers.Config{Limits: limits, TrustedProxies: proxies}, actors.Config{Limits: limits})
}

// startAPI starts the API with the HTTP config cfg, the registry's config
// reg and the executor's options.
func startAPI(t *testing.T, cfg handlers.Config, reg actors.Config, opts ...actors.ExecutorOption) *api {
	t.Helper()
	pool := dbtest.Pool(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	exec := actors.NewExecutor(pool, logger, opts...)
	clinics := actors.NewRegistry(exec, logger, reg)
	srv, err := handlers.New(cfg, logger, pool, exec, clinics)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ts.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := clinics.Stop(ctx); err != nil {
				t.Errorf("stop actors: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return &api{t: t, url: ts.URL, srv: srv, clinics: clinics, stop: stop}
}

// newUser creates a user with a fresh API key, as `aura user create` does,
// and returns the key.
func (a *api) newUser(email string) string {
	a.t.Helper()
	res, _, err := actors.Exec(context.Background(), actors.NewExecutor(dbtest.Pool(a.t), slog.Default()), actors.Meta{},
		commands.CreateUser{Email: email, Name: "Test " + email})
	if err != nil {
		a.t.Fatalf("create user %s: %v", email, err)
	}
	return res.Key.Key
}

// noHeader as a header's value in call removes that header.
const noHeader = "\x00remove"

// response is an answer with its body decoded as a JSON object (when it is one).
type response struct {
	*http.Response
	raw  []byte
	body map[string]any
}

// on returns the API bound to t, for use inside t.Run: failures must be
// reported on the goroutine's own test.
func (a *api) on(t *testing.T) *api {
	b := *a
	b.t = t
	return &b
}

// emailSeq makes emails unique within the test binary, even with -count=N.
var emailSeq atomic.Int64

var nonAlnum = regexp.MustCompile(`[^a-z0-9]+`)

// email returns an address no other test (or repetition) uses, derived from
// the test's name and tag, so the shared users table never collides.
func email(t *testing.T, tag string) string {
	name := strings.Trim(nonAlnum.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	return fmt.Sprintf("%s.%s.%d@example.com", tag, name, emailSeq.Add(1))
}

// call sends a request with key as bearer token (none when empty). body is
// marshalled to JSON unless it is a string or []byte (sent as is, with a
// Content-Length) or another io.Reader (sent chunked, without one). Like
// every exchange of the harness, it is checked against the OpenAPI document
// (exchange.check, in contract_test.go).
func (a *api) call(method, path, key string, body any, headers ...string) response {
	a.t.Helper()
	return a.do(a.request(method, path, key, body, headers...))
}

// request builds what call sends: headers are name, value pairs set after
// the defaults (a value of noHeader removes the header). The request carries
// its test and a copy of its body, for send's contract check.
func (a *api) request(method, path, key string, body any, headers ...string) *http.Request {
	a.t.Helper()
	var reader io.Reader
	var sent []byte // the body's bytes, kept for the contract check
	switch b := body.(type) {
	case nil:
	case string:
		sent = []byte(b)
		reader = strings.NewReader(b)
	case []byte:
		sent = b
		reader = bytes.NewReader(b)
	case io.Reader:
		raw, err := io.ReadAll(b)
		if err != nil {
			a.t.Fatal(err)
		}
		sent = raw
		reader = struct{ io.Reader }{bytes.NewReader(raw)} // hide the type so the length is unknown
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			a.t.Fatal(err)
		}
		sent = raw
		reader = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(withExchange(context.Background(), a.t, sent), method, a.url+path, reader)
	if err != nil {
		a.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if method == http.MethodPost { // every POST needs one; a test may set its own
		req.Header.Set("Idempotency-Key", uuid.NewString())
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == noHeader {
			req.Header.Del(headers[i])
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	return req
}

// do sends req and reads the response.
func (a *api) do(req *http.Request) response {
	a.t.Helper()
	r, err := send(req)
	if err != nil {
		a.t.Fatal(err)
	}
	return r
}

// send sends req, which api.request built, reads the response and checks
// the exchange against the OpenAPI document. Unlike do it never stops a test
// (a contract mismatch is reported with t.Errorf on the request's test), so
// it may run on any goroutine.
func send(req *http.Request) (response, error) {
	x, ok := exchangeOf(req)
	if !ok {
		return response{}, fmt.Errorf("%s %s: not built by api.request, so it cannot be checked against the OpenAPI document", req.Method, req.URL.Path)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: read body: %w", req.Method, req.URL.Path, err)
	}
	r := response{Response: resp, raw: raw}
	_ = json.Unmarshal(raw, &r.body)
	x.check(req, resp, raw, false)
	return r, nil
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
	r.wantNoLeaks(t)
	return r
}

// leakMarkers are traces of server internals that must never reach a client:
// SQL, driver and PostgreSQL messages, Go errors and stack traces.
var leakMarkers = []string{
	"SELECT", "INSERT", "UPDATE ", "FROM ", "WHERE", "pgx", "pgconn", "SQLSTATE", "postgres",
	"goroutine", "runtime/", ".go:", "panic", "deadline exceeded", "context canceled",
	"connection refused", "canceling statement",
}

// wantNoLeaks fails the test if the body shows any server internals.
func (r response) wantNoLeaks(t *testing.T) {
	t.Helper()
	for _, m := range leakMarkers {
		if bytes.Contains(r.raw, []byte(m)) {
			t.Errorf("response body leaks %q: %s", m, r.raw)
		}
	}
}

// fieldErrors returns the problem's errors member.
func (r response) fieldErrors() []map[string]any {
	var out []map[string]any
	list, _ := r.body["errors"].([]any)
	for _, e := range list {
		m, _ := e.(map[string]any)
		out = append(out, m)
	}
	return out
}

// wantFieldError checks a 422 validation_failed problem that has an entry
// for pointer with code and a non-empty detail.
func (r response) wantFieldError(t *testing.T, pointer, code string) response {
	t.Helper()
	r.wantProblem(t, http.StatusUnprocessableEntity, "validation_failed")
	for _, e := range r.fieldErrors() {
		if e["pointer"] == pointer && e["code"] == code {
			if d, _ := e["detail"].(string); d == "" {
				t.Errorf("error at %s has no detail: %s", pointer, r.raw)
			}
			return r
		}
	}
	t.Errorf("no error {pointer %q, code %q} in %s", pointer, code, r.raw)
	return r
}

// items returns the data member of a list response.
func (r response) items() []map[string]any {
	var out []map[string]any
	list, _ := r.body["data"].([]any)
	for _, e := range list {
		m, _ := e.(map[string]any)
		out = append(out, m)
	}
	return out
}

// ids returns the id member of each item of a list response.
func (r response) ids(member string) []string {
	var out []string
	for _, it := range r.items() {
		s, _ := it[member].(string)
		out = append(out, s)
	}
	return out
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

// newMember creates a user with a key, has ownerKey's user add them to the
// clinic with role, and returns their key.
func (a *api) newMember(ownerKey, clinicID, role string) string {
	a.t.Helper()
	addr := email(a.t, role)
	key := a.newUser(addr)
	a.call("POST", "/v1/clinics/"+clinicID+"/members", ownerKey, map[string]any{"email": addr, "role": role}).
		want(a.t, http.StatusCreated)
	return key
}

// newPatient creates a patient in the clinic and returns the response.
func (a *api) newPatient(key, clinicID, first, last string) response {
	a.t.Helper()
	return a.call("POST", "/v1/clinics/"+clinicID+"/patients", key, map[string]any{"first_name": first, "last_name": last}).
		want(a.t, http.StatusCreated)
}
