package handlers

import (
	"net/http"

	"github.com/gorilla/mux"
)

// Router returns a router with the routes New registers on s's router, for
// tests that walk the route set: every route of s.routes() with its method
// (and HEAD beside each GET), and GET /metrics when Config.Metrics is set.
// Its handlers are placeholders; only the routes' templates and methods
// count. The route-set test also checks the live server answers every one
// of them, so this copy cannot drift from New unnoticed.
func (s *Server) Router() *mux.Router {
	router := mux.NewRouter()
	placeholder := http.NotFoundHandler()
	for _, rt := range s.routes() {
		methods := []string{rt.method}
		if rt.method == http.MethodGet {
			methods = append(methods, http.MethodHead)
		}
		router.Handle(rt.path, placeholder).Methods(methods...)
	}
	if s.cfg.Metrics != nil {
		router.Handle("/metrics", s.cfg.Metrics).Methods(http.MethodGet)
	}
	return router
}
