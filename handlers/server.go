// Package handlers is Aura's HTTP edge: a gorilla/mux router, one middleware
// chain (request id → access log → recover → deadline (except streams) → authenticate →
// clinic membership and role), and handlers that decode and validate a
// request, build a command for the clinic's actor (writes) or query the
// store (reads), and render JSON or an RFC 9457 problem.
package handlers

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aura-clinic/aura/actors"
	"github.com/aura-clinic/aura/actors/fault"
	"github.com/aura-clinic/aura/actors/ratelimit"
	"github.com/aura-clinic/aura/messaging"
	"github.com/aura-clinic/aura/schema/store"
)

// Config tunes the HTTP edge. Zero fields take the documented defaults.
type Config struct {
	// RequestTimeout bounds each request, including the wait for the clinic
	// actor. Default 10s.
	RequestTimeout time.Duration
	// MaxBodyBytes caps request bodies; larger ones get 413. Default 1 MiB.
	MaxBodyBytes int64
	// ProblemBaseURL prefixes each problem's code to form its type URI.
	// Default "https://aura.example/problems/".
	ProblemBaseURL string
	// Limits are the rate limits; the edge keeps the ip buckets and the user
	// buckets of routes outside a clinic. The zero value limits nothing.
	Limits ratelimit.Limits
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// Metrics, when set, is served at GET /metrics without authentication.
	Metrics http.Handler
}

// DefaultProblemBaseURL is the documented base of problem type URIs.
const DefaultProblemBaseURL = "https://aura.example/problems/"

func (c Config) withDefaults() (Config, error) {
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.ProblemBaseURL == "" {
		c.ProblemBaseURL = DefaultProblemBaseURL
	}
	if u, err := url.Parse(c.ProblemBaseURL); err != nil || !u.IsAbs() {
		return c, fmt.Errorf("problem base URL %q is not an absolute URI", c.ProblemBaseURL)
	}
	if !strings.HasSuffix(c.ProblemBaseURL, "/") {
		c.ProblemBaseURL += "/"
	}
	return c, nil
}

// Server is Aura's HTTP API.
type Server struct {
	cfg     Config
	logger  *slog.Logger
	pool    *pgxpool.Pool
	queries *store.Queries
	exec    *actors.Executor // writes outside any clinic
	clinics *actors.Registry // writes under /v1/clinics/{clinic_id}
	handler http.Handler
	// edgeBuckets are the rate buckets kept at the edge (ip, and user on
	// routes outside a clinic); the clinic actors keep the others.
	edgeBuckets *ratelimit.Keyed
	// feed wakes event streams when the event log grows.
	feed *messaging.Feed
	// contract is the OpenAPI document and API reference the server serves.
	contract *contract
}

// New returns the API. Reads go to pool directly; writes under a clinic go to
// that clinic's actor through clinics; other writes run on exec.
func New(cfg Config, logger *slog.Logger, pool *pgxpool.Pool, exec *actors.Executor, clinics *actors.Registry) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, logger: logger, pool: pool, queries: store.New(pool), exec: exec, clinics: clinics,
		edgeBuckets: ratelimit.NewKeyed(0), feed: messaging.NewFeed(pool)}
	if s.contract, err = loadContract(); err != nil {
		return nil, err
	}
	// Match paths as sent: mux's cleaning would answer //x or a/../b with a
	// bare 301 instead of 404 route_not_found.
	router := mux.NewRouter().SkipClean(true)
	for _, rt := range s.routes() {
		methods := []string{rt.method}
		if rt.method == http.MethodGet {
			methods = append(methods, http.MethodHead)
		}
		router.Handle(rt.path, s.serve(rt)).Methods(methods...)
	}
	if cfg.Metrics != nil {
		router.Handle("/metrics", cfg.Metrics).Methods(http.MethodGet)
	}
	router.NotFoundHandler = s.fail(errRouteNotFound.New("No route matches this path."))
	router.MethodNotAllowedHandler = s.methodNotAllowed(router)
	s.handler = s.middleware(router)
	return s, nil
}

// middleware wraps h in the chain every request goes through. The request id
// comes first and recovery sits inside the access log, so that a panic's
// problem and log lines carry the request id and the 500 is logged.
func (s *Server) middleware(h http.Handler) http.Handler {
	return chain(h, withRequestID, s.accessLog, s.recoverPanics)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Errors of the edge itself.
var (
	errRouteNotFound    = fault.Define("route_not_found", fault.NotFound, "Route not found")
	errMethodNotAllowed = fault.Define("method_not_allowed", fault.MethodNotAllowed, "Method not allowed")
)

// fail is a handler that always answers err, after counting the request
// against the client's ip bucket like any other.
func (s *Server) fail(err error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		answer := err
		if limitErr := s.limitEdge(r, ratelimit.ScopeIP, s.clientIP(r), classOf(r.Method)); limitErr != nil {
			answer = limitErr
		}
		s.writeProblem(w, r, answer)
	})
}

// methodNotAllowed answers 405 with the Allow header RFC 9110 requires: the
// methods that some route accepts for the request's path.
func (s *Server) methodNotAllowed(router *mux.Router) http.Handler {
	methods := []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range methods {
			probe := r.Clone(r.Context())
			probe.Method = m
			var match mux.RouteMatch
			if router.Match(probe, &match) && match.MatchErr == nil {
				allow = append(allow, m)
			}
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		s.fail(errMethodNotAllowed.New("This path does not support this method.")).ServeHTTP(w, r)
	})
}
