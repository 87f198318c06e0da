package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"
)

// patientBody is a new patient's fields.
type patientBody struct {
	FirstName   string `json:"first_name"`
	LastName    string `json:"last_name"`
	DateOfBirth string `json:"date_of_birth"`
	Phone       string `json:"phone"`
}

// newPatient draws a plausible patient with r.
func newPatient(r *rand.Rand) patientBody {
	first := [...]string{"Ana", "Bea", "Carlos", "Diego", "Eva", "Lucía", "Marta", "Pablo", "Sara", "Tomás"}
	last := [...]string{"García", "López", "Martín", "Navarro", "Ortega", "Pérez", "Ruiz", "Sánchez", "Torres", "Vidal"}
	born := time.Date(1940, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, r.IntN(365*75))
	return patientBody{
		FirstName:   first[r.IntN(len(first))],
		LastName:    last[r.IntN(len(last))],
		DateOfBirth: born.Format(time.DateOnly),
		Phone:       fmt.Sprintf("+34 6%02d %03d %03d", r.IntN(100), r.IntN(1000), r.IntN(1000)),
	}
}

// createPatient is the op that creates a patient in clinic i of clinics.
func createPatient(r *rand.Rand, clinics []string, i int) Op {
	return Op{Method: http.MethodPost, Path: clinicPath(clinics[i], "patients"), Body: newPatient(r), Clinic: i}
}

// seedPatients creates per patients in each clinic of env.
func seedPatients(ctx context.Context, env *Env, per int) ([][]string, error) {
	r := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	bodies := make([]patientBody, len(env.Clinics)*per) // drawn up front: r is not safe for concurrent use
	for i := range bodies {
		bodies[i] = newPatient(r)
	}
	ids, err := seed(ctx, env, per,
		func(clinic string) string { return clinicPath(clinic, "patients") },
		func(clinic, j int) any { return bodies[clinic*per+j] },
		func(c newResource) string { return c.ID })
	if err != nil {
		return nil, fmt.Errorf("create patients: %w", err)
	}
	return ids, nil
}

// writeScenario creates patients, spread evenly over the clinics.
type writeScenario struct {
	clinics []string
}

// Prepare implements Scenario.
func (s *writeScenario) Prepare(_ context.Context, env *Env) error {
	s.clinics = env.Clinics
	return nil
}

// Next implements Scenario.
func (s *writeScenario) Next(r *rand.Rand) (Op, bool) {
	return createPatient(r, s.clinics, r.IntN(len(s.clinics))), true
}

// mixedScenario is 80 % reads (a patient, a page of patients, the clinic)
// and 20 % new patients.
type mixedScenario struct {
	clinics  []string
	patients [][]string // seeded, by clinic
}

// mixedSeed is how many patients each clinic starts with, for the reads.
const mixedSeed = 20

// Prepare implements Scenario.
func (s *mixedScenario) Prepare(ctx context.Context, env *Env) error {
	s.clinics = env.Clinics
	var err error
	s.patients, err = seedPatients(ctx, env, mixedSeed)
	return err
}

// Next implements Scenario.
func (s *mixedScenario) Next(r *rand.Rand) (Op, bool) {
	i := r.IntN(len(s.clinics))
	get := func(path string) (Op, bool) { return Op{Method: http.MethodGet, Path: path, Clinic: i}, true }
	switch n := r.IntN(100); {
	case n < 30:
		return get(clinicPath(s.clinics[i], "patients", s.patients[i][r.IntN(mixedSeed)]))
	case n < 55:
		return get(clinicPath(s.clinics[i], "patients") + "?limit=20")
	case n < 80:
		return get(clinicPath(s.clinics[i]))
	default:
		return createPatient(r, s.clinics, i), true
	}
}
