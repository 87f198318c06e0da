package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/aura-clinic/aura/actors/crm"
	"github.com/aura-clinic/aura/actors/fault"
	"github.com/aura-clinic/aura/actors/ratelimit"
)

// BenchmarkProblemRendering measures writeProblem, the one central mapper
// from an error to an RFC 9457 problem response, rendering into a fresh
// httptest.ResponseRecorder (whose allocations are counted too): a domain
// not-found (404), a validation error with three field errors (422), an
// error that is not a fault, such as a driver error, which becomes a generic
// 500 (logged through a discarding logger, so the log line's formatting is
// not measured), and a 429 carrying the RateLimit and Retry-After headers.
// Each response's status and content type are checked.
func BenchmarkProblemRendering(b *testing.B) {
	s, err := New(Config{}, slog.New(slog.DiscardHandler), nil, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	var fields fault.Fields
	fields.Add("/first_name", "required", "is required")
	fields.Add("/email", "invalid_email", "must be an email address")
	fields.Add("/date_of_birth", "invalid_date", "must be a date (YYYY-MM-DD)")

	spent := ratelimit.Policy{Scope: ratelimit.ScopeUser, Class: ratelimit.ClassWrite, Quota: 1, Window: time.Minute}
	var bucket ratelimit.Bucket
	buckets, policies := []*ratelimit.Bucket{&bucket}, []ratelimit.Policy{spent}
	ratelimit.Allow(time.Now(), buckets, policies)
	refused := ratelimit.Allow(time.Now(), buckets, policies)

	cases := []struct {
		name   string
		err    error
		limits ratelimit.Decision
		status int
		code   string
	}{
		{"not-found", crm.ErrPatientNotFound.New("No patient with this id in this clinic."),
			ratelimit.Decision{Allowed: true}, http.StatusNotFound, "patient_not_found"},
		{"validation", fields.Err(), ratelimit.Decision{Allowed: true}, http.StatusUnprocessableEntity, "validation_failed"},
		{"internal", fmt.Errorf("insert patient: %w", &pgconn.PgError{Code: "42P01", Message: `relation "patients" does not exist`}),
			ratelimit.Decision{Allowed: true}, http.StatusInternalServerError, "internal_error"},
		{"rate-limited", errRateLimited.New("Too many write requests; retry after the time in Retry-After."),
			refused, http.StatusTooManyRequests, "rate_limited"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			// The request as the middleware leaves it: with its request id
			// and the rate decisions taken so far.
			info := &requestInfo{requestID: "0f8fad5b-d9cb-469f-a165-70867728950e", limits: c.limits}
			req := httptest.NewRequestWithContext(context.WithValue(context.Background(), infoKey{}, info),
				http.MethodPost, "/v1/clinics/x/patients", nil)

			rec := httptest.NewRecorder()
			s.writeProblem(rec, req, c.err)
			var p Problem
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Status != c.status || p.Code != c.code {
				b.Fatalf("problem %+v (%v), want status %d code %s", p, err, c.status, c.code)
			}

			b.ReportAllocs()
			b.SetBytes(int64(rec.Body.Len()))
			for b.Loop() {
				rec := httptest.NewRecorder()
				s.writeProblem(rec, req, c.err)
				if rec.Code != c.status || rec.Header().Get("Content-Type") != ProblemContentType {
					b.Fatalf("status %d, Content-Type %q", rec.Code, rec.Header().Get("Content-Type"))
				}
			}
		})
	}
}
