package handlers

import (
	"slices"

	"github.com/google/uuid"

	"github.com/aura-clinic/aura/messaging"
)

// listEvents is the clinic's event log, newest first.
func (s *Server) listEvents(c *call) (reply, error) {
	page, err := c.page()
	if err != nil {
		return reply{}, err
	}
	q := c.query()
	name := q.get("event")
	if name != "" && !slices.Contains(messaging.Names, name) {
		q.fail("event", "must be the name of one of the ten domain events, e.g. crm.patient.created")
	}
	if err := q.err(); err != nil {
		return reply{}, err
	}
	list, err := s.queries.ListClinicEvents(c.ctx, c.clinic.ID, name, page)
	if err != nil {
		return reply{}, err
	}
	return listReply(list, func(e messaging.Envelope) uuid.UUID { return e.EventID }), nil
}
