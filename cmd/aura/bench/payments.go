package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
)

// Payments settings.
const (
	paymentsPatients  = 4 // per clinic
	paymentsInvoices  = 8 // per clinic
	paymentsRefundPct = 10
	// invoiceTotal (minor units) is far more than a run pays, so payments of
	// at most paymentMax never exceed the balance.
	invoiceQuantity  = 1000
	invoiceUnitPrice = 100_000_000
	paymentMin       = 100
	paymentMax       = 5000
	// recentPayments is how many payments per clinic are kept for refunds.
	recentPayments = 256
)

// paymentsScenario records small payments against issued invoices, and
// refunds one minor unit of a recent payment in paymentsRefundPct % of the
// requests.
type paymentsScenario struct {
	clinics  []string
	invoices [][]string
	recent   []*paymentRing // by clinic
}

// paymentRing is a clinic's recent payment ids.
type paymentRing struct {
	mu  sync.Mutex
	ids []string
	pos int
}

func (p *paymentRing) add(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.ids) < recentPayments {
		p.ids = append(p.ids, id)
		return
	}
	p.ids[p.pos] = id
	p.pos = (p.pos + 1) % recentPayments
}

// pick returns a random recent payment, or false when there is none yet.
func (p *paymentRing) pick(r *rand.Rand) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.ids) == 0 {
		return "", false
	}
	return p.ids[r.IntN(len(p.ids))], true
}

// Prepare implements Scenario: it creates patients and issues them invoices
// in every clinic.
func (s *paymentsScenario) Prepare(ctx context.Context, env *Env) error {
	s.clinics = env.Clinics
	patients, err := seedPatients(ctx, env, paymentsPatients)
	if err != nil {
		return err
	}
	s.invoices, err = seed(ctx, env, paymentsInvoices,
		func(clinic string) string { return clinicPath(clinic, "invoices") },
		func(clinic, j int) any {
			return map[string]any{
				"patient_id": patients[clinic][j%paymentsPatients],
				"lines": []map[string]any{{
					"description": "Bench treatment", "quantity": invoiceQuantity, "unit_price": invoiceUnitPrice,
				}},
			}
		},
		func(c newResource) string { return c.ID })
	if err != nil {
		return fmt.Errorf("issue invoices: %w", err)
	}
	s.recent = make([]*paymentRing, len(s.clinics))
	for i := range s.recent {
		s.recent[i] = &paymentRing{}
	}
	return nil
}

// Next implements Scenario.
func (s *paymentsScenario) Next(r *rand.Rand) (Op, bool) {
	i := r.IntN(len(s.clinics))
	if r.IntN(100) < paymentsRefundPct {
		if payment, ok := s.recent[i].pick(r); ok {
			return Op{Method: http.MethodPost, Path: clinicPath(s.clinics[i], "payments", payment, "refunds"), Clinic: i,
				Body: map[string]any{"amount": 1, "reason": "Bench refund"}}, true
		}
	}
	invoice := s.invoices[i][r.IntN(paymentsInvoices)]
	return Op{
		Method: http.MethodPost, Path: clinicPath(s.clinics[i], "invoices", invoice, "payments"), Clinic: i,
		Body: map[string]any{"amount": paymentMin + r.IntN(paymentMax-paymentMin+1), "method": "card"},
		Done: func(body []byte) {
			var p newResource
			if json.Unmarshal(body, &p) == nil && p.ID != "" {
				s.recent[i].add(p.ID)
			}
		},
	}, true
}
