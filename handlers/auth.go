package handlers

import (
	"net/http"
	"strings"

	"github.com/aura-clinic/aura/actors/fault"
	"github.com/aura-clinic/aura/actors/platform"
)

// Errors of authentication.
var (
	errUnauthenticated = fault.Define("unauthenticated", fault.Unauthenticated, "Authentication required")
	errInvalidAPIKey   = fault.Define("invalid_api_key", fault.Unauthenticated, "Invalid API key")
)

// authenticate returns the user whose unrevoked API key is in the
// Authorization header ("Bearer <key>").
func (s *Server) authenticate(r *http.Request) (platform.User, error) {
	header := r.Header.Get("Authorization")
	if header == "" {
		return platform.User{}, errUnauthenticated.New("Send an API key in the header Authorization: Bearer <key>.")
	}
	scheme, key, found := strings.Cut(header, " ")
	key = strings.TrimSpace(key)
	if !found || !strings.EqualFold(scheme, "Bearer") || key == "" {
		return platform.User{}, errUnauthenticated.New("The Authorization header must be: Bearer <key>.")
	}
	user, _, ok, err := s.queries.Authenticate(r.Context(), platform.HashSecret(key))
	if err != nil {
		return platform.User{}, err
	}
	if !ok {
		return platform.User{}, errInvalidAPIKey.New("The API key is unknown or has been revoked.")
	}
	return user, nil
}
