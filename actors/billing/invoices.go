// Package billing holds the Billing domain: invoices with server-computed
// totals, payments and refunds. Money is always integer minor units of the
// clinic's ISO 4217 currency, never floats. Its rules are plain functions and
// methods with no dependency on HTTP, actors or SQL.
package billing

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/aura-clinic/aura/actors/crm"
	"github.com/aura-clinic/aura/actors/fault"
)

// InvoiceStatus says whether an invoice still has a balance due.
type InvoiceStatus string

// The statuses of an invoice.
const (
	StatusIssued InvoiceStatus = "issued" // a balance is due
	StatusPaid   InvoiceStatus = "paid"   // paid minus refunded equals the total
)

// Limits on invoice lines; with them every amount fits in an int64.
const (
	MaxLines      = 100
	MaxQuantity   = 10_000
	MaxUnitPrice  = 10_000_000_000 // minor units
	MaxTaxRateBP  = 10_000         // 100 %
	basisPoints   = 10_000
	maxTextLength = 500
)

// Errors of the billing rules.
var (
	ErrInvoiceNotFound       = fault.Define("invoice_not_found", fault.NotFound, "Invoice not found")
	ErrPaymentNotFound       = fault.Define("payment_not_found", fault.NotFound, "Payment not found")
	ErrPaymentExceedsBalance = fault.Define("payment_exceeds_balance", fault.Unprocessable, "Payment exceeds the balance due")
	ErrRefundExceedsPayment  = fault.Define("refund_exceeds_payment", fault.Unprocessable, "Refund exceeds the payment")
	ErrAppointmentMismatch   = fault.Define("appointment_mismatch", fault.Unprocessable, "Appointment of another patient")
)

// Line is one invoice line. Subtotal, Tax and Total are computed.
type Line struct {
	Description string `json:"description"`
	Quantity    int64  `json:"quantity"`
	UnitPrice   int64  `json:"unit_price"`
	TaxRateBP   int64  `json:"tax_rate_bp"` // basis points: 2100 is 21 %
	Subtotal    int64  `json:"subtotal"`
	Tax         int64  `json:"tax"`
	Total       int64  `json:"total"`
}

// Invoice is an issued invoice with its running balance.
type Invoice struct {
	ID             uuid.UUID     `json:"id"`
	ClinicID       uuid.UUID     `json:"clinic_id"`
	Number         int64         `json:"number"`
	DisplayNumber  string        `json:"display_number"`
	PatientID      uuid.UUID     `json:"patient_id"`
	AppointmentID  *uuid.UUID    `json:"appointment_id"`
	Currency       string        `json:"currency"`
	Lines          []Line        `json:"lines,omitempty"` // absent in lists
	Subtotal       int64         `json:"subtotal"`
	Tax            int64         `json:"tax"`
	Total          int64         `json:"total"`
	AmountPaid     int64         `json:"amount_paid"`
	AmountRefunded int64         `json:"amount_refunded"`
	BalanceDue     int64         `json:"balance_due"`
	Status         InvoiceStatus `json:"status"`
	IssuedAt       time.Time     `json:"issued_at"`
	UpdatedAt      time.Time     `json:"updated_at"`
}

// InvoiceDetail is an invoice read whole: its lines, and its payments each
// with its refunds.
type InvoiceDetail struct {
	Invoice
	Payments []Payment `json:"payments"`
}

// InvoiceRequest is what a client sends to issue an invoice.
type InvoiceRequest struct {
	PatientID     string        `json:"patient_id"`
	AppointmentID *string       `json:"appointment_id"`
	Lines         []LineRequest `json:"lines"`
}

// LineRequest is one requested line; the server computes its amounts.
type LineRequest struct {
	Description string `json:"description"`
	Quantity    int64  `json:"quantity"`
	UnitPrice   int64  `json:"unit_price"`
	TaxRateBP   int64  `json:"tax_rate_bp"`
}

// NewInvoice validates the request and computes the invoice's amounts. Each
// line's subtotal is quantity × unit_price; its tax is subtotal × rate / 10000
// rounded half up to a whole minor unit; the invoice's subtotal and tax are
// the sums of its lines', and its total is subtotal + tax. The number is
// assigned when the invoice is issued.
func NewInvoice(clinicID uuid.UUID, currency string, req InvoiceRequest, now time.Time) (Invoice, error) {
	var errs fault.Fields
	inv := Invoice{
		ID: uuid.Must(uuid.NewV7()), ClinicID: clinicID, Currency: currency,
		PatientID: crm.ParseID(&errs, "/patient_id", req.PatientID),
		Status:    StatusIssued, IssuedAt: now, UpdatedAt: now,
	}
	if req.AppointmentID != nil {
		id := crm.ParseID(&errs, "/appointment_id", *req.AppointmentID)
		inv.AppointmentID = &id
	}
	if len(req.Lines) == 0 || len(req.Lines) > MaxLines {
		errs.Add("/lines", "invalid_length", fmt.Sprintf("must have 1 to %d lines", MaxLines))
	}
	for i, lr := range req.Lines {
		line, ok := newLine(&errs, fmt.Sprintf("/lines/%d", i), lr)
		if !ok {
			continue
		}
		inv.Lines = append(inv.Lines, line)
		inv.Subtotal += line.Subtotal
		inv.Tax += line.Tax
	}
	if err := errs.Err(); err != nil {
		return Invoice{}, err
	}
	inv.Total = inv.Subtotal + inv.Tax
	inv.settle()
	return inv, nil
}

func newLine(errs *fault.Fields, at string, lr LineRequest) (Line, bool) {
	before := len(*errs)
	desc := strings.TrimSpace(lr.Description)
	errs.Length(at+"/description", desc, 1, maxTextLength)
	if lr.Quantity < 1 || lr.Quantity > MaxQuantity {
		errs.Add(at+"/quantity", "out_of_range", fmt.Sprintf("must be a whole number from 1 to %d", MaxQuantity))
	}
	if lr.UnitPrice < 0 || lr.UnitPrice > MaxUnitPrice {
		errs.Add(at+"/unit_price", "out_of_range", fmt.Sprintf("must be from 0 to %d minor units", MaxUnitPrice))
	}
	if lr.TaxRateBP < 0 || lr.TaxRateBP > MaxTaxRateBP {
		errs.Add(at+"/tax_rate_bp", "out_of_range", "must be from 0 to 10000 basis points")
	}
	if len(*errs) > before {
		return Line{}, false
	}
	subtotal := lr.Quantity * lr.UnitPrice
	tax := (subtotal*lr.TaxRateBP + basisPoints/2) / basisPoints // half up; amounts are never negative
	return Line{Description: desc, Quantity: lr.Quantity, UnitPrice: lr.UnitPrice, TaxRateBP: lr.TaxRateBP,
		Subtotal: subtotal, Tax: tax, Total: subtotal + tax}, true
}

// AssignNumber gives the invoice its gapless number, shown as the year of issue
// in the clinic's time zone and the number in six digits: 2026-000042.
func (inv *Invoice) AssignNumber(n int64, loc *time.Location) {
	inv.Number = n
	inv.DisplayNumber = DisplayNumber(n, inv.IssuedAt, loc)
}

// DisplayNumber is an invoice number's documented display form.
func DisplayNumber(n int64, issuedAt time.Time, loc *time.Location) string {
	return fmt.Sprintf("%d-%06d", issuedAt.In(loc).Year(), n)
}

// settle derives the balance and status from the amounts.
func (inv *Invoice) settle() {
	inv.BalanceDue = inv.Total - (inv.AmountPaid - inv.AmountRefunded)
	if inv.BalanceDue == 0 {
		inv.Status = StatusPaid
	} else {
		inv.Status = StatusIssued
	}
}
