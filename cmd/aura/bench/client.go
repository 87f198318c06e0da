package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// requestTimeout bounds one API request (not an event stream).
const requestTimeout = 30 * time.Second

// Phases of a run, as they appear in request ids.
const (
	phaseSetup   = "s"
	phaseWarmup  = "w"
	phaseMeasure = "m"
)

// Client talks to the Aura API as the bench user. One transport, tuned so
// that every worker keeps its connection, serves the requests and the event
// streams.
type Client struct {
	base   string
	auth   string
	api    *http.Client // requests, each with a deadline
	stream *http.Client // event streams, without one
	run    string       // this run's random id, the prefix of its request ids
	seq    atomic.Int64 // the last request number used
	// limited is set once an answer carries RateLimit-Policy: the server
	// enforces rate limits.
	limited atomic.Bool
	// created counts the resources setup has created.
	created atomic.Int64
}

// NewClient returns a client of the API at base authenticating with key,
// with idle connections for concurrency workers (and the event streams).
func NewClient(base, key string, concurrency int) (*Client, error) {
	run := make([]byte, 4)
	if _, err := rand.Read(run); err != nil {
		return nil, fmt.Errorf("random run id: %w", err)
	}
	transport := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        0, // no limit overall
		MaxIdleConnsPerHost: concurrency + 16,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true, // measure the server, not gzip
	}
	return &Client{
		base:   strings.TrimSuffix(base, "/"),
		auth:   "Bearer " + key,
		api:    &http.Client{Transport: transport, Timeout: requestTimeout},
		stream: &http.Client{Transport: transport},
		run:    hex.EncodeToString(run),
	}, nil
}

// Close releases the client's idle connections.
func (c *Client) Close() { c.api.CloseIdleConnections() }

// nextID returns a fresh id for a request of phase: it is sent both as
// X-Request-Id (so the request's events carry it) and as Idempotency-Key.
func (c *Client) nextID(phase string) string {
	return c.run + "-" + phase + "-" + strconv.FormatInt(c.seq.Add(1), 10)
}

// measured reports whether id is the id of a request of the measured window.
func (c *Client) measured(id string) bool {
	return strings.HasPrefix(id, c.run+"-"+phaseMeasure+"-")
}

// Response is an answer of the API.
type Response struct {
	Status int
	Code   string // the problem's code, for a non-2xx answer
	Body   []byte
	Header http.Header
}

// OK reports whether the answer is a success.
func (r Response) OK() bool { return isOK(r.Status) }

// Do sends a request with id as its request id (and, for a POST, its
// Idempotency-Key); body, when not nil, is sent as JSON. An error means no
// answer; an answer of any status is a Response.
func (c *Client) Do(ctx context.Context, method, path string, body any, id string) (Response, error) {
	var payload io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return Response{}, fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		payload = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, payload)
	if err != nil {
		return Response{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", c.auth)
	req.Header.Set("X-Request-Id", id)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if method == http.MethodPost {
		req.Header.Set("Idempotency-Key", id)
	}
	resp, err := c.api.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{}, fmt.Errorf("%s %s: read the answer: %w", method, path, err)
	}
	if resp.Header.Get("RateLimit-Policy") != "" {
		c.limited.Store(true)
	}
	r := Response{Status: resp.StatusCode, Body: data, Header: resp.Header}
	if !r.OK() {
		var problem struct {
			Code string `json:"code"`
		}
		_ = json.Unmarshal(data, &problem) // a non-problem body leaves the code empty
		r.Code = problem.Code
	}
	return r, nil
}

// create POSTs body to path during setup and decodes the 201 answer into
// out; any other answer is an error naming the status and problem.
func (c *Client) create(ctx context.Context, path string, body, out any) error {
	resp, err := c.Do(ctx, http.MethodPost, path, body, c.nextID(phaseSetup))
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	if resp.Status != http.StatusCreated {
		return fmt.Errorf("POST %s: %d %s: %s%s", path, resp.Status, resp.Code, bytes.TrimSpace(resp.Body), hint(resp.Status))
	}
	if err := json.Unmarshal(resp.Body, out); err != nil {
		return fmt.Errorf("POST %s: decode the answer: %w", path, err)
	}
	c.created.Add(1)
	return nil
}

// RevokeKey revokes the API key keyID through the API at base,
// authenticating with the key itself (DELETE /v1/api-keys/{key_id}).
func RevokeKey(ctx context.Context, base, key, keyID string) error {
	c, err := NewClient(base, key, 1)
	if err != nil {
		return err
	}
	defer c.Close()
	path := "/v1/api-keys/" + url.PathEscape(keyID)
	resp, err := c.Do(ctx, http.MethodDelete, path, nil, c.nextID(phaseSetup))
	if err != nil {
		return fmt.Errorf("DELETE %s: %w", path, err)
	}
	if resp.Status != http.StatusNoContent {
		return fmt.Errorf("DELETE %s: %d %s: %s%s", path, resp.Status, resp.Code, bytes.TrimSpace(resp.Body), hint(resp.Status))
	}
	return nil
}

// hint explains the answers a misconfigured bench gets.
func hint(status int) string {
	switch status {
	case http.StatusTooManyRequests:
		return " (run the server with AURA_RATE_LIMITS=off for benchmarks)"
	case http.StatusUnauthorized:
		return " (the API key is unknown to the server: does AURA_DATABASE_URL name the server's database?)"
	}
	return ""
}

// get fetches path (such as /healthz or /metrics) and returns the body of
// a 200 answer; any other answer is an error.
func (c *Client) get(ctx context.Context, path string) ([]byte, error) {
	resp, err := c.Do(ctx, http.MethodGet, path, nil, c.nextID(phaseSetup))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.Status != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d %s", path, resp.Status, resp.Code)
	}
	return resp.Body, nil
}
