package bench

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
)

// clinicsScenario touches every bench clinic once with one write (a new
// patient), so that each clinic's actor is alive at the end: it measures
// what many clinics cost the server (its RSS is in every report).
type clinicsScenario struct {
	clinics []string
	next    atomic.Int64 // the clinics handed out
}

func (s *clinicsScenario) bounded() {}

// Prepare implements Scenario; the clinics themselves are the setup.
func (s *clinicsScenario) Prepare(_ context.Context, env *Env) error {
	s.clinics = env.Clinics
	return nil
}

// Next implements Scenario.
func (s *clinicsScenario) Next(r *rand.Rand) (Op, bool) {
	i := s.next.Add(1) - 1
	if i >= int64(len(s.clinics)) {
		return Op{}, false
	}
	return createPatient(r, s.clinics, int(i)), true
}
