package handlers

import (
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/aura-clinic/aura/actors/fault"
	"github.com/aura-clinic/aura/actors/platform"
	"github.com/aura-clinic/aura/schema/store"
)

// Errors of authentication.
var (
	errUnauthenticated = fault.Define("unauthenticated", fault.Unauthenticated, "Authentication required")
	errInvalidAPIKey   = fault.Define("invalid_api_key", fault.Unauthenticated, "Invalid API key")
)

// authenticate returns the caller whose unrevoked API key is in the
// Authorization header ("Bearer <key>"), with their membership of clinicID
// (uuid.Nil asks about none).
func (s *Server) authenticate(r *http.Request, clinicID uuid.UUID) (store.Caller, error) {
	header := r.Header.Get("Authorization")
	if header == "" {
		return store.Caller{}, errUnauthenticated.New("Send an API key in the header Authorization: Bearer <key>.")
	}
	scheme, key, found := strings.Cut(header, " ")
	key = strings.TrimSpace(key)
	if !found || !strings.EqualFold(scheme, "Bearer") || key == "" {
		return store.Caller{}, errUnauthenticated.New("The Authorization header must be: Bearer <key>.")
	}
	caller, ok, err := s.queries.Authenticate(r.Context(), platform.HashSecret(key), clinicID)
	if err != nil {
		return store.Caller{}, err
	}
	if !ok {
		return store.Caller{}, errInvalidAPIKey.New("The API key is unknown or has been revoked.")
	}
	return caller, nil
}
