package billing

import (
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/aura-clinic/aura/actors/fault"
)

// Method is how a payment was made.
type Method string

// The payment methods.
const (
	MethodCash     Method = "cash"
	MethodCard     Method = "card"
	MethodTransfer Method = "transfer"
)

// Payment is money received against an invoice, with what was refunded of it.
type Payment struct {
	ID             uuid.UUID `json:"id"`
	ClinicID       uuid.UUID `json:"clinic_id"`
	InvoiceID      uuid.UUID `json:"invoice_id"`
	Amount         int64     `json:"amount"`
	AmountRefunded int64     `json:"amount_refunded"`
	Currency       string    `json:"currency"`
	Method         Method    `json:"method"`
	Reference      *string   `json:"reference"`
	CreatedAt      time.Time `json:"created_at"`
	Refunds        []Refund  `json:"refunds"`
}

// Refund is money given back from a payment.
type Refund struct {
	ID        uuid.UUID `json:"id"`
	ClinicID  uuid.UUID `json:"clinic_id"`
	PaymentID uuid.UUID `json:"payment_id"`
	InvoiceID uuid.UUID `json:"invoice_id"`
	Amount    int64     `json:"amount"`
	Currency  string    `json:"currency"`
	Reason    string    `json:"reason"`
	CreatedAt time.Time `json:"created_at"`
}

// PaymentRequest is what a client sends to record a payment.
type PaymentRequest struct {
	Amount    int64   `json:"amount"`
	Method    string  `json:"method"`
	Reference *string `json:"reference"`
}

// RefundRequest is what a client sends to refund part of a payment.
type RefundRequest struct {
	Amount int64  `json:"amount"`
	Reason string `json:"reason"`
}

// RecordPayment applies a payment to the invoice: paid minus refunded never
// exceeds the total, and the invoice is paid when nothing is left due.
func (inv *Invoice) RecordPayment(req PaymentRequest, now time.Time) (Payment, error) {
	var errs fault.Fields
	if req.Amount <= 0 {
		errs.Add("/amount", "out_of_range", "must be a positive amount in minor units")
	}
	method := Method(req.Method)
	if method != MethodCash && method != MethodCard && method != MethodTransfer {
		errs.Add("/method", "invalid_method", "must be one of cash, card, transfer")
	}
	var ref *string
	if req.Reference != nil {
		if r := strings.TrimSpace(*req.Reference); r != "" {
			errs.Length("/reference", r, 1, 200)
			ref = &r
		}
	}
	if err := errs.Err(); err != nil {
		return Payment{}, err
	}
	if req.Amount > inv.BalanceDue {
		return Payment{}, ErrPaymentExceedsBalance.Errorf("The invoice has %d %s due; a payment of %d would exceed it.",
			inv.BalanceDue, inv.Currency, req.Amount)
	}
	inv.AmountPaid += req.Amount
	inv.UpdatedAt = now
	inv.settle()
	return Payment{
		ID: uuid.Must(uuid.NewV7()), ClinicID: inv.ClinicID, InvoiceID: inv.ID, Amount: req.Amount,
		Currency: inv.Currency, Method: method, Reference: ref, CreatedAt: now, Refunds: []Refund{},
	}, nil
}

// Refund gives back part of payment p of the invoice: a payment's refunds
// never exceed its amount, and the invoice is issued again when a balance is
// due.
func (inv *Invoice) Refund(p *Payment, req RefundRequest, now time.Time) (Refund, error) {
	var errs fault.Fields
	if req.Amount <= 0 {
		errs.Add("/amount", "out_of_range", "must be a positive amount in minor units")
	}
	reason := strings.TrimSpace(req.Reason)
	errs.Length("/reason", reason, 1, maxTextLength)
	if err := errs.Err(); err != nil {
		return Refund{}, err
	}
	if p.InvoiceID != inv.ID {
		return Refund{}, ErrPaymentNotFound.New("The payment is not one of this invoice's.")
	}
	if left := p.Amount - p.AmountRefunded; req.Amount > left {
		return Refund{}, ErrRefundExceedsPayment.Errorf("The payment has %d %s left to refund; a refund of %d would exceed it.",
			left, inv.Currency, req.Amount)
	}
	p.AmountRefunded += req.Amount
	inv.AmountRefunded += req.Amount
	inv.UpdatedAt = now
	inv.settle()
	r := Refund{ID: uuid.Must(uuid.NewV7()), ClinicID: inv.ClinicID, PaymentID: p.ID, InvoiceID: inv.ID,
		Amount: req.Amount, Currency: inv.Currency, Reason: reason, CreatedAt: now}
	p.Refunds = append(p.Refunds, r)
	return r, nil
}

// ParseInvoiceStatus returns the status named s.
func ParseInvoiceStatus(s string) (InvoiceStatus, bool) {
	switch st := InvoiceStatus(s); st {
	case StatusIssued, StatusPaid:
		return st, true
	}
	return "", false
}
