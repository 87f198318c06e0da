package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"time"
)

// Booking settings.
const (
	bookingPractitioners = 4                // per clinic
	bookingPatients      = 8                // per clinic
	bookingConflictPct   = 10               // % of bookings aimed at a slot already taken
	bookingSlot          = 30 * time.Minute // each appointment's length
)

// bookingScenario books appointments in consecutive free slots of each
// practitioner; bookingConflictPct % of them take a slot already booked
// (or being booked) and get 409 appointment_conflict.
type bookingScenario struct {
	clinics  []string
	patients [][]string
	// practitioners are each clinic's practitioners with their next free slot.
	practitioners [][]*practitioner
	base          time.Time // the start of slot 0
}

// practitioner is a practitioner of a bench clinic.
type practitioner struct {
	id   string
	next atomic.Int64 // the number of slots handed out
}

// Prepare implements Scenario: it adds practitioners and patients to every
// clinic.
func (s *bookingScenario) Prepare(ctx context.Context, env *Env) error {
	s.clinics = env.Clinics
	s.base = time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, 1)
	ids, err := seed(ctx, env, bookingPractitioners,
		func(clinic string) string { return clinicPath(clinic, "members") },
		func(_, j int) any {
			return map[string]string{
				"email": fmt.Sprintf("bench-practitioner-%d@example.com", j+1),
				"name":  fmt.Sprintf("Bench practitioner %d", j+1),
				"role":  "practitioner",
			}
		},
		func(c newResource) string { return c.UserID })
	if err != nil {
		return fmt.Errorf("add practitioners: %w", err)
	}
	s.practitioners = make([][]*practitioner, len(ids))
	for i, clinic := range ids {
		for _, id := range clinic {
			s.practitioners[i] = append(s.practitioners[i], &practitioner{id: id})
		}
	}
	s.patients, err = seedPatients(ctx, env, bookingPatients)
	return err
}

// Next implements Scenario.
func (s *bookingScenario) Next(r *rand.Rand) (Op, bool) {
	i := r.IntN(len(s.clinics))
	p := s.practitioners[i][r.IntN(bookingPractitioners)]
	var slot int64
	if taken := p.next.Load(); taken > 0 && r.IntN(100) < bookingConflictPct {
		slot = r.Int64N(taken)
	} else {
		slot = p.next.Add(1) - 1
	}
	starts := s.base.Add(time.Duration(slot) * bookingSlot)
	return Op{Method: http.MethodPost, Path: clinicPath(s.clinics[i], "appointments"), Clinic: i, Body: map[string]string{
		"patient_id":      s.patients[i][r.IntN(bookingPatients)],
		"practitioner_id": p.id,
		"starts_at":       starts.Format(time.RFC3339),
		"ends_at":         starts.Add(bookingSlot).Format(time.RFC3339),
	}}, true
}
