package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/aura-clinic/aura/actors"
	"github.com/aura-clinic/aura/actors/fault"
)

// statusOf is the one place where error kinds become HTTP statuses.
var statusOf = map[fault.Kind]int{
	fault.Internal:         http.StatusInternalServerError,
	fault.Invalid:          http.StatusBadRequest,
	fault.Unauthenticated:  http.StatusUnauthorized,
	fault.Forbidden:        http.StatusForbidden,
	fault.NotFound:         http.StatusNotFound,
	fault.MethodNotAllowed: http.StatusMethodNotAllowed,
	fault.Conflict:         http.StatusConflict,
	fault.TooLarge:         http.StatusRequestEntityTooLarge,
	fault.UnsupportedMedia: http.StatusUnsupportedMediaType,
	fault.Unprocessable:    http.StatusUnprocessableEntity,
	fault.Unavailable:      http.StatusServiceUnavailable,
	fault.RateLimited:      http.StatusTooManyRequests,
}

// errDatabaseUnavailable answers requests while the database cannot be reached.
var errDatabaseUnavailable = fault.Define("database_unavailable", fault.Unavailable, "Database unavailable")

// Problem is an RFC 9457 problem details object with Aura's extension
// members code and request_id.
type Problem struct {
	Type      string             `json:"type"`
	Title     string             `json:"title"`
	Status    int                `json:"status"`
	Detail    string             `json:"detail,omitempty"`
	Code      string             `json:"code"`
	RequestID string             `json:"request_id"`
	Errors    []fault.FieldError `json:"errors,omitempty"`
	// ViolatedPolicies names the exhausted rate-limit policies of a 429.
	ViolatedPolicies []string `json:"violated_policies,omitempty"`
}

// ProblemContentType is the media type of every error response.
const ProblemContentType = "application/problem+json"

// problemFor turns any error into the problem a client sees. Errors that are
// not application errors become a generic 500: their text (SQL, driver
// messages, stack traces) never leaves the server.
func (s *Server) problemFor(err error, requestID string) Problem {
	var connectErr *pgconn.ConnectError
	switch {
	case isFault(err):
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		err = fault.ErrTimeout.Wrap(err, "The request did not complete in time; it may be retried.")
	case errors.As(err, &connectErr):
		err = errDatabaseUnavailable.Wrap(err, "The database is not reachable; retry shortly.")
	}
	e := fault.From(err)
	status, ok := statusOf[e.Code.Kind()]
	if !ok {
		status = http.StatusInternalServerError
	}
	return Problem{
		Type:      s.cfg.ProblemBaseURL + e.Code.Name(),
		Title:     e.Code.Title(),
		Status:    status,
		Detail:    e.Detail,
		Code:      e.Code.Name(),
		RequestID: requestID,
		Errors:    e.Fields,
	}
}

func isFault(err error) bool {
	var e *fault.Error
	return errors.As(err, &e)
}

// writeProblem renders err as a problem. Server-side failures are logged with
// their cause; client errors are not worth a log line of their own (the
// access log has the status).
func (s *Server) writeProblem(w http.ResponseWriter, r *http.Request, err error) {
	info := infoFrom(r.Context())
	p := s.problemFor(err, info.requestID)
	if p.Status >= 500 {
		s.logger.ErrorContext(r.Context(), "request failed", "request_id", info.requestID,
			"code", p.Code, "error", err.Error())
	}
	info.problemCode = p.Code
	if !info.limits.Allowed {
		p.ViolatedPolicies = info.limits.Violated()
	}
	h := w.Header()
	writeRateHeaders(h, info.limits)
	h.Set("Content-Type", ProblemContentType)
	h.Set("Cache-Control", "no-store")
	switch p.Status {
	case http.StatusUnauthorized:
		h.Set("WWW-Authenticate", `Bearer realm="aura"`)
	case http.StatusServiceUnavailable:
		h.Set("Retry-After", "1")
	case http.StatusConflict:
		if p.Code == actors.ErrKeyInFlight.Name() {
			h.Set("Retry-After", "1")
		}
	}
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}
