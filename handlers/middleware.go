package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"time"

	"github.com/google/uuid"

	"github.com/aura-clinic/aura/actors/fault"
	"github.com/aura-clinic/aura/actors/ratelimit"
)

// requestInfo is what the middleware learns about a request, shared by the
// access log and the steps inside it.
type requestInfo struct {
	requestID   string
	route       string             // the route template, once routed
	userID      uuid.UUID          // once authenticated
	problemCode string             // when answered with a problem
	replayed    bool               // answered with an idempotent replay
	limits      ratelimit.Decision // the rate limits the request was counted against
}

type infoKey struct{}

func infoFrom(ctx context.Context) *requestInfo {
	if info, ok := ctx.Value(infoKey{}).(*requestInfo); ok {
		return info
	}
	return &requestInfo{}
}

// middleware wraps a handler.
type middleware func(http.Handler) http.Handler

// chain applies middleware so that the first one listed runs first.
func chain(h http.Handler, mws ...middleware) http.Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// RequestIDHeader carries the request id in both directions.
const RequestIDHeader = "X-Request-Id"

var safeRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// withRequestID keeps an inbound X-Request-Id made of 1–128 safe characters,
// else makes a new one, and echoes it on the response.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !safeRequestID.MatchString(id) {
			id = uuid.Must(uuid.NewV7()).String()
		}
		w.Header().Set(RequestIDHeader, id)
		// limits starts allowed: decisions are merged into it as steps count
		// the request.
		ctx := context.WithValue(r.Context(), infoKey{}, &requestInfo{requestID: id, limits: ratelimit.Decision{Allowed: true}})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// statusRecorder remembers the status and size of a response.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusRecorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// accessLog writes one structured line per request. It logs the route
// template and ids, never bodies or query strings (they may hold health data).
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		info := infoFrom(r.Context())
		attrs := []slog.Attr{
			slog.String("request_id", info.requestID),
			slog.String("method", r.Method),
			slog.String("route", info.route),
			slog.Int("status", rec.status),
			slog.Int("bytes", rec.bytes),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
		}
		if info.userID != uuid.Nil {
			attrs = append(attrs, slog.String("user_id", info.userID.String()))
		}
		if info.problemCode != "" {
			attrs = append(attrs, slog.String("code", info.problemCode))
		}
		s.logger.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
	})
}

// recoverPanics answers a panicking request with a 500 problem and logs the
// stack; the client never sees it.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.logger.ErrorContext(r.Context(), "handler panicked", "request_id", infoFrom(r.Context()).requestID,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			s.writeProblem(w, r, fault.ErrInternal.Wrap(errors.New("panic"), "The server could not complete the request."))
		}()
		next.ServeHTTP(w, r)
	})
}
