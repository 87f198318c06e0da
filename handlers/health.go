package handlers

import (
	"context"
	"time"

	"github.com/aura-clinic/aura/actors/fault"
)

var errNotReady = fault.Define("not_ready", fault.Unavailable, "Not ready")

type status struct {
	Status string `json:"status"`
}

// healthz says the process is alive.
func (s *Server) healthz(*call) (reply, error) { return ok(status{"ok"}), nil }

// readyz says the database is reachable.
func (s *Server) readyz(c *call) (reply, error) {
	ctx, cancel := context.WithTimeout(c.ctx, 2*time.Second)
	defer cancel()
	if err := s.pool.Ping(ctx); err != nil {
		return reply{}, errNotReady.Wrap(err, "The database is not reachable.")
	}
	return ok(status{"ready"}), nil
}
