package actors

import "github.com/google/uuid"

// InFlight is the number of requests sent to the clinic's actor and not yet
// answered (0 when the clinic has no actor). Tests use it to know that a
// command is queued in the actor's mailbox, which no public API shows.
func (r *Registry) InFlight(clinicID uuid.UUID) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.actors[clinicID]; ok {
		return e.inflight
	}
	return 0
}
